"""Scenarios files: ``@scenario`` marks functions, :func:`load_scenarios` finds them.

``membound compare FILE`` measures every marked function of FILE side by side; each becomes a
``"path.py:function"`` target, imported by the same rules as any other (``measure/target.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from membound._errors import StopRequested, TargetError, failure_words
from membound.measure.target import import_file

__all__ = ["load_scenarios", "scenario"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__membound_scenario__"


def scenario(name: str | F | None = None) -> Any:
    """Mark a module-level function in a scenarios file for ``membound compare FILE``.

    Usable as ``@scenario``, ``@scenario()`` or ``@scenario("load all")``.
    """

    def mark(func: F, label: str | None) -> F:
        setattr(func, _MARK, label or func.__name__)
        return func

    if callable(name):
        return mark(name, None)
    return lambda func: mark(func, name)


def load_scenarios(path: str | Path) -> dict[str, str]:
    """Import a scenarios file and return ``{name: "path.py:function"}`` in file order.

    Raises:
        TargetError: the file is missing, does not import, or declares no scenario.
    """
    file = Path(path)
    if not file.is_file():
        raise TargetError(
            f"scenarios file not found: {path}",
            hint="give a Python file whose functions carry @membound.scenario('name')",
        )
    module_name = f"__membound_scenarios_{file.stem}__"
    try:
        module = import_file(file, module_name)
    except (KeyboardInterrupt, StopRequested):
        raise
    except BaseException as exc:  # SystemExit on import too: the file's failure, not ours
        raise TargetError(
            f"{path} failed to import: it {failure_words(exc)}",
            hint=f"run 'python {path}' to see the error in full",
        ) from None
    found: dict[str, str] = {}
    for obj in vars(module).values():
        if not (callable(obj) and hasattr(obj, _MARK)):
            continue
        if getattr(obj, "__module__", "") != module_name:
            continue
        name = getattr(obj, _MARK)
        if name in found:
            raise TargetError(
                f"{path} declares two scenarios named {name!r}",
                hint="give each @membound.scenario its own name",
            )
        found[name] = f"{file.resolve()}:{obj.__name__}"
    if not found:
        raise TargetError(
            f"{path} declares no scenario",
            hint="decorate module-level functions with @membound.scenario('name')",
        )
    return found
