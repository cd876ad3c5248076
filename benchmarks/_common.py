"""Helpers shared by the benchmark scripts: where results go and what machine made them."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Facts about the machine and interpreter that made a result."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "system": platform.system(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write(name: str, data: dict[str, Any]) -> Path:
    """Write ``results/NAME.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")
    return path


def median(values: Sequence[float]) -> float:
    """The median."""
    return statistics.median(values)


def pip_target(target: Path, *packages: str) -> None:
    """Install ``packages`` (without their dependencies) into the folder ``target``: inputs a
    benchmark needs that must not enter the project's environment."""
    print(f"installing {' '.join(packages)} into {target} (first run)")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"),
            *("--target", str(target), *packages),
        ],
        check=True,
    )
