"""The guard's public paths: what the guides name, and the deep paths earlier guides cited (they
keep working, with a deprecation warning, and give the same objects)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from membound import guard

DEPRECATED = [
    ("membound.guard.gunicorn", "Recycler", "GunicornRecycler"),
    ("membound.guard.asgi_recycler", "ASGIRecycler", "ASGIRecycler"),
    ("membound.guard.celery_recycler", "recycle_children", "recycle_children"),
    ("membound.guard.pools", "RecyclingProcessPool", "RecyclingProcessPool"),
]


@pytest.mark.parametrize(("module", "old", "new"), DEPRECATED)
def test_an_old_deep_path_warns_once_and_gives_the_same_object(
    module: str, old: str, new: str
) -> None:
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        f"    from {module} import {old} as found\n"
        "import membound.guard as guard\n"
        f"print(found is guard.{new}, [str(w.message) for w in caught "
        "if w.category is DeprecationWarning])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out.startswith("True [")
    assert f"{module} is deprecated: from membound.guard import {new}" in out


def test_the_guides_names_are_on_membound_guard() -> None:
    from membound.guard.middleware import ASGIHealthMiddleware, HealthMiddleware
    from membound.guard.recycle.celery import recycle_children
    from membound.guard.recycle.gunicorn import GunicornRecycler, Recycler
    from membound.guard.recycle.process_pools import RecyclingProcessPool
    from membound.guard.recycle.uvicorn import ASGIRecycler

    assert guard.GunicornRecycler is GunicornRecycler is Recycler  # Recycler: the old name
    assert "GunicornRecycler" == GunicornRecycler.__name__
    assert guard.ASGIRecycler is ASGIRecycler
    assert guard.recycle_children is recycle_children
    assert guard.RecyclingProcessPool is RecyclingProcessPool
    assert guard.HealthMiddleware is HealthMiddleware
    assert guard.ASGIHealthMiddleware is ASGIHealthMiddleware
    assert callable(guard.prometheus.register)
    assert callable(guard.actions.refuse_new_work)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        _ = guard.nothing_here  # type: ignore[attr-defined]


def test_the_actions_module_keeps_its_old_name() -> None:
    from membound.guard.actions import refuse_new_work

    from membound.guard.watchdog.actions import refuse_new_work as same

    assert refuse_new_work is same


def test_import_membound_imports_no_recycler_nor_prometheus() -> None:
    heavy = (
        "membound.guard.recycle.gunicorn",
        "membound.guard.recycle.uvicorn",
        "membound.guard.recycle.celery",
        "membound.guard.recycle.process_pools",
        "membound.guard.prometheus",
        "prometheus_client",
    )
    code = f"import membound, sys; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "[]" == out
