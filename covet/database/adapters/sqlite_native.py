"""The default SQLite engine: the native Rust executor (``covet._covet_rs.NativeConnection``).

Barrier: like ``sqlite.py``, the only code that talks to its driver, here the Rust executor of
``rust_ext/src/sqlite.rs``. It hands back plain tuples and CovetPy errors.

Each connection is a SQLite connection with its own worker thread, through the same system
``libsqlite3`` that Python's ``sqlite3`` loads (one SQLite per process, so both engines see each
other's file locks; a build with the ``bundled-sqlite`` cargo feature has its own copy instead,
see ``rust_ext/src/sqlite.rs``). A statement is one job: the worker runs it without the GIL,
fetches every row (or the row count), takes the GIL once to build the rows as tuples and
resolves the asyncio future through ``loop.call_soon_threadsafe``. No Python runs on the worker
but that last step (aiosqlite's worker runs Python around every call, holding the GIL for it,
and plain aiosqlite needs a thread hop for each of execute, fetch and close; the reference
adapter already merges those into one). Everything else is the reference adapter's
(:class:`~covet.database.adapters.sqlite.SQLiteAdapter`, subclassed): the pool and its rebinding
when the event loop changes, ``BEGIN IMMEDIATE`` transactions, the ``$n`` translation and value
conversion of the raw API, ``EXPLAIN QUERY PLAN``, and the connection settings
(:func:`~covet.database.adapters.sqlite_support.connection_pragmas`: the same journal mode,
``synchronous``, busy timeout, foreign keys and case-sensitive LIKE). The executor registers Rust
versions of the same SQL functions and collation, and fails with the same ``sqlite3`` exception
classes, which :func:`~covet.database.adapters.sqlite_support.translate_sqlite_error` maps.
Differences: regular expressions use Rust's ``regex`` syntax (no look-around or
back-references: such a pattern is an ``OperationalError``; see ``rust_ext/src/sqlite.rs``), an
invalid pattern's message says what is wrong (Python's ``sqlite3`` only says that a user-defined
function raised), and ``covet_decimal`` reads ASCII digits only.

The fast path: ``fetch``, ``fetch_columns`` and the first chunk of ``iterate`` first offer their
query to ``try_fetch`` / ``try_cursor_open``. When the connection is idle (no job queued or
running) and the statement is a read-only query (``SELECT``/``WITH``/``VALUES`` that SQLite calls
read-only; not a whole-table ``count(*)``, which is one step SQLite cannot stop), it runs at once
on the event-loop thread, the GIL released meanwhile, and the rows come back with no future, no
thread hop and no turn of the event loop (a primary-key lookup through the adapter: 11 µs
instead of 70 on the benchmark machine, most of it SQLite's own read transaction). It
runs under a budget of 5,000 SQLite VM instructions, which holds the loop for at most about 1 ms
(the measurements are in ``rust_ext/src/sqlite/inline.rs``). A query that needs more is stopped
there (a stopped read leaves nothing behind, inside a transaction too), runs again as a job, and
its SQL text is remembered (128 per connection) so that it goes straight to the worker from then
on; so do writes (``INSERT ... RETURNING``), transaction control and ``PRAGMA``. The fast path
never waits for another connection's lock either: such a query is retried as a job, where the
busy timeout applies. A query issued while a job is still queued (say the ``cursor_close`` of
an abandoned iteration) is a job itself, so statements still run in the order they were
issued. Failures on the fast path are the same ``sqlite3`` exceptions, translated the same way.
Not bounded by the budget: a single step that does much work (a huge value, a function over
one, reading pages from a cold disk). After 32 answers in a row on the fast path, the next query
of that connection first yields to the event loop once, so that a task doing nothing but queries
cannot keep the other tasks waiting. ``NativeConnection.stats()`` counts what went where.

A cancelled job is skipped if it has not started and interrupted if it runs; the pool waits
for it (a ``ping`` job) before it lends the connection out again. A statement on the fast path
holds the event loop, so nothing can cancel it half-way: it ends (or overruns its budget)
first.

Which class ``sqlite`` means (:data:`DefaultSQLiteAdapter`): :class:`NativeSQLiteAdapter`, or
the reference adapter when ``COVET_SQLITE_ENGINE=aiosqlite``, or, with a ``RuntimeWarning``, when
the Rust module is missing (under ``CI=true`` a missing module is an ``ImportError`` instead).
``COVET_PURE_PYTHON=1`` does not change the engine: it selects the reference compiler and decoder.
"""

from __future__ import annotations

import asyncio
import os
import warnings
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from covet import _native
from covet.database.adapters.base import Row, translate_errors
from covet.database.adapters.sqlite import (
    PooledSQLiteConnection,
    SQLiteAdapter,
    _SQLitePool,
    open_failure,
    sqlite_capabilities,
)
from covet.database.adapters.sqlite_support import connection_pragmas
from covet.database.exceptions import ConfigurationError

if TYPE_CHECKING:
    from covet.database.config import DatabaseConfig

__all__ = [
    "ENGINE_ENV_VAR",
    "NATIVE_SQLITE",
    "NativeSQLiteAdapter",
    "NativeSQLiteConnection",
    "default_engine",
]

ENGINE_ENV_VAR = "COVET_SQLITE_ENGINE"
_rs: Any = _native.native if hasattr(_native.native, "NativeConnection") else None
NATIVE_SQLITE: bool = _rs is not None
"""True when the Rust module with the SQLite executor is importable."""
_FAIR_EVERY = 32
"""After this many statements answered on the fast path in a row, a connection's next query
first yields to the event loop once (``asyncio.sleep(0)``)."""


def _unavailable_reason() -> str:
    if _native.native is None:
        return f"the Rust module covet._covet_rs is not built ({_native.IMPORT_ERROR})"
    return "the Rust module covet._covet_rs has no NativeConnection (an old build?)"


class NativeSQLiteConnection(PooledSQLiteConnection):
    """One native connection: a query may be answered at once (the fast path), every other
    method is one job on its worker thread."""

    __slots__ = ("_native", "_streak")

    def __init__(self, native: Any, pool: _SQLitePool) -> None:
        super().__init__(pool)
        self._native = native
        self._streak = 0  # statements answered inline since this connection last yielded

    @property
    def healthy(self) -> bool:
        return not self.broken and bool(self._native.is_open)

    @property
    def in_transaction(self) -> bool:
        return bool(self._native.in_transaction)

    async def _submit(self, method: Callable[..., int], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        seq = method(fut, loop, *args)
        try:
            return await fut
        except asyncio.CancelledError:
            self._native.cancel(seq)  # skipped if queued, interrupted if running
            self._needs_drain = True
            raise

    @translate_errors
    async def _call(self, method: Callable[..., int], *args: Any) -> Any:
        self._streak = 0
        return await self._submit(method, *args)

    def _inline(self, method: Callable[..., Any], *args: Any) -> Any:
        """A ``try_*`` method of the fast path: its answer, or None (submit the job instead)."""
        try:
            return method(*args)
        except Exception as exc:
            err = self.translate_error(exc)
            if err is None:
                raise
            raise err from exc

    async def _fair(self) -> None:
        # Answers on the fast path never let the loop run; a task that does nothing but
        # queries would keep every other task waiting. Let them run every _FAIR_EVERY answers.
        self._streak = 0
        await asyncio.sleep(0)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        if self._streak >= _FAIR_EVERY:
            await self._fair()
        native = self._native
        try:
            rows: list[Row] | None = native.try_fetch(sql, params)
        except Exception as exc:  # what _inline does, without the extra call
            err = self.translate_error(exc)
            if err is None:
                raise
            raise err from exc
        if rows is None:
            rows = await self._call(native.fetch, sql, params)
        else:
            self._streak += 1
        return rows

    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]:
        if self._streak >= _FAIR_EVERY:
            await self._fair()
        native = self._native
        result: tuple[list[str], list[Row]] | None = self._inline(
            native.try_fetch, sql, params, limit, True
        )
        if result is None:
            result = await self._call(native.fetch, sql, params, limit, True)
        else:
            self._streak += 1
        return result

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        count: int = await self._call(self._native.execute, sql, params)
        return count

    async def execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None:
        await self._call(self._native.execute_many, sql, params_seq)

    async def iterate(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[list[Row], None]:
        if self._streak >= _FAIR_EVERY:
            await self._fair()
        native = self._native
        first = self._inline(native.try_cursor_open, sql, params, chunk_size)
        if first is None:
            first = await self._call(native.cursor_open, sql, params, chunk_size)
        else:
            self._streak += 1
        cursor, rows, done = first
        del first  # else the first chunk lives as long as the iteration
        try:
            while True:
                if rows:
                    yield rows
                if done:
                    break
                cursor, rows, done = await self._call(
                    self._native.cursor_fetch, cursor, chunk_size
                )
        finally:
            if not done:
                self._native.cursor_close(cursor)  # queued: nothing to await

    async def control(self, sql: str) -> None:
        await self._call(self._native.control, sql)

    async def prepare_for_reuse(self) -> None:
        if self._needs_drain:
            await self._submit(self._native.ping)  # FIFO: the interrupted job is done
            self._needs_drain = False
        if self.in_transaction:
            await self.control("ROLLBACK")

    async def close(self) -> None:
        if not self._native.is_alive:
            return
        try:
            await self._submit(self._native.close)
        except Exception:
            self.discard()

    def discard(self) -> None:
        self._native.close()  # queued after whatever runs; the thread exits once closed


class NativeSQLiteAdapter(SQLiteAdapter):
    """SQLite through the Rust executor; the reference adapter's behaviour, at most one thread hop
    a statement (none for a short query)."""

    capabilities = sqlite_capabilities(
        tuple(int(p) for p in _rs.sqlite_version().split(".")) if _rs is not None else (0,)
    )

    def __init__(self, config: DatabaseConfig) -> None:
        if _rs is None:
            raise ConfigurationError(
                f"the native SQLite engine is unavailable: {_unavailable_reason()}; "
                "build it (pip install -e .) or use engine 'sqlite+aiosqlite'"
            )
        super().__init__(config)

    async def _open_connection(self, pool: _SQLitePool) -> NativeSQLiteConnection:
        path = self.config.sqlite_path
        native = _rs.NativeConnection(path, connection_pragmas(path, dict(self.config.options)))
        conn = NativeSQLiteConnection(native, pool)
        try:
            await conn._submit(native.open)
        except BaseException as exc:
            native.close()  # after the open job: the worker thread then exits
            if not isinstance(exc, Exception):
                raise
            err = open_failure(path, exc)
            if err is None:
                raise
            raise err from exc
        return conn


_DEFAULT: type[SQLiteAdapter] | None = None


def default_engine() -> type[SQLiteAdapter]:
    """The adapter class the plain ``sqlite`` engine stands for (see the module docs).

    Raises:
        ImportError: the Rust module is missing under ``CI=true``.
        ConfigurationError: ``COVET_SQLITE_ENGINE`` is neither ``native`` nor ``aiosqlite``.
    """
    global _DEFAULT
    choice = os.environ.get(ENGINE_ENV_VAR, "").strip().lower() or "native"
    if choice not in ("native", "aiosqlite"):
        raise ConfigurationError(
            f"{ENGINE_ENV_VAR}={choice!r}: expected 'native' (the default) or 'aiosqlite'"
        )
    if choice == "aiosqlite":
        return SQLiteAdapter
    if _DEFAULT is None:
        if NATIVE_SQLITE:
            _DEFAULT = NativeSQLiteAdapter
        elif os.environ.get("CI", "").lower() == "true":
            raise ImportError(f"{_unavailable_reason()}; under CI=true this is a failure")
        else:
            warnings.warn(
                f"{_unavailable_reason()}: SQLite falls back to the aiosqlite engine",
                RuntimeWarning,
                stacklevel=2,
            )
            _DEFAULT = SQLiteAdapter
    return _DEFAULT


def __getattr__(name: str) -> Any:
    """``DefaultSQLiteAdapter``: resolved when the engine is first used, not at import."""
    if name == "DefaultSQLiteAdapter":
        return default_engine()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
