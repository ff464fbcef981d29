"""The Rust core of CovetPy (``rust_ext/``), built by maturin as ``covet._covet_rs``.

Import it only through ``covet._native``, which says whether it is there and whether the
pure-Python reference has been asked for instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final, Literal, final

__all__ = ["__version__", "compile_sql", "RowPlan", "decode_rows"]

__version__: Final[str]
"""The version of the Rust crate (``Cargo.toml``)."""

def compile_sql(tree: tuple[Any, ...], dialect: str) -> str:
    """Compile one statement tree to SQL text for ``dialect``.

    The Rust twin of ``covet.database.orm.sql.reference.compile_sql``: for every tree it returns
    byte-for-byte the same text, and it refuses every tree the reference refuses.

    Arguments:
        tree: a ``select``, ``insert``, ``update`` or ``delete`` node in the neutral tree format of
            ``covet.database.orm.sql.tree``, made of tuples, ``str``, ``int``, ``bool`` and
            ``None``. Values never appear in it; parameters are ``("param", i)`` with ``i >= 1``.
        dialect: ``'sqlite'`` (placeholders ``?i``) or ``'postgresql'`` (placeholders ``$i``).

    Returns:
        The SQL text. Every identifier is double-quoted with inner ``"`` doubled.

    Raises:
        ValueError: the dialect is unknown, or the tree is malformed or holds an unknown node,
            function, operator, constant or join kind, an invalid identifier (not a string, empty,
            or containing NUL), or an invalid parameter index or integer literal (not an
            ``int``, a ``bool``, or an index below 1).
        RecursionError: selects and expressions nest more than 700 levels deep (the reference
            gives up before that at Python's default recursion limit).
    """

@final
class RowPlan:
    """How to decode the rows of one query: built once per query, used for every batch.

    Made from plain data by ``covet.database.orm.hydrate``; the class is opaque to Python.

    Arguments:
        mode: ``'model'`` (instances of ``model``), ``'dict'``, ``'tuple'`` or ``'flat'`` (the
            first column alone).
        names: the attribute (``'model'``) or key (``'dict'``) of each leading column; a row
            longer than ``names`` fills only as many, as ``zip`` does.
        converters: ``(index, kind, extra, fallback)`` per converted column, applied in order to
            the whole row (``select_related`` columns included) and never to NULL. ``kind`` is
            ``'bool'``, ``'decimal'`` (``extra``: ``(quantum, context)``), ``'datetime'``,
            ``'date'``, ``'time'``, ``'uuid'`` (``extra``: ``(UUID, SafeUUID.unknown)``),
            ``'json'`` (``extra``: ``json.loads``) or ``'py'``. ``fallback`` is the field's Python
            converter: it is called for every value the native conversion does not read (all of
            them for ``'py'``), so results and exceptions are the converter's own.
        model: the model class, in mode ``'model'`` only. Instances are made as
            ``Model._from_db`` makes them: ``cls.__new__(cls)``, then ``__dict__`` set to the
            values plus ``_persisted=True``.
        related: in mode ``'model'``, ``(cache_name, start, pk_index, plan)`` per
            ``select_related`` model: its columns start at ``start`` in the row, and ``plan``
            (mode ``'model'``; its own converters are not used) builds it into
            ``__dict__[cache_name]``, or ``None`` there when the column ``start + pk_index`` is
            NULL.

    Raises:
        ValueError: an unknown mode or converter kind, or a model or related plans where the mode
            does not take them.
        TypeError: a name that is not a ``str``, a fallback that is not callable.
    """

    def __new__(
        cls,
        mode: Literal["model", "dict", "tuple", "flat"],
        names: Iterable[str],
        converters: Iterable[tuple[int, str, Any, Callable[[Any], Any]]] | None = None,
        model: type | None = None,
        related: Iterable[tuple[str, int, int, RowPlan]] | None = None,
    ) -> RowPlan: ...

def decode_rows(plan: RowPlan, rows: Iterable[Sequence[Any]]) -> list[Any]:
    """Decode one batch of rows in one call.

    The Rust twin of ``covet.database.orm.hydrate.RowPlan.decode`` under the reference: for the
    same plan and rows it returns equal results (values of the same types, instances with equal
    ``__dict__``) and raises the same exceptions.

    Arguments:
        plan: the query's row plan.
        rows: tuples (aiosqlite), asyncpg ``Record`` objects or any other sequences.

    Returns:
        A list of model instances, dicts, tuples or single values, by the plan's mode.

    Raises:
        IndexError: a converter or a related primary key names a column the row does not have,
            or a ``'flat'`` row is empty.
        Exception: whatever a fallback converter raises (``ValueError`` for a malformed date,
            ``decimal.InvalidOperation``, ``json.JSONDecodeError`` ...).
    """

# --- the native SQLite executor (rust_ext/src/sqlite.rs, sqlite_bindings.rs) -------------------

__all__ += [
    "NativeConnection", "SQLITE_BUNDLED", "SQLITE_COLLATIONS", "SQLITE_FUNCTIONS", "sqlite_version",
]

SQLITE_FUNCTIONS: Final[list[tuple[str, int]]]
"""The SQL functions every native connection registers: ``(name, number of arguments)``."""

SQLITE_COLLATIONS: Final[list[str]]
"""The collations every native connection registers (``covet_decimal``)."""

SQLITE_BUNDLED: Final[bool]
"""Built with the ``bundled-sqlite`` feature (its own SQLite), not the system ``libsqlite3``."""

def sqlite_version() -> str:
    """The version of the SQLite library the executor uses (e.g. ``'3.40.1'``)."""

@final
class NativeConnection:
    """One SQLite connection on its own worker thread; used by ``adapters/sqlite_native.py``.

    Each statement method queues one job and returns its number at once. The worker runs it
    without the GIL, then resolves ``fut`` on ``loop`` with ``loop.call_soon_threadsafe`` (a
    future already done, e.g. cancelled, is left alone). Rows are lists of tuples of
    ``int``/``float``/``str``/``bytes``/``None``. Parameters are ``int`` (``bool`` too), ``float``,
    ``str``, ``bytes``/``bytearray``/``memoryview`` or ``None``, bound by position (``?NNN`` is the
    NNN-th value). Failures are the exceptions CPython's ``sqlite3`` raises for the same error
    (``sqlite3.IntegrityError`` ... with ``sqlite_errorcode``/``sqlite_errorname``), or
    ``OverflowError`` for an integer beyond 64 bits; a bad parameter type raises
    ``sqlite3.ProgrammingError`` at once.

    Arguments:
        path: a file name or ``':memory:'`` (not a URI).
        pragmas: statements run in order right after opening.
    """

    def __new__(cls, path: str, pragmas: Sequence[str] = ...) -> NativeConnection: ...
    def open(self, fut: Any, loop: Any) -> int:
        """Open the database and run the pragmas; resolves to None."""
    def fetch(self, fut: Any, loop: Any, sql: str, params: Sequence[Any],
              limit: int | None = None, columns: bool = False) -> int:
        """Resolves to the rows (at most ``limit``), or ``(column names, rows)`` with ``columns``."""
    def execute(self, fut: Any, loop: Any, sql: str, params: Sequence[Any]) -> int:
        """Resolves to rows affected (INSERT/UPDATE/DELETE/REPLACE), rows returned, or 0."""
    def execute_many(self, fut: Any, loop: Any, sql: str,
                     rows: Iterable[Sequence[Any]]) -> int:
        """One DML statement per row, atomically when no transaction is open; resolves to None."""
    def control(self, fut: Any, loop: Any, sql: str) -> int:
        """BEGIN/COMMIT/SAVEPOINT...; ``ROLLBACK`` outside a transaction does nothing."""
    def cursor_open(self, fut: Any, loop: Any, sql: str, params: Sequence[Any],
                    chunk: int) -> int:
        """Resolves to ``(cursor, first rows, done)``; the cursor is 0 once done."""
    def cursor_fetch(self, fut: Any, loop: Any, cursor: int, chunk: int) -> int:
        """Resolves to ``(cursor, next rows, done)``; the cursor closes itself once done."""
    def cursor_close(self, cursor: int) -> None:
        """Close a cursor (queued; nothing to await)."""
    def ping(self, fut: Any, loop: Any) -> int:
        """Resolves to None once every job queued before it has finished."""
    def close(self, fut: Any = None, loop: Any = None) -> int:
        """Close after the queued jobs (the worker thread then exits)."""
    def cancel(self, seq: int) -> None:
        """Skip job ``seq`` if it has not started; interrupt it if it is running."""
    def interrupt(self) -> None:
        """Interrupt the running statement, if any; safe from any thread."""
    @property
    def in_transaction(self) -> bool: ...
    @property
    def is_open(self) -> bool: ...
    @property
    def is_alive(self) -> bool: ...
    @property
    def last_insert_rowid(self) -> int: ...
    @property
    def path(self) -> str: ...
