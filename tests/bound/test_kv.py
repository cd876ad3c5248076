"""lmdb_batches on a real LMDB environment: G1, G4, G5, G6 and the five concurrency scenarios."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from membound import BatchSourceError, lmdb_batches

lmdb = pytest.importorskip("lmdb")


@pytest.fixture
def env(tmp_path: Path) -> Any:
    environment = lmdb.open(str(tmp_path / "kv"), map_size=1 << 30, max_dbs=4)
    yield environment
    environment.close()


def put(env: Any, items: dict[bytes, bytes], db: Any = None) -> None:
    with env.begin(write=True, db=db) as txn:
        for k, v in items.items():
            txn.put(k, v)


def key(i: int) -> bytes:
    return b"k%06d" % i


def full_scan(env: Any, db: Any = None) -> list[tuple[bytes, bytes]]:
    with env.begin(db=db) as txn:
        return [(bytes(k), bytes(v)) for k, v in txn.cursor()]


def flat(batches: Any) -> list[tuple[bytes, bytes]]:
    return [item for batch in batches for item in batch]


@pytest.mark.parametrize("size", [1, 3, 100, 1000])
def test_batches_equal_full_scan(env: Any, size: int) -> None:
    put(env, {key(i): b"v%d" % i for i in range(250)})
    batches = list(lmdb_batches(env, batch_size=size))
    assert full_scan(env) == flat(batches)
    assert all(len(b) <= size for b in batches)


def test_named_db_start_and_after(env: Any) -> None:
    named = env.open_db(b"named")
    put(env, {key(i): b"x" for i in range(20)}, db=named)
    put(env, {b"other": b"main"})
    assert full_scan(env, named) == flat(lmdb_batches(env, 6, db=named))
    assert [key(i) for i in range(5, 20)] == [
        k for k, _ in flat(lmdb_batches(env, 4, db=named, start=key(5)))
    ]
    assert [key(i) for i in range(6, 20)] == [
        k for k, _ in flat(lmdb_batches(env, 4, db=named, after=key(5)))
    ]


def test_values_are_copied_out_of_the_map(env: Any) -> None:
    """G5: a batch stays valid after its transaction closed and the data was overwritten."""
    put(env, {key(i): b"original-%d" % i for i in range(10)})
    batches = lmdb_batches(env, batch_size=5)
    first = next(batches)
    put(env, {key(i): b"overwritten" for i in range(10)})
    with env.begin(write=True) as txn:
        txn.drop(env.open_db(), delete=False)
    assert all(type(k) is bytes and type(v) is bytes for k, v in first)
    assert [b"original-%d" % i for i in range(5)] == [v for _, v in first]


def active_readers(env: Any) -> int:
    """Reader slots holding a snapshot (a txnid); an idle slot shows '-'."""
    lines = env.readers().splitlines()[1:]
    return sum(1 for line in lines if len(line.split()) == 3 and line.split()[2] != "-")


def test_no_reader_while_caller_holds_a_batch(env: Any) -> None:
    put(env, {key(i): b"v" for i in range(100)})
    for _batch in lmdb_batches(env, batch_size=10):
        assert 0 == active_readers(env)
    with env.begin() as txn:  # contrast: one long-lived read transaction is visible as a reader
        for _ in txn.cursor():
            assert 1 == active_readers(env)
            break


def test_long_lived_reader_grows_the_file_batches_do_not(env: Any, tmp_path: Path) -> None:
    """While a read transaction pins a snapshot, pages freed by writers cannot be reused."""
    value = b"x" * 1024
    put(env, {key(i): value for i in range(2000)})

    def rewrite_while_reading(long_lived: bool) -> int:
        before = env.info()["last_pgno"]
        reader = env.begin() if long_lived else None
        try:
            for batch in lmdb_batches(env, batch_size=200):
                put(env, {k: bytes([batch[0][0][-1]]) * 1024 for k, _ in batch})
                put(env, {k: value for k, _ in batch})
        finally:
            if reader is not None:
                reader.abort()
        return int(env.info()["last_pgno"] - before)

    grown_short = rewrite_while_reading(long_lived=False)
    grown_long = rewrite_while_reading(long_lived=True)
    assert grown_long > 3 * max(grown_short, 10)


# ---------------------------------------------------------------- the five concurrency scenarios


def test_writes_during_iteration(env: Any) -> None:
    put(env, {key(i): b"v" for i in range(0, 100, 2)})
    seen = []
    for batch in lmdb_batches(env, batch_size=10):
        seen += [k for k, _ in batch]
        if len(seen) == 10:
            put(env, {key(1): b"behind", key(51): b"ahead"})
    assert key(1) not in seen
    assert [key(i) for i in sorted([*range(0, 100, 2), 51])] == seen


def test_deleting_keys_not_yet_reached(env: Any) -> None:
    put(env, {key(i): b"v" for i in range(100)})
    seen = []
    for batch in lmdb_batches(env, batch_size=10):
        seen += [k for k, _ in batch]
        if len(seen) == 10:
            with env.begin(write=True) as txn:
                for i in range(10, 60):  # includes the very key the next batch resumes from
                    txn.delete(key(i))
    assert [key(i) for i in [*range(10), *range(60, 100)]] == seen


def test_concurrent_readers(env: Any) -> None:
    put(env, {key(i): b"v" for i in range(77)})
    a = flat(lmdb_batches(env, batch_size=7))
    b_iter, c_iter = lmdb_batches(env, batch_size=5), lmdb_batches(env, batch_size=9)
    b: list[tuple[bytes, bytes]] = []
    c: list[tuple[bytes, bytes]] = []
    for _ in range(5):  # interleave the two loops
        b += next(b_iter)
        c += next(c_iter)
    b += flat(b_iter)
    c += flat(c_iter)
    assert a == b == c == full_scan(env)


def test_writes_to_items_being_read(env: Any) -> None:
    put(env, {key(i): b"0" for i in range(50)})
    values = []
    for batch in lmdb_batches(env, batch_size=10):
        put(env, {k: b"1" for k, _ in batch})
        put(env, {key(i): b"1" for i in range(50)})
        values += [v for _, v in batch]
    assert [b"0"] * 10 + [b"1"] * 40 == values


def test_large_store_with_concurrent_writer(env: Any) -> None:
    n = 30_000
    put(env, {key(i): b"v" * 50 for i in range(n)})
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            put(env, {key(i % n): b"w" * 50, b"z%08d" % i: b"new"})
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        keys = [k for k, _ in flat(lmdb_batches(env, batch_size=500))]
    finally:
        stop.set()
        thread.join()
    originals = [k for k in keys if k.startswith(b"k")]
    assert [key(i) for i in range(n)] == originals
    assert len(set(keys)) == len(keys)


# ------------------------------------------------------------------------------------ errors


def test_errors(env: Any) -> None:
    with pytest.raises(BatchSourceError, match="batch_size"):
        lmdb_batches(env, batch_size=0)
    dup = env.open_db(b"dup", dupsort=True)
    with pytest.raises(BatchSourceError, match="dupsort=True is not supported"):
        lmdb_batches(env, db=dup)


def test_missing_extra_names_the_install_command() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['lmdb'] = None  # as if the 'lmdb' extra were not installed\n"
        "import membound\n"
        "try:\n"
        "    membound.lmdb_batches(None)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'membound[lmdb]'" in out.stdout
