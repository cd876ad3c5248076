"""The same deterministic job gets the same growth word in every run (issue 37).

Each job of ``stability_jobs`` runs three times through the public API (``mb.measure``, a
fresh interpreter each) and three times through the CLI (``membound run``, a command from its
birth to its exit): one word per job across the runs, and the word its shape calls for. None of
them is a "leak": each is one run, and a leak needs repeated units of work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import membound as mb
from tests.realworld import stability_jobs

RUNS = 3
JOBS = Path(stability_jobs.__file__)

#: The word each job's shape calls for.
WORDS = {
    "build_and_keep": "retained",
    "kept_then_churn": "sawtooth",
    "load_then_free": "spike",
    "transient_peak": "spike",
    "append_loop": "retained",
    "big_temporaries": "ramp",
    "slow_free": "spike",
}


def measured(name: str, api: str, tmp_path: Path, run: int) -> mb.Measurement:
    if api == "measure":
        return mb.measure(stability_jobs.JOBS[name])
    out = tmp_path / f"{name}-{run}.json"
    argv = [sys.executable, "-m", "membound", "run", "--quiet", "--json", str(out), "--"]
    subprocess.run([*argv, sys.executable, str(JOBS), name], check=True, capture_output=True)
    return mb.Measurement.from_dict(json.loads(out.read_text())["result"])


@pytest.mark.parametrize("api", ["measure", "run"])
@pytest.mark.parametrize("name", sorted(WORDS))
def test_three_runs_of_a_job_get_one_word(name: str, api: str, tmp_path: Path) -> None:
    runs = [measured(name, api, tmp_path, i) for i in range(RUNS)]
    words = [m.growth.label for m in runs]
    explained = "\n".join(m.growth.explanation for m in runs)
    assert [WORDS[name]] * RUNS == words, explained
    assert "leak" not in explained
