"""transaction(): commit, rollback, savepoints, decorators, cancellation, tasks, atomicity."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import pytest

from covet.database import connections
from covet.database.adapters.base import Adapter, QueryEvent
from covet.database.config import configure
from covet.database.exceptions import (
    ConfigurationError,
    DatabaseError,
    IntegrityError,
    TransactionError,
)
from covet.database.transaction import Transaction, transaction

SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) "
    "SELECT count(*) FROM c"
)


@pytest.fixture
async def t(db: Adapter) -> Adapter:
    await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    return db


async def insert(db: Adapter, id_: int, name: str | None = None) -> None:
    await db.execute("INSERT INTO t (id, name) VALUES ($1, $2)", [id_, name or f"n{id_}"])


async def ids(db: Adapter) -> list[int]:
    return [row["id"] for row in await db.fetch("SELECT id FROM t ORDER BY id")]


def assert_clean(db: Adapter) -> None:
    """Nothing half-finished: no bound transaction, no connection lent out."""
    assert connections.current_transaction("default") is None
    assert db.pool_stats().in_use == 0


class Boom(Exception):
    pass


# commit and rollback ------------------------------------------------------------------------------
async def test_commit(t: Adapter) -> None:
    async with transaction() as tx:
        assert isinstance(tx, Transaction) and tx.active and not tx.is_savepoint
        assert tx.adapter is t and t.in_transaction()
        assert connections.current_connection() is tx.connection
        await insert(t, 1)
        await insert(t, 2)
    assert await ids(t) == [1, 2]
    assert not tx.active and not t.in_transaction()
    assert_clean(t)


async def test_exception_rolls_back_and_propagates(t: Adapter) -> None:
    with pytest.raises(Boom):
        async with transaction():
            await insert(t, 1)
            raise Boom()
    assert await ids(t) == []
    assert_clean(t)


async def test_database_error_rolls_back(t: Adapter) -> None:
    with pytest.raises(IntegrityError):
        async with transaction():
            await insert(t, 1, "same")
            await insert(t, 2, "same")
    assert await ids(t) == []
    assert_clean(t)


async def test_set_rollback(t: Adapter) -> None:
    async with transaction() as tx:
        await insert(t, 1)
        tx.set_rollback()
    assert await ids(t) == []
    assert_clean(t)


async def test_failed_commit_rolls_back_and_releases(t: Adapter) -> None:
    await t.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    await t.execute(
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
        "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(IntegrityError):
        async with transaction():
            await t.execute("INSERT INTO child (id, parent_id) VALUES (1, 99)")
            await insert(t, 1)
    assert await t.fetch_value("SELECT count(*) FROM child") == 0
    assert await ids(t) == []
    assert_clean(t)
    async with transaction():  # the connection is usable again
        await insert(t, 2)
    assert await ids(t) == [2]


async def test_sequential_reuse_and_no_concurrent_reuse(t: Adapter) -> None:
    tx = transaction()
    async with tx:
        await insert(t, 1)
        with pytest.raises(TransactionError, match="already active"):
            async with tx:
                pass
    async with tx:
        await insert(t, 2)
    assert await ids(t) == [1, 2]
    with pytest.raises(TransactionError, match="not active"):
        _ = tx.connection


async def test_begin_statements(t: Adapter) -> None:
    events: list[QueryEvent] = []
    t.add_listener(events.append)
    async with transaction():
        pass
    async with transaction(readonly=True):
        await t.fetch("SELECT * FROM t")
    t.remove_listener(events.append)
    controls = [e.sql for e in events if e.kind == "control"]
    assert controls == [t.begin_sql, "COMMIT", t.begin_readonly_sql, "COMMIT"]
    if t.dialect == "sqlite":
        assert t.begin_sql == "BEGIN IMMEDIATE"


async def test_unknown_alias(t: Adapter) -> None:
    with pytest.raises(ConfigurationError):
        async with transaction("nope"):
            pass
    assert_clean(t)


# decorators ---------------------------------------------------------------------------------------
async def test_bare_decorator(t: Adapter) -> None:
    @transaction
    async def create(n: int) -> str:
        """Create n rows."""
        assert t.in_transaction()
        for i in range(n):
            await insert(t, i)
        return "done"

    assert create.__name__ == "create" and create.__doc__ == "Create n rows."
    assert await create(3) == "done"
    assert await ids(t) == [0, 1, 2]

    @transaction
    async def failing() -> None:
        await insert(t, 10)
        raise Boom()

    with pytest.raises(Boom):
        await failing()
    assert await ids(t) == [0, 1, 2]
    assert_clean(t)


async def test_called_decorator_forms(t: Adapter, tmp_path: Any) -> None:
    @transaction()
    async def plain() -> None:
        assert t.in_transaction()
        await insert(t, 1)

    @transaction(using="default")
    async def named() -> None:
        await insert(t, 2)
        raise Boom()

    await plain()
    with pytest.raises(Boom):
        await named()
    assert await ids(t) == [1]

    configure(f"sqlite:///{tmp_path / 'other.db'}", alias="other")
    other = await connections.get_adapter("other")
    await other.execute("CREATE TABLE o (x INTEGER)")

    @transaction(using="other")
    async def on_other() -> None:
        assert other.in_transaction() and not t.in_transaction()
        await other.execute("INSERT INTO o VALUES (1)")

    await on_other()
    assert await other.fetch_value("SELECT count(*) FROM o") == 1
    assert_clean(t)


async def test_concurrent_calls_of_one_decorated_function(t: Adapter) -> None:
    @transaction
    async def add(i: int) -> None:
        await insert(t, i)
        await asyncio.sleep(0)

    await asyncio.gather(*(add(i) for i in range(8)))
    assert await ids(t) == list(range(8))
    assert_clean(t)


def test_decorator_refuses_sync_functions() -> None:
    with pytest.raises(TypeError, match="async"):
        transaction(lambda: None)
    with pytest.raises(TypeError, match="async"):
        transaction()(lambda: None)


# savepoints ---------------------------------------------------------------------------------------
async def test_nested_transaction_is_a_savepoint(t: Adapter) -> None:
    async with transaction():
        await insert(t, 1)
        with pytest.raises(Boom):
            async with transaction() as inner:
                assert inner.is_savepoint and inner.savepoint_name
                await insert(t, 2)
                raise Boom()
        await insert(t, 3)
    assert await ids(t) == [1, 3]
    assert_clean(t)


async def test_tx_savepoint(t: Adapter) -> None:
    async with transaction() as tx:
        await insert(t, 1)
        async with tx.savepoint() as sp:
            assert sp.is_savepoint
            await insert(t, 2)
        try:
            async with tx.savepoint():
                await insert(t, 3)
                raise Boom()
        except Boom:
            pass
    assert await ids(t) == [1, 2]
    assert_clean(t)


async def test_savepoint_recovers_from_a_database_error(t: Adapter) -> None:
    # On PostgreSQL a failed statement aborts the transaction; the savepoint rescues it.
    async with transaction() as tx:
        await insert(t, 1, "a")
        with pytest.raises(IntegrityError):
            async with tx.savepoint():
                await insert(t, 2, "a")
        await insert(t, 3, "c")
    assert await ids(t) == [1, 3]


async def test_outer_failure_undoes_released_savepoints(t: Adapter) -> None:
    with pytest.raises(Boom):
        async with transaction():
            async with transaction():
                await insert(t, 1)
                async with transaction():
                    await insert(t, 2)
            raise Boom()
    assert await ids(t) == []
    assert_clean(t)


async def test_three_levels(t: Adapter) -> None:
    async with transaction():
        await insert(t, 1)
        async with transaction():
            await insert(t, 2)
            try:
                async with transaction():
                    await insert(t, 3)
                    raise Boom()
            except Boom:
                pass
            state = connections.current_transaction()
            assert state is not None and len(state.savepoints) == 1
        await insert(t, 4)
    assert await ids(t) == [1, 2, 4]


async def test_joined_block_failure_marks_the_outer_for_rollback(t: Adapter) -> None:
    async with transaction():
        await insert(t, 1)
        try:
            async with transaction(savepoint=False) as joined:
                assert not joined.is_savepoint
                await insert(t, 2)
                raise Boom()
        except Boom:
            pass
    assert await ids(t) == []
    assert_clean(t)


async def test_savepoint_of_an_inactive_transaction(t: Adapter) -> None:
    tx = transaction()
    with pytest.raises(TransactionError):
        async with tx.savepoint():
            pass
    with pytest.raises(TransactionError):
        tx.set_rollback()


# cancellation -------------------------------------------------------------------------------------
async def test_cancellation_rolls_back(t: Adapter) -> None:
    inserted = asyncio.Event()

    async def work() -> None:
        async with transaction():
            await insert(t, 1)
            inserted.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(work())
    await inserted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await ids(t) == []
    assert_clean(t)


async def test_cancelled_statement_inside_a_transaction(t: Adapter) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            async with transaction():
                await insert(t, 1)
                await t.fetch_value(SLOW_SQL)
    assert time.monotonic() - started < 10
    assert await ids(t) == []
    assert_clean(t)
    async with transaction():
        await insert(t, 2)
    assert await ids(t) == [2]


async def test_a_cancelled_statement_dooms_the_transaction(t: Adapter) -> None:
    with pytest.raises(TransactionError, match="rolled back, not committed"):
        async with transaction():
            await insert(t, 1)
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await t.fetch_value(SLOW_SQL)
            with pytest.raises(TransactionError, match="can only roll back"):
                await insert(t, 2)
            # swallowing the cancellation does not let the block commit half its work
    assert await ids(t) == []
    assert_clean(t)


async def test_double_cancellation_still_cleans_up(t: Adapter) -> None:
    inserted = asyncio.Event()

    async def work() -> None:
        try:
            async with transaction():
                await insert(t, 1)
                inserted.set()
                await asyncio.sleep(30)
        finally:
            pass

    task = asyncio.create_task(work())
    await inserted.wait()
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()  # cancelled again while rolling back
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):  # the shielded rollback finishes on its own
        if t.pool_stats().in_use == 0:
            break
        await asyncio.sleep(0.01)
    assert await ids(t) == []
    assert_clean(t)


# tasks --------------------------------------------------------------------------------------------
async def test_gather_inside_a_transaction_is_atomic(t: Adapter) -> None:
    async with transaction() as tx:
        await asyncio.gather(*(insert(t, i) for i in range(20)))
        assert t.pool_stats().in_use == 1  # every task used the transaction's connection
        assert tx.active
    assert await ids(t) == list(range(20))

    with pytest.raises(IntegrityError):
        async with transaction():
            await asyncio.gather(*(insert(t, 100 + i, "dup" if i == 7 else None)
                                   for i in range(8)), insert(t, 200, "dup"))
    await asyncio.sleep(0.05)  # stragglers of the failed gather finish (and are refused)
    assert await ids(t) == list(range(20))
    assert_clean(t)


async def test_gather_with_savepoints_in_tasks(t: Adapter) -> None:
    async def maybe(i: int) -> None:
        try:
            async with transaction():
                await insert(t, i)
                if i % 2:
                    raise Boom()
        except Boom:
            pass

    async with transaction():
        for i in range(6):  # sequential savepoints from tasks
            await asyncio.create_task(maybe(i))
    assert await ids(t) == [0, 2, 4]


async def test_concurrent_sibling_savepoint_rolled_back_underneath(t: Adapter) -> None:
    a_open, b_open = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with transaction():  # the older savepoint
            a_open.set()
            await b_open.wait()
            await insert(t, 1)
            raise Boom()

    async def second() -> None:
        await a_open.wait()
        async with transaction():  # nested above the first one in SQL
            await insert(t, 2)
            b_open.set()
            await asyncio.sleep(0.1)  # the first one rolls back meanwhile, taking this with it

    async with transaction():
        results = await asyncio.gather(first(), second(), return_exceptions=True)
        await insert(t, 3)
    assert isinstance(results[0], Boom)
    assert isinstance(results[1], TransactionError) and "work is lost" in str(results[1])
    assert await ids(t) == [3]
    assert_clean(t)


async def test_concurrent_sibling_savepoint_released_underneath(t: Adapter) -> None:
    a_open, b_open = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with transaction():
            a_open.set()
            await b_open.wait()
            await insert(t, 1)  # ends first, releasing the younger savepoint too

    async def second() -> None:
        await a_open.wait()
        async with transaction():
            await insert(t, 2)
            b_open.set()
            await asyncio.sleep(0.1)
            raise Boom()  # too late to roll back alone

    async with transaction():
        results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], TransactionError) and "cannot be rolled back" in str(results[1])
    assert await ids(t) == []  # so the whole transaction rolled back
    assert_clean(t)


async def test_child_tasks_inherit_the_transaction(t: Adapter) -> None:
    async with transaction() as tx:
        async def child() -> Any:
            await insert(t, 1)
            return connections.current_connection()

        assert await asyncio.create_task(child()) is tx.connection
        rows = await t.fetch("SELECT id FROM t")
        assert rows == [{"id": 1}]
    assert await ids(t) == [1]


async def test_a_task_outside_never_sees_the_transaction(t: Adapter) -> None:
    inside = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with transaction():
            await insert(t, 1)
            inside.set()
            await release.wait()

    async def reader() -> tuple[bool, list[int]]:
        await inside.wait()
        seen = (t.in_transaction(), await ids(t))
        release.set()
        return seen

    # Fresh contexts: neither task is started from inside the other's transaction.
    w = asyncio.create_task(writer(), context=contextvars.Context())
    r = asyncio.create_task(reader(), context=contextvars.Context())
    in_tx, seen = await r
    await w
    assert in_tx is False and seen == []  # the uncommitted row is invisible outside
    assert await ids(t) == [1]
    assert_clean(t)


async def test_a_task_that_outlives_its_transaction_is_refused(t: Adapter) -> None:
    go = asyncio.Event()

    async def late() -> None:
        await go.wait()
        await insert(t, 2)

    async with transaction():
        await insert(t, 1)
        straggler = asyncio.create_task(late())
    go.set()
    with pytest.raises(TransactionError, match="already finished"):
        await straggler
    assert await ids(t) == [1]
    assert_clean(t)


async def test_iteration_and_statements_interleave_in_a_transaction(t: Adapter) -> None:
    for i in range(6):
        await insert(t, i)
    sql = "SELECT id FROM t ORDER BY id"

    async def stream() -> list[int]:
        out = []
        async for chunk in t.run_iterate(sql, [], 2):
            out.extend(row[0] for row in chunk)
            await asyncio.sleep(0)
        return out

    async with transaction():
        streamed, _, counted = await asyncio.gather(
            stream(), insert(t, 100), t.fetch_value("SELECT count(*) FROM t")
        )
    assert streamed[:6] == list(range(6)) and counted >= 6
    assert_clean(t)


async def test_transaction_errors_are_covet_errors(t: Adapter) -> None:
    with pytest.raises(DatabaseError) as info:
        async with transaction():
            await t.execute("SELECT * FROM missing_table")
    assert info.value.__cause__ is not None
    assert_clean(t)
