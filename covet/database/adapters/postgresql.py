"""The PostgreSQL adapter: asyncpg connections in a small pool of our own, per alias and event loop.

Barrier: the only module (with the SQLite adapters) that touches a driver; it speaks asyncpg and
hands back rows (asyncpg ``Record``s, which index, slice, compare and hash like tuples) and
CovetPy errors (by SQLSTATE class: 23 → IntegrityError, 22 → DataError,
42/0A → ProgrammingError, the rest → OperationalError).

**The pool** (:class:`_PGPool`) holds connections opened with ``asyncpg.connect`` (the
configuration's DSN and options), each given CovetPy's codecs and then the ``init`` option's hook.
Lending and returning a connection cost no event-loop iteration in the usual case: ``acquire``
takes an idle connection (the most recently used first) without awaiting, opens a new one while
fewer than ``pool_max`` are open, and otherwise waits in a FIFO queue, at most ``acquire_timeout``
seconds (only waiting pays for a timer). ``release`` puts a connection back without awaiting,
handing it to the first waiter if there is one; a connection whose statement was cancelled waits
for the server to acknowledge the cancel, and one left inside a transaction is rolled back
first. A connection that is closed (lost, or terminated by the server) is never lent out again,
nor is one marked ``broken`` (a failed rollback); either frees a place for a waiter. ``pool_min``
connections are opened with the pool (``init_size`` if given); idle connections beyond
``pool_min`` are closed after about ``max_inactive_connection_lifetime`` seconds (default 300,
0 keeps them) and a connection is replaced after ``max_queries`` statements (default 50,000).
The other asyncpg pool options keep their meaning: ``setup`` runs on every acquire, ``reset`` on
every release, ``connect`` replaces ``asyncpg.connect``. No reset query runs on release: session
settings changed with ``SET`` persist on that pooled connection. Outside a transaction and with no
listener registered, ``run_fetch``/``run_execute`` take, run and give back a connection themselves,
a few coroutine frames shorter than the general ``Adapter._run`` path and otherwise the same.

The pool belongs to the event loop that built it. When the running loop changes (a script calling
``asyncio.run`` twice, a new notebook kernel loop) the adapter builds a new pool instead of failing
with "attached to a different loop". A small guard task on the pool's loop terminates the pool when
that loop shuts down (``asyncio.run``/``asyncio.Runner`` cancel it), so no socket outlives its loop;
it also closes the idle connections that outlived their inactivity lifetime.

**Values** are passed to asyncpg as they are (the ORM converts them; JSON arrives as ``str``).
``date``, ``timestamp``, ``timestamptz`` and ``uuid`` go through CovetPy's codecs
(:mod:`covet.database.adapters.pg_codecs`: ``date.max`` stays a date, not ``'infinity'``; exact
``uuid.UUID``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.exceptions import _base as _asyncpg_base

from covet.database import connections as _connections
from covet.database.adapters.base import (
    Adapter,
    Capabilities,
    Connection,
    PoolStats,
    Row,
    release_quietly,
    translate_errors,
)
from covet.database.adapters.pg_codecs import install_codecs
from covet.database.exceptions import (
    ConfigurationError,
    CovetError,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

if TYPE_CHECKING:
    from covet.database.config import DatabaseConfig

__all__ = ["PostgreSQLAdapter", "PostgreSQLConnection", "install_codecs", "translate_pg_error"]

log = logging.getLogger("covet.database")
_monotonic = time.monotonic
_DEFAULT_ACQUIRE_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 5.0
_OWN_OPTIONS = {"acquire_timeout"}
# asyncpg pool options the pool below implements; every other option goes to asyncpg.connect.
_POOL_OPTIONS = {
    "init", "setup", "reset", "connect", "init_size", "max_queries",
    "max_inactive_connection_lifetime", "loop",
}
_DEFAULT_MAX_QUERIES = 50_000
_MAX_CACHEABLE_STATEMENT = 512 * 1024  # asyncpg's default is 15 kB
_DEFAULT_INACTIVE_LIFETIME = 300.0
_SQLSTATE_CLASSES: dict[str, type[DatabaseError]] = {
    "23": IntegrityError,
    "22": DataError,
    "42": ProgrammingError,
    "0A": ProgrammingError,
    "26": ProgrammingError,
    "34": ProgrammingError,
    "3F": ProgrammingError,
}


def translate_pg_error(
    exc: Exception, scrub: Callable[[str], str] = lambda s: s
) -> DatabaseError | None:
    """Map an asyncpg (or socket) exception to a CovetPy error, the password masked."""
    message = scrub(str(exc) or type(exc).__name__)
    cls: type[DatabaseError]
    if isinstance(exc, asyncpg.PostgresError):
        cls = _SQLSTATE_CLASSES.get((exc.sqlstate or "")[:2], OperationalError)
        detail = getattr(exc, "detail", None)
        if detail:
            message = f"{message}\nDETAIL: {scrub(detail)}"
    elif isinstance(exc, _asyncpg_base.DataError):  # client side: a value of the wrong type
        cls = DataError
    elif isinstance(exc, asyncpg.InterfaceError):
        cls = ProgrammingError if "argument" in message else OperationalError
    elif isinstance(exc, (OSError, asyncio.TimeoutError, _asyncpg_base.InternalClientError)):
        cls = OperationalError
    else:
        return None
    return cls(message)


def _status_count(status: str) -> int:
    """Rows from a command tag: ``'INSERT 0 3'`` → 3, ``'SELECT 2'`` → 2, ``'CREATE TABLE'`` → 0."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else 0


class PostgreSQLConnection(Connection):
    """One pooled asyncpg connection (the same wrapper every time the pool lends it)."""

    __slots__ = ("_raw", "pool", "_scrub", "broken", "idle_since")

    def __init__(self, raw: Any, pool: _PGPool, scrub: Callable[[str], str]) -> None:
        self._raw = raw
        self.pool = pool
        self._scrub = scrub
        self.broken = False
        self.idle_since = 0.0

    def translate_error(self, exc: Exception) -> DatabaseError | None:
        return translate_pg_error(exc, self._scrub)

    def _error(self, exc: Exception) -> DatabaseError | None:
        """What to raise for ``exc`` (None: re-raise it as it is)."""
        if isinstance(exc, CovetError):
            return None
        return translate_pg_error(exc, self._scrub)

    @property
    def in_transaction(self) -> bool:
        return bool(self._raw.is_in_transaction())

    # The three statement methods translate errors inline rather than through
    # @translate_errors: one coroutine frame less per statement.
    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            records = await self._raw.fetch(sql, *params)
        except Exception as exc:
            err = self._error(exc)
            if err is None:
                raise
            raise err from exc
        return records  # asyncpg Records: see PostgreSQLAdapter.run_fetch

    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]:
        raw = self._raw
        try:
            if limit == 1:
                record = await raw.fetchrow(sql, *params)
                records = [] if record is None else [record]
            else:
                records = await raw.fetch(sql, *params)
                if limit is not None:
                    records = records[:limit]
            if records:
                return list(records[0].keys()), [tuple(r) for r in records]
            statement = await raw.prepare(sql)  # no rows: ask the server for the column names
            return [a.name for a in statement.get_attributes()], []
        except Exception as exc:
            err = self._error(exc)
            if err is None:
                raise
            raise err from exc

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        try:
            status = await self._raw.execute(sql, *params)
        except Exception as exc:
            err = self._error(exc)
            if err is None:
                raise
            raise err from exc
        return _status_count(status)

    @translate_errors
    async def execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None:
        if params_seq:
            await self._raw.executemany(sql, params_seq)  # atomic since asyncpg 0.22

    @translate_errors
    async def control(self, sql: str) -> None:
        if sql == "ROLLBACK" and not self._raw.is_in_transaction():
            return
        await self._raw.execute(sql)

    async def iterate(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[list[Row], None]:
        # A server-side cursor lives in a transaction: the caller's, or one of its own.
        own = not self._raw.is_in_transaction()
        if own:
            await self.control("BEGIN")
        try:
            try:
                cursor = await self._raw.cursor(sql, *params)
            except Exception as exc:
                raise self._translated(exc) from exc
            while True:
                try:
                    records = await cursor.fetch(chunk_size)
                except Exception as exc:
                    raise self._translated(exc) from exc
                if records:
                    yield records  # Records: see run_fetch
                if len(records) < chunk_size:
                    break
        except BaseException:
            if own:
                await self.control("ROLLBACK")
            raise
        if own:
            await self.control("COMMIT")

    def _translated(self, exc: Exception) -> Exception:
        if isinstance(exc, CovetError):
            return exc
        return self.translate_error(exc) or exc

    @translate_errors
    async def fetch_rolled_back(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Run ``sql`` (EXPLAIN ANALYZE) and undo its effects: a savepoint or a transaction."""
        raw = self._raw
        nested = raw.is_in_transaction()
        await raw.execute('SAVEPOINT "covet_explain"' if nested else "BEGIN")
        try:
            return [tuple(r) for r in await raw.fetch(sql, *params)]
        finally:
            if nested:
                await raw.execute('ROLLBACK TO SAVEPOINT "covet_explain"')
                await raw.execute('RELEASE SAVEPOINT "covet_explain"')
            else:
                await raw.execute("ROLLBACK")


# the pool -----------------------------------------------------------------------------------------
_SLOT = object()  # handed to a waiter: a place is free, open a connection in it
_CLOSED = object()  # handed to a waiter: the pool was closed


def _kill(raw: Any) -> None:
    """Terminate an asyncpg connection now, even if its event loop is already closed."""
    try:
        raw.terminate()
        return
    except RuntimeError:  # its loop was closed without shutting its tasks down
        pass
    # Nothing can run on the old loop any more: close the socket directly rather than leak it
    # until garbage collection (and warn about an unclosed transport there).
    transport = getattr(raw, "_transport", None)
    sock = getattr(transport, "_sock", None)
    if transport is not None and sock is not None:
        sock.close()
        transport._sock = None


class _PGPool:
    """Connections of one event loop, lent one at a time (see the module docstring).

    Every open connection is in ``_idle`` (a stack: the most recently returned on top) or in
    ``_in_use``; ``_opening`` counts connections being opened, and places reserved for waiters
    that were told to open one (``_SLOT``). Waiters are futures in FIFO order.
    """

    def __init__(self, adapter: PostgreSQLAdapter, loop: asyncio.AbstractEventLoop) -> None:
        config = adapter.config
        self._adapter = adapter
        self.loop = loop
        self.min_size = config.pool_min
        self.max_size = config.pool_max
        self._timeout = adapter._acquire_timeout
        options = {k: v for k, v in config.options.items() if k not in _OWN_OPTIONS}
        self._factory: Callable[..., Awaitable[Any]] = options.get("connect") or asyncpg.connect
        self._init: Callable[[Any], Awaitable[Any]] | None = options.get("init")
        self._setup: Callable[[Any], Awaitable[Any]] | None = options.get("setup")
        self._reset: Callable[[Any], Awaitable[Any]] | None = options.get("reset")
        self._max_queries = _number(options, "max_queries", _DEFAULT_MAX_QUERIES, int, 1)
        self._lifetime = _number(
            options, "max_inactive_connection_lifetime", _DEFAULT_INACTIVE_LIFETIME, float, 0
        )
        init_size = _number(options, "init_size", self.min_size, int, 0)
        if not self.min_size <= init_size <= self.max_size:
            raise ConfigurationError(
                f"init_size={init_size} must lie between pool_min={self.min_size} and "
                f"pool_max={self.max_size}"
            )
        self._init_size = init_size
        self._connect_kwargs = {k: v for k, v in options.items() if k not in _POOL_OPTIONS}
        # A bulk INSERT of 1,000 rows is tens of kB of SQL, over asyncpg's 15 kB limit for its
        # statement cache: it would be parsed and planned again for every batch.
        self._connect_kwargs.setdefault("max_cacheable_statement_size", _MAX_CACHEABLE_STATEMENT)
        self._idle: list[PostgreSQLConnection] = []
        self._in_use: set[PostgreSQLConnection] = set()
        self._opening = 0
        self._waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._drained: asyncio.Future[None] | None = None
        self.closed = False
        self._tidy_always = self._reset is not None  # every release awaits (reset hook, closed)

    @property
    def sweep_interval(self) -> float | None:
        """Seconds between closing idle connections past their lifetime (None: never)."""
        return self._lifetime / 2 if self._lifetime > 0 else None

    def stats(self) -> PoolStats:
        idle = len(self._idle)
        size = idle + len(self._in_use) + self._opening
        return PoolStats(size, idle, size - idle, self.max_size)

    # opening ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the first ``init_size`` connections (the first alone, so errors show early)."""
        try:
            if self._init_size:
                self._lend(await self._open())
            more = self._init_size - 1
            if more > 0:
                opened = await asyncio.gather(
                    *(self._open() for _ in range(more)), return_exceptions=True
                )
                for conn in opened:
                    if isinstance(conn, PostgreSQLConnection):
                        self._lend(conn)
                for conn in opened:
                    if isinstance(conn, BaseException):
                        raise conn
        except BaseException:
            self.terminate()
            raise

    async def _open(self, reserved: bool = False) -> PostgreSQLConnection:
        """Open a connection and lend it (``reserved``: a waiter's place, already counted)."""
        if not reserved:
            self._opening += 1
        try:
            conn = await self._connect()
        except BaseException:
            self._opening -= 1
            self._free_place()  # a waiter may try (and report its own error)
            raise
        self._opening -= 1
        if self.closed:
            _kill(conn._raw)
            raise self._closed_error()
        self._in_use.add(conn)
        return conn

    async def _connect(self) -> PostgreSQLConnection:
        adapter = self._adapter
        config = adapter.config
        try:
            raw = await self._factory(config.dsn(), **self._connect_kwargs)
        except Exception as exc:
            raise _connect_error(config, exc) from exc
        try:
            await install_codecs(raw)
            if self._init is not None:
                await self._init(raw)
        except BaseException as exc:
            _kill(raw)
            if isinstance(exc, Exception):
                raise _connect_error(config, exc) from exc
            raise
        return PostgreSQLConnection(raw, self, config.scrub)

    # lending ----------------------------------------------------------------------------------
    def take(self) -> PostgreSQLConnection | None:
        """An idle connection, lent at once without awaiting; None when none is idle."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn._raw.is_closed():  # lost while idle (server restart, terminated backend)
                _kill(conn._raw)
                continue
            self._in_use.add(conn)
            return conn
        return None

    async def acquire(self) -> PostgreSQLConnection:
        if self.closed:
            raise self._closed_error()
        conn = self.take()
        if conn is None:
            conn = await self._acquire_slow()
        if self._setup is not None:
            try:
                await self._setup(conn._raw)
            except BaseException:
                self._drop(conn)
                raise
        return conn

    async def _acquire_slow(self) -> PostgreSQLConnection:
        deadline: float | None = None
        while True:
            conn = self.take()
            if conn is not None:
                return conn
            if len(self._in_use) + self._opening < self.max_size:
                return await self._open()
            if deadline is None:
                deadline = self.loop.time() + self._timeout
            got = await self._wait(deadline)
            if isinstance(got, PostgreSQLConnection):
                return got
            if got is _SLOT:
                return await self._open(reserved=True)
            raise self._closed_error()

    async def _wait(self, deadline: float) -> Any:
        waiter: asyncio.Future[Any] = self.loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._pass_on(waiter.result())  # handed over just as the wait ended
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise OperationalError(
                    f"timed out after {self._timeout:g}s waiting for a connection of "
                    f"{self._adapter.alias!r} ({self.stats()}); is a connection held elsewhere "
                    "(a transaction or an unfinished iteration in the same task)?"
                ) from None
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _pass_on(self, got: Any) -> None:
        """Give back what a waiter was handed but will not use."""
        if isinstance(got, PostgreSQLConnection):
            self._lend(got)
        elif got is _SLOT:
            self._opening -= 1
            self._free_place()

    def _lend(self, conn: PostgreSQLConnection) -> None:
        """A usable connection is free: to the first waiter, else onto the idle stack."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self._in_use.add(conn)
                waiter.set_result(conn)
                return
        self._in_use.discard(conn)
        conn.idle_since = _monotonic()
        self._idle.append(conn)

    def _free_place(self) -> None:
        """A connection left the pool: the first waiter may open one in its place."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                self._opening += 1
                waiter.set_result(_SLOT)
                return

    def _drop(self, conn: PostgreSQLConnection) -> None:
        """Close a lent connection that must not be lent again, and free its place."""
        self._in_use.discard(conn)
        _kill(conn._raw)
        self._free_place()
        self._check_drained()

    # returning --------------------------------------------------------------------------------
    def release_nowait(self, conn: PostgreSQLConnection) -> bool:
        """Take ``conn`` back without awaiting; False when :meth:`release` must tidy it first."""
        if conn not in self._in_use:  # released twice, or the pool was terminated meanwhile
            return True
        raw = conn._raw
        if self.loop is not asyncio.get_running_loop():  # a stale pool: wake nobody on it
            self._in_use.discard(conn)
            _kill(raw)
            return True
        if conn.broken or raw.is_closed():
            self._drop(conn)
            return True
        protocol = raw._protocol
        if (
            self._tidy_always
            or protocol.is_in_transaction()
            or protocol._is_cancelling()
            or protocol.queries_count >= self._max_queries
        ):
            return False
        if self._waiters:
            self._lend(conn)
        else:  # _lend's usual case, inline: this runs after every statement
            self._in_use.discard(conn)
            conn.idle_since = _monotonic()
            self._idle.append(conn)
        return True

    async def release(self, conn: PostgreSQLConnection) -> None:
        if self.release_nowait(conn):
            return
        raw = conn._raw
        if self.closed:
            self._in_use.discard(conn)
            await _close_gracefully(raw)
            self._check_drained()
            return
        try:
            async with asyncio.timeout(self._timeout):
                protocol = raw._protocol
                if protocol._is_cancelling():  # a cancelled statement: wait for the server
                    await protocol._wait_for_cancellation()
                if not raw.is_closed() and raw.is_in_transaction():
                    await raw.execute("ROLLBACK")
                if not raw.is_closed() and self._reset is not None:
                    await self._reset(raw)
                if not raw.is_closed() and raw._protocol.queries_count >= self._max_queries:
                    self._in_use.discard(conn)
                    await _close_gracefully(raw)
                    self._free_place()
                    self._check_drained()
                    return
        except BaseException as exc:
            self._drop(conn)
            if not isinstance(exc, Exception):
                raise
            log.warning("a connection of %r could not be reset and was closed: %s",
                        self._adapter.alias, exc)
            return
        if raw.is_closed() or self.closed or conn not in self._in_use:
            if conn in self._in_use:
                self._drop(conn)
            return
        self._lend(conn)

    # closing ----------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Close idle connections that were idle past their lifetime, down to ``pool_min``."""
        if self._lifetime <= 0 or self.closed:
            return
        limit = _monotonic() - self._lifetime
        size = self.stats().size
        keep: list[PostgreSQLConnection] = []
        for conn in self._idle:  # oldest first
            if conn._raw.is_closed() or (size > self.min_size and conn.idle_since <= limit):
                _kill(conn._raw)
                size -= 1
            else:
                keep.append(conn)
        self._idle = keep

    def _check_drained(self) -> None:
        if self._drained is not None and not self._in_use and not self._drained.done():
            self._drained.set_result(None)

    def _closed_error(self) -> OperationalError:
        return OperationalError(f"the connection pool of {self._adapter.alias!r} was closed")

    def _wake_all_closed(self) -> None:
        waiters, self._waiters = self._waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done() and not waiter.get_loop().is_closed():
                waiter.set_result(_CLOSED)

    async def close(self) -> None:
        """Close idle connections now and lent ones when they come back (at most 5 s)."""
        self.closed = self._tidy_always = True
        self._wake_all_closed()
        try:
            idle, self._idle = self._idle, []
            if idle:
                await asyncio.gather(*(_close_gracefully(c._raw) for c in idle))
            if self._in_use:
                self._drained = self.loop.create_future()
                await asyncio.wait([self._drained], timeout=_CLOSE_TIMEOUT)
        finally:
            self.terminate()

    def terminate(self) -> None:
        """Close every connection now, idle or lent (for loops that are gone or going)."""
        self.closed = self._tidy_always = True
        self._wake_all_closed()
        conns = [*self._idle, *self._in_use]
        self._idle, self._in_use = [], set()
        for conn in conns:
            _kill(conn._raw)


def _number(options: dict[str, Any], name: str, default: Any, kind: type, low: float) -> Any:
    value = options.get(name, default)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < low:
        raise ConfigurationError(f"option {name} must be a number >= {low:g}, not {value!r}")
    return number


def _connect_error(config: DatabaseConfig, exc: Exception) -> DatabaseError:
    err = translate_pg_error(exc, config.scrub) or OperationalError(config.scrub(str(exc)))
    return type(err)(f"cannot connect to {config.url}: {err}")


async def _close_gracefully(raw: Any) -> None:
    with contextlib.suppress(Exception):  # close() aborts the connection when it fails
        await raw.close(timeout=_CLOSE_TIMEOUT)


class PostgreSQLAdapter(Adapter):
    """PostgreSQL through asyncpg connections in a pool: ``$1`` placeholders at both API levels."""

    dialect = "postgresql"
    capabilities = Capabilities(
        dialect="postgresql",
        returning=True,
        arrays=True,
        native_json=True,
        native_uuid=True,
        native_decimal=True,
        native_datetime=True,
        native_bool=True,
        server_side_cursors=True,
        ilike=True,
        regex=True,
        distinct_on=True,
        select_for_update=True,
        upsert=True,
        window_functions=True,
        transactional_ddl=True,
        explain_format="json",
        max_params=32767,
    )
    begin_sql = "BEGIN"
    begin_readonly_sql = "BEGIN READ ONLY"

    def __init__(self, config: DatabaseConfig) -> None:
        super().__init__(config)
        self._pool: _PGPool | None = None
        self._guard: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._acquire_timeout = float(
            config.options.get("acquire_timeout", _DEFAULT_ACQUIRE_TIMEOUT)
        )

    # pool lifecycle -------------------------------------------------------------------------------
    async def _ensure_pool(self) -> _PGPool:
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is not None and pool.loop is loop:
            return pool
        if self._lock_loop is not loop or self._lock is None:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            pool = self._pool
            if pool is not None and pool.loop is loop:
                return pool
            if pool is not None:  # built on another (finished) event loop
                self._abandon(pool, self._guard)
                self._pool = self._guard = None
            pool = _PGPool(self, loop)
            await pool.start()
            self._pool = pool
            self._guard = loop.create_task(self._guardian(pool), name=f"covet-pool:{self.alias}")
            return pool

    async def _guardian(self, pool: _PGPool) -> None:
        """Close idle connections past their lifetime; terminate the pool when the loop ends.

        The loop's shutdown (``asyncio.run``, ``asyncio.Runner``) cancels this task.
        """
        try:
            interval = pool.sweep_interval
            if interval is None:
                await asyncio.get_running_loop().create_future()
            else:
                while True:
                    await asyncio.sleep(interval)
                    pool.sweep()
        except asyncio.CancelledError:
            if self._pool is not pool:  # close() or a rebuild already took care of it
                return
            self._pool = self._guard = None
            self._abandon(pool)
            for _ in range(3):  # let the transports finish closing on this loop
                await asyncio.sleep(0)

    @staticmethod
    def _abandon(pool: _PGPool, guard: asyncio.Task[None] | None = None) -> None:
        """Drop a pool whose event loop is gone (or going): close its sockets now."""
        pool.terminate()
        if guard is not None and guard.get_loop().is_closed():
            # A loop closed by hand: its guard can never run again; do not warn about it.
            with contextlib.suppress(AttributeError):
                guard._log_destroy_pending = False  # type: ignore[attr-defined]

    async def connect(self) -> None:
        pool = self._pool
        if pool is None or pool.loop is not asyncio.get_running_loop():
            await self._ensure_pool()

    async def close(self) -> None:
        pool, guard = self._pool, self._guard
        self._pool = self._guard = None
        if pool is None:
            return
        loop = asyncio.get_running_loop()
        if guard is not None and not guard.done() and pool.loop is loop:
            guard.cancel()
        if pool.loop is not loop:
            self._abandon(pool, guard)
            return
        await pool.close()

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(0, 0, 0, self.config.pool_max)
        return pool.stats()

    async def acquire(self) -> PostgreSQLConnection:
        pool = self._pool
        if pool is None or pool.loop is not asyncio.get_running_loop():
            pool = await self._ensure_pool()
        return await pool.acquire()

    async def release(self, connection: Connection) -> None:
        assert isinstance(connection, PostgreSQLConnection)
        pool = connection.pool
        if not pool.release_nowait(connection):
            await pool.release(connection)

    # ORM API: a direct path for the usual statement ---------------------------------------------
    # Adapter._dispatch lends and takes back through _acquire_nowait/_release_nowait when it
    # can. Outside a transaction, with no listener, an idle connection at hand and no setup hook,
    # run_fetch and run_execute go further: take a connection, run the statement, give it back,
    # exactly what Adapter._run/_dispatch + PostgreSQLConnection.fetch/execute do then, without
    # their coroutine frames and closures; anything else takes the general path.
    def _acquire_nowait(self) -> PostgreSQLConnection | None:
        """An idle connection of this loop's pool, lent without awaiting (no ``setup`` hook)."""
        pool = self._pool
        if pool is None or pool._setup is not None or pool.loop is not asyncio.get_running_loop():
            return None
        return pool.take()

    def _release_nowait(self, connection: Connection) -> bool:
        assert isinstance(connection, PostgreSQLConnection)
        return connection.pool.release_nowait(connection)

    def _direct(self) -> tuple[_PGPool, PostgreSQLConnection] | None:
        if self._listeners or _connections.current_transaction(self.alias) is not None:
            return None
        conn = self._acquire_nowait()
        return None if conn is None else (conn.pool, conn)

    async def run_fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; the rows as asyncpg Records (tuple-like)."""
        direct = self._direct()
        if direct is None:
            return await super().run_fetch(sql, params)
        pool, conn = direct
        try:
            records = await conn._raw.fetch(sql, *params)
        except BaseException as exc:
            await release_quietly(self, conn)
            err = conn._error(exc) if isinstance(exc, Exception) else None
            if err is None:
                raise
            raise err from exc
        if not pool.release_nowait(conn):
            await pool.release(conn)
        # asyncpg Records, not copied into tuples: they index, slice, compare and hash like
        # tuples, and the row decoder reads them directly.
        return records

    async def run_execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows affected (rows returned for a query)."""
        direct = self._direct()
        if direct is None:
            return await super().run_execute(sql, params)
        pool, conn = direct
        try:
            status = await conn._raw.execute(sql, *params)
        except BaseException as exc:
            await release_quietly(self, conn)
            err = conn._error(exc) if isinstance(exc, Exception) else None
            if err is None:
                raise
            raise err from exc
        if not pool.release_nowait(conn):
            await pool.release(conn)
        return _status_count(status)

    # raw API --------------------------------------------------------------------------------------
    async def explain(
        self, sql: str, params: Sequence[Any] | None = None, analyze: bool = False
    ) -> list[dict[str, Any]]:
        """The JSON plan (``EXPLAIN (FORMAT JSON)``): a list with one ``{"Plan": ...}`` dict.

        With ``analyze=True`` the statement really runs (``EXPLAIN ANALYZE``) inside a savepoint
        or transaction that is rolled back afterwards, so a write leaves no trace.
        """
        sql, values = self.prepare_raw(sql, params)
        plan_sql = f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) {sql}"

        async def op(conn: Connection) -> list[Row]:
            assert isinstance(conn, PostgreSQLConnection)
            if analyze:
                return await conn.fetch_rolled_back(plan_sql, values)
            return await conn.fetch(plan_sql, values)

        rows = await self._run("explain", plan_sql, values, op)
        plan = rows[0][0] if rows else "[]"
        result: list[dict[str, Any]] = json.loads(plan) if isinstance(plan, str) else plan
        return result
