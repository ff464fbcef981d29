"""``create_tables`` / ``drop_tables``: the schema for tests, the shell and notebooks.

Barrier: orders models by their foreign keys and runs the DDL of ``sql/ddl.py`` in one
transaction. Migrations (``covet.database.migrations``) are the tool for evolving a schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from covet.database.exceptions import ConfigurationError
from covet.database.orm.options import registry
from covet.database.orm.sql.ddl import add_foreign_key_sql, create_table_sql, drop_table_sql

__all__ = ["create_tables", "drop_tables", "dependency_order"]


def _with_through(models: Iterable[Any]) -> list[Any]:
    from covet.database.orm.relationships import finalize_pending

    finalize_pending()
    out: list[Any] = []
    for m in models:
        if m._meta.abstract:
            raise ConfigurationError(f"{m.__name__} is abstract and has no table")
        if m not in out:
            out.append(m)
    for m in list(out):
        for m2m in m._meta.many_to_many:
            if m2m.through_model is None:
                raise ConfigurationError(
                    f"{m2m.label} refers to {m2m.to!r}, which was never defined")
            if m2m.through_model not in out:
                out.append(m2m.through_model)
    return out


def dependency_order(models: Iterable[Any]) -> list[Any]:
    """Models sorted so that every foreign key's target comes before it (when in the set)."""
    from covet.database.orm.relationships import ForeignKey

    pending = list(models)
    ordered: list[Any] = []
    while pending:
        progressed = False
        for m in list(pending):
            deps = {f.require_target() for f in m._meta.fields if isinstance(f, ForeignKey)}
            deps.discard(m)
            if all(d in ordered or d not in pending for d in deps):
                ordered.append(m)
                pending.remove(m)
                progressed = True
        if not progressed:  # a cycle: keep declaration order for the rest
            ordered.extend(pending)
            break
    return ordered


async def create_tables(*models: Any, using: str = "default") -> None:
    """Create the tables (and indexes, and many-to-many join tables) of ``models``.

    With no arguments, every concrete model defined so far. Existing tables are left alone.
    """
    from covet.database.connections import get_adapter
    from covet.database.transaction import transaction

    from covet.database.orm.relationships import ForeignKey

    chosen = _with_through(models or [m for m in registry if not m._meta.abstract])
    adapter = await get_adapter(using)
    existing: set[str] = set()
    if adapter.dialect == "postgresql":
        # A table that exists already keeps its keys: adding a deferred one again would
        # duplicate the constraint.
        rows = await adapter.run_fetch(
            "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p') "
            "AND pg_table_is_visible(c.oid)", [])
        existing = {r[0] for r in rows}
    statements: list[str] = []
    later: list[str] = []
    created: set[Any] = set()
    for m in dependency_order(chosen):
        # PostgreSQL checks a REFERENCES target exists: in a cycle, add that key afterwards.
        deferred = frozenset(
            f.name for f in m._meta.fields
            if isinstance(f, ForeignKey) and adapter.dialect == "postgresql"
            and f.target is not m and f.target in chosen and f.target not in created)
        statements += create_table_sql(m, adapter.dialect, deferred)
        if m._meta.db_table not in existing:
            later += [add_foreign_key_sql(m._meta.fields_map[name]) for name in sorted(deferred)]
        created.add(m)
    statements += later
    async with transaction(using=using):
        for sql in statements:
            await adapter.run_execute(sql, [])


async def drop_tables(*models: Any, using: str = "default") -> None:
    """Drop the tables of ``models`` (all concrete models when none are given), dependents first."""
    from covet.database.connections import get_adapter
    from covet.database.transaction import transaction

    chosen = _with_through(models or [m for m in registry if not m._meta.abstract])
    adapter = await get_adapter(using)
    async with transaction(using=using):
        for m in reversed(dependency_order(chosen)):
            await adapter.run_execute(drop_table_sql(m, adapter.dialect), [])
