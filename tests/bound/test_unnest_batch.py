"""``bound/sql/unnest_batch.py``: on PostgreSQL a keyed UPDATE or DELETE batch runs as one
statement over arrays, with the result ``executemany`` gives; a repeated key runs in rounds;
what it cannot prove the same (a key it sets, a constant key, SQLite) runs row by row. The
classes of difference it rules out are in ``test_write_equivalence.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from membound.bound.sql import executemany
from tests.bound.helpers import Db, sa


class Sent:
    """The statements sent to the driver while active, and whether each was an executemany."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[tuple[str, bool]] = []

    def _listen(self, _c: Any, _cur: Any, statement: str, _p: Any, _x: Any, many: bool) -> None:
        self.statements.append((statement, many))

    @property
    def unnest(self) -> int:
        return sum(
            s.startswith(("UPDATE", "DELETE")) and "unnest(" in s and not many
            for s, many in self.statements
        )

    @property
    def row_by_row(self) -> int:
        return sum(many and s.startswith(("UPDATE", "DELETE")) for s, many in self.statements)


@pytest.fixture
def sent(db: Db) -> Iterator[Sent]:
    watch = Sent(db.engine)
    sa.event.listen(db.engine, "before_cursor_execute", watch._listen)
    yield watch
    sa.event.remove(db.engine, "before_cursor_execute", watch._listen)


def _state(db: Db, table: sa.Table) -> dict[int, tuple[str, int, str | None]]:
    with db.engine.connect() as conn:
        return {r.id: (r.status, r.counter, r.payload) for r in conn.execute(sa.select(table))}


def _run(db: Db, statement: Any, rows: list[dict[str, Any]]) -> None:
    with db.engine.begin() as conn:
        executemany.execute_many(conn, statement, rows)


def test_a_keyed_update_is_one_statement_on_postgresql_with_executemanys_result(
    db: Db, sent: Sent
) -> None:
    table = db.users(60)
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(status="DONE", counter=table.c.counter + sa.bindparam("n"))
    )
    _run(db, stmt, [{"uid": i, "n": i * 3} for i in range(1, 51)])
    _run(db, stmt, [{"uid": i, "n": 1} for i in range(41, 51)])
    state = _state(db, table)
    assert all(state[i][:2] == ("DONE", i * 3 + (i > 40)) for i in range(1, 51))
    assert all(state[i][:2] == ("SYNCED", 0) for i in range(51, 61))
    if db.kind == "postgres":
        assert (2, 0) == (sent.unnest, sent.row_by_row)
    else:
        assert (0, 2) == (sent.unnest, sent.row_by_row)


def test_columns_named_only_by_the_rows_and_deletes_take_the_one_statement_form(
    db: Db, sent: Sent
) -> None:
    table = db.users(30)
    implicit = sa.update(table).where(table.c.id == sa.bindparam("uid"))
    _run(db, implicit, [{"uid": i, "payload": f"new{i}", "status": "X"} for i in range(1, 11)])
    _run(db, sa.delete(table).where(table.c.id == sa.bindparam("uid")), [{"uid": 20}, {"uid": 25}])
    state = _state(db, table)
    assert [("X", f"new{i}") for i in range(1, 11)] == [
        (state[i][0], state[i][2]) for i in range(1, 11)
    ]
    assert {20, 25} & state.keys() == set()
    assert len(state) == 28
    assert state[11] == ("SYNCED", 0, "p11")
    assert sent.unnest == (2 if db.kind == "postgres" else 0)


def test_a_composite_key_needs_every_column_of_it(db: Db, sent: Sent) -> None:
    table = db.pairs("unnest_pairs", 5)
    both = (
        sa.update(table)
        .where(table.c.a == sa.bindparam("ka"), table.c.b == sa.bindparam("kb"))
        .values(v=sa.bindparam("nv"))
    )
    _run(db, both, [{"ka": a, "kb": "y", "nv": 10 + a} for a in range(5)])
    assert sent.unnest == (1 if db.kind == "postgres" else 0)
    half = sa.update(table).where(table.c.a == sa.bindparam("ka")).values(v=table.c.v + 1)
    _run(db, half, [{"ka": 1}, {"ka": 2}])
    # Not unique alone, yet no row is met by two items: one statement meets the same rows.
    assert sent.unnest == (2 if db.kind == "postgres" else 0)
    with db.engine.connect() as conn:
        got = {(r.a, r.b): r.v for r in conn.execute(sa.select(table))}
    want = {(a, b): (10 + a if b == "y" else 0) + (a in (1, 2)) for a in range(5) for b in "xyz"}
    assert want == got


def test_repeated_keys_run_in_rounds_so_each_rows_items_keep_their_order(
    db: Db, sent: Sent
) -> None:
    table = db.users(5)
    stmt = (
        sa.update(table)
        .where(table.c.id == sa.bindparam("uid"))
        .values(counter=table.c.counter * 10 + sa.bindparam("n"))
    )
    _run(db, stmt, [{"uid": 2, "n": 1}, {"uid": 3, "n": 5}, {"uid": 2, "n": 2}])
    state = _state(db, table)
    assert (state[2][1], state[3][1]) == (12, 5)  # (0 * 10 + 1) * 10 + 2: both rows, in order
    assert sent.unnest == (2 if db.kind == "postgres" else 0)  # {2, 3}, then {2}


def test_a_statement_that_sets_its_own_key_runs_row_by_row(db: Db, sent: Sent) -> None:
    table = db.users(10)
    renumber = (
        sa.update(table).where(table.c.id == sa.bindparam("old")).values(id=sa.bindparam("new"))
    )
    _run(db, renumber, [{"old": 9, "new": 109}, {"old": 109, "new": 209}])
    by_status = (
        sa.update(table)
        .where(table.c.status == sa.bindparam("s"))
        .values(counter=table.c.counter + 1)
    )
    _run(db, by_status, [{"s": "SYNCED"}, {"s": "SYNCED"}])
    state = _state(db, table)
    assert {9, 109, 209} & state.keys() == {209}  # the second row saw the first's change
    assert {c for _, c, _ in state.values()} == {2}
    assert sent.unnest == (2 if db.kind == "postgres" else 0)  # by_status: a round per item


def test_a_value_too_long_for_its_column_fails_as_it_does_row_by_row(db: Db, sent: Sent) -> None:
    """An array cast to the column's ``VARCHAR(100)[]`` would cut the value silently."""
    table = db.users(3)
    stmt = (
        sa.update(table).where(table.c.id == sa.bindparam("uid")).values(payload=sa.bindparam("p"))
    )
    rows = [{"uid": 1, "p": "short"}, {"uid": 2, "p": "x" * 150}]
    if db.kind != "postgres":  # SQLite does not enforce lengths: both rows are written whole
        _run(db, stmt, rows)
        assert _state(db, table)[2][2] == "x" * 150
        return
    with pytest.raises(sa.exc.DataError, match="too long"):
        _run(db, stmt, rows)
    assert sent.unnest == 1
    assert [s[2] for s in _state(db, table).values()] == ["p1", "p2", "p3"]


def test_a_unique_index_is_a_key_and_an_expression_index_is_not(db: Db, sent: Sent) -> None:
    table = sa.Table(
        f"coded_{id(db)}",
        db.metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Index(f"ix_code_{id(db)}", "code", unique=True),
        sa.Index(f"ix_lower_{id(db)}", sa.func.lower(sa.text("code")), unique=True),
    )
    table.create(db.engine)
    with db.engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "code": f"c{i}", "n": 0} for i in range(1, 6)])
    stmt = sa.update(table).where(table.c.code == sa.bindparam("k")).values(n=sa.bindparam("v"))
    _run(db, stmt, [{"k": f"c{i}", "v": i * 10} for i in range(1, 4)])
    with db.engine.connect() as conn:
        got = dict(conn.execute(sa.select(table.c.id, table.c.n)).all())
    assert {1: 10, 2: 20, 3: 30, 4: 0, 5: 0} == got
    assert sent.unnest == (1 if db.kind == "postgres" else 0)


def test_a_key_given_as_a_constant_runs_row_by_row_so_the_last_row_wins(db: Db, sent: Sent) -> None:
    table = db.users(3)
    stmt = sa.update(table).where(table.c.id == 2).values(counter=sa.bindparam("n"))
    _run(db, stmt, [{"n": 5}, {"n": 7}])
    assert _state(db, table)[2][1] == 7
    assert 0 == sent.unnest
