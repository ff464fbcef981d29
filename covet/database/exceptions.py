"""The whole CovetPy error hierarchy.

Driver errors (aiosqlite/sqlite3, asyncpg, the native engine) are translated into these classes at
the adapter's edge, so nothing above ``covet.database.adapters`` ever sees a driver exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "CovetError",
    "ConfigurationError",
    "DatabaseError",
    "OperationalError",
    "IntegrityError",
    "ProgrammingError",
    "DataError",
    "TransactionError",
    "ValidationError",
    "FieldError",
    "ObjectDoesNotExist",
    "MultipleObjectsReturned",
    "RelationNotLoaded",
    "close_matches",
]


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` entries of ``choices`` that look like ``word`` (difflib)."""
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.5)


class CovetError(Exception):
    """Base class of every error CovetPy raises on purpose."""


class ConfigurationError(CovetError):
    """The database configuration is missing, contradictory or names an unknown alias."""


class DatabaseError(CovetError):
    """An error reported by the database server or driver."""


class OperationalError(DatabaseError):
    """The database could not run the statement (connection lost, locked, bad SQL, timeout)."""


class IntegrityError(DatabaseError):
    """A constraint was violated: unique, foreign key, not null or check."""


class ProgrammingError(DatabaseError):
    """The statement is wrong for this database (unknown table or column, syntax error)."""


class DataError(DatabaseError):
    """A value was rejected by the database (out of range, wrong type)."""


class TransactionError(CovetError):
    """A transaction was used wrongly (savepoint outside a transaction, reuse of a closed one)."""


class ValidationError(CovetError, ValueError):
    """A value was rejected by its field before any SQL was built.

    Attributes:
        errors: mapping of field name to the list of messages for that field.
    """

    def __init__(self, message: str | dict[str, list[str]], field: str | None = None) -> None:
        if isinstance(message, dict):
            self.errors: dict[str, list[str]] = message
            text = "; ".join(f"{k}: {' '.join(v)}" for k, v in message.items())
        else:
            self.errors = {field or "__all__": [message]}
            text = f"{field}: {message}" if field else message
        super().__init__(text)


class FieldError(CovetError, AttributeError):
    """An unknown field, relation path or lookup was named in a query.

    The message names the model, the path and the close matches.
    """


class ObjectDoesNotExist(CovetError, LookupError):
    """``get()`` found no row. Each model has its own subclass, ``Model.DoesNotExist``."""


class MultipleObjectsReturned(CovetError, LookupError):
    """``get()`` found more than one row. Each model has ``Model.MultipleObjectsReturned``."""


class RelationNotLoaded(CovetError, AttributeError):
    """A relation was touched before it was loaded; the message says how to load it."""
