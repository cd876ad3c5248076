"""Models of installed distributions that the linted code imports.

A project's models may live in another distribution (Galaxy's application imports
``galaxy.model`` from ``galaxy-data``; a Django site uses a reusable app's ``models``): a sizes
file that names their tables must reach them too. The linted code's imports of a module path
with a ``model``/``models`` part (``from galaxy.model import Job``, ``from galaxy import model``,
``from taggit.models import Tag``) whose top-level package is not part of the tree are looked up
in the environment membound runs in (install membound where the project's dependencies are),
and the files of that ``model``/``models`` module or package are indexed like the tree's own.

Nothing is imported: ``importlib.util.find_spec`` of a top-level name only locates it, and the
path below it is built from the folders (finding a submodule's spec would run its packages'
``__init__``). The standard library, membound itself and the ORM frameworks are never read:
those define no application tables (their own, ``auth_user`` and the like, are
``tables.FRAMEWORK_TABLES``), and ``django.db.models`` is a package of field and manager classes
that a models folder's rules would take for models.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Iterable, Iterator

__all__ = ["installed_model_files", "model_imports"]

#: ``from a.b import c, D`` / ``import a.b.c`` at the start of a line (the module and the names).
_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import[ \t]+([^\n#]+)|import[ \t]+([^\n#]+))", re.M
)
_MODEL_PARTS = frozenset({"model", "models"})
#: Frameworks whose ``models`` packages hold no application models.
_FRAMEWORKS = frozenset({"django", "sqlalchemy", "flask_sqlalchemy", "sqlmodel", "alembic"})
#: Files read from one installed module or package, at most (a huge package is read in part).
_MOST_FILES = 2000


def model_imports(text: str) -> set[str]:
    """The dotted module paths up to a ``model``/``models`` part that ``text`` imports
    (``galaxy.model`` for ``from galaxy.model.item import Job`` or ``from galaxy import model``)."""
    found: set[str] = set()
    for match in _IMPORT.finditer(text):
        module, names, plain = match.group(1), match.group(2), match.group(3)
        paths: list[str] = []
        if module is not None:
            paths.append(module)
            paths.extend(
                f"{module}.{piece.split()[0]}"
                for piece in names.strip("() \\").split(",")
                if piece.split() and piece.split()[0] in _MODEL_PARTS
            )
        elif plain is not None:
            paths.extend(piece.split()[0] for piece in plain.split(",") if piece.split())
        for path in paths:
            parts = path.split(".")
            for i, part in enumerate(parts):
                if part in _MODEL_PARTS and i > 0:
                    found.add(".".join(parts[: i + 1]))
                    break
    return found


def installed_model_files(
    imports: Iterable[str], project_roots: Iterable[str], linted: Iterable[str] = ()
) -> Iterator[tuple[str, str, str]]:
    """``(path, text, root)`` of the files of each imported model module whose top-level
    package is installed, is not one of ``project_roots`` and is neither inside nor around a
    folder of ``linted`` (the tree itself, found on ``sys.path`` from where the run started);
    ``root`` is the folder the package's module paths are counted from."""
    skip = set(project_roots) | set(sys.stdlib_module_names) | _FRAMEWORKS | {"membound"}
    trees = [os.path.realpath(folder) for folder in linted]
    seen: set[str] = set()
    for dotted in sorted(imports):
        top, *below = dotted.split(".")
        if not top or top in skip or dotted in seen:  # ``from .models import X``: the tree's
            continue
        seen.add(dotted)
        base = _package_folder(top)
        if base is None or any(_overlap(os.path.realpath(base), tree) for tree in trees):
            continue
        root = os.path.dirname(base)
        target = os.path.join(base, *below)
        yield from _read_files(target, root)


def _overlap(folder: str, tree: str) -> bool:
    """Whether one of the two folders is the other or inside it."""
    return folder == tree or folder.startswith(tree + os.sep) or tree.startswith(folder + os.sep)


def _package_folder(top: str) -> str | None:
    """The folder of the installed top-level package ``top`` (None: not installed here, or a
    single-file module)."""
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return locations[0] if locations else None


def _read_files(target: str, root: str) -> Iterator[tuple[str, str, str]]:
    """The Python files of the module or package at ``target`` (without its ``.py``)."""
    if os.path.isfile(target + ".py"):
        paths = [target + ".py"]
    elif os.path.isdir(target):
        paths = []
        for folder, dirs, names in os.walk(target):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            paths.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".py"))
            if len(paths) >= _MOST_FILES:
                break
    else:
        return
    for path in paths[:_MOST_FILES]:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                yield path, handle.read(), root
        except OSError:
            continue
