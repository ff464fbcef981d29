"""The native SQLite engine (Rust executor) against the reference engine (aiosqlite).

Engine-specific behaviour only; the whole suite also runs on both engines through the ``db``
fixture (``sqlite`` and ``sqlite-aiosqlite``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from covet.database import connections
from covet.database.adapters import adapter_class, canonical_engine, sqlite_native
from covet.database.adapters.base import Adapter
from covet.database.adapters.sqlite import SQLiteAdapter
from covet.database.adapters.sqlite_native import NativeSQLiteAdapter, default_engine
from covet.database.adapters.sqlite_support import COLLATIONS, FUNCTION_NAMES
from covet.database.config import DatabaseConfig, configure
from covet.database.exceptions import (
    ConfigurationError,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from covet.database.transaction import transaction

rs: Any = pytest.importorskip("covet._covet_rs") if sqlite_native.NATIVE_SQLITE else None
pytestmark = pytest.mark.skipif(rs is None, reason="the Rust module is not built")

LONG_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) "
    "SELECT count(*) FROM c"
)
SLOW_SQL = LONG_SQL.replace("400000", "300000000")


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Adapter, Adapter]]:
    """(native, reference) adapters on two fresh database files."""
    configure(f"sqlite+native:///{tmp_path / 'native.db'}", alias="native")
    configure(f"sqlite+aiosqlite:///{tmp_path / 'reference.db'}", alias="reference")
    native = await connections.get_adapter("native")
    reference = await connections.get_adapter("reference")
    assert type(native) is NativeSQLiteAdapter and type(reference) is SQLiteAdapter
    yield native, reference
    await connections.close_all()


@pytest.fixture
async def native(pair: tuple[Adapter, Adapter]) -> Adapter:
    return pair[0]


# engine selection ----------------------------------------------------------------------------
def test_engine_names_urls_and_config(tmp_path: Path) -> None:
    assert canonical_engine("sqlite") == "sqlite"
    assert canonical_engine("aiosqlite") == "sqlite+aiosqlite"
    assert adapter_class("sqlite+aiosqlite") is SQLiteAdapter
    assert adapter_class("sqlite+native") is NativeSQLiteAdapter
    cases = {
        "sqlite:///a.db": ("sqlite", "sqlite:///a.db"),
        "sqlite+aiosqlite:///a.db": ("sqlite+aiosqlite", "sqlite+aiosqlite:///a.db"),
        "aiosqlite:///a.db": ("sqlite+aiosqlite", "sqlite+aiosqlite:///a.db"),
        "sqlite+native:///:memory:": ("sqlite+native", "sqlite+native:///:memory:"),
    }
    for url, (engine, shown) in cases.items():
        config = DatabaseConfig(url, register=False)
        assert (config.engine, config.dialect, config.url) == (engine, "sqlite", shown)
        assert config.replace(register=False).engine == engine
    picked = DatabaseConfig(url="sqlite:///a.db", engine="aiosqlite", register=False)
    assert picked.engine == "sqlite+aiosqlite" and picked.is_memory is False
    kept = DatabaseConfig(url="sqlite+aiosqlite:///a.db", engine="sqlite", register=False)
    assert kept.engine == "sqlite+aiosqlite"
    assert DatabaseConfig(path="a.db", engine="aiosqlite", register=False).pool_max == 4
    with pytest.raises(ConfigurationError, match="contradicts"):
        DatabaseConfig(url="sqlite+native:///a.db", engine="aiosqlite", register=False)
    memory = DatabaseConfig(url="aiosqlite:///:memory:", register=False)
    assert memory.is_memory and memory.pool_max == 1


def test_default_engine_and_its_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVET_SQLITE_ENGINE", raising=False)
    assert default_engine() is NativeSQLiteAdapter
    assert adapter_class("sqlite") is NativeSQLiteAdapter
    monkeypatch.setenv("COVET_SQLITE_ENGINE", "aiosqlite")
    assert adapter_class("sqlite") is SQLiteAdapter
    assert adapter_class("sqlite+native") is NativeSQLiteAdapter  # explicit wins
    monkeypatch.setenv("COVET_SQLITE_ENGINE", "rust")
    with pytest.raises(ConfigurationError, match="COVET_SQLITE_ENGINE"):
        default_engine()


def test_missing_rust_module_falls_back_locally_and_fails_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COVET_SQLITE_ENGINE", raising=False)
    monkeypatch.setattr(sqlite_native, "_rs", None)
    monkeypatch.setattr(sqlite_native, "NATIVE_SQLITE", False)
    monkeypatch.setattr(sqlite_native, "_DEFAULT", None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(ImportError, match="CI=true"):
        default_engine()
    monkeypatch.setenv("CI", "false")
    with pytest.warns(RuntimeWarning, match="falls back to the aiosqlite engine"):
        assert default_engine() is SQLiteAdapter
    with pytest.raises(ConfigurationError, match="native SQLite engine is unavailable"):
        NativeSQLiteAdapter(DatabaseConfig(url="sqlite+native:///x.db", register=False))


def test_pure_python_switch_does_not_change_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVET_SQLITE_ENGINE", raising=False)
    monkeypatch.setenv("COVET_PURE_PYTHON", "1")
    assert default_engine() is NativeSQLiteAdapter


# durability and settings -----------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "?synchronous=NORMAL&busy_timeout=1234",
                                   "?journal_mode=DELETE&synchronous=EXTRA"])
async def test_same_settings_as_the_reference(tmp_path: Path, query: str) -> None:
    configure(f"sqlite+native:///{tmp_path / 'n.db'}{query}", alias="n")
    configure(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}{query}", alias="r")
    pragmas = ["journal_mode", "synchronous", "foreign_keys", "busy_timeout", "wal_autocheckpoint",
               "locking_mode", "temp_store", "recursive_triggers"]
    try:
        seen = []
        for alias in ("n", "r"):
            adapter = await connections.get_adapter(alias)
            seen.append([await adapter.fetch_value(f"PRAGMA {p}") for p in pragmas])
            assert not await adapter.fetch_value("SELECT 'ABC' LIKE 'abc'")  # case_sensitive_like
        assert seen[0] == seen[1]
        if not query:
            assert seen[0][:2] == ["wal", 2]  # WAL, SQLite's default synchronous (FULL)
    finally:
        await connections.close_all()


def test_same_sqlite_library_as_python() -> None:
    """One SQLite per process: both engines see each other's file locks (see sqlite.rs)."""
    if rs.SQLITE_BUNDLED:
        pytest.skip("built with the bundled-sqlite feature")
    assert rs.sqlite_version() == sqlite3.sqlite_version


async def test_write_lock_is_visible_to_the_other_engine(pair: tuple[Adapter, Adapter],
                                                          tmp_path: Path) -> None:
    native, _ = pair
    await native.execute("CREATE TABLE t (x INTEGER)")
    async with transaction(using="native"):
        await native.execute("INSERT INTO t VALUES (1)")
        other = sqlite3.connect(tmp_path / "native.db", timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()
    assert await native.fetch_value("SELECT count(*) FROM t") == 1


# the executor ---------------------------------------------------------------------------------
async def test_gil_is_released_while_sqlite_works(native: Adapter) -> None:
    counts = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counts[0] += 1

    thread = threading.Thread(target=spin)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    thread.start()
    try:
        await asyncio.sleep(0.05)
        before, started = counts[0], time.perf_counter()
        assert await native.fetch_value(LONG_SQL) == 400000
        elapsed = time.perf_counter() - started
        during = counts[0] - before
    finally:
        stop.set()
        thread.join()
        ticker.cancel()
    # Another Python thread kept running, and so did the event loop.
    assert during > 10_000 * elapsed, (during, elapsed)
    assert ticks >= 3, ticks


async def test_futures_are_resolved_on_the_loop_thread(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    conn = rs.NativeConnection(str(tmp_path / "f.db"), [])
    threads: list[int] = []

    async def call(method: Any, *args: Any) -> Any:
        fut = loop.create_future()
        fut.add_done_callback(lambda _: threads.append(threading.get_ident()))
        method(fut, loop, *args)
        return await fut

    try:
        await call(conn.open)
        assert await call(conn.fetch, "SELECT ?2, ?1", [1, "x"]) == [("x", 1)]
        assert await call(conn.fetch, "SELECT 1 AS a", [], None, True) == (["a"], [(1,)])
        # A future cancelled while the worker runs its job: the late result is dropped quietly.
        fut = loop.create_future()
        conn.fetch(fut, loop, LONG_SQL, [])
        fut.cancel()
        assert await call(conn.ping) is None  # FIFO: the cancelled job has finished
        await asyncio.sleep(0.01)
        assert threads and set(threads) == {threading.get_ident()}
        assert errors == []
    finally:
        await call(conn.close)
        loop.set_exception_handler(None)
    assert not conn.is_open


async def test_cancelled_statement_is_interrupted_before_reuse(tmp_path: Path) -> None:
    configure(f"sqlite+native:///{tmp_path / 'c.db'}?pool_max=1", alias="c")
    adapter = await connections.get_adapter("c")
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(adapter.fetch_value(SLOW_SQL), 0.2)
        assert await adapter.fetch_value("SELECT 5") == 5  # the same (only) connection
        assert time.monotonic() - started < 5
        # Queued behind another statement and cancelled: never runs.
        await adapter.execute("CREATE TABLE t (x INTEGER)")
        conn = await adapter.acquire()
        try:
            slow = asyncio.ensure_future(conn.fetch(SLOW_SQL, []))
            await asyncio.sleep(0.05)
            queued = asyncio.ensure_future(conn.execute("INSERT INTO t VALUES (1)", []))
            await asyncio.sleep(0.01)
            queued.cancel()
            slow.cancel()
            for task in (slow, queued):
                with pytest.raises(asyncio.CancelledError):
                    await task
        finally:
            await adapter.release(conn)
        assert await adapter.fetch_value("SELECT count(*) FROM t") == 0
        assert adapter.pool_stats().in_use == 0
    finally:
        await connections.close_all()


async def test_interrupt_from_another_thread(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    conn = rs.NativeConnection(":memory:", [])
    fut = loop.create_future()
    conn.open(fut, loop)
    await fut
    fut = loop.create_future()
    conn.fetch(fut, loop, SLOW_SQL, [])
    timer = threading.Timer(0.1, conn.interrupt)
    timer.start()
    with pytest.raises(sqlite3.OperationalError, match="interrupted") as info:
        await fut
    assert info.value.sqlite_errorname == "SQLITE_INTERRUPT"
    timer.join()
    conn.close()


async def test_iteration_stops_cleanly(native: Adapter) -> None:
    await native.execute("CREATE TABLE t (x INTEGER)")
    await native.run_execute_many("INSERT INTO t VALUES (?1)", [(i,) for i in range(100)])
    chunks = native.run_iterate("SELECT x FROM t ORDER BY x", [], 30)
    assert [row[0] for row in await anext(chunks)] == list(range(30))
    await chunks.aclose()
    sizes = [len(c) async for c in native.run_iterate("SELECT x FROM t", [], 25)]
    assert sizes == [25, 25, 25, 25]  # exactly divisible: no empty chunk at the end
    assert native.pool_stats().in_use == 0
    assert await native.fetch_value("SELECT count(*) FROM t") == 100


# the inline fast path ---------------------------------------------------------------------------
COUNT_SQL = LONG_SQL.replace("400000", "2000000")  # well over the inline budget


def stats(conn: Any) -> dict[str, int]:
    native = conn._native if hasattr(conn, "_native") else conn
    return dict(native.stats())


def answered_at_once(coro: Any) -> Any:
    """The result of a coroutine that finishes without suspending (no event-loop iteration)."""
    with pytest.raises(StopIteration) as done:
        coro.send(None)
    return done.value.value


async def test_point_lookup_is_answered_inline(native: Adapter) -> None:
    await native.execute("CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT)")
    await native.run_execute_many("INSERT INTO u VALUES (?1, ?2)",
                                  [(i, f"n{i}") for i in range(1, 101)])
    conn = await native.acquire()
    try:
        before = stats(conn)
        for pk in (1, 50, 100):
            rows = answered_at_once(conn.fetch("SELECT id, name FROM u WHERE id = ?1", [pk]))
            assert rows == [(pk, f"n{pk}")]
        assert answered_at_once(conn.fetch_columns("SELECT name FROM u WHERE id = $1", [7], 1)) \
            == (["name"], [("n7",)])
        after = stats(conn)
        assert (after["inline"], after["queued"]) == (before["inline"] + 4, before["queued"])
        # A write through fetch (RETURNING) is a job, and is remembered as one.
        sql = "INSERT INTO u (name) VALUES (?1) RETURNING id"
        assert await conn.fetch(sql, ["x"]) == [(101,)]
        assert await conn.fetch(sql, ["y"]) == [(102,)]
        after = stats(conn)
        assert after["queued"] == before["queued"] + 2 and after["remembered"] == 1
        assert conn._native.last_insert_rowid == 102
        # Iteration: the first chunk is read inline, the rest by jobs.
        chunks = [len(c) async for c in conn.iterate("SELECT id FROM u ORDER BY id", [], 40)]
        assert chunks == [40, 40, 22]
        assert stats(conn)["inline"] == after["inline"] + 1
    finally:
        await native.release(conn)
    assert await native.run_fetch("SELECT name FROM u WHERE id = ?1", [102]) == [("y",)]


async def test_long_read_overruns_the_budget_and_goes_to_the_worker(native: Adapter) -> None:
    conn = await native.acquire()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    try:
        await asyncio.sleep(0)
        before = stats(conn)
        start = ticks
        assert await conn.fetch(COUNT_SQL, []) == [(2_000_000,)]
        during = ticks - start
        after = stats(conn)
        assert after["overran"] == before["overran"] + 1
        assert after["queued"] == before["queued"] + 1 and after["inline"] == before["inline"]
        assert after["remembered"] == before["remembered"] + 1
        # The event loop ran while the worker counted (it was only held for the budget).
        assert during >= 3, during
        # Remembered: straight to the worker, no second overrun.
        assert await conn.fetch_columns(COUNT_SQL, [], 1) == (["count(*)"], [(2_000_000,)])
        again = stats(conn)
        assert again["overran"] == after["overran"] and again["queued"] == after["queued"] + 1
    finally:
        ticker.cancel()
        await native.release(conn)


async def test_inline_reads_see_the_transactions_writes(native: Adapter) -> None:
    await native.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    async with transaction(using="native") as tx:
        await native.execute("INSERT INTO t (v) VALUES ('uncommitted')")
        state = connections.current_transaction("native")
        assert state is not None
        conn: Any = state.connection
        before = stats(conn)
        assert await native.fetch_value("SELECT v FROM t WHERE id = $1", [1]) == "uncommitted"
        assert stats(conn)["inline"] == before["inline"] + 1
        assert conn.in_transaction and conn._native.last_insert_rowid == 1
        # An overrun inside the transaction stops that read only: it runs again as a job.
        assert await native.fetch_value(COUNT_SQL) == 2_000_000
        assert stats(conn)["overran"] == before["overran"] + 1
        assert conn.in_transaction
        assert await native.run_fetch("SELECT id, v FROM t") == [(1, "uncommitted")]
        await native.execute("INSERT INTO t (v) VALUES ('second')")
        assert await native.run_fetch("SELECT count(*) FROM t WHERE id > 0") == [(2,)]
        assert conn._native.last_insert_rowid == 2
        assert stats(conn)["inline"] == before["inline"] + 3
        tx.set_rollback()
    assert await native.fetch_value("SELECT count(*) FROM t WHERE id > 0") == 0
    conn2 = await native.acquire()
    try:
        await conn2.control("BEGIN IMMEDIATE")
        await conn2.execute("INSERT INTO t (v) VALUES ('x')", [])
        rows = answered_at_once(conn2.fetch("SELECT v FROM t WHERE v = 'x'", []))
        assert rows == [("x",)] and conn2.in_transaction
        await conn2.control("ROLLBACK")
        assert not conn2.in_transaction
        assert answered_at_once(conn2.fetch("SELECT v FROM t WHERE v = 'x'", [])) == []
    finally:
        await native.release(conn2)


INLINE_ERRORS = [
    ("SELEC 1", ProgrammingError),
    ("SELECT * FROM nowhere", ProgrammingError),
    ("SELECT ?1", ProgrammingError),  # too few parameters
    ("SELECT covet_regexp('(?<=a)b', 'ab')", OperationalError),  # a Rust regex error
    ("SELECT covet_regexp('(', 'x')", OperationalError),
    ("SELECT CAST(x'ff' AS TEXT)", OperationalError),
]


@pytest.mark.parametrize(("sql", "cls"), INLINE_ERRORS, ids=range(len(INLINE_ERRORS)))
async def test_inline_errors_are_the_jobs_errors(native: Adapter, sql: str,
                                                 cls: type[DatabaseError]) -> None:
    conn: Any = await native.acquire()
    try:
        before = stats(conn)
        with pytest.raises(DatabaseError) as inline:
            await conn.fetch(sql, [])
        assert stats(conn)["inline"] == before["inline"] + 1  # it failed on the fast path
        with pytest.raises(DatabaseError) as job:
            await conn._call(conn._native.fetch, sql, [])
        with pytest.raises(DatabaseError) as chunk:
            async for _ in conn.iterate(sql, [], 10):
                pass
        assert stats(conn)["inline"] == before["inline"] + 2
        for err in (inline.value, chunk.value):
            assert type(err) is type(job.value) is cls
            assert str(err) == str(job.value)
            assert type(err.__cause__) is type(job.value.__cause__)
            assert getattr(err.__cause__, "sqlite_errorname", None) == \
                getattr(job.value.__cause__, "sqlite_errorname", None)
    finally:
        await native.release(conn)


async def test_a_statement_waits_behind_a_queued_cursor_close(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    conn = rs.NativeConnection(str(tmp_path / "q.db"), [])

    async def call(method: Any, *args: Any) -> Any:
        fut = loop.create_future()
        method(fut, loop, *args)
        return await fut

    try:
        await call(conn.open)
        await call(conn.execute, "CREATE TABLE t (x INTEGER)", [])
        await call(conn.execute_many, "INSERT INTO t VALUES (?1)", [(i,) for i in range(10)])
        cursor, rows, done = conn.try_cursor_open("SELECT x FROM t ORDER BY x", [], 3)
        assert (rows, done) == ([(0,), (1,), (2,)], False) and cursor != 0
        order: list[str] = []
        busy = loop.create_future()
        busy.add_done_callback(lambda _: order.append("busy"))
        conn.fetch(busy, loop, LONG_SQL, [])  # keeps the worker busy
        conn.cursor_close(cursor)  # queued behind it; nothing to await
        before = stats(conn)
        sql = "SELECT count(*) FROM t WHERE x >= ?1"
        assert conn.try_fetch(sql, [0]) is None  # does not overtake the queue
        assert stats(conn)["queued"] == before["queued"] + 1
        after = loop.create_future()
        after.add_done_callback(lambda _: order.append("after"))
        conn.fetch(after, loop, sql, [0])
        assert await after == [(10,)]
        assert order == ["busy", "after"]
        # The queue is empty: the fast path is back.
        assert conn.try_fetch(sql, [5]) == [(5,)]
        assert stats(conn)["inline"] == before["inline"] + 1
        # The worker idle between two jobs, the connection free: a queued close still counts.
        cursor, _, _ = conn.try_cursor_open("SELECT x FROM t ORDER BY x", [], 3)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(30.0)  # this thread keeps the GIL while it spins
        try:
            first = loop.create_future()
            conn.fetch(first, loop, "SELECT 1", [])  # its reply will wait for the GIL
            conn.cursor_close(cursor)
            spin_until = time.perf_counter() + 0.05
            while time.perf_counter() < spin_until:
                pass
            assert conn.try_fetch(sql, [0]) is None
        finally:
            sys.setswitchinterval(switch)
        assert await first == [(1,)]
    finally:
        await call(conn.close)


async def test_fast_path_can_be_turned_off(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    conn = rs.NativeConnection(str(tmp_path / "off.db"), [], 0)
    fut = loop.create_future()
    conn.open(fut, loop)
    await fut
    assert conn.try_fetch("SELECT 1", []) is None and conn.try_cursor_open("SELECT 1", [], 5) is None
    assert stats(conn) == {"inline": 0, "queued": 2, "overran": 0, "remembered": 0, "budget": 0}
    assert rs.NativeConnection(":memory:").stats()["budget"] > 0
    conn.close()


async def test_a_run_of_inline_answers_lets_other_tasks_run(native: Adapter) -> None:
    conn = await native.acquire()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    ticker = asyncio.ensure_future(tick())
    try:
        await asyncio.sleep(0)
        before, start = stats(conn), ticks
        for i in range(320):
            assert await conn.fetch("SELECT ?1", [i]) == [(i,)]
        assert stats(conn)["inline"] == before["inline"] + 320
        assert ticks - start >= 9, ticks - start  # one turn every 32 answers
    finally:
        ticker.cancel()
        await native.release(conn)


# parity with the reference engine ---------------------------------------------------------------
async def both(pair: tuple[Adapter, Adapter], sql: str, params: list[Any] | None = None) -> Any:
    out = []
    for adapter in pair:
        out.append(await adapter.fetch_value(sql, params))
    assert out[0] == out[1], (sql, params, out)
    assert type(out[0]) is type(out[1])
    return out[0]


CASE_SAMPLES = [
    "ÀÉÎ ΔΩ", "straße", "İstanbul", "ıi", "ΟΔΟΣ ΣΑΣ", "ǅungla", "ﬁne ﬂy", "Ⅻ ⓐ", "ŉ",
    "ǰ ΐ", "Ꭰ ꭰ", "ᾈ ᾀ", "Ω Å K", "日本語", "", " mixed Case 123 ", "ꞵ Ꞵ", "ⴀ Ⴀ",
]


@pytest.mark.parametrize("fn", ["lower", "upper"])
async def test_case_mapping_parity(pair: tuple[Adapter, Adapter], fn: str) -> None:
    for sample in CASE_SAMPLES:
        await both(pair, f"SELECT {fn}($1)", [sample])
    for literal in ("NULL", "12", "-7", "1.5", "1e20", "0.00001", "x'c3a9'", "x'ff41'", "2.0"):
        await both(pair, f"SELECT {fn}({literal})")


REGEX_CASES = [
    ("^ab+c$", "abbbc"), ("^ab+c$", "ABBBC"), (r"\d{3}", "ab123"), (r"\bword\b", "a word!"),
    ("colou?r", "COLOR"), ("é", "CAFÉ"), ("σ", "ΟΔΟΣ"), (r"^\w+$", "naïve"), ("[a-c]+", "xyz"),
    ("x.z", "x\nz"), ("(?i)abc", "ABC"), (r"(?P<n>a)b", "ab"), (r"end\Z", "the end"),
    (r"a|b", "c"), ("a{2,}?", "aaa"), (r"\s", "no-space"), ("", "anything"),
]


async def test_regexp_parity(pair: tuple[Adapter, Adapter]) -> None:
    for pattern, value in REGEX_CASES:
        for fn in ("covet_regexp", "covet_iregexp", "regexp"):
            await both(pair, f"SELECT {fn}($1, $2)", [pattern, value])
    await both(pair, "SELECT covet_regexp(NULL, 'a')")
    await both(pair, "SELECT covet_iregexp('a', NULL)")
    await both(pair, "SELECT $1 REGEXP $2", ["xyz", "x.z"])
    await both(pair, "SELECT covet_regexp('1.5', 1.5)")


async def test_regexp_differences_are_errors_not_wrong_answers(
    pair: tuple[Adapter, Adapter],
) -> None:
    native, reference = pair
    for pattern in (r"a(?=b)", r"(a)\1", r"(?<!x)y"):
        assert await reference.fetch_value("SELECT covet_regexp($1, 'aab')", [pattern]) in (0, 1)
        with pytest.raises(OperationalError, match="invalid regular expression"):
            await native.fetch_value("SELECT covet_regexp($1, 'aab')", [pattern])
    for adapter in pair:  # a bad pattern is the same error class on both
        with pytest.raises(OperationalError):
            await adapter.fetch_value("SELECT covet_regexp('(', 'x')")


async def test_functions_and_collations_match_the_reference() -> None:
    assert [tuple(f) for f in rs.SQLITE_FUNCTIONS] == list(FUNCTION_NAMES)
    assert list(rs.SQLITE_COLLATIONS) == [name for name, _ in COLLATIONS]


async def test_decimal_collation_parity(pair: tuple[Adapter, Adapter]) -> None:
    values = ["10", "9", "-1.50", "-1.5", "0.0", "-0", "1e3", "999.9", " 2 ", "1_0", "+.5e1",
              "12345678901234567890.1234567891", "12345678901234567890.123456789", "-inf",
              "Infinity", "0e5", "1.", ".5"]
    orders = []
    for adapter in pair:
        await adapter.execute("CREATE TABLE d (x TEXT COLLATE covet_decimal)")
        await adapter.run_execute_many("INSERT INTO d VALUES (?1)", [(v,) for v in values])
        rows = await adapter.run_fetch("SELECT x FROM d ORDER BY x, rowid")
        equal = await adapter.run_fetch("SELECT x FROM d WHERE x = '10.000' ORDER BY rowid")
        orders.append(([r[0] for r in rows], equal))
    assert orders[0] == orders[1]
    assert orders[0][1] == [("10",), ("1_0",)]


VALUES: list[Any] = [
    0, -1, 2**63 - 1, -(2**63), 1.5, -0.0, 1e308, "", "nul\x00inside", "日本 🎉", b"",
    b"\x00\xff", None, True, False, bytearray(b"ab"),
]


async def test_values_round_trip_identically(pair: tuple[Adapter, Adapter]) -> None:
    for value in VALUES:
        await both(pair, "SELECT $1", [value])
    for sql in ("SELECT typeof($1)", "SELECT length($1)"):
        for value in VALUES:
            await both(pair, sql, [value])
    for adapter in pair:
        assert await adapter.run_fetch("SELECT ?1, ?2, ?1", [1, "a"]) == [(1, "a", 1)]
        with pytest.raises(DataError):
            await adapter.run_fetch("SELECT ?1", [2**63])
        with pytest.raises(ProgrammingError):
            await adapter.run_fetch("SELECT ?1", [object()])


ERROR_CASES = [
    ("INSERT INTO t (id, name) VALUES (1, 'a')", IntegrityError),  # unique
    ("INSERT INTO t (id, name) VALUES (3, NULL)", IntegrityError),  # not null
    ("INSERT INTO t (id, name, parent) VALUES (4, 'z', 99)", IntegrityError),  # foreign key
    ("INSERT INTO t (id, name, n) VALUES (5, 'y', -1)", IntegrityError),  # check
    ("INSERT INTO s (x) VALUES ('text')", IntegrityError),  # STRICT datatype
    ("SELEC 1", ProgrammingError),
    ("SELECT * FROM nowhere", ProgrammingError),
    ("SELECT nope FROM t", ProgrammingError),
    ("SELECT 1; SELECT 2", ProgrammingError),
    ("SELECT $1", ProgrammingError),  # too few parameters
    ("CREATE TABLE t (x)", ProgrammingError),  # already exists
    ("SELECT covet_regexp('(', 'x')", OperationalError),  # message: see below
    ("PRAGMA nope = 1; SELECT", ProgrammingError),
    ("SELECT CAST(x'ff' AS TEXT)", OperationalError),  # invalid UTF-8 text
]


@pytest.mark.parametrize(("sql", "cls"), ERROR_CASES, ids=range(len(ERROR_CASES)))
async def test_error_parity(pair: tuple[Adapter, Adapter], sql: str,
                            cls: type[DatabaseError]) -> None:
    seen = []
    for adapter in pair:
        await adapter.execute(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER "
            "CHECK (n IS NULL OR n >= 0), parent INTEGER REFERENCES t (id))"
        )
        await adapter.execute("CREATE TABLE s (x INTEGER) STRICT")
        await adapter.execute("INSERT INTO t (id, name) VALUES (1, 'a')")
        with pytest.raises(DatabaseError) as info:
            await adapter.execute(sql)
        cause = info.value.__cause__
        assert isinstance(cause, sqlite3.Error)
        seen.append((type(info.value), str(info.value), type(cause),
                     getattr(cause, "sqlite_errorname", None)))
    (native_cls, native_msg, native_cause, native_name), reference = seen
    assert (native_cls, native_cause) == (reference[0], reference[2]) and native_cls is cls
    if "regexp" in sql:  # Python's sqlite3 hides a function's error; the native one says it
        assert reference[1] == "user-defined function raised exception"
        assert native_msg.startswith("invalid regular expression")
    else:
        assert native_msg == reference[1]
    # Python names only the codes of the SQLite it was built against ('unknown' otherwise).
    assert native_name == reference[3] or reference[3] == "unknown"


async def test_row_counts_parity(pair: tuple[Adapter, Adapter]) -> None:
    statements = [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO t (v) VALUES ('a'), ('b'), ('c')",
        "UPDATE t SET v = v || 'x' WHERE id > 1",
        "CREATE INDEX t_v ON t (v)",
        "SELECT * FROM t",
        "DELETE FROM t WHERE id = 1 RETURNING id",
        "WITH x AS (SELECT 2 AS id) DELETE FROM t WHERE id IN (SELECT id FROM x)",
        "  -- only a comment",
    ]
    for sql in statements:
        counts = [await adapter.execute(sql) for adapter in pair]
        assert counts[0] == counts[1], (sql, counts)


EXIT_SCRIPT = """
import asyncio, sys
from covet import _covet_rs as rs

SLOW = {slow!r}

async def main():
    loop = asyncio.get_running_loop()
    conns = [rs.NativeConnection(':memory:', []) for _ in range(8)]
    for conn in conns:
        fut = loop.create_future()
        conn.open(fut, loop)
        await fut
    for conn in conns[:4]:  # left running at exit, never awaited
        conn.fetch(loop.create_future(), loop, SLOW, [])
    for conn in conns[4:]:  # replies racing the interpreter's exit
        for _ in range(50):
            conn.fetch(loop.create_future(), loop, 'SELECT 1', [])
    globals()['kept'] = conns[:2]  # some connections outlive the loop, others are dropped

asyncio.run(main())
print('done')
"""


def test_exit_with_statements_in_flight_is_clean() -> None:
    """Workers never touch Python once the interpreter finalizes (no abort, no hang)."""
    import os
    import subprocess
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT.format(slow=SLOW_SQL)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "PYTHONPATH": root}, cwd=root,
        )
        assert (done.returncode, done.stdout.strip()) == (0, "done"), done.stderr
        assert "FATAL" not in done.stderr and "Traceback" not in done.stderr
