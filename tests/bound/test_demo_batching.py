"""The demo's batching scenarios give the same results as each other on a small real database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from membound.demo import batching as demo


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM users GROUP BY status").fetchall())


@pytest.mark.parametrize(
    "scenario",
    [
        demo.status_all_then_one_transaction,
        demo.status_in_batches_set_update,
        demo.status_find_each_writer,
    ],
)
def test_status_transition_ways_agree(tmp_path: Path, scenario: object) -> None:
    db = tmp_path / "users.db"
    assert 2500 == demo.create_users_table(str(db), rows=2500)["rows"]
    assert {"rows": 2500} == demo.read_find_each(str(db), batch_size=300)
    result = scenario(str(db))  # type: ignore[operator]
    assert 2500 == result["rows"]
    assert result["file_size_after"] > 0
    assert {"TEMP_DELETED": 2500} == statuses(db)


def test_rag_naive_and_pipeline_agree(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    demo.create_corpus(str(corpus), documents=500)
    naive = demo.rag_naive_lists(str(corpus))
    assert naive == demo.rag_pipeline(str(corpus))
    assert 450 == naive["documents"]
