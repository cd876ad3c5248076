"""Deep paths that earlier guides cited outside the guard (tests/guard/test_public_paths.py has
the guard's): each still imports, warns once that it is deprecated, naming the public path, and
gives the very objects the public path gives."""

from __future__ import annotations

import subprocess
import sys

import pytest

DEPRECATED = [
    ("membound.bound.sql.partitioned", "run_partitioned", "run_partitioned"),
    ("membound.bound.sql.partitioned", "PartitionReport", "run_partitioned"),
    ("membound.bound.sql.partition_report", "PartitionReport", "PartitionReport, RangeReport"),
    ("membound.bound.sql.partition_report", "RangeReport", "PartitionReport, RangeReport"),
    ("membound.measure.command", "measure_command", "measure_command"),
]


@pytest.mark.parametrize(("module", "name", "advice"), DEPRECATED)
def test_an_old_deep_path_warns_once_and_gives_the_same_object(
    module: str, name: str, advice: str
) -> None:
    code = (
        "import warnings; warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        f"    from {module} import {name} as found\n"
        f"    import {module}\n"  # a second import: no second warning
        "import membound\n"
        f"print(found is membound.{name}, [str(w.message) for w in caught "
        "if w.category is DeprecationWarning])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    expected = f"True ['{module} is deprecated: from membound import {advice}']"
    assert expected == out


def test_import_membound_imports_no_old_path() -> None:
    old = sorted({module for module, _, _ in DEPRECATED})
    code = f"import membound, sys; print([m for m in {old} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert "[]" == out
