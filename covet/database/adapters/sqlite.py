"""The SQLite adapter: aiosqlite connections in a small pool (the reference SQLite engine).

Barrier: the only module (with ``postgresql.py``) that touches a driver; it speaks ``sqlite3``
through aiosqlite's worker thread and hands back plain tuples and CovetPy errors.

Every connection is opened with ``isolation_level=None`` (the adapter issues BEGIN/COMMIT itself),
``PRAGMA foreign_keys=ON``, ``journal_mode=WAL`` for files (never OFF), ``busy_timeout`` (5000 ms
unless configured), ``case_sensitive_like=ON`` and SQLite's default ``synchronous`` unless
configured. It registers deterministic SQL functions: ``lower``/``upper`` (Python's unicode-aware
case mapping, NULL-safe), ``covet_regexp(pattern, value)``, ``covet_iregexp(pattern, value)`` and
``regexp`` (for the ``REGEXP`` operator). Transactions start with ``BEGIN IMMEDIATE``.

A ``:memory:`` database is one database per connection, so its pool has exactly one connection.

Each statement is one job on the connection's worker thread (aiosqlite's queue); a job whose
awaiting task was cancelled before it started is skipped, a running one is interrupted with
``sqlite3.Connection.interrupt``, and the pool drains the queue before it lends the connection out
again. Placeholder translation, value conversion, the SQL functions and error translation live in
``sqlite_support.py``.

The default engine, the native Rust executor (``sqlite_native.py``), subclasses this adapter and
reuses its pool, transactions and raw API: only its connections differ
(:class:`PooledSQLiteConnection` is what the pool needs of one).
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import aiosqlite

from covet.database.adapters.base import (
    Adapter,
    Capabilities,
    Connection,
    PoolStats,
    Row,
    translate_errors,
)
from covet.database.adapters.sqlite_support import (
    adapt_value,
    open_connection,
    translate_placeholders,
    translate_sqlite_error,
)
from covet.database.exceptions import ConfigurationError, DatabaseError, OperationalError

if TYPE_CHECKING:
    from covet.database.config import DatabaseConfig

__all__ = [
    "PooledSQLiteConnection",
    "SQLiteAdapter",
    "SQLiteConnection",
    "adapt_value",
    "translate_placeholders",
    "translate_sqlite_error",
]

T = TypeVar("T")
_VERSION = sqlite3.sqlite_version_info
_DEFAULT_ACQUIRE_TIMEOUT = 30.0


# connections --------------------------------------------------------------------------------------
class _Skipped(Exception):
    """A job whose awaiting task was cancelled before the worker reached it."""


class _Job:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


class PooledSQLiteConnection(Connection):
    """What the pool needs of a SQLite connection, whichever engine runs it.

    ``_needs_drain`` is set when a statement was cancelled: :meth:`prepare_for_reuse` then waits
    for the worker to finish it before the connection is lent out again.
    """

    __slots__ = ("pool", "_needs_drain", "broken")

    def __init__(self, pool: _SQLitePool) -> None:
        self.pool = pool
        self._needs_drain = False
        self.broken = False

    def translate_error(self, exc: Exception) -> DatabaseError | None:
        return translate_sqlite_error(exc)

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """Usable: not broken, connection open, worker thread running."""

    @abc.abstractmethod
    async def prepare_for_reuse(self) -> None:
        """Wait for an interrupted job to finish, and roll back a transaction left open."""

    def reusable_now(self) -> bool:
        """True when :meth:`prepare_for_reuse` would have nothing to do."""
        return not self._needs_drain and self.healthy and not self.in_transaction

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection and wait for its worker thread to finish the job."""

    @abc.abstractmethod
    def discard(self) -> None:
        """Close without awaiting (for connections of a finished event loop)."""


def open_failure(path: str, exc: Exception) -> Exception | None:
    """The error to raise when opening ``path`` failed with ``exc`` (None: re-raise ``exc``)."""
    err = translate_sqlite_error(exc)
    if err is None:
        return None
    return type(err)(f"cannot open SQLite database {path!r}: {err}")


class SQLiteConnection(PooledSQLiteConnection):
    """One aiosqlite connection; every method is a single job on its worker thread."""

    __slots__ = ("_aio",)

    def __init__(self, aio: aiosqlite.Connection, pool: _SQLitePool) -> None:
        super().__init__(pool)
        self._aio = aio

    @property
    def _raw(self) -> sqlite3.Connection:
        return self._aio._conn

    @property
    def healthy(self) -> bool:
        aio = self._aio
        return (
            not self.broken and aio._running and aio._connection is not None
            and aio._thread.is_alive()
        )

    @property
    def in_transaction(self) -> bool:
        return self._raw.in_transaction

    async def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # aiosqlite's Connection._execute queues one callable on the worker thread: one hop per
        # statement (execute + fetch + close together) and a chance to skip cancelled jobs.
        raw = self._raw
        job = _Job()

        def run() -> T:
            if job.cancelled:
                raise _Skipped()
            return fn(raw)

        try:
            result: T = await self._aio._execute(run)
        except asyncio.CancelledError:
            job.cancelled = True
            raw.interrupt()  # stops the statement if the worker is running it
            self._needs_drain = True
            raise
        return result

    @translate_errors
    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(fn)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        def run(raw: sqlite3.Connection) -> list[Row]:
            cursor = raw.execute(sql, params)
            try:
                return cursor.fetchall()
            finally:
                cursor.close()

        return await self._call(run)

    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]:
        def run(raw: sqlite3.Connection) -> tuple[list[str], list[Row]]:
            cursor = raw.execute(sql, params)
            try:
                if cursor.description is None:
                    return [], []
                columns = [d[0] for d in cursor.description]
                rows = cursor.fetchall() if limit is None else cursor.fetchmany(limit)
                return columns, rows
            finally:
                cursor.close()

        return await self._call(run)

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        def run(raw: sqlite3.Connection) -> int:
            cursor = raw.execute(sql, params)
            try:
                if cursor.description is not None:
                    return len(cursor.fetchall())
                return max(cursor.rowcount, 0)
            finally:
                cursor.close()

        return await self._call(run)

    async def execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None:
        def run(raw: sqlite3.Connection) -> None:
            if raw.in_transaction:
                raw.executemany(sql, params_seq).close()
                return
            # Outside a transaction: one atomic write instead of one commit per row.
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.executemany(sql, params_seq).close()
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")

        await self._call(run)

    async def iterate(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[list[Row], None]:
        cursor = await self._call(lambda raw: raw.execute(sql, params))
        try:
            while True:
                chunk = await self._call(lambda raw: cursor.fetchmany(chunk_size))
                if chunk:
                    yield chunk
                if len(chunk) < chunk_size:
                    break
        finally:
            await self._call(lambda raw: cursor.close())

    async def control(self, sql: str) -> None:
        def run(raw: sqlite3.Connection) -> None:
            # An interrupted write may already have rolled the transaction back.
            if sql == "ROLLBACK" and not raw.in_transaction:
                return
            raw.execute(sql).close()

        await self._call(run)

    async def prepare_for_reuse(self) -> None:
        """Wait for an interrupted job to finish, and roll back a transaction left open."""
        if self._needs_drain:
            await self._aio._execute(lambda: None)  # FIFO: the interrupted job is done
            self._needs_drain = False
        if self.in_transaction:
            await self.control("ROLLBACK")

    async def close(self) -> None:
        """Close the connection and wait for its worker thread to finish the job."""
        aio = self._aio
        if not aio._thread.is_alive():
            aio._connection = None  # a dead worker runs nothing; sqlite3 closes it on collection
            return
        try:
            await aio.close()
        except Exception:
            self.discard()

    def discard(self) -> None:
        """Close without awaiting (for connections of a finished event loop)."""
        aio = self._aio
        if aio._thread.is_alive():
            if aio._running:
                aio.stop()  # its future belongs to the running loop, which outlives the job
        else:
            aio._connection = None


class _SQLitePool:
    """A few connections, lent one at a time; rebinds its waiters when the event loop changes.

    SQLite connections live on their own threads, so they survive a change of event loop; only
    the futures the pool waits on belong to a loop.
    """

    def __init__(self, adapter: SQLiteAdapter, max_size: int, timeout: float) -> None:
        self._adapter = adapter
        self.max_size = max_size
        self._timeout = timeout
        self._idle: list[PooledSQLiteConnection] = []
        self._in_use: set[PooledSQLiteConnection] = set()
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    def stats(self) -> PoolStats:
        size = len(self._idle) + len(self._in_use) + self._opening
        return PoolStats(size, len(self._idle), size - len(self._idle), self.max_size)

    def _rebind(self, loop: asyncio.AbstractEventLoop) -> None:
        # Tasks of the old loop are gone: whatever they still held is lost, their waits too.
        for conn in self._in_use:
            conn.discard()
        self._in_use.clear()
        self._waiters.clear()
        self._opening = 0
        self._loop = loop

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def acquire_nowait(self) -> PooledSQLiteConnection | None:
        """An idle connection ready as it is (no drain, no rollback), or None: then
        :meth:`acquire`. The common case of a statement outside a transaction."""
        idle = self._idle
        if not idle or self._loop is not asyncio.get_running_loop():
            return None
        conn = idle[-1]
        if not conn.reusable_now():
            return None
        idle.pop()
        self._in_use.add(conn)
        return conn

    def release_nowait(self, conn: PooledSQLiteConnection) -> bool:
        """Give ``conn`` back at once when it needs no closing; False: use :meth:`release`."""
        if self.closed or conn not in self._in_use or not conn.healthy:
            return False
        self._in_use.discard(conn)
        self._idle.append(conn)
        self._wake()
        return True

    async def acquire(self) -> PooledSQLiteConnection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._rebind(loop)
        deadline = time.monotonic() + self._timeout
        while True:
            while self._idle:
                conn = self._idle.pop()
                if not conn.healthy:
                    await conn.close()
                    continue
                self._in_use.add(conn)
                try:
                    await conn.prepare_for_reuse()
                except Exception:
                    self._in_use.discard(conn)
                    await conn.close()
                    continue
                except BaseException:
                    self._in_use.discard(conn)
                    conn.discard()
                    self._wake()
                    raise
                return conn
            if len(self._in_use) + self._opening < self.max_size:
                self._opening += 1
                try:
                    conn = await self._adapter._open_connection(self)
                except BaseException:
                    self._wake()
                    raise
                finally:
                    self._opening -= 1
                self._in_use.add(conn)
                return conn
            await self._wait(loop, deadline)

    async def _wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            # wait_for cancels only the waiter, our own future, when the time is up.
            await asyncio.wait_for(waiter, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._wake()
            raise OperationalError(
                f"timed out after {self._timeout:g}s waiting for a connection of "
                f"{self._adapter.alias!r} ({self.stats()}); is a connection held elsewhere "
                "(a transaction or an unfinished iteration in the same task)?"
            ) from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake()  # pass the wake-up on
            raise
        finally:
            if not waiter.done():
                waiter.cancel()
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def release(self, conn: PooledSQLiteConnection) -> None:
        known = conn in self._in_use
        self._in_use.discard(conn)
        if self.closed or not known or not conn.healthy:
            self._wake()
            await conn.close()
        else:
            self._idle.append(conn)
            self._wake()

    async def close(self) -> None:
        self.closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.cancel()
        self._waiters.clear()


def sqlite_capabilities(version: tuple[int, ...]) -> Capabilities:
    """The capabilities of SQLite ``version`` (the library the engine links)."""
    return Capabilities(
        dialect="sqlite",
        returning=version >= (3, 35),
        upsert=version >= (3, 24),
        window_functions=version >= (3, 25),
        explain_format="text",
        max_params=32766 if version >= (3, 32) else 999,
    )


class SQLiteAdapter(Adapter):
    """SQLite through aiosqlite: ``?1`` placeholders at the ORM level, ``$1`` in the raw API."""

    dialect = "sqlite"
    capabilities = sqlite_capabilities(_VERSION)
    begin_sql = "BEGIN IMMEDIATE"
    begin_readonly_sql = "BEGIN DEFERRED"

    def __init__(self, config: DatabaseConfig) -> None:
        super().__init__(config)
        mode = str(config.options.get("journal_mode", "WAL")).upper()
        if mode in ("OFF", "MEMORY"):
            raise ConfigurationError(
                f"journal_mode={mode} can corrupt the database on a crash; use WAL or DELETE"
            )
        self._pool: _SQLitePool | None = None
        self.iterate_eagerly = config.is_memory

    def _get_pool(self) -> _SQLitePool:
        if self._pool is None or self._pool.closed:
            timeout = float(self.config.options.get("acquire_timeout", _DEFAULT_ACQUIRE_TIMEOUT))
            self._pool = _SQLitePool(self, self.config.pool_max, timeout)
        return self._pool

    async def _open_connection(self, pool: _SQLitePool) -> PooledSQLiteConnection:
        path = self.config.sqlite_path
        options = dict(self.config.options)
        aio = aiosqlite.Connection(lambda: open_connection(path, options), 64)
        # A forgotten close must not keep the interpreter alive at exit (the thread is ours).
        aio._thread.daemon = True
        try:
            await aio
        except Exception as exc:
            # aiosqlite stops the worker on failure; let it finish before this loop may close.
            for _ in range(1000):
                if not aio._thread.is_alive():
                    break
                await asyncio.sleep(0.001)
            err = open_failure(path, exc)
            if err is None:
                raise
            raise err from exc
        return SQLiteConnection(aio, pool)

    # lifecycle ---------------------------------------------------------------------------------
    async def connect(self) -> None:
        pool = self._get_pool()
        if pool.stats().size == 0 or pool._loop is not asyncio.get_running_loop():
            await self.release(await pool.acquire())

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def pool_stats(self) -> PoolStats:
        if self._pool is None:
            return PoolStats(0, 0, 0, self.config.pool_max)
        return self._pool.stats()

    async def acquire(self) -> PooledSQLiteConnection:
        return await self._get_pool().acquire()

    async def release(self, connection: Connection) -> None:
        assert isinstance(connection, PooledSQLiteConnection)
        await connection.pool.release(connection)

    def _acquire_nowait(self) -> PooledSQLiteConnection | None:
        pool = self._pool
        return None if pool is None or pool.closed else pool.acquire_nowait()

    def _release_nowait(self, connection: Connection) -> bool:
        assert isinstance(connection, PooledSQLiteConnection)
        return connection.pool.release_nowait(connection)

    # raw API -------------------------------------------------------------------------------------
    def prepare_raw(self, sql: str, params: Sequence[Any] | None) -> tuple[str, Sequence[Any]]:
        values = () if params is None else [adapt_value(v) for v in params]
        return translate_placeholders(sql), values

    async def explain(
        self, sql: str, params: Sequence[Any] | None = None, analyze: bool = False
    ) -> list[dict[str, Any]]:
        """``EXPLAIN QUERY PLAN`` rows (``id``, ``parent``, ``notused``, ``detail``).

        SQLite has no EXPLAIN ANALYZE; ``analyze`` is accepted and ignored.
        """
        sql, values = self.prepare_raw(sql, params)
        plan_sql = "EXPLAIN QUERY PLAN " + sql
        cols, rows = await self._run(
            "explain", plan_sql, values, lambda c: c.fetch_columns(plan_sql, values)
        )
        return [dict(zip(cols, row)) for row in rows]
