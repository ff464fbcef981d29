"""The PostgreSQL adapter: an asyncpg pool per alias and event loop.

Barrier: the only module (with ``sqlite.py``) that touches a driver; it speaks asyncpg and hands
back plain tuples and CovetPy errors (by SQLSTATE class: 23 → IntegrityError, 22 → DataError,
42/0A → ProgrammingError, the rest → OperationalError).

The pool belongs to the event loop that built it. When the running loop changes (a script calling
``asyncio.run`` twice, a new notebook kernel loop) the adapter builds a new pool instead of failing
with "attached to a different loop". A small guard task on the pool's loop terminates the pool when
that loop shuts down (``asyncio.run``/``asyncio.Runner`` cancel it), so no socket outlives its loop.

Values are passed to asyncpg as they are (the ORM converts them; JSON arrives as ``str``). The
connection reset on release is skipped (transactions are rolled back by the adapter), saving a
round trip per statement; session settings changed with ``SET`` persist on that pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import inspect
import json
import struct
import uuid
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.exceptions import _base as _asyncpg_base

from covet.database.adapters.base import (
    Adapter,
    Capabilities,
    Connection,
    PoolStats,
    Row,
    translate_errors,
)
from covet.database.exceptions import (
    CovetError,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

if TYPE_CHECKING:
    from covet.database.config import DatabaseConfig

__all__ = ["PostgreSQLAdapter", "PostgreSQLConnection", "translate_pg_error"]

_DEFAULT_ACQUIRE_TIMEOUT = 30.0
_CLOSE_TIMEOUT = 5.0
_OWN_OPTIONS = {"acquire_timeout"}
_HAS_RESET = "reset" in inspect.signature(asyncpg.create_pool).parameters
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
    """One pooled asyncpg connection."""

    __slots__ = ("_raw", "pool", "_scrub", "broken")

    def __init__(self, raw: Any, pool: asyncpg.Pool, scrub: Callable[[str], str]) -> None:
        self._raw = raw
        self.pool = pool
        self._scrub = scrub
        self.broken = False

    def translate_error(self, exc: Exception) -> DatabaseError | None:
        return translate_pg_error(exc, self._scrub)

    @property
    def in_transaction(self) -> bool:
        return bool(self._raw.is_in_transaction())

    @translate_errors
    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return [tuple(r) for r in await self._raw.fetch(sql, *params)]

    @translate_errors
    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]:
        raw = self._raw
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

    @translate_errors
    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        return _status_count(await self._raw.execute(sql, *params))

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
                    yield [tuple(r) for r in records]
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


# Exact Python types on the way in and out (pgproto codecs, binary format). asyncpg itself turns
# date.max/datetime.max into 'infinity' (and back), and returns its own UUID subclass.
_I4, _I8 = struct.Struct("!i"), struct.Struct("!q")
_EPOCH_DATE = _dt.date(2000, 1, 1)
_EPOCH = _dt.datetime(2000, 1, 1)
_EPOCH_UTC = _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
_INFINITY_4, _INFINITY_8 = 2**31 - 1, 2**63 - 1


def _micros(delta: _dt.timedelta) -> int:
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _encode_date(value: _dt.date) -> bytes:
    if isinstance(value, _dt.datetime):
        value = value.date()
    return _I4.pack((value - _EPOCH_DATE).days)


def _decode_date(data: bytes) -> _dt.date:
    days = _I4.unpack(data)[0]
    if days in (_INFINITY_4, -_INFINITY_4 - 1):  # 'infinity' written by other clients
        return _dt.date.max if days > 0 else _dt.date.min
    return _EPOCH_DATE + _dt.timedelta(days=days)


def _encode_timestamp(value: _dt.datetime) -> bytes:
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return _I8.pack(_micros(value - _EPOCH))


def _decode_timestamp(data: bytes) -> _dt.datetime:
    micros = _I8.unpack(data)[0]
    if micros in (_INFINITY_8, -_INFINITY_8 - 1):
        return _dt.datetime.max if micros > 0 else _dt.datetime.min
    return _EPOCH + _dt.timedelta(microseconds=micros)


def _encode_timestamptz(value: _dt.datetime) -> bytes:
    # A naive value is taken as local time, as asyncpg does.
    return _I8.pack(_micros(value.astimezone(_dt.timezone.utc) - _EPOCH_UTC))


def _decode_timestamptz(data: bytes) -> _dt.datetime:
    micros = _I8.unpack(data)[0]
    if micros in (_INFINITY_8, -_INFINITY_8 - 1):
        edge = _dt.datetime.max if micros > 0 else _dt.datetime.min
        return edge.replace(tzinfo=_dt.timezone.utc)
    return _EPOCH_UTC + _dt.timedelta(microseconds=micros)


def _encode_uuid(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 16:
        return value
    return uuid.UUID(str(value)).bytes


def _decode_uuid(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


_CODECS: tuple[tuple[str, Callable[[Any], bytes], Callable[[bytes], Any]], ...] = (
    ("date", _encode_date, _decode_date),
    ("timestamp", _encode_timestamp, _decode_timestamp),
    ("timestamptz", _encode_timestamptz, _decode_timestamptz),
    ("uuid", _encode_uuid, _decode_uuid),
)


async def install_codecs(connection: Any) -> None:
    """Make ``connection`` return exact ``uuid.UUID`` and keep ``date.max`` a date."""
    for name, encoder, decoder in _CODECS:
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format="binary"
        )


async def _no_reset(connection: Any) -> None:
    """Skip asyncpg's per-release reset query; open transactions are still rolled back."""


class PostgreSQLAdapter(Adapter):
    """PostgreSQL through an asyncpg pool: ``$1`` placeholders at both API levels."""

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
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: asyncio.Task[None] | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._acquire_timeout = float(
            config.options.get("acquire_timeout", _DEFAULT_ACQUIRE_TIMEOUT)
        )

    # pool lifecycle -------------------------------------------------------------------------------
    async def _ensure_pool(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        pool = self._pool
        if pool is not None and self._loop is loop:
            return pool
        if self._lock_loop is not loop or self._lock is None:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            if self._pool is not None and self._loop is loop:
                return self._pool
            if self._pool is not None:  # built on another (finished) event loop
                self._abandon(self._pool, self._guard)
                self._pool = self._loop = self._guard = None
            pool = await self._create_pool()
            self._pool, self._loop = pool, loop
            self._guard = loop.create_task(self._guardian(pool), name=f"covet-pool:{self.alias}")
            return pool

    async def _create_pool(self) -> asyncpg.Pool:
        kwargs = {k: v for k, v in self.config.options.items() if k not in _OWN_OPTIONS}
        if _HAS_RESET:
            kwargs.setdefault("reset", _no_reset)
        user_init = kwargs.pop("init", None)

        async def init(connection: Any) -> None:
            await install_codecs(connection)
            if user_init is not None:
                await user_init(connection)

        kwargs["init"] = init
        try:
            pool = await asyncpg.create_pool(
                dsn=self.config.dsn(),
                min_size=self.config.pool_min,
                max_size=self.config.pool_max,
                **kwargs,
            )
        except Exception as exc:
            err = translate_pg_error(exc, self.config.scrub) or OperationalError(
                self.config.scrub(str(exc))
            )
            raise type(err)(f"cannot connect to {self.config.url}: {err}") from exc
        assert pool is not None
        return pool

    async def _guardian(self, pool: asyncpg.Pool) -> None:
        """Wait forever; when the loop shuts down (tasks cancelled), terminate the pool."""
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self._pool is not pool:  # close() or a rebuild already took care of it
                return
            self._pool = self._loop = self._guard = None
            self._abandon(pool)
            for _ in range(3):  # let the transports finish closing on this loop
                await asyncio.sleep(0)

    @staticmethod
    def _abandon(pool: asyncpg.Pool, guard: asyncio.Task[None] | None = None) -> None:
        """Drop a pool whose event loop is gone (or going): close its sockets now."""
        try:
            pool.terminate()
            return
        except RuntimeError:  # its loop was closed without shutting its tasks down
            pass
        # Last resort, for loops closed by hand: nothing can run on the old loop any more, so
        # close the sockets directly rather than leak them until garbage collection.
        for holder in getattr(pool, "_holders", ()):
            transport = getattr(getattr(holder, "_con", None), "_transport", None)
            sock = getattr(transport, "_sock", None)
            if transport is not None and sock is not None:
                sock.close()
                transport._sock = None
        if guard is not None:
            with contextlib.suppress(AttributeError):
                guard._log_destroy_pending = False  # type: ignore[attr-defined]

    async def connect(self) -> None:
        await self._ensure_pool()

    async def close(self) -> None:
        pool, loop, guard = self._pool, self._loop, self._guard
        self._pool = self._loop = self._guard = None
        if guard is not None and not guard.done() and loop is asyncio.get_running_loop():
            guard.cancel()
        if pool is None:
            return
        if loop is not asyncio.get_running_loop():
            self._abandon(pool, guard)
            return
        try:
            await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT)
        except Exception:  # includes the timeout
            pool.terminate()

    def pool_stats(self) -> PoolStats:
        pool = self._pool
        if pool is None:
            return PoolStats(0, 0, 0, self.config.pool_max)
        size, idle = pool.get_size(), pool.get_idle_size()
        return PoolStats(size, idle, size - idle, pool.get_max_size())

    async def acquire(self) -> PostgreSQLConnection:
        pool = await self._ensure_pool()
        try:
            raw = await pool.acquire(timeout=self._acquire_timeout)
        except asyncio.TimeoutError:
            raise OperationalError(
                f"timed out after {self._acquire_timeout:g}s waiting for a connection of "
                f"{self.alias!r} ({self.pool_stats()}); is a connection held elsewhere?"
            ) from None
        except Exception as exc:
            err = translate_pg_error(exc, self.config.scrub)
            if err is None:
                raise
            raise err from exc
        return PostgreSQLConnection(raw, pool, self.config.scrub)

    async def release(self, connection: Connection) -> None:
        assert isinstance(connection, PostgreSQLConnection)
        if connection.broken:  # a failed rollback: do not lend this session out again
            connection._raw.terminate()
        try:
            await connection.pool.release(connection._raw)
        except Exception:
            if connection.pool is self._pool:
                raise
            # The pool was rebuilt or closed meanwhile: the connection is gone with it.

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
