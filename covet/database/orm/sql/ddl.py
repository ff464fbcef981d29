"""DDL: CREATE TABLE / CREATE INDEX / DROP TABLE text for a model on one dialect.

Barrier: turns model metadata into schema statements. Only identifiers (quoted by
``quote_ident``) and the fields' own column types enter the text; DDL takes no user values
(the one literal, a ForeignKey's SET_DEFAULT default, must be an integer and is written as one).
"""

from __future__ import annotations

import hashlib
from typing import Any

from covet.database.exceptions import ConfigurationError
from covet.database.orm.sql.reference import quote_ident

__all__ = ["create_table_sql", "drop_table_sql", "index_name", "add_foreign_key_sql"]

_MAX_IDENT = 63  # PostgreSQL's limit; SQLite has none


def index_name(table: str, columns: list[str], suffix: str) -> str:
    name = f"{table}_{'_'.join(c.lstrip('-') for c in columns)}_{suffix}"
    if len(name) > _MAX_IDENT:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[:_MAX_IDENT - 10]}_{digest}"
    return name


def _references(field: Any) -> str:
    from covet.database.orm.relationships import ON_DELETE_SQL

    target = field.require_target()
    return (f"REFERENCES {quote_ident(target._meta.db_table)} "
            f"({quote_ident(target._meta.pk.column)}) ON DELETE {ON_DELETE_SQL[field.on_delete]}")


def add_foreign_key_sql(field: Any) -> str:
    """``ALTER TABLE ... ADD FOREIGN KEY``: for a reference cycle on PostgreSQL, whose tables
    cannot all reference each other at creation time."""
    return (f"ALTER TABLE {quote_ident(field.model._meta.db_table)} ADD FOREIGN KEY "
            f"({quote_ident(field.column)}) {_references(field)}")


def _column(field: Any, dialect: str, deferred: bool = False) -> str:
    from covet.database.orm.fields.scalar import AutoField
    from covet.database.orm.relationships import SET_DEFAULT, ForeignKey

    parts = [quote_ident(field.column), field.db_type(dialect)]
    if field.primary_key:
        parts.append("PRIMARY KEY")
        if isinstance(field, AutoField) and dialect == "sqlite":
            parts.append("AUTOINCREMENT")
        if not isinstance(field, ForeignKey):
            return " ".join(parts)
    else:
        if not field.nullable:
            parts.append("NOT NULL")
        if field.unique:
            parts.append("UNIQUE")
    if isinstance(field, ForeignKey):
        if field.on_delete == SET_DEFAULT:
            default = field.get_default()
            default = getattr(default, "pk", default)
            if not isinstance(default, int) or isinstance(default, bool):
                raise ConfigurationError(f"{field.label}: on_delete=SET_DEFAULT needs an integer "
                                         f"default (a primary key), not {default!r}")
            parts.append(f"DEFAULT {int(default)}")
        if not deferred:
            parts.append(_references(field))
    return " ".join(parts)


def create_table_sql(model: Any, dialect: str, deferred: frozenset[str] = frozenset()
                     ) -> list[str]:
    """The statements that create ``model``'s table and its indexes (idempotent).

    Foreign keys named in ``deferred`` get their constraint later (``add_foreign_key_sql``).
    """
    meta = model._meta
    table = quote_ident(meta.db_table)
    lines = [_column(f, dialect, f.name in deferred) for f in meta.fields]
    for group in meta.unique_together:
        cols = [meta.get_field(name).column for name in group]
        lines.append("UNIQUE (" + ", ".join(quote_ident(c) for c in cols) + ")")
    statements = [f"CREATE TABLE IF NOT EXISTS {table} (\n    " + ",\n    ".join(lines) + "\n)"]
    for f in meta.fields:
        if f.db_index and not f.unique and not f.primary_key:
            name = index_name(meta.db_table, [f.column], "idx")
            statements.append(f"CREATE INDEX IF NOT EXISTS {quote_ident(name)} ON {table} "
                              f"({quote_ident(f.column)})")
    for index in meta.indexes:
        cols = []
        for name in index.fields:
            desc = name.startswith("-")
            col = quote_ident(meta.get_field(name.lstrip("-")).column)
            cols.append(col + (" DESC" if desc else ""))
        name = index.name or index_name(meta.db_table, [n.lstrip("-") for n in index.fields],
                                        "uniq" if index.unique else "idx")
        unique = "UNIQUE " if index.unique else ""
        statements.append(f"CREATE {unique}INDEX IF NOT EXISTS {quote_ident(name)} ON {table} "
                          f"({', '.join(cols)})")
    return statements


def drop_table_sql(model: Any, dialect: str) -> str:
    cascade = " CASCADE" if dialect == "postgresql" else ""
    return f"DROP TABLE IF EXISTS {quote_ident(model._meta.db_table)}{cascade}"
