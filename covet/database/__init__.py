"""CovetPy's database layer: configuration, adapters, schema and the ORM.

``from covet.database import DatabaseConfig, get_adapter`` is the import the migration guide uses.
"""

from __future__ import annotations

from covet.database.config import DatabaseConfig, configure, describe_database
from covet.database.connections import close_all, get_adapter
from covet.database.exceptions import (
    ConfigurationError,
    DatabaseError,
    FieldError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    ValidationError,
)
from covet.database.orm.schema import create_tables, drop_tables

__all__ = [
    "DatabaseConfig",
    "configure",
    "describe_database",
    "get_adapter",
    "close_all",
    "create_tables",
    "drop_tables",
    "ConfigurationError",
    "DatabaseError",
    "FieldError",
    "IntegrityError",
    "OperationalError",
    "ProgrammingError",
    "ValidationError",
]
