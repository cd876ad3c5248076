"""The baseline rule (a change counts beyond the largest of 10 %, 3× the spread and 1 MiB; a
verdict that ranks lower is worse) and the baseline file (plain, sorted, read back as written,
bad files named in one line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from membound._errors import MemboundError
from membound.judge.baseline import Tolerance, check_against, parse_ratio
from membound.results.baseline import Baseline, BaselineEntry, Figure

MIB = 2**20


def _heap(median: int, spread: int = 0) -> BaselineEntry:
    return BaselineEntry(heap_peak=Figure(median, spread), runs=3)


@pytest.mark.parametrize(
    ("before", "now", "status"),
    [
        (_heap(2 * MIB), _heap(2 * MIB + MIB - 1), "same"),  # under the 1 MiB floor
        (_heap(2 * MIB), _heap(3 * MIB + 1), "regressed"),  # just over it
        (_heap(50 * MIB), _heap(54 * MIB), "same"),  # 8 %: under 10 % of 50 MiB
        (_heap(50 * MIB), _heap(56 * MIB), "regressed"),  # 12 %
        (_heap(10 * MIB, spread=MIB), _heap(12 * MIB), "same"),  # within 3× the spread
        (_heap(10 * MIB), _heap(12 * MIB, spread=MIB), "same"),  # this run's spread counts too
        (_heap(10 * MIB, spread=MIB), _heap(13 * MIB + 1), "regressed"),
        (_heap(10 * MIB), _heap(8 * MIB), "improved"),
        (BaselineEntry(complexity="O(1)"), BaselineEntry(complexity="O(n)"), "regressed"),
        (BaselineEntry(complexity="O(n)"), BaselineEntry(complexity="O(1)"), "same"),
        (BaselineEntry(leak="no leak"), BaselineEntry(leak="leak"), "regressed"),
        (BaselineEntry(leak="leak"), BaselineEntry(leak="undecided"), "same"),
    ],
)
def test_a_change_counts_only_beyond_its_noise(
    before: BaselineEntry, now: BaselineEntry, status: str
) -> None:
    assert check_against("t", before, now).status == status


def test_the_explanation_gives_the_figures_it_decided_on() -> None:
    check = check_against("t", _heap(10 * MIB, spread=MIB), _heap(14 * MIB))
    assert check.regressed
    assert check.explanation == (
        "heap peak rose: 14.0 MiB now, 10.0 MiB in the baseline, +4.0 MiB (+40%); a change "
        "counts beyond 3.0 MiB, the largest of 10% (1.0 MiB), 3× the spread (3.0 MiB) and "
        "1.0 MiB"
    )
    assert check.peaks[0].allowed == 3 * MIB


def test_a_name_the_baseline_lacks_is_new_and_a_figure_on_one_side_is_left_out() -> None:
    assert check_against("t", None, _heap(MIB)).status == "new"
    rss_only = BaselineEntry(rss_peak=Figure(MIB, 0), runs=1)
    check = check_against("t", rss_only, _heap(100 * MIB))
    assert check.status == "same"
    assert check.peaks == ()


def test_tolerance_options_parse_and_reject() -> None:
    assert Tolerance.parse("25%", "2MiB") == Tolerance(ratio=0.25, floor=2 * MIB)
    assert parse_ratio("10%") == parse_ratio("0.1") == parse_ratio(0.1) == pytest.approx(0.1)
    with pytest.raises(MemboundError, match="not a percentage: 'lots'"):
        parse_ratio("lots")


def test_a_bare_number_is_a_fraction_with_no_jump_at_one() -> None:
    """Bare numbers were a percentage from 1 up and a fraction below: "0.99" was 99 % and
    "1.0" 1 %. A bare number is a fraction; above 1 it is refused, naming the percent form."""
    assert parse_ratio("0.99") == pytest.approx(0.99)
    assert parse_ratio("1.0") == pytest.approx(1.0)
    with pytest.raises(MemboundError, match="write 10% for a percentage"):
        parse_ratio("10")
    assert "the largest of 1.5% (" in Tolerance.parse("1.5%").describe(100 * MIB, 0)


def test_the_file_is_sorted_one_line_per_entry_and_reads_back_as_written(tmp_path: Path) -> None:
    entries = {
        "tests/b.py::test_b": _heap(5 * MIB, 100),
        "tests/a.py::test_a": BaselineEntry(complexity="O(1)"),
        "cmd with spaces": BaselineEntry(rss_peak=Figure(MIB, 0), runs=1),
    }
    path = tmp_path / "b.json"
    Baseline(entries, python="3.11").write(path)
    text = path.read_text()
    assert text.splitlines()[4:7] == [
        '    "cmd with spaces": {"rss_peak": 1048576, "rss_spread": 0, "runs": 1},',
        '    "tests/a.py::test_a": {"complexity": "O(1)"},',
        '    "tests/b.py::test_b": {"heap_peak": 5242880, "heap_spread": 100, "runs": 3}',
    ]
    again = Baseline.read(path)
    assert again == Baseline(entries, python="3.11")
    assert again.dumps() == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "b.json: not a membound baseline (bad JSON"),
        ("[]", "b.json: not a membound baseline (no 'membound_baseline' key)"),
        ('{"membound_baseline": 2, "entries": {}}', "b.json: baseline format 2 is not 1"),
        ('{"membound_baseline": 1, "entries": []}', "b.json: 'entries' must be an object"),
        (
            '{"membound_baseline": 1, "entries": {"t": {"heap_peak": -1}}}',
            "b.json: entry 't': 'heap_peak' must be a whole number >= 0, not -1",
        ),
        (
            '{"membound_baseline": 1, "entries": {"t": {"heap": 1}}}',
            "b.json: entry 't': unknown key 'heap'",
        ),
    ],
)
def test_a_bad_file_is_named_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(MemboundError) as err:
        Baseline.read(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MemboundError, match=r"cannot read the baseline .*missing\.json"):
        Baseline.read(tmp_path / "missing.json")
