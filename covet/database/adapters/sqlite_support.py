"""SQLite helpers that need no connection: placeholders, values, SQL functions, errors.

Barrier: pure functions around ``sqlite3``; ``sqlite.py`` uses them to open connections and run
statements. Kept apart so the adapter module stays about connections and pooling. Both SQLite
engines share them: the native engine (``sqlite_native.py``) runs the same
:func:`connection_pragmas`, registers Rust versions of the functions in :data:`FUNCTION_NAMES`, and
raises ``sqlite3`` exceptions that :func:`translate_sqlite_error` maps.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import functools
import json
import re
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from covet.database.exceptions import (
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
)

__all__ = [
    "DEFAULT_BUSY_MS",
    "FUNCTION_NAMES",
    "adapt_value",
    "connection_pragmas",
    "open_connection",
    "translate_placeholders",
    "translate_sqlite_error",
]

DEFAULT_BUSY_MS = 5000


# $n -> ?n outside literals, quoted identifiers and comments -----------------------------------
_TOKENS = re.compile(
    r"""'(?:[^']|'')*'"""  # 'string'
    r'''|"(?:[^"]|"")*"'''  # "identifier"
    r"|`(?:[^`]|``)*`"  # `identifier`
    r"|\[[^\]]*\]"  # [identifier]
    r"|--[^\n]*"  # -- comment
    r"|/\*.*?(?:\*/|\Z)"  # /* comment */
    r"|(?<![\w$])\$([0-9]+)(?![\w$])",  # $1
    re.DOTALL,
)


def _placeholder(match: re.Match[str]) -> str:
    number = match.group(1)
    return match.group(0) if number is None else "?" + number


@functools.lru_cache(maxsize=1024)
def translate_placeholders(sql: str) -> str:
    """Rewrite the guide's ``$1`` placeholders as SQLite's ``?1``.

    ``$n`` inside string literals, quoted identifiers and comments is left alone, and so is a
    ``$`` that is part of an identifier. ``?NNN`` binds positionally from a sequence in sqlite3,
    so ``$1 ... $1`` reuses the first value, as on PostgreSQL.
    """
    if "$" not in sql:
        return sql
    return _TOKENS.sub(_placeholder, sql)


def adapt_value(value: Any) -> Any:
    """Convert a common Python value to one sqlite3 binds (raw API only).

    bool → 0/1, Decimal → str, datetime → ISO text with a space separator, date/time → ISO text,
    UUID → str, dict/list → JSON text, Enum → its value; str/int/float/bytes/None unchanged.

    Raises:
        ProgrammingError: the value has no SQLite representation.
    """
    if value is None:
        return None
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bytes:
        return value
    if kind is bool:
        return int(value)
    if isinstance(value, enum.Enum):
        return adapt_value(value.value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, _dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):  # str/int/float subclasses (StrEnum-likes, numpy scalars...)
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    raise ProgrammingError(f"cannot bind a value of type {kind.__name__} on SQLite: {value!r}")


# SQL functions registered on every connection -------------------------------------------------
def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _lower(value: Any) -> str | None:
    return None if value is None else _text(value).lower()


def _upper(value: Any) -> str | None:
    return None if value is None else _text(value).upper()


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _regexp(pattern: Any, value: Any) -> int | None:
    if pattern is None or value is None:
        return None
    return 1 if _compiled(_text(pattern), 0).search(_text(value)) else 0


def _iregexp(pattern: Any, value: Any) -> int | None:
    if pattern is None or value is None:
        return None
    return 1 if _compiled(_text(pattern), re.IGNORECASE).search(_text(value)) else 0


def _decimal_key(text: str) -> Any:
    try:
        return decimal.Decimal(text)
    except decimal.InvalidOperation:
        return None


def decimal_collation(a: str, b: str) -> int:
    """``COLLATE covet_decimal``: decimal text compared as numbers (wide DecimalFields, whose
    digits SQLite's numeric types would round, are stored as exact text)."""
    x, y = _decimal_key(a), _decimal_key(b)
    if x is None or y is None:  # not numbers: plain text order
        return (a > b) - (a < b)
    return (x > y) - (x < y)


COLLATIONS: tuple[tuple[str, Callable[[str, str], int]], ...] = (
    ("covet_decimal", decimal_collation),
)

_FUNCTIONS: tuple[tuple[str, int, Callable[..., Any]], ...] = (
    ("lower", 1, _lower),
    ("upper", 1, _upper),
    ("covet_regexp", 2, _regexp),
    ("covet_iregexp", 2, _iregexp),
    ("regexp", 2, _regexp),
)


FUNCTION_NAMES: tuple[tuple[str, int], ...] = tuple((name, n) for name, n, _ in _FUNCTIONS)
"""The SQL functions every connection of either engine gets: ``(name, number of arguments)``."""


def connection_pragmas(path: str, options: dict[str, Any]) -> list[str]:
    """The statements that configure a new connection, in order (both engines run these).

    ``busy_timeout`` (5000 ms unless configured), ``foreign_keys=ON``, ``journal_mode`` (WAL
    unless configured; not for ``:memory:``), ``synchronous`` only when configured (SQLite's
    default otherwise, FULL), ``case_sensitive_like=ON``.
    """
    busy = int(options.get("busy_timeout", DEFAULT_BUSY_MS))
    pragmas = [f"PRAGMA busy_timeout = {busy}", "PRAGMA foreign_keys = ON"]
    if path != ":memory:":
        pragmas.append(f"PRAGMA journal_mode = {options.get('journal_mode', 'WAL')}")
    if options.get("synchronous") is not None:
        pragmas.append(f"PRAGMA synchronous = {options['synchronous']}")
    pragmas.append("PRAGMA case_sensitive_like = ON")
    return pragmas


def open_connection(path: str, options: dict[str, Any]) -> sqlite3.Connection:
    """Open and configure one connection; runs on the connection's worker thread."""
    busy = int(options.get("busy_timeout", DEFAULT_BUSY_MS))
    raw = sqlite3.connect(
        path, isolation_level=None, timeout=busy / 1000, cached_statements=256
    )
    try:
        for pragma in connection_pragmas(path, options):
            raw.execute(pragma)
        for name, nargs, fn in _FUNCTIONS:
            raw.create_function(name, nargs, fn, deterministic=True)
        for name, collation in COLLATIONS:
            raw.create_collation(name, collation)
    except BaseException:
        raw.close()
        raise
    return raw


# error translation ------------------------------------------------------------------------------
_PROGRAMMING = (
    "syntax error", "no such table", "no such column", "no such function", "has no column named",
    "ambiguous column", "incomplete input", "already exists", "wrong number of arguments",
    "unrecognized token", "no such index", "no such view", "no such collation",
)


def translate_sqlite_error(exc: Exception) -> DatabaseError | None:
    """Map a sqlite3/aiosqlite exception to a CovetPy error (None: not a driver error)."""
    message = str(exc) or type(exc).__name__
    name = getattr(exc, "sqlite_errorname", "")
    cls: type[DatabaseError]
    if name in ("SQLITE_MISMATCH", "SQLITE_TOOBIG") or isinstance(exc, sqlite3.DataError):
        cls = DataError
    elif isinstance(exc, sqlite3.IntegrityError):
        cls = IntegrityError
    elif isinstance(exc, sqlite3.OperationalError):
        lowered = message.lower()
        cls = ProgrammingError if any(m in lowered for m in _PROGRAMMING) else OperationalError
    elif isinstance(
        exc, (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.NotSupportedError,
              sqlite3.Warning)
    ) or name == "SQLITE_RANGE":
        cls = ProgrammingError
    elif isinstance(exc, sqlite3.Error):
        cls = OperationalError
    elif isinstance(exc, OverflowError):
        cls = DataError
    elif isinstance(exc, ValueError) and message in ("Connection closed", "no active connection"):
        cls = OperationalError
        message = "the SQLite connection is closed"
    else:
        return None
    return cls(message)
