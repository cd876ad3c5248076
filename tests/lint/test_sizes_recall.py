"""Recall with data (issue 25): in request code nothing is reported by default, but with sizes
that say the tables are big every unbounded load in ``sizes_corpus/`` is (the lines marked
``# load``), and with sizes that say they are small none of the loading rules' findings is."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from membound.cli.main import main

CORPUS = Path(__file__).parent / "sizes_corpus"
TABLES = ("shop_order", "events", "audit_log")


def _marked(root: Path) -> set[tuple[str, int]]:
    found = set()
    for path in sorted(root.rglob("*.py")):
        for row, line in enumerate(path.read_text().splitlines(), 1):
            if line.rstrip().endswith("# load"):
                found.add((path.relative_to(root).as_posix(), row))
    return found


def _reported(capsys: pytest.CaptureFixture[str], *args: str) -> dict[tuple[str, int], str]:
    main(["lint", *args, "shop", "api"])
    found = {}
    for line in capsys.readouterr().out.splitlines():
        if ": MB" in line:
            path, row, _, rest = line.split(":", 3)
            found[(path, int(row))] = rest.split()[0]
    return found


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(CORPUS, root)
    monkeypatch.chdir(root)
    return root


def test_big_tables_every_load_is_found_in_request_code(
    corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marked = _marked(corpus)
    assert len(marked) == 14
    default = _reported(capsys)
    assert not {k for k, code in default.items() if code in ("MB101", "MB102")}
    sizes = corpus / "big.toml"
    sizes.write_text("[tables]\n" + "".join(f"{t} = 2000000\n" for t in TABLES))
    found = _reported(capsys, "--sizes", str(sizes))
    assert marked == set(found), (sorted(marked - set(found)), sorted(set(found) - marked))


def test_small_tables_no_load_is_reported(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sizes = corpus / "small.toml"
    sizes.write_text("[tables]\n" + "".join(f"{t} = 40\n" for t in TABLES))
    found = _reported(capsys, "--sizes", str(sizes))
    assert not {k for k, code in found.items() if code in ("MB101", "MB102")}, found
