"""The PostgreSQL adapter's own pool: lending without awaiting, FIFO waits, timeouts, lost
connections, cancellation, event-loop changes, the asyncpg options it implements, and the codecs.

Every test runs against the real throwaway server (``pg_url``); pools are checked to be consistent
(``size == idle + in_use``, nothing lent) after each scenario.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covet import _native
from covet.database import connections
from covet.database.adapters import pg_codecs
from covet.database.adapters.base import PoolStats
from covet.database.adapters.postgresql import PostgreSQLAdapter, PostgreSQLConnection
from covet.database.config import DatabaseConfig
from covet.database.exceptions import ConfigurationError, OperationalError
from covet.database.transaction import transaction

SLEEP_SQL = "SELECT pg_sleep(30)"


def make(pg_url: str, alias: str = "pool", **options: Any) -> PostgreSQLAdapter:
    DatabaseConfig(url=pg_url, alias=alias, **options)
    adapter = connections.adapter_for(alias)
    assert isinstance(adapter, PostgreSQLAdapter)
    return adapter


@pytest.fixture
async def closing() -> AsyncIterator[None]:
    yield
    await connections.close_all()


def all_idle(adapter: PostgreSQLAdapter, size: int | None = None) -> bool:
    stats = adapter.pool_stats()
    return stats.in_use == 0 and stats.idle == stats.size and (size is None or stats.size == size)


def run_without_suspending(coro: Coroutine[Any, Any, Any]) -> Any:
    """Drive ``coro`` one step; it must finish without ever yielding to the event loop."""
    try:
        yielded = coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    pytest.fail(f"the coroutine suspended (yielded {yielded!r}) instead of finishing at once")


async def backend_pid(conn: PostgreSQLConnection) -> int:
    rows = await conn.fetch("SELECT pg_backend_pid()", [])
    return int(rows[0][0])


async def terminate_backend(pg_url: str, conn: PostgreSQLConnection) -> int:
    """Have the server end ``conn``'s session (from another connection); wait until it shows."""
    pid = await backend_pid(conn)
    killer = await asyncpg.connect(pg_url)
    try:
        assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await killer.close()
    for _ in range(500):
        if conn._raw.is_closed():
            return pid
        await asyncio.sleep(0.01)
    pytest.fail("the terminated connection never closed")


async def settle(adapter: PostgreSQLAdapter, timeout: float = 5.0) -> None:
    """Wait until every connection is back (a shielded release may finish a little later)."""
    for _ in range(int(timeout / 0.01)):
        if all_idle(adapter):
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"connections still lent out: {adapter.pool_stats()}")


# lending ------------------------------------------------------------------------------------------
async def test_acquire_and_release_do_not_await_when_a_connection_is_idle(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url)
    await adapter.connect()
    assert adapter.pool_stats() == PoolStats(1, 1, 0, 10)
    conn = run_without_suspending(adapter.acquire())
    assert isinstance(conn, PostgreSQLConnection)
    assert adapter.pool_stats() == PoolStats(1, 0, 1, 10)
    assert await conn.fetch("SELECT 1", []) == [(1,)]
    run_without_suspending(adapter.release(conn))
    assert adapter.pool_stats() == PoolStats(1, 1, 0, 10)
    again = run_without_suspending(adapter.acquire())
    assert again is conn  # the same wrapper and connection, lent again
    run_without_suspending(adapter.release(again))
    run_without_suspending(adapter.release(again))  # a second release is ignored
    assert all_idle(adapter, 1)


async def test_most_recently_returned_connection_is_lent_first(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=3)
    first, second = await adapter.acquire(), await adapter.acquire()
    await adapter.release(first)
    await adapter.release(second)
    assert await adapter.acquire() is second
    assert await adapter.acquire() is first
    await adapter.release(first)
    await adapter.release(second)
    assert all_idle(adapter, 2)


async def test_pool_opens_up_to_max_then_waiters_are_served_in_order(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=2)
    held = [await adapter.acquire(), await adapter.acquire()]
    assert adapter.pool_stats() == PoolStats(2, 0, 2, 2)
    served: list[tuple[int, PostgreSQLConnection]] = []

    async def wait_turn(i: int) -> None:
        conn = await adapter.acquire()
        served.append((i, conn))

    waiters = []
    for i in range(3):
        waiters.append(asyncio.create_task(wait_turn(i)))
        await asyncio.sleep(0.01)  # queue them in this order
    assert served == [] and adapter.pool_stats().size == 2

    await adapter.release(held[0])
    # Handed straight to the first waiter: a newcomer cannot take it in between.
    late = asyncio.create_task(wait_turn(99))
    await asyncio.sleep(0.05)
    assert served == [(0, held[0])]
    await adapter.release(held[1])
    await asyncio.sleep(0.05)
    assert served == [(0, held[0]), (1, held[1])]
    await adapter.release(served[0][1])
    await asyncio.sleep(0.05)
    assert [i for i, _ in served] == [0, 1, 2]
    await adapter.release(served[1][1])
    await adapter.release(served[2][1])
    await asyncio.gather(*waiters, late)
    assert [i for i, _ in served] == [0, 1, 2, 99]
    await adapter.release(served[3][1])
    assert all_idle(adapter, 2)


async def test_acquire_timeout(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, pool_max=1, acquire_timeout=0.2)
    held = await adapter.acquire()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(OperationalError, match=r"timed out after 0.2s waiting for a connection "
                                               r"of 'pool' \(PoolStats\(size=1, idle=0"):
        await adapter.fetch_value("SELECT 1")
    assert 0.15 < loop.time() - started < 5
    assert adapter.pool_stats() == PoolStats(1, 0, 1, 1)
    waiter = asyncio.create_task(adapter.fetch_value("SELECT 3"))
    await asyncio.sleep(0.05)
    await adapter.release(held)
    assert await waiter == 3
    assert all_idle(adapter, 1)


async def test_concurrent_statements_never_exceed_max(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, pool_min=0, pool_max=3)
    peak = 0

    async def one(i: int) -> int:
        nonlocal peak
        value = await adapter.fetch_value("SELECT $1::int FROM pg_sleep(0.01)", [i])
        peak = max(peak, adapter.pool_stats().size)
        return int(value)

    assert await asyncio.gather(*(one(i) for i in range(40))) == list(range(40))
    assert peak <= 3
    assert all_idle(adapter) and adapter.pool_stats().size <= 3


# lost connections ---------------------------------------------------------------------------------
async def test_connection_terminated_by_the_server_while_idle_is_replaced(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url)
    conn = await adapter.acquire()
    await adapter.release(conn)
    pid = await terminate_backend(pg_url, conn)  # while idle in the pool
    assert adapter.pool_stats() == PoolStats(1, 1, 0, 10)
    assert await adapter.fetch_value("SELECT pg_backend_pid()") != pid
    assert all_idle(adapter, 1)


async def test_connection_terminated_while_lent_is_not_lent_again(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url)
    conn = await adapter.acquire()
    pid = await terminate_backend(pg_url, conn)
    with pytest.raises(OperationalError):
        await conn.fetch("SELECT 1", [])
    await adapter.release(conn)
    assert adapter.pool_stats() == PoolStats(0, 0, 0, 10)
    assert await adapter.fetch_value("SELECT pg_backend_pid()") != pid
    assert all_idle(adapter, 1)


async def test_broken_connection_is_closed_and_its_place_given_to_a_waiter(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=1)
    conn = await adapter.acquire()
    pid = await backend_pid(conn)
    waiter = asyncio.create_task(adapter.fetch_value("SELECT pg_backend_pid()"))
    await asyncio.sleep(0.05)
    conn.broken = True  # what a failed rollback does
    await adapter.release(conn)
    assert await waiter != pid  # the waiter opened a new connection in the freed place
    assert all_idle(adapter, 1)


async def test_connection_left_in_a_transaction_is_rolled_back(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url)
    await adapter.execute("CREATE TABLE IF NOT EXISTS pool_rb (x int)")
    try:
        conn = await adapter.acquire()
        await conn.control("BEGIN")
        await conn.execute("INSERT INTO pool_rb VALUES (1)", [])
        assert conn.in_transaction
        await adapter.release(conn)
        assert all_idle(adapter, 1)
        assert not conn.in_transaction
        assert await adapter.fetch_value("SELECT count(*) FROM pool_rb") == 0
    finally:
        await adapter.execute("DROP TABLE pool_rb")


# cancellation -------------------------------------------------------------------------------------
async def test_cancelled_while_waiting_for_a_connection(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, pool_max=1)
    held = await adapter.acquire()
    waiter = asyncio.create_task(adapter.acquire())
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert adapter.pool_stats() == PoolStats(1, 0, 1, 1)
    await adapter.release(held)
    assert all_idle(adapter, 1)
    assert run_without_suspending(adapter.acquire()) is held  # nobody left queued for it
    await adapter.release(held)


async def test_cancelled_just_after_being_handed_a_connection(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=1)
    held = await adapter.acquire()
    first = asyncio.create_task(adapter.acquire())
    await asyncio.sleep(0.05)
    second = asyncio.create_task(adapter.fetch_value("SELECT 2"))
    await asyncio.sleep(0.05)
    await adapter.release(held)  # handed to `first`, which has not run yet...
    first.cancel()  # ...and is cancelled before it could: it must pass the connection on
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == 2
    assert all_idle(adapter, 1)


async def test_cancelled_while_opening_a_connection(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, pool_min=0, pool_max=1)
    await adapter.connect()
    assert adapter.pool_stats().size == 0
    opening = asyncio.create_task(adapter.fetch_value("SELECT 1"))
    await asyncio.sleep(0)  # connecting now
    assert adapter.pool_stats().size == 1  # counted while it opens
    opening.cancel()
    with pytest.raises(asyncio.CancelledError):
        await opening
    assert adapter.pool_stats() == PoolStats(0, 0, 0, 1)
    assert await adapter.fetch_value("SELECT 4") == 4
    assert all_idle(adapter, 1)


async def test_cancelled_statement_leaves_the_pool_consistent(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=2)
    pid = await adapter.fetch_value("SELECT pg_backend_pid()")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(adapter.fetch_value(SLEEP_SQL), 0.2)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(adapter.run_fetch(SLEEP_SQL), 0.2)  # the direct ORM path
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(adapter.run_execute(SLEEP_SQL), 0.2)
    await settle(adapter)
    assert loop.time() - started < 10  # the server stopped the sleeps
    assert all_idle(adapter, 1)
    assert await adapter.fetch_value("SELECT pg_backend_pid()") == pid  # reused, not replaced


async def test_cancelled_statement_in_a_transaction_rolls_back_and_returns_the_connection(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, alias="default")
    await adapter.execute("CREATE TABLE IF NOT EXISTS pool_tx (x int)")
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                async with transaction():
                    await adapter.execute("INSERT INTO pool_tx VALUES (1)")
                    await adapter.fetch_value(SLEEP_SQL)
        await settle(adapter)
        assert await adapter.fetch_value("SELECT count(*) FROM pool_tx") == 0
        assert all_idle(adapter, 1)
    finally:
        await adapter.execute("DROP TABLE pool_tx")


# closing and event loops --------------------------------------------------------------------------
async def test_close_waits_for_lent_connections_and_fails_waiters(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_max=1)
    held = await adapter.acquire()
    waiter = asyncio.create_task(adapter.acquire())
    await asyncio.sleep(0.05)
    closer = asyncio.create_task(adapter.close())
    with pytest.raises(OperationalError, match="connection pool of 'pool' was closed"):
        await waiter
    await asyncio.sleep(0.05)
    assert not closer.done()  # waiting for the lent connection
    await adapter.release(held)
    await asyncio.wait_for(closer, 5)
    assert held._raw.is_closed()
    assert adapter.pool_stats() == PoolStats(0, 0, 0, 1)
    assert await adapter.fetch_value("SELECT 5") == 5  # reopens lazily


def test_loop_change_rebuilds_the_pool_and_drops_the_old_connections(pg_url: str) -> None:
    make(pg_url, alias="loops")
    adapter = connections.adapter_for("loops")
    assert isinstance(adapter, PostgreSQLAdapter)
    kept: list[PostgreSQLConnection] = []

    async def first() -> int:
        kept.append(await adapter.acquire())  # never released on this loop
        return int(await adapter.fetch_value("SELECT pg_backend_pid()"))

    async def second() -> tuple[int, PoolStats, bool]:
        pid = int(await adapter.fetch_value("SELECT pg_backend_pid()"))
        await adapter.release(kept[0])  # a connection of the finished loop: dropped, no error
        return pid, adapter.pool_stats(), kept[0]._raw.is_closed()

    old_pid = asyncio.run(first())
    old_pool = adapter._pool
    assert old_pool is None  # the guard task terminated it when asyncio.run ended
    new_pid, stats, old_closed = asyncio.run(second())
    assert new_pid != old_pid and old_closed
    assert stats.in_use == 0 and stats.size == stats.idle >= 1
    asyncio.run(connections.close_all())


# options ------------------------------------------------------------------------------------------
async def test_init_setup_and_connect_options_pass_through(pg_url: str, closing: None) -> None:
    inits: list[Any] = []
    setups: list[Any] = []

    async def init(raw: Any) -> None:
        inits.append(raw)
        await raw.execute("SET search_path TO pg_catalog, public")

    async def setup(raw: Any) -> None:
        setups.append(raw)

    adapter = make(pg_url, pool_max=2, init=init, setup=setup,
                   server_settings={"application_name": "covet-pool-test"})
    assert await adapter.fetch_value("SHOW application_name") == "covet-pool-test"
    assert await adapter.fetch_value("SHOW search_path") == "pg_catalog, public"
    assert len(inits) == 1 and len(setups) == 2
    await asyncio.gather(*(adapter.fetch_value("SELECT pg_sleep(0.05)") for _ in range(2)))
    assert len(inits) == 2 and len(setups) == 4
    assert all_idle(adapter, 2)
    # the codecs are installed before the init hook, and survive it
    assert await adapter.fetch_value("SELECT $1::date", [dt.date.max]) == dt.date.max


async def test_max_queries_replaces_a_connection(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, max_queries=3)
    pids = [await adapter.fetch_value("SELECT pg_backend_pid()") for _ in range(7)]
    assert len(set(pids)) == 3 and pids[0] == pids[1] == pids[2] != pids[3]
    assert all_idle(adapter, 1)


async def test_idle_connections_beyond_pool_min_are_closed_after_their_lifetime(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, pool_min=1, pool_max=4, max_inactive_connection_lifetime=0.2)
    await asyncio.gather(*(adapter.fetch_value("SELECT pg_sleep(0.05)") for _ in range(4)))
    assert adapter.pool_stats().size == 4
    for _ in range(200):
        if adapter.pool_stats().size == 1:
            break
        await asyncio.sleep(0.02)
    assert adapter.pool_stats() == PoolStats(1, 1, 0, 4)
    assert await adapter.fetch_value("SELECT 6") == 6


async def test_init_size_opens_connections_up_front(pg_url: str, closing: None) -> None:
    adapter = make(pg_url, pool_min=1, pool_max=4, init_size=3)
    await adapter.connect()
    assert adapter.pool_stats() == PoolStats(3, 3, 0, 4)


@pytest.mark.parametrize(("option", "value"), [
    ("max_queries", 0),
    ("max_inactive_connection_lifetime", -1),
    ("init_size", 20),
    ("max_queries", "many"),
])
async def test_bad_pool_options_are_configuration_errors(
    pg_url: str, closing: None, option: str, value: Any
) -> None:
    adapter = make(pg_url, **{option: value})
    with pytest.raises(ConfigurationError, match=option):
        await adapter.connect()


async def test_unknown_connect_option_is_reported_when_connecting(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url, no_such_option=1)
    with pytest.raises(OperationalError, match="cannot connect to postgresql://.*no_such_option"):
        await adapter.connect()
    assert adapter.pool_stats().size == 0


# codecs -------------------------------------------------------------------------------------------
@settings(max_examples=500, deadline=None)
@given(value=st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.integers(min_value=-(2**31) * 86_400_000_000, max_value=2**31 * 86_400_000_000),
    st.sampled_from([0, -1, 2**63 - 1, -(2**63), 2**31 - 1, -(2**31), -730_119, -730_120,
                     2_921_939, 2_921_940, 252_423_993_599_999_999, 252_423_993_600_000_000,
                     -63_082_281_600_000_000, -63_082_281_600_000_001]),
))
def test_rust_date_and_time_decoders_match_the_reference(value: int) -> None:
    """pg_codecs' Python decoders are the reference of the Rust ones asyncpg calls per value."""
    rs = _native.native
    assert rs is not None, f"the Rust core is not built: {_native.IMPORT_ERROR}"
    for reference, fast in ((pg_codecs._decode_date, rs.pg_date),
                            (pg_codecs._decode_timestamp, rs.pg_timestamp),
                            (pg_codecs._decode_timestamptz, rs.pg_timestamptz)):
        if fast is rs.pg_date and not -(2**31) <= value < 2**31:
            continue  # a date is an int32 on the wire
        try:
            expected: Any = reference((value,))
        except (OverflowError, ValueError) as exc:
            expected = type(exc)
        try:
            got: Any = fast((value,))
        except (OverflowError, ValueError) as exc:
            got = type(exc)
        if isinstance(expected, type):
            assert isinstance(got, type) and issubclass(got, (OverflowError, ValueError)), value
        else:
            assert got == expected and type(got) is type(expected), value
            assert getattr(got, "tzinfo", None) is getattr(expected, "tzinfo", None)


def test_the_rust_decoders_are_installed_unless_pure_python() -> None:
    if _native.USE_NATIVE and _native.native is not None:
        assert pg_codecs._dec_timestamptz is _native.native.pg_timestamptz
    else:
        assert pg_codecs._dec_timestamptz is pg_codecs._decode_timestamptz


async def test_infinities_written_by_others_read_back_as_the_extremes(
    pg_url: str, closing: None
) -> None:
    adapter = make(pg_url)
    utc = dt.timezone.utc
    row = (await adapter.fetch(
        "SELECT 'infinity'::date AS a, '-infinity'::date AS b, 'infinity'::timestamp AS c, "
        "'-infinity'::timestamp AS d, 'infinity'::timestamptz AS e, '-infinity'::timestamptz AS f"
    ))[0]
    assert row == {
        "a": dt.date.max, "b": dt.date.min, "c": dt.datetime.max, "d": dt.datetime.min,
        "e": dt.datetime.max.replace(tzinfo=utc), "f": dt.datetime.min.replace(tzinfo=utc),
    }
    assert row["e"].tzinfo is utc and row["c"].tzinfo is None


async def test_temporal_values_round_trip_exactly(pg_url: str, closing: None) -> None:
    adapter = make(pg_url)
    utc = dt.timezone.utc
    moments = [
        dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=utc),
        dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=utc),
        dt.datetime(1970, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        dt.datetime(1, 1, 1, tzinfo=utc),
        dt.datetime.max.replace(tzinfo=utc),
    ]
    for moment in moments:
        back = await adapter.fetch_value("SELECT $1::timestamptz", [moment])
        assert back == moment and back.tzinfo is utc
        text = await adapter.fetch_value("SELECT ($1::timestamptz AT TIME ZONE 'UTC')::text",
                                         [moment])
        assert text.startswith(moment.astimezone(utc).strftime("%Y-%m-%d %H:%M:%S").zfill(19))
        naive = moment.astimezone(utc).replace(tzinfo=None)
        assert await adapter.fetch_value("SELECT $1::timestamp", [naive]) == naive
        assert await adapter.fetch_value("SELECT $1::timestamp", [moment]) == naive
        assert await adapter.fetch_value("SELECT $1::date", [naive]) == naive.date()
    days = await adapter.fetch_value(
        "SELECT ARRAY['2024-01-01'::date, 'infinity'::date, $1::date]", [dt.date.min]
    )
    assert days == [dt.date(2024, 1, 1), dt.date.max, dt.date.min]
    with pytest.raises(Exception, match="out of range|year"):
        await adapter.fetch_value("SELECT '10000-01-01'::date")


async def test_uuid_values_are_exact_uuids(pg_url: str, closing: None) -> None:
    adapter = make(pg_url)
    values = [uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    back = await adapter.fetch_value("SELECT $1::uuid[]", [values])
    assert back == values and all(type(v) is uuid.UUID for v in back)
    assert [str(v) for v in back] == [str(v) for v in values]
    assert {back[0]: 1}[values[0]] == 1  # hashes like a uuid.UUID


async def test_bulk_insert_statements_are_prepared_once(pg_url: str, closing: None) -> None:
    """A 1,000-row INSERT is longer than asyncpg's default cacheable size (15 kB): the pool
    raises the limit, so every batch after the first reuses the server-side statement."""
    from covet.database.orm import Model
    from covet.database.orm.fields import CharField, IntegerField
    from covet.database.orm.options import registry
    from covet.database.orm.schema import create_tables

    class BulkRow(Model):
        label = CharField(max_length=40)
        n = IntegerField()
        m = IntegerField()
        k = IntegerField()

        class Meta:
            db_table = "pool_bulk_rows"

    try:
        adapter = make(pg_url, alias="default")
        await adapter.execute('DROP TABLE IF EXISTS "pool_bulk_rows"')
        await create_tables(BulkRow)
        async with transaction() as tx:  # one connection: its prepared statements are visible
            await BulkRow.objects.bulk_create(
                [BulkRow(label=f"row {i}", n=i, m=i, k=i) for i in range(3000)])
            rows = await tx.connection.fetch(
                "SELECT statement FROM pg_prepared_statements "
                "WHERE statement LIKE 'INSERT INTO \"pool_bulk_rows\"%'", [])
        assert len(rows) == 1 and len(rows[0][0]) > 15 * 1024
        assert await BulkRow.objects.count() == 3000
        await adapter.execute('DROP TABLE "pool_bulk_rows"')
    finally:
        registry.unregister(BulkRow)
