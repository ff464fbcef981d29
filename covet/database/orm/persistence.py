"""Writing rows: INSERT, UPDATE and DELETE for instances and QuerySets, and the bulk operations.

Barrier: builds write-statement trees from validated values and runs them on the adapter; never
writes SQL text. Multi-statement operations (``bulk_create``) run inside one transaction, so a
failure leaves nothing half-written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

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


async def _adapter(alias: str | None) -> Any:
    from covet.database.connections import get_adapter

    return await get_adapter(alias or "default")


def _insert_fields(obj: Model) -> list[Field[Any]]:
    pk = obj._meta.pk
    return [f for f in obj._meta.fields
            if not (f is pk and f.auto_created and obj.__dict__.get(f.attname) is None)]


async def insert(obj: Model, using: str | None) -> None:
    adapter = await _adapter(using)
    dialect = adapter.dialect
    meta = obj._meta
    fields = _insert_fields(obj)
    params = [f.to_db(obj.__dict__.get(f.attname), dialect) for f in fields]
    row = tuple(("param", i + 1) for i in range(len(fields)))
    returning = (meta.pk.column,) if meta.pk not in fields else ()
    tree = ("insert", meta.db_table, tuple(f.column for f in fields), (row,), returning)
    sql = compile_sql(tree, dialect)
    if returning:
        rows = await adapter.run_fetch(sql, params)
        obj.__dict__[meta.pk.attname] = rows[0][0]
    else:
        await adapter.run_execute(sql, params)


async def update(obj: Model, fields: Sequence[Field[Any]], using: str | None) -> int:
    if not fields:
        return 0
    adapter = await _adapter(using)
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
    adapter = await _adapter(using)
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
    adapter = await _adapter(qs._using)
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
    adapter = await _adapter(qs._using)
    where, params = qs._where_pk_subquery(adapter.dialect)
    tree = ("delete", qs.model._meta.db_table, where)
    count: int = await adapter.run_execute(compile_sql(tree, adapter.dialect), params)
    return count


def _prepare_for_insert(model: type[Model], objs: list[Any]) -> None:
    stamp = now()
    errors: dict[str, list[str]] = {}
    for i, obj in enumerate(objs):
        if not isinstance(obj, model):
            raise TypeError(f"bulk_create() of {model.__name__} got a {type(obj).__name__}")
        for field in model._meta.fields:
            if isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add) \
                    and obj.__dict__.get(field.attname) is None:
                obj.__dict__[field.attname] = stamp
        try:
            obj.full_clean()
        except ValidationError as exc:
            for key, msgs in exc.errors.items():
                errors.setdefault(f"[{i}] {key}", []).extend(msgs)
    if errors:
        raise ValidationError(errors)


async def bulk_create(model: type[Model], objs: list[Any], batch_size: int | None,
                      progress: Callable[[int, int], None] | None, using: str | None) -> list[Any]:
    from covet.database.transaction import transaction

    if not objs:
        return objs
    _prepare_for_insert(model, objs)
    adapter = await _adapter(using)
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
            for start in range(0, len(group), size):
                batch = group[start:start + size]
                params: list[Any] = []
                rows = []
                for obj in batch:
                    base = len(params)
                    params.extend(f.to_db(obj.__dict__.get(f.attname), dialect) for f in fields)
                    rows.append(tuple(("param", base + j + 1) for j in range(len(fields))))
                if not fields:  # only an automatic key: one DEFAULT VALUES insert per object
                    for obj in batch:
                        empty: Any = ("insert", meta.db_table, (), ((),), returning)
                        res = await adapter.run_fetch(compile_sql(empty, dialect), [])
                        obj.__dict__[pk.attname] = res[0][0]
                else:
                    tree = ("insert", meta.db_table, tuple(f.column for f in fields),
                            tuple(rows), returning)
                    sql = compile_sql(tree, dialect)
                    if returning:
                        res = await adapter.run_fetch(sql, params)
                        # Keys of one multi-row INSERT are increasing in VALUES order.
                        for obj, key in zip(batch, sorted(r[0] for r in res)):
                            obj.__dict__[pk.attname] = key
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
    adapter = await _adapter(using)
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
