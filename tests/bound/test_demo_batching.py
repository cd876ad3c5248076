"""The demo's batching scenarios give the same results as each other on a small real database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from membound.demo import batching as demo
from membound.demo import pipelines
from membound.demo.scenarios import make_users_db, sized_path


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
def test_status_transition_ways_agree_and_repeat(tmp_path: Path, scenario: object) -> None:
    template = tmp_path / "users.db"
    work = tmp_path / "work.db"
    assert 2500 == demo.create_users_table(str(template), rows=2500)["rows"]
    assert 2500 == demo.read_find_each(str(template), batch_size=300)
    for _ in range(2):  # the template is copied each time: runs repeat
        assert 2500 == scenario(str(template), str(work))  # type: ignore[operator]
        assert {"TEMP_DELETED": 2500} == statuses(work)
    assert {"SYNCED": 2500} == statuses(template)


def test_n_variants_on_the_demo_users_database(tmp_path: Path) -> None:
    folder = str(tmp_path)
    make_users_db(sized_path(folder, "users", 400), 400)  # statuses mix SYNCED and PENDING
    assert 400 == demo.read_find_each_n(folder, 400)
    changed = {
        demo.status_all_then_one_transaction_n(folder, 400),
        demo.status_in_batches_set_update_n(folder, 400),
        demo.status_find_each_writer_n(folder, 400),
    }
    assert {300} == changed


def test_rag_naive_and_pipeline_agree(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    pipelines.create_corpus(str(corpus), documents=500)
    assert pipelines.rag_naive_lists(str(corpus)) == pipelines.rag_pipeline(str(corpus))
    pipelines.create_corpus(sized_path(str(tmp_path), "corpus", 50), documents=50)
    assert pipelines.rag_naive_lists_n(str(tmp_path), 50) == pipelines.rag_pipeline_n(
        str(tmp_path), 50
    )
    assert pipelines.rag_pipeline_n(str(tmp_path), 50) > 0
