"""Adapters with raw SQL only: placeholders, values, errors, both API levels, pools, loops."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from covet.database import connections
from covet.database.adapters import adapter_class, canonical_engine, registered_schemes
from covet.database.adapters.base import Adapter, Capabilities, QueryEvent
from covet.database.adapters.sqlite import adapt_value, translate_placeholders
from covet.database.config import configure
from covet.database.exceptions import (
    ConfigurationError,
    DatabaseError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)
from covet.database.transaction import transaction

SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) "
    "SELECT count(*) FROM c"
)


def ph(db: Adapter, n: int) -> str:
    """The dialect's own placeholder for the ORM-level API."""
    return f"?{n}" if db.dialect == "sqlite" else f"${n}"


async def make_table(db: Adapter) -> None:
    await db.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, note TEXT)"
    )


def driver_module(exc: BaseException | None) -> str:
    assert exc is not None
    return type(exc).__module__.split(".")[0]


# registry ----------------------------------------------------------------------------------------
def test_registry_maps_schemes_to_classes() -> None:
    assert canonical_engine("postgres") == "postgresql"
    assert canonical_engine("SQLITE3") == "sqlite"
    assert adapter_class("postgresql+asyncpg").dialect == "postgresql"
    assert adapter_class("sqlite").dialect == "sqlite"
    assert {"sqlite", "postgresql", "postgres"} <= set(registered_schemes())
    with pytest.raises(ConfigurationError, match="did you mean"):
        canonical_engine("sqlit")


# placeholders ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $1", "SELECT ?1"),
        ("SELECT $1, $2, $1", "SELECT ?1, ?2, ?1"),
        ("SELECT $10 + $2", "SELECT ?10 + ?2"),
        ("SELECT '$1', $1", "SELECT '$1', ?1"),
        ("SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"),
        ('SELECT "$1" FROM t WHERE a = $1', 'SELECT "$1" FROM t WHERE a = ?1'),
        ("SELECT [$1], `$2` FROM t WHERE a=$3", "SELECT [$1], `$2` FROM t WHERE a=?3"),
        ("SELECT $1 -- and $2\nFROM t", "SELECT ?1 -- and $2\nFROM t"),
        ("SELECT /* $1 */ $2", "SELECT /* $1 */ ?2"),
        ("SELECT /* unterminated $1", "SELECT /* unterminated $1"),
        ("SELECT a$1, $1a, x FROM t", "SELECT a$1, $1a, x FROM t"),
        (
            "SELECT json_extract(j, '$.a[1]') WHERE id = $1",
            "SELECT json_extract(j, '$.a[1]') WHERE id = ?1",
        ),
        ("SELECT 1", "SELECT 1"),
    ],
)
def test_translate_placeholders(sql: str, expected: str) -> None:
    assert translate_placeholders(sql) == expected


async def test_aiosqlite_binds_numbered_parameters_positionally(tmp_path: Path) -> None:
    async with aiosqlite.connect(tmp_path / "p.db") as conn:
        cursor = await conn.execute("SELECT ?2, ?1, ?1, ?3", ("a", "b", "c"))
        assert await cursor.fetchall() == [("b", "a", "a", "c")]
        await cursor.close()
        with pytest.raises(sqlite3.ProgrammingError):
            await conn.execute("SELECT ?1, ?2", ("only one",))


async def test_dollar_placeholders_on_both_backends(db: Adapter) -> None:
    row = await db.fetch_one("SELECT $2 AS b, $1 AS a, $1 AS a2", ["x", "y"])
    assert row == {"b": "y", "a": "x", "a2": "x"}


async def test_dollar_inside_literals_and_identifiers_is_left_alone(db: Adapter) -> None:
    row = await db.fetch_one(
        "SELECT '$1' AS literal, 'it''s $2' AS quoted, $1 AS bound, 7 AS \"$1\" -- $3\n", ["v"]
    )
    assert row == {"literal": "$1", "quoted": "it's $2", "bound": "v", "$1": 7}


async def test_orm_level_numbered_placeholders(db: Adapter) -> None:
    p1, p2 = ph(db, 1), ph(db, 2)
    rows = await db.run_fetch(f"SELECT {p2}, {p1}, {p1}", ["a", "b"])
    assert rows == [("b", "a", "a")]


VALUES = [
    "O'Reilly",
    'say "hi"',
    "back\\slash \\n not a newline",
    "日本語 ✓ émoji 🎉 Ω",
    "%_ like wildcards",
    "'; DROP TABLE items; --",
    "line\nbreak\ttab",
    "",
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
async def test_bound_values_round_trip(db: Adapter, value: str) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [1, value])
    assert await db.fetch_value("SELECT name FROM items WHERE name = $1", [value]) == value
    assert await db.fetch_value("SELECT count(*) FROM items") == 1


# results ------------------------------------------------------------------------------------------
async def test_execute_returns_rows_affected_or_returned(db: Adapter) -> None:
    await make_table(db)
    assert await db.execute("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')") == 3
    assert await db.execute("UPDATE items SET note = $1 WHERE id > $2", ["n", 1]) == 2
    assert await db.execute("SELECT * FROM items") == 3
    assert await db.execute("DELETE FROM items WHERE id = $1", [3]) == 1
    assert await db.execute("DELETE FROM items WHERE id = $1", [99]) == 0


async def test_fetch_shapes(db: Adapter) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name, note) VALUES (1, 'a', NULL), (2, 'b', 'x')")
    assert await db.fetch("SELECT id, name, note FROM items ORDER BY id") == [
        {"id": 1, "name": "a", "note": None},
        {"id": 2, "name": "b", "note": "x"},
    ]
    assert await db.fetch_one("SELECT name FROM items WHERE id = $1", [2]) == {"name": "b"}
    assert await db.fetch_one("SELECT name FROM items WHERE id = $1", [9]) is None
    assert await db.fetch_value("SELECT max(id) FROM items") == 2
    assert await db.fetch_value("SELECT id FROM items WHERE id = $1", [9]) is None
    assert await db.fetch("SELECT * FROM items WHERE id < 0") == []


async def test_orm_level_api(db: Adapter) -> None:
    await make_table(db)
    p1, p2 = ph(db, 1), ph(db, 2)
    insert = f"INSERT INTO items (id, name) VALUES ({p1}, {p2})"
    assert await db.run_execute(insert, [1, "a"]) == 1
    await db.run_execute_many(insert, [(i, f"n{i}") for i in range(2, 6)])
    assert await db.run_fetch(f"SELECT id FROM items WHERE id > {p1} ORDER BY id", [3]) == [
        (4,), (5,)
    ]
    columns, rows = await db.run_fetch_columns("SELECT id, name AS label FROM items WHERE id = 1")
    assert (columns, rows) == (["id", "label"], [(1, "a")])
    columns, rows = await db.run_fetch_columns("SELECT id, name FROM items WHERE id < 0")
    assert (columns, rows) == (["id", "name"], [])


async def test_returning(db: Adapter) -> None:
    assert db.capabilities.returning
    await make_table(db)
    rows = await db.run_fetch(
        f"INSERT INTO items (id, name) VALUES ({ph(db, 1)}, {ph(db, 2)}) RETURNING id, name",
        [5, "five"],
    )
    assert rows == [(5, "five")]


async def test_execute_many_is_atomic_outside_a_transaction(db: Adapter) -> None:
    await make_table(db)
    insert = f"INSERT INTO items (id, name) VALUES ({ph(db, 1)}, {ph(db, 2)})"
    with pytest.raises(IntegrityError):
        await db.run_execute_many(insert, [(1, "a"), (2, "b"), (3, "a")])
    assert await db.fetch_value("SELECT count(*) FROM items") == 0
    assert db.pool_stats().in_use == 0


@pytest.mark.parametrize("inside", [False, True], ids=["autocommit", "transaction"])
async def test_run_iterate_chunks(db: Adapter, inside: bool) -> None:
    await make_table(db)
    insert = f"INSERT INTO items (id, name) VALUES ({ph(db, 1)}, {ph(db, 2)})"
    await db.run_execute_many(insert, [(i, f"n{i}") for i in range(1, 26)])

    async def collect() -> list[list[tuple[Any, ...]]]:
        return [chunk async for chunk in db.run_iterate(
            f"SELECT id FROM items WHERE id >= {ph(db, 1)} ORDER BY id", [1], 10
        )]

    if inside:
        async with transaction():
            chunks = await collect()
    else:
        chunks = await collect()
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [row[0] for chunk in chunks for row in chunk] == list(range(1, 26))
    assert db.pool_stats().in_use == 0


async def test_run_iterate_early_exit_releases_the_connection(db: Adapter) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    iterator = db.run_iterate("SELECT id FROM items ORDER BY id", [], 1)
    async for chunk in iterator:
        assert chunk == [(1,)]
        break
    await iterator.aclose()
    assert db.pool_stats().in_use == 0
    assert await db.fetch_value("SELECT count(*) FROM items") == 3


async def test_statements_inside_an_iteration(db: Adapter) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    seen = []
    async for chunk in db.run_iterate("SELECT id FROM items ORDER BY id", [], 2):
        seen.extend(row[0] for row in chunk)
        assert await db.fetch_value("SELECT count(*) FROM items") == 3
    assert seen == [1, 2, 3]


# errors -------------------------------------------------------------------------------------------
async def test_unique_violation_is_integrity_error(db: Adapter) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES (1, 'a')")
    with pytest.raises(IntegrityError) as info:
        await db.execute("INSERT INTO items (id, name) VALUES (2, 'a')")
    assert driver_module(info.value.__cause__) in ("sqlite3", "asyncpg")
    with pytest.raises(IntegrityError):
        await db.execute("INSERT INTO items (id, name) VALUES (3, NULL)")


async def test_foreign_keys_are_enforced(db: Adapter) -> None:
    await db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await db.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                     "REFERENCES parent (id))")
    with pytest.raises(IntegrityError):
        await db.execute("INSERT INTO child (id, parent_id) VALUES (1, 42)")


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELEC 1", None),
        ("SELECT * FROM no_such_table", None),
        ("SELECT no_such_column FROM items", None),
        ("SELECT $1", [1, 2]),
    ],
    ids=["syntax", "table", "column", "param-count"],
)
async def test_bad_sql_is_programming_error(
    db: Adapter, sql: str, params: list[Any] | None
) -> None:
    await make_table(db)
    with pytest.raises(ProgrammingError) as info:
        await db.execute(sql, params)
    assert isinstance(info.value, DatabaseError)
    assert driver_module(info.value.__cause__) in ("sqlite3", "asyncpg")


async def test_errors_leave_the_pool_clean(db: Adapter) -> None:
    for _ in range(db.config.pool_max + 2):
        with pytest.raises(ProgrammingError):
            await db.fetch("SELECT * FROM nowhere")
    assert db.pool_stats().in_use == 0
    assert await db.fetch_value("SELECT 1") == 1


async def test_unbindable_value_is_a_database_error(db: Adapter) -> None:
    with pytest.raises(DatabaseError):
        await db.fetch_value("SELECT $1", [object()])


# listeners ----------------------------------------------------------------------------------------
async def test_listeners_see_every_statement(db: Adapter) -> None:
    events: list[QueryEvent] = []
    db.add_listener(events.append)
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES ($1, $2)", [1, "a"])
    await db.run_fetch("SELECT id FROM items")
    with pytest.raises(ProgrammingError):
        await db.fetch("SELECT * FROM nowhere")
    async with transaction():
        await db.fetch_value("SELECT count(*) FROM items")
    db.remove_listener(events.append)
    await db.fetch_value("SELECT 1")

    kinds = [(e.kind, e.in_transaction) for e in events]
    assert kinds == [
        ("execute", False), ("execute", False), ("fetch", False), ("fetch", False),
        ("control", True), ("fetch", True), ("control", True),
    ]
    insert = events[1]
    assert insert.params == (1, "a") and insert.rows == 1 and insert.error is None
    assert insert.duration >= 0 and insert.alias == "default"
    assert events[2].rows == 1
    assert events[3].error and "nowhere" in events[3].error
    assert events[4].sql == db.begin_sql and events[6].sql == "COMMIT"


async def test_a_failing_listener_does_not_break_queries(
    db: Adapter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: QueryEvent) -> None:
        raise RuntimeError("listener bug")

    db.add_listener(broken)
    assert await db.fetch_value("SELECT 2") == 2
    assert "listener" in caplog.text
    db.remove_listener(broken)
    db.remove_listener(broken)  # unknown listeners are ignored


# explain, capabilities, functions -----------------------------------------------------------------
async def test_explain(db: Adapter) -> None:
    await make_table(db)
    await db.execute("INSERT INTO items (id, name) VALUES (1, 'a')")
    plan = await db.explain("SELECT * FROM items WHERE id = $1", [1])
    assert plan and all(isinstance(step, dict) for step in plan)
    analyzed = await db.explain("DELETE FROM items WHERE id = $1", [1], analyze=True)
    assert analyzed
    assert await db.fetch_value("SELECT count(*) FROM items") == 1  # EXPLAIN ANALYZE undone


async def test_capabilities_are_truthful(db: Adapter) -> None:
    caps = db.capabilities
    assert isinstance(caps, Capabilities) and caps.dialect == db.dialect
    with pytest.raises(AttributeError, match="unknown capability"):
        caps.has("teleportation")
    if caps.has("arrays"):
        assert await db.fetch_value("SELECT ARRAY[1, 2, 3]") == [1, 2, 3]
    else:
        with pytest.raises(DatabaseError):
            await db.fetch_value("SELECT ARRAY[1, 2, 3]")


@pytest.mark.requires("arrays")
async def test_requires_marker_skips_backends_without_the_capability(db: Adapter) -> None:
    assert db.capabilities.arrays
    assert await db.fetch_value("SELECT array_length($1::int[], 1)", [[4, 5, 6]]) == 3


EDGE_DATES: list[Any] = [
    __import__("datetime").date.max,
    __import__("datetime").date.min,
    __import__("datetime").date(2024, 2, 29),
]


@pytest.mark.requires("native_datetime", "native_uuid")
async def test_native_values_come_back_exactly(db: Adapter) -> None:
    import datetime as dt
    import uuid

    for day in EDGE_DATES:  # stored as dates, never as 'infinity'
        assert await db.fetch_value("SELECT CAST($1::date AS text)", [day]) == day.isoformat()
        assert await db.fetch_value("SELECT $1::date", [day]) == day
    for moment in (dt.datetime.max, dt.datetime(1, 1, 1), dt.datetime(2024, 5, 6, 7, 8, 9, 1)):
        text = await db.fetch_value("SELECT CAST($1::timestamp AS text)", [moment])
        assert not text.endswith("infinity") and text.startswith(str(moment.year).zfill(4))
        assert await db.fetch_value("SELECT $1::timestamp", [moment]) == moment
    utc = dt.timezone.utc
    for moment in (
        dt.datetime.max.replace(tzinfo=utc),
        dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    ):
        back = await db.fetch_value("SELECT $1::timestamptz", [moment])
        assert back == moment and back.tzinfo is not None
    assert await db.fetch_value("SELECT 'infinity'::date") == dt.date.max
    value = uuid.uuid4()
    back = await db.fetch_value("SELECT $1::uuid", [value])
    assert type(back) is uuid.UUID and back == value
    assert await db.fetch_value("SELECT $1::uuid", [str(value)]) == value


async def test_like_is_case_sensitive_and_lower_is_unicode(db: Adapter) -> None:
    assert not await db.fetch_value("SELECT 'ABC' LIKE 'abc'")
    assert await db.fetch_value("SELECT lower('ABC') LIKE lower('aBc')")
    assert await db.fetch_value("SELECT lower($1)", ["ÀÉÎ ΔΩ"]) == "àéî δω"
    assert await db.fetch_value("SELECT upper($1)", ["straße"]) in ("STRASSE", "STRAßE")
    assert await db.fetch_value("SELECT lower(NULL)") is None


# pools --------------------------------------------------------------------------------------------
async def test_pool_stats(db: Adapter) -> None:
    stats = db.pool_stats()
    assert stats.max == db.config.pool_max and stats.in_use == 0 and stats.size >= 1
    async with transaction():
        during = db.pool_stats()
        assert during.in_use == 1 and during.size >= 1
    assert db.pool_stats().in_use == 0


async def test_concurrent_statements_share_the_pool(db: Adapter) -> None:
    values = await asyncio.gather(
        *(db.fetch_value("SELECT CAST($1 AS INTEGER)", [i]) for i in range(30))
    )
    assert [int(v) for v in values] == list(range(30))
    stats = db.pool_stats()
    assert stats.in_use == 0 and stats.size <= stats.max


async def test_cancelled_statement_is_interrupted_and_the_connection_reused(db: Adapter) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(db.fetch_value(SLOW_SQL), 0.3)
    assert time.monotonic() - started < 10
    assert await db.fetch_value("SELECT 5") == 5
    assert db.pool_stats().in_use == 0


def test_pool_is_rebuilt_on_a_new_event_loop(db_url: str) -> None:
    configure(db_url, alias="loops")
    pools: list[Any] = []

    async def first() -> None:
        adapter = await connections.get_adapter("loops")
        await adapter.execute("DROP TABLE IF EXISTS loop_items")
        await adapter.execute("CREATE TABLE loop_items (id INTEGER PRIMARY KEY)")
        await adapter.execute("INSERT INTO loop_items (id) VALUES ($1)", [1])
        pools.append(adapter._pool)  # type: ignore[attr-defined]

    async def second() -> int:
        adapter = await connections.get_adapter("loops")
        async with transaction(using="loops"):
            await adapter.execute("INSERT INTO loop_items (id) VALUES ($1)", [2])
        pools.append(adapter._pool)  # type: ignore[attr-defined]
        count = int(await adapter.fetch_value("SELECT count(*) FROM loop_items"))
        await adapter.execute("DROP TABLE loop_items")
        return count

    asyncio.run(first())
    assert asyncio.run(second()) == 2
    asyncio.run(connections.close_all())
    assert pools[0] is not None and pools[1] is not None
    if connections.adapter_for("loops").dialect == "postgresql":
        assert pools[0] is not pools[1]  # a PostgreSQL pool belongs to one event loop


def test_pool_of_a_loop_closed_by_hand_is_dropped_cleanly(db_url: str) -> None:
    configure(db_url, alias="manual")

    async def query() -> int:
        adapter = await connections.get_adapter("manual")
        return int(await adapter.fetch_value("SELECT 7"))

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(query()) == 7
    finally:
        loop.close()  # without cancelling tasks or closing the pool
    assert asyncio.run(query()) == 7
    asyncio.run(connections.close_all())
    gc.collect()  # nothing left to warn about (warnings are errors in this suite)


def test_memory_database_survives_a_new_event_loop() -> None:
    configure("sqlite:///:memory:", alias="mem")

    async def write() -> None:
        adapter = await connections.get_adapter("mem")
        await adapter.execute("CREATE TABLE t (x INTEGER)")
        await adapter.execute("INSERT INTO t VALUES (1)")

    async def read() -> int:
        adapter = await connections.get_adapter("mem")
        return int(await adapter.fetch_value("SELECT count(*) FROM t"))

    asyncio.run(write())
    assert asyncio.run(read()) == 1
    asyncio.run(connections.close_all())


# SQLite specifics (the SQLite adapter itself, not a backend choice) -------------------------------
@pytest.fixture
async def lite(tmp_path: Path) -> Any:
    configure(f"sqlite:///{tmp_path / 'lite.db'}", alias="lite")
    adapter = await connections.get_adapter("lite")
    yield adapter
    await connections.close_all()


async def test_sqlite_connection_settings(lite: Adapter) -> None:
    assert await lite.fetch_value("PRAGMA foreign_keys") == 1
    assert await lite.fetch_value("PRAGMA journal_mode") == "wal"
    assert await lite.fetch_value("PRAGMA busy_timeout") == 5000
    assert await lite.fetch_value("PRAGMA synchronous") == 2  # SQLite's default, FULL


async def test_sqlite_options_from_the_url(tmp_path: Path) -> None:
    configure(f"sqlite:///{tmp_path / 'o.db'}?busy_timeout=1234&synchronous=NORMAL", alias="o")
    adapter = await connections.get_adapter("o")
    try:
        assert await adapter.fetch_value("PRAGMA busy_timeout") == 1234
        assert await adapter.fetch_value("PRAGMA synchronous") == 1
    finally:
        await connections.close_all()


async def test_sqlite_regexp_functions(lite: Adapter) -> None:
    assert await lite.fetch_value("SELECT covet_regexp($1, $2)", ["^ab+c$", "abbbc"]) == 1
    assert await lite.fetch_value("SELECT covet_regexp($1, $2)", ["^ab+c$", "ABBBC"]) == 0
    assert await lite.fetch_value("SELECT covet_iregexp($1, $2)", ["^ab+c$", "ABBBC"]) == 1
    assert await lite.fetch_value("SELECT covet_regexp($1, NULL)", ["a"]) is None
    assert await lite.fetch_value("SELECT $1 REGEXP $2", ["x.z", "xyz"]) == 0  # value REGEXP pat
    assert await lite.fetch_value("SELECT $1 REGEXP $2", ["xyz", "x.z"]) == 1


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (True, 1),
        (False, 0),
        (__import__("decimal").Decimal("1.10"), "1.10"),
        (__import__("datetime").datetime(2024, 5, 6, 7, 8, 9), "2024-05-06 07:08:09"),
        (__import__("datetime").date(2024, 5, 6), "2024-05-06"),
        (__import__("datetime").time(7, 8), "07:08:00"),
        (__import__("uuid").UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        ({"a": [1, 2]}, '{"a": [1, 2]}'),
        ([1, "x"], '[1, "x"]'),
        (bytearray(b"ab"), b"ab"),
        (None, None),
        ("text", "text"),
    ],
)
async def test_sqlite_raw_api_converts_python_values(
    lite: Adapter, value: Any, stored: Any
) -> None:
    assert adapt_value(value) == stored
    assert await lite.fetch_value("SELECT $1", [value]) == stored


async def test_sqlite_write_transactions_begin_immediate(lite: Adapter, tmp_path: Path) -> None:
    await lite.execute("CREATE TABLE t (x INTEGER)")
    async with transaction(using="lite"):
        # The write lock is taken at BEGIN: another writer cannot start, even before we write.
        other = sqlite3.connect(tmp_path / "lite.db", timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


async def test_sqlite_memory_database_is_one_shared_connection() -> None:
    configure("sqlite:///:memory:", alias="m")
    adapter = await connections.get_adapter("m")
    try:
        await adapter.execute("CREATE TABLE t (x INTEGER)")
        await asyncio.gather(
            *(adapter.execute("INSERT INTO t VALUES ($1)", [i]) for i in range(10))
        )
        assert await adapter.fetch_value("SELECT count(*) FROM t") == 10
        assert adapter.pool_stats().max == 1
        seen = 0
        async for chunk in adapter.run_iterate("SELECT x FROM t", [], 3):
            seen += len(chunk)
            await adapter.fetch_value("SELECT 1")  # no deadlock on the single connection
        assert seen == 10
        assert adapter.pool_stats().in_use == 0
    finally:
        await connections.close_all()


async def test_sqlite_pool_waits_and_times_out(tmp_path: Path) -> None:
    configure(f"sqlite:///{tmp_path / 't.db'}?acquire_timeout=0.2&pool_max=1", alias="t")
    adapter = await connections.get_adapter("t")
    try:
        held = await adapter.acquire()
        with pytest.raises(OperationalError, match="timed out"):
            await adapter.fetch_value("SELECT 1")
        waiter = asyncio.ensure_future(adapter.fetch_value("SELECT 3"))
        await asyncio.sleep(0.05)
        await adapter.release(held)
        assert await waiter == 3
        assert adapter.pool_stats().in_use == 0
    finally:
        await connections.close_all()


async def test_sqlite_open_failure_is_operational_error(tmp_path: Path) -> None:
    configure(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", alias="bad")
    with pytest.raises(OperationalError, match="cannot open SQLite database"):
        await connections.get_adapter("bad")
    await connections.close_all()
