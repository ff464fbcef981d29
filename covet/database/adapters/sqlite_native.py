"""The default SQLite engine: the native Rust executor (``covet._covet_rs.NativeConnection``).

Barrier: like ``sqlite.py``, the only code that talks to its driver, here the Rust executor of
``rust_ext/src/sqlite.rs``. It hands back plain tuples and CovetPy errors.

Each connection is a SQLite connection on its own worker thread, through the same system
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

A cancelled statement is skipped if it has not started and interrupted if it runs; the pool waits
for it (a ``ping`` job) before it lends the connection out again.

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


def _unavailable_reason() -> str:
    if _native.native is None:
        return f"the Rust module covet._covet_rs is not built ({_native.IMPORT_ERROR})"
    return "the Rust module covet._covet_rs has no NativeConnection (an old build?)"


class NativeSQLiteConnection(PooledSQLiteConnection):
    """One native connection; every method is one job on its worker thread."""

    __slots__ = ("_native",)

    def __init__(self, native: Any, pool: _SQLitePool) -> None:
        super().__init__(pool)
        self._native = native

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
        return await self._submit(method, *args)

    async def fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        rows: list[Row] = await self._call(self._native.fetch, sql, params)
        return rows

    async def fetch_columns(
        self, sql: str, params: Sequence[Any], limit: int | None = None
    ) -> tuple[list[str], list[Row]]:
        result: tuple[list[str], list[Row]] = await self._call(
            self._native.fetch, sql, params, limit, True
        )
        return result

    async def execute(self, sql: str, params: Sequence[Any]) -> int:
        count: int = await self._call(self._native.execute, sql, params)
        return count

    async def execute_many(self, sql: str, params_seq: Sequence[Sequence[Any]]) -> None:
        await self._call(self._native.execute_many, sql, params_seq)

    async def iterate(
        self, sql: str, params: Sequence[Any], chunk_size: int
    ) -> AsyncGenerator[list[Row], None]:
        cursor, rows, done = await self._call(self._native.cursor_open, sql, params, chunk_size)
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
    """SQLite through the Rust executor; the reference adapter's behaviour, one hop a statement."""

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
