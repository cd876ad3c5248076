"""The API reference (``docs/reference/``) documents every public name, at its public path.

Public are the names in ``__all__`` of the modules a user imports: ``membound``,
``membound.guard``, ``membound.guard.actions``, ``membound.guard.prometheus`` and
``membound.report``. A name counts as documented when a ``::: target`` of the reference is that
object (``membound.Watchdog`` documents ``membound.guard.Watchdog`` too) or the module that
holds it; a constant may be named in the text instead. A target is always ``module.name`` of
those modules (or one of the modules): an implementation path (``membound.results.baseline``)
is not part of the API and would break when the house moves.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
PUBLIC_MODULES = (
    "membound",
    "membound.guard",
    "membound.guard.actions",
    "membound.guard.prometheus",
    "membound.report",
)
TARGET = re.compile(r"^:::\s+(\S+)", re.MULTILINE)


def targets() -> list[tuple[str, str]]:
    """Every ``:::`` target of the docs, with its page (mkdocs-click's pages aside)."""
    found = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        for target in TARGET.findall(page.read_text(encoding="utf-8")):
            if target != "mkdocs-click":
                found.append((page.relative_to(ROOT).as_posix(), target))
    return found


def public_names() -> list[tuple[str, str]]:
    """(module, name) for every public name."""
    return [
        (module, name)
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
    ]


def resolve(target: str) -> object:
    """The object a public path names."""
    if target in PUBLIC_MODULES:
        return importlib.import_module(target)
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_the_reference_has_targets() -> None:
    assert len(targets()) >= 60


@pytest.mark.parametrize(("page", "target"), targets(), ids=[t for _, t in targets()])
def test_every_target_is_a_public_path(page: str, target: str) -> None:
    module, _, name = target.rpartition(".")
    public = target in PUBLIC_MODULES or (
        module in PUBLIC_MODULES and name in importlib.import_module(module).__all__
    )
    assert public, f"{page}: ::: {target} is not a public path ({', '.join(PUBLIC_MODULES)})"


def test_every_public_name_is_in_the_reference() -> None:
    documented = [resolve(target) for _, target in targets()]
    text = "".join(
        page.read_text(encoding="utf-8") for page in (ROOT / "docs" / "reference").glob("*.md")
    )
    missing = []
    for module, name in public_names():
        value = getattr(importlib.import_module(module), name)
        if any(value is d for d in documented):
            continue
        if isinstance(value, ModuleType) and value.__name__ in PUBLIC_MODULES:
            continue  # a public module: its own names are checked one by one
        holders = [d for d in documented if isinstance(d, ModuleType)]
        if any(getattr(holder, name, None) is value for holder in holders):
            continue  # ``::: membound.guard.actions`` documents its functions
        if isinstance(value, str) and f"`{module}.{name}`" in text:
            continue  # a constant, named in the text
        missing.append(f"{module}.{name}")
    assert [] == missing
