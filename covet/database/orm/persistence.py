"""Writing rows: INSERT, UPDATE and DELETE for instances and QuerySets, and the bulk operations.

Barrier: builds write-statement trees from validated values and runs them on the adapter; never
writes SQL text. Multi-statement operations (``bulk_create``) run inside one transaction, so a
failure leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from covet.database.connections import adapter_for
from covet.database.exceptions import FieldError, ValidationError
from covet.database.orm.expressions import Expression
from covet.database.orm.fields.temporal import DateTimeField, now
from covet.database.orm.sql import compile_sql
from covet.database.orm.sql.build import Builder

if TYPE_CHECKING:
    from covet.database.orm.fields.base import Field
    from covet.database.orm.models import Model
    from covet.database.orm.query import QuerySet

__all__ = ["insert", "update", "delete", "update_queryset", "delete_queryset", "bulk_create",
           "bulk_update"]


def _adapter(alias: str | None) -> Any:
    """The adapter of ``alias``, without I/O: it opens its pool on the first statement."""
    return adapter_for(alias or "default")


def _insert_fields(obj: Model) -> list[Field[Any]]:
    pk = obj._meta.pk
    return [f for f in obj._meta.fields
            if not (f is pk and f.auto_created and obj.__dict__.get(f.attname) is None)]


async def insert(obj: Model, using: str | None) -> None:
    adapter = _adapter(using)
    dialect = adapter.dialect
    meta = obj._meta
    fields = _insert_fields(obj)
    d = obj.__dict__
    params = [f.to_db(d.get(f.attname), dialect) for f in fields]
    returning = (meta.pk.column,) if meta.pk not in fields else ()
    sql = _insert_sql(meta.db_table, tuple(f.column for f in fields), 1, returning, dialect)
    if returning:
        rows = await adapter.run_fetch(sql, params)
        obj.__dict__[meta.pk.attname] = rows[0][0]
    else:
        await adapter.run_execute(sql, params)


async def update(obj: Model, fields: Sequence[Field[Any]], using: str | None) -> int:
    if not fields:
        return 0
    adapter = _adapter(using)
    dialect = adapter.dialect
    meta = obj._meta
    params = [f.to_db(obj.__dict__.get(f.attname), dialect) for f in fields]
    sets = tuple((f.column, ("param", i + 1)) for i, f in enumerate(fields))
    params.append(meta.pk.to_db(obj.pk, dialect))
    where = ("bin", "=", ("col", None, meta.pk.column), ("param", len(params)))
    tree = ("update", meta.db_table, sets, where)
    count: int = await adapter.run_execute(compile_sql(tree, dialect), params)
    if count == 0:
        # The row is gone (deleted elsewhere): save it again as a new row, as Django does.
        obj.__dict__["_persisted"] = False
        await insert(obj, using)
        obj.__dict__["_persisted"] = True
        return 1
    return count


async def delete(obj: Model, using: str | None) -> int:
    adapter = _adapter(using)
    meta = obj._meta
    params = [meta.pk.to_db(obj.pk, adapter.dialect)]
    tree = ("delete", meta.db_table, ("bin", "=", ("col", None, meta.pk.column), ("param", 1)))
    count: int = await adapter.run_execute(compile_sql(tree, adapter.dialect), params)
    return count


async def update_queryset(qs: QuerySet[Any], values: dict[str, Any]) -> int:
    if not values:
        raise ValueError("update() needs at least one field=value")
    model = qs.model
    meta = model._meta
    adapter = _adapter(qs._using)
    dialect = adapter.dialect
    where, params = qs._where_pk_subquery(dialect)
    b = Builder(model, dialect, params)
    sets = []
    for name, value in values.items():
        field = meta.fields_map.get(name)
        if field is None or name == "pk":
            raise FieldError(meta.unknown_field_message(name, f"update({name}=...)"))
        if isinstance(value, Expression):
            node = b.expression(value)
            if b.joins:
                raise FieldError(f"update({name}=...): F() in update() cannot follow relations")
        else:
            if field.is_relation and value is not None and hasattr(value, "_meta"):
                value = value.pk
            node = b.value(field, field.clean(value))
        sets.append((field.column, node))
    for field in meta.fields:
        if isinstance(field, DateTimeField) and field.auto_now and field.name not in values:
            sets.append((field.column, b.value(field, now())))
    tree = ("update", meta.db_table, tuple(sets), where)
    count: int = await adapter.run_execute(compile_sql(tree, dialect), b.params)
    return count


async def delete_queryset(qs: QuerySet[Any]) -> int:
    adapter = _adapter(qs._using)
    where, params = qs._where_pk_subquery(adapter.dialect)
    tree = ("delete", qs.model._meta.db_table, where)
    count: int = await adapter.run_execute(compile_sql(tree, adapter.dialect), params)
    return count


def _prepare_for_insert(model: type[Model], objs: list[Any]) -> None:
    """Stamp ``auto_now``/``auto_now_add`` fields and validate every value, a column at a time.

    Each field first checks its whole column (``Field.clean_column``); a column it cannot vouch
    for is cleaned value by value, which is also where the error messages come from. The
    errors of every object are collected, in object then field order.
    """
    for obj in objs:
        if not isinstance(obj, model):
            raise TypeError(f"bulk_create() of {model.__name__} got a {type(obj).__name__}")
    stamp = now()
    dicts = [obj.__dict__ for obj in objs]
    found: list[tuple[int, int, str, list[str]]] = []
    for n, field in enumerate(model._meta.fields):
        attname = field.attname
        column = [d.get(attname) for d in dicts]
        if isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add) \
                and None in column:
            column = [stamp if v is None else v for v in column]
            for d, value in zip(dicts, column):
                d[attname] = value
        cleaned = field.clean_column(column)
        if cleaned is column:
            continue
        if cleaned is None:
            cleaned = []
            for i, value in enumerate(column):
                try:
                    cleaned.append(field.clean(value))
                except ValidationError as exc:
                    cleaned.append(value)
                    for msgs in exc.errors.values():
                        found.append((i, n, f"[{i}] {field.label}", list(msgs)))
        for d, value in zip(dicts, cleaned):
            d[attname] = value
    if found:
        errors: dict[str, list[str]] = {}
        for _, _, key, msgs in sorted(found, key=lambda e: (e[0], e[1])):
            errors.setdefault(key, []).extend(msgs)
        raise ValidationError(errors)


_INSERT_SQL: dict[tuple[Any, ...], str] = {}
_INSERT_SQL_MAX = 256


def _insert_sql(table: str, columns: tuple[str, ...], nrows: int, returning: tuple[str, ...],
                dialect: str) -> str:
    """The multi-row INSERT of ``nrows`` rows, compiled once per shape."""
    key = (table, columns, nrows, returning, dialect)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        width = len(columns)
        rows = tuple(tuple(("param", r * width + j + 1) for j in range(width))
                     for r in range(nrows))
        sql = compile_sql(("insert", table, columns, rows, returning), dialect)
        if len(_INSERT_SQL) >= _INSERT_SQL_MAX:
            _INSERT_SQL.clear()
        _INSERT_SQL[key] = sql
    return sql


async def bulk_create(model: type[Model], objs: list[Any], batch_size: int | None,
                      progress: Callable[[int, int], None] | None, using: str | None) -> list[Any]:
    from covet.database.transaction import transaction

    if not objs:
        return objs
    _prepare_for_insert(model, objs)
    adapter = _adapter(using)
    dialect = adapter.dialect
    meta = model._meta
    pk = meta.pk
    # Objects with and without an explicit primary key insert different column lists.
    groups: dict[bool, list[Any]] = {}
    for obj in objs:
        groups.setdefault(obj.__dict__.get(pk.attname) is None and pk.auto_created, []).append(obj)
    done = 0
    async with transaction(using=using or "default"):
        for auto_pk, group in groups.items():
            fields = [f for f in meta.fields if not (auto_pk and f is pk)]
            width = max(1, len(fields))
            limit = max(1, adapter.capabilities.max_params // width)
            size = min(batch_size or 1000, limit)
            returning = (pk.column,) if auto_pk else ()
            columns = tuple(f.column for f in fields)
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                if not fields:  # only an automatic key: one DEFAULT VALUES insert per object
                    for obj in batch:
                        empty: Any = ("insert", meta.db_table, (), ((),), returning)
                        res = await adapter.run_fetch(compile_sql(empty, dialect), [])
                        obj.__dict__[pk.attname] = res[0][0]
                else:
                    dicts = [obj.__dict__ for obj in batch]
                    values = [f.to_db_column([d.get(f.attname) for d in dicts], dialect)
                              for f in fields]
                    params = [v for row in zip(*values) for v in row]
                    sql = _insert_sql(meta.db_table, columns, len(batch), returning, dialect)
                    if returning:
                        res = await adapter.run_fetch(sql, params)
                        # Keys of one multi-row INSERT are increasing in VALUES order.
                        attname = pk.attname
                        for d, key in zip(dicts, sorted([r[0] for r in res])):
                            d[attname] = key
                    else:
                        await adapter.run_execute(sql, params)
                for obj in batch:
                    obj.__dict__["_persisted"] = True
                done += len(batch)
                if progress is not None:
                    progress(done, len(objs))
    return objs


async def bulk_update(model: type[Model], objs: list[Any], names: Sequence[str],
                      batch_size: int | None, using: str | None) -> int:
    from covet.database.transaction import transaction

    if not names:
        raise ValueError("bulk_update() needs the names of the fields to update")
    meta = model._meta
    fields = [meta.get_field(n) for n in names]
    if any(f.primary_key for f in fields):
        raise FieldError("bulk_update() cannot change primary keys")
    for obj in objs:
        if obj.pk is None:
            raise ValueError(f"bulk_update(): a {model.__name__} has no primary key (not saved)")
        obj.full_clean(exclude=[f.name for f in meta.fields if f not in fields])
    if not objs:
        return 0
    adapter = _adapter(using)
    dialect = adapter.dialect
    sets = tuple((f.column, ("param", i + 1)) for i, f in enumerate(fields))
    where = ("bin", "=", ("col", None, meta.pk.column), ("param", len(fields) + 1))
    sql = compile_sql(("update", meta.db_table, sets, where), dialect)
    rows = [[f.to_db(obj.__dict__.get(f.attname), dialect) for f in fields]
            + [meta.pk.to_db(obj.pk, dialect)] for obj in objs]
    size = batch_size or len(rows)
    async with transaction(using=using or "default"):
        for start in range(0, len(rows), size):
            await adapter.run_execute_many(sql, rows[start:start + size])
    return len(objs)
