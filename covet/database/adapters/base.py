"""The small adapter interface every database driver implements.

Barrier: an adapter knows its driver and nothing above it. It takes SQL text and a list of
parameter values, runs them, and returns plain rows (tuples). It translates driver errors into
``covet.database.exceptions`` at its edge (:func:`translate_errors`). Nothing above
``covet.database.adapters`` imports aiosqlite or asyncpg.

Two levels of API:

* the *public raw API* (``execute``, ``fetch``, ``fetch_one``, ``fetch_value``, ``explain``) takes
  the guide's ``$1, $2`` placeholders on every backend (SQLite translates them outside string
  literals, quoted identifiers and comments) and common Python values;
* the *ORM API* (``run_*``) takes SQL already compiled for this adapter's dialect (``?1`` on SQLite,
  ``$1`` on PostgreSQL) and values already converted for it; the QuerySet machinery calls it.

Every statement runs on the connection of the current task's transaction on this adapter's alias
when there is one (``covet.database.connections.current_transaction``), one statement at a time
under the transaction's lock; otherwise on a pooled connection in autocommit mode. Each statement
is reported to the registered listeners (the shell's query ledger) as a :class:`QueryEvent`.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, TypeVar

from covet.database import connections as _connections
from covet.database.exceptions import CovetError, DatabaseError

if TYPE_CHECKING:
    from covet.database.config import DatabaseConfig
    from covet.database.connections import TransactionState

__all__ = [
    "Adapter",
    "Capabilities",
    "Connection",
    "Listener",
    "PoolStats",
    "QueryEvent",
    "Row",
    "release_quietly",
    "shielded",
    "translate_errors",
]

Row = tuple[Any, ...]
"""A result row: a tuple; on PostgreSQL an asyncpg ``Record``, which indexes, slices, compares
and hashes like the tuple of its values (the row decoder reads it without a copy)."""
P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound="Connection")
log = logging.getLogger("covet.database")
_CANCELLED = "one of its statements was cancelled while it ran"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can do; tests and the ORM branch on these, never on vendor names."""

    dialect: str
    returning: bool = True
    arrays: bool = False
    native_json: bool = False
    native_uuid: bool = False
    native_decimal: bool = False
    native_datetime: bool = False
    native_bool: bool = False
    server_side_cursors: bool = False
    ilike: bool = False
    regex: bool = True
    distinct_on: bool = False
    select_for_update: bool = False
    upsert: bool = True
    window_functions: bool = True
    transactional_ddl: bool = True
    savepoints: bool = True
    explain_format: str = "text"
    max_params: int = 32766

    def has(self, name: str) -> bool:
        """True when the boolean capability ``name`` is supported.

        Raises:
            AttributeError: ``name`` is not a capability (a typo must not silently skip a test).
        """
        if name not in _CAPABILITY_NAMES:
            raise AttributeError(
                f"unknown capability {name!r}; known: {', '.join(sorted(_CAPABILITY_NAMES))}"
            )
        return bool(getattr(self, name))


_CAPABILITY_NAMES = frozenset(f.name for f in fields(Capabilities)) - {
    "dialect", "explain_format", "max_params",
}


@dataclass(frozen=True, slots=True)
class QueryEvent:
    """One statement as it ran: what the shell's ledger and ``%covet_log`` see.

    Attributes:
        alias: the adapter's alias.
        sql: the SQL text as sent to the driver.
        params: the bound values (for ``execute_many``, one tuple per row).
        rows: rows returned or affected (for ``execute_many``, the number of parameter rows).
        duration: seconds, wall clock.
        error: the translated error message when the statement failed.
        kind: ``fetch``, ``execute``, ``execute_many``, ``iterate``, ``explain`` or ``control``.
        in_transaction: the statement ran inside ``transaction()``.
    """

    alias: str
    sql: str
    params: tuple[Any, ...]
    rows: int
    duration: float
    error: str | None = None
    kind: str = "execute"
    in_transaction: bool = False


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A pool's occupancy: connections open, idle, lent out, and the most it may open."""

    size: int
    idle: int
    in_use: int
    max: int


Listener = Callable[[QueryEvent], object]


def translate_errors(
    fn: Callable[Concatenate[C, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[C, P], Coroutine[Any, Any, T]]:
    """Decorate a driver-facing coroutine method so driver errors leave as CovetPy errors.

    The instance's ``translate_error(exc)`` maps a driver exception to a
    :class:`~covet.database.exceptions.DatabaseError` (or None to let it through unchanged);
    the original is chained (``raise ... from exc``).
    """

    @functools.wraps(fn)
    async def wrapper(self: C, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(self, *args, **kwargs)
        except CovetError:
            raise
        except Exception as exc:
            err = self.translate_error(exc)
            if err is None:
                raise
            raise err from exc

    return wrapper


class Connection(abc.ABC):
    """One driver connection, held by a transaction or borrowed for one statement.

    SQL and values are in the dialect's own style. Every coroutine translates driver errors.
    """

    broken: bool = False

    @abc.abstractmethod
    def translate_error(self, exc: Exception) -> DatabaseError | None:
        """Map a driver exception to a CovetPy error (password masked), or None."""

    @abc.abstractmethod
    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]: ...

    @abc.abstractmethod
    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]: ...

    @abc.abstractmethod
    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        """Run a statement; rows affected, or rows returned when it returns rows."""

    @abc.abstractmethod
    async def execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def iterate(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[list[Row], None]:
        """Stream rows in chunks (opens its own transaction where the driver needs one)."""

    @abc.abstractmethod
    async def control(self, sql: str) -> None:
        """Run a transaction-control statement (BEGIN, COMMIT, SAVEPOINT ...)."""

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool: ...


class Adapter(abc.ABC):
    """A database behind one alias: its pool, its dialect, its capabilities.

    Attributes:
        alias: the alias it is registered under.
        dialect: ``'sqlite'`` or ``'postgresql'``.
        capabilities: the frozen :class:`Capabilities` record.
        config: the :class:`~covet.database.config.DatabaseConfig` (password masked in repr).
    """

    dialect: ClassVar[str]
    capabilities: Capabilities
    iterate_eagerly: bool = False
    begin_sql: ClassVar[str] = "BEGIN"
    begin_readonly_sql: ClassVar[str] = "BEGIN"

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.alias = config.alias
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} alias={self.alias!r} {self.config.url}>"

    # lifecycle ------------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the pool (idempotent); rebuilds it when the running event loop changed."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close every connection of the pool. The adapter reopens lazily if used again."""

    @abc.abstractmethod
    def pool_stats(self) -> PoolStats:
        """Pool occupancy, so that leaked connections are visible."""

    @abc.abstractmethod
    async def acquire(self) -> Connection:
        """Borrow a connection from the pool (on the running loop). Pair with :meth:`release`."""

    @abc.abstractmethod
    async def release(self, connection: Connection) -> None:
        """Give a borrowed connection back (it is rolled back/reset before reuse)."""

    # listeners (query ledger) -----------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(QueryEvent)`` after every statement this adapter runs."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn``; unknown listeners are ignored."""
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _emit(
        self,
        kind: str,
        sql: str,
        params: Sequence[Any],
        rows: int,
        started: float,
        error: BaseException | None,
        in_tx: bool,
    ) -> None:
        event = QueryEvent(
            self.alias,
            sql,
            tuple(tuple(p) for p in params) if kind == "execute_many" else tuple(params),
            rows,
            time.perf_counter() - started,
            None if error is None else (str(error) or type(error).__name__),
            kind,
            in_tx,
        )
        for fn in list(self._listeners):
            try:
                fn(event)
            except Exception:  # a broken listener must not break the query
                log.exception("query listener %r failed", fn)

    # routing ------------------------------------------------------------------------------------
    def _transaction(self) -> TransactionState | None:
        state = _connections.current_transaction(self.alias)
        return state if state is not None and state.adapter is self else None

    async def _run(
        self,
        kind: str,
        sql: str,
        params: Sequence[Any],
        op: Callable[[Connection], Awaitable[T]],
    ) -> T:
        state = self._transaction()
        if not self._listeners:
            return await self._dispatch(state, op)
        started = time.perf_counter()
        try:
            result = await self._dispatch(state, op)
        except Exception as exc:
            self._emit(kind, sql, params, 0, started, exc, state is not None)
            raise
        self._emit(kind, sql, params, _rowcount(kind, result, params), started, None,
                   state is not None)
        return result

    async def _dispatch(
        self, state: TransactionState | None, op: Callable[[Connection], Awaitable[T]]
    ) -> T:
        if state is not None:
            async with state.lock:
                state.ensure_open()
                try:
                    return await op(state.connection)
                except asyncio.CancelledError:
                    state.doom(_CANCELLED)
                    raise
        conn = self._acquire_nowait() or await self.acquire()
        try:
            result = await op(conn)
        except BaseException:
            # Give it back even if this task is cancelled again while the driver cleans up.
            await release_quietly(self, conn)
            raise
        if not self._release_nowait(conn):
            await self.release(conn)
        return result

    def _acquire_nowait(self) -> Connection | None:
        """An idle pooled connection that is ready as it is, without awaiting; None sends
        :meth:`_dispatch` to :meth:`acquire`. Adapters whose pool can tell override it."""
        return None

    def _release_nowait(self, connection: Connection) -> bool:
        """Give ``connection`` back without awaiting when nothing needs doing; False sends
        :meth:`_dispatch` to :meth:`release`."""
        return False

    # ORM API: SQL in the dialect's own numbered style, values already converted ---------------
    async def run_fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run a query; the rows as tuples."""
        return await self._run("fetch", sql, params, lambda c: c.fetch(sql, params))

    async def run_fetch_columns(
        self, sql: str, params: Sequence[Any] = ()
    ) -> tuple[list[str], list[Row]]:
        """Run a query; the column names and the rows as tuples."""
        return await self._run(
            "fetch", sql, params, lambda c: c.fetch_columns(sql, params)
        )

    async def run_execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows affected (rows returned for a query)."""
        return await self._run("execute", sql, params, lambda c: c.execute(sql, params))

    async def run_execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""
        rows = params_seq if isinstance(params_seq, (list, tuple)) else list(params_seq)
        await self._run("execute_many", sql, rows, lambda c: c.execute_many(sql, rows))

    async def run_iterate(
        self, sql: str, params: Sequence[Any] = (), chunk_size: int = 500
    ) -> AsyncGenerator[list[Row], None]:
        """Stream a query's rows in chunks of at most ``chunk_size``.

        Inside a transaction the chunks are fetched on its connection (statements of other
        tasks may run between chunks); outside one a pooled connection is held until the
        iteration ends or the generator is closed. Close it explicitly when stopping early
        (``async with contextlib.aclosing(adapter.run_iterate(...)) as chunks:``); otherwise
        the connection comes back only when the event loop finalizes the generator.
        """
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        state = self._transaction()
        started = time.perf_counter()
        total = 0
        error: BaseException | None = None
        try:
            if state is None and self.iterate_eagerly:
                # One shared connection (SQLite :memory:): holding it for the iteration would
                # block every statement issued from the loop body.
                rows = await self._dispatch(None, lambda c: c.fetch(sql, params))
                for start in range(0, len(rows), chunk_size):
                    total += len(rows[start:start + chunk_size])
                    yield rows[start:start + chunk_size]
            elif state is not None:
                chunks = state.connection.iterate(sql, params, chunk_size)
                try:
                    while True:
                        async with state.lock:
                            state.ensure_open()
                            try:
                                chunk = await anext(chunks, None)
                            except asyncio.CancelledError:
                                state.doom(_CANCELLED)
                                raise
                        if chunk is None:
                            break
                        total += len(chunk)
                        yield chunk
                finally:
                    async with state.lock:
                        await chunks.aclose()
            else:
                conn = await self.acquire()
                chunks = conn.iterate(sql, params, chunk_size)
                try:
                    async for chunk in chunks:
                        total += len(chunk)
                        yield chunk
                finally:
                    try:
                        await shielded(chunks.aclose())
                    finally:
                        await release_quietly(self, conn)
        except Exception as exc:
            error = exc
            raise
        finally:
            if self._listeners:
                self._emit("iterate", sql, params, total, started, error, state is not None)

    # public raw API: the guide's $1 placeholders on every backend -------------------------------
    def prepare_raw(self, sql: str, params: Sequence[Any] | None) -> tuple[str, Sequence[Any]]:
        """Turn raw-API SQL and values into this dialect's (identity unless overridden)."""
        return sql, () if params is None else params

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement with ``$1`` placeholders.

        Returns:
            The number of rows affected, or of rows returned for a query.
        """
        sql, values = self.prepare_raw(sql, params)
        return await self.run_execute(sql, values)

    async def fetch(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Run a query with ``$1`` placeholders; every row as a dict keyed by column name."""
        sql, values = self.prepare_raw(sql, params)
        cols, rows = await self.run_fetch_columns(sql, values)
        return [dict(zip(cols, row)) for row in rows]

    async def fetch_one(
        self, sql: str, params: Sequence[Any] | None = None
    ) -> dict[str, Any] | None:
        """The first row as a dict, or None when the query returns no row."""
        sql, values = self.prepare_raw(sql, params)
        cols, rows = await self._run(
            "fetch", sql, values, lambda c: c.fetch_columns(sql, values, 1)
        )
        return dict(zip(cols, rows[0])) if rows else None

    async def fetch_value(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The first column of the first row, or None when the query returns no row."""
        sql, values = self.prepare_raw(sql, params)
        _, rows = await self._run(
            "fetch", sql, values, lambda c: c.fetch_columns(sql, values, 1)
        )
        return rows[0][0] if rows else None

    @abc.abstractmethod
    async def explain(
        self, sql: str, params: Sequence[Any] | None = None, analyze: bool = False
    ) -> list[dict[str, Any]]:
        """The database's plan for a query (either placeholder style is accepted)."""

    # transaction primitives (used by covet.database.transaction) --------------------------------
    async def _control(self, conn: Connection, sql: str, in_tx: bool = True) -> None:
        if not self._listeners:
            await conn.control(sql)
            return
        started = time.perf_counter()
        try:
            await conn.control(sql)
        except Exception as exc:
            self._emit("control", sql, (), 0, started, exc, in_tx)
            raise
        self._emit("control", sql, (), 0, started, None, in_tx)

    async def begin(self, conn: Connection, readonly: bool = False) -> None:
        """Start a transaction (SQLite: ``BEGIN IMMEDIATE`` unless read-only)."""
        await self._control(conn, self.begin_readonly_sql if readonly else self.begin_sql)

    async def commit(self, conn: Connection) -> None:
        await self._control(conn, "COMMIT")

    async def rollback(self, conn: Connection) -> None:
        await self._control(conn, "ROLLBACK")

    async def savepoint(self, conn: Connection, name: str) -> None:
        await self._control(conn, f'SAVEPOINT "{name}"')

    async def release_savepoint(self, conn: Connection, name: str) -> None:
        await self._control(conn, f'RELEASE SAVEPOINT "{name}"')

    async def rollback_to_savepoint(self, conn: Connection, name: str) -> None:
        await self._control(conn, f'ROLLBACK TO SAVEPOINT "{name}"')

    def in_transaction(self) -> bool:
        """True when the current task runs inside ``transaction()`` on this adapter."""
        return self._transaction() is not None


def _rowcount(kind: str, result: Any, params: Sequence[Any]) -> int:
    if kind == "execute":
        return int(result)
    if kind == "execute_many":
        return len(params)
    if isinstance(result, tuple):  # fetch_columns
        return len(result[1])
    return len(result)


async def shielded(aw: Awaitable[Any]) -> None:
    """Await cleanup in its own task, so that a second cancellation cannot abandon it half-way.

    If this task is cancelled meanwhile, the cleanup still runs to the end on its own.
    """
    await asyncio.shield(asyncio.ensure_future(aw))


async def release_quietly(adapter: Adapter, conn: Connection) -> None:
    """Release ``conn`` during error handling: shielded, and never masking the first error."""
    try:
        await shielded(adapter.release(conn))
    except Exception:
        log.exception("releasing a connection of %r failed", adapter)
