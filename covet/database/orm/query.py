"""``QuerySet``: a lazy, immutable description of a query over one model.

Barrier: a QuerySet holds *intents* (filters, ordering, limits, annotations, what to return) and
never SQL. Every method returns a clone. Awaiting it (or a terminal coroutine such as ``count()``)
asks the builder for a tree, the compiler for SQL text and the adapter for rows, then decodes them.

``from covet.database.orm.query import Q, F`` is the import path the migration guide uses.
"""

from __future__ import annotations

import datetime as dt
from contextlib import aclosing
from decimal import Decimal
from uuid import UUID
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from covet.database.connections import adapter_for
from covet.database.exceptions import FieldError, IntegrityError
from covet.database.orm import relationships as _relationships
from covet.database.orm.aggregates import Aggregate
from covet.database.orm.expressions import Expression, F, Q, Value
from covet.database.orm.hydrate import RowPlan, model_columns
from covet.database.orm.sql import compile_sql
from covet.database.orm.sql.build import Builder
from covet.database.orm.sql.tree import Node, and_, select

if TYPE_CHECKING:
    from covet.database.adapters.base import Adapter
    from covet.database.orm.models import Model

__all__ = ["QuerySet", "Q", "F", "Value", "CompiledQuery", "RawQuerySet", "Prefetch"]

T = TypeVar("T")
M = TypeVar("M", bound="Model")


class CompiledQuery(NamedTuple):
    """The SQL text and the parameters a QuerySet would send (``qs.sql()``)."""

    sql: str
    params: list[Any]

    def __str__(self) -> str:
        return f"{self.sql}  -- params: {self.params!r}"


class Prefetch:
    """``prefetch_related(Prefetch('posts', queryset=Post.objects.filter(...), to_attr='x'))``."""

    def __init__(self, lookup: str, queryset: QuerySet[Any] | None = None,
                 to_attr: str | None = None) -> None:
        self.lookup = lookup
        self.queryset = queryset
        self.to_attr = to_attr

    def __repr__(self) -> str:
        return f"Prefetch({self.lookup!r}, to_attr={self.to_attr!r})"


#: The adapter of an alias, without I/O: it opens its pool on the first statement.
_adapter: Callable[[str], Adapter] = adapter_for


def _dialect(alias: str) -> str:
    return adapter_for(alias).dialect


_PREPARED: dict[Any, tuple[str, tuple[Any, ...], RowPlan]] = {}
#: how many rows ``iterator()`` decodes at a time (see ``QuerySet.iterator``)
_STREAM_SLICE = 64
_PREPARED_MAX = 2048


#: value types that never change a query's SQL text (what _q_shape calls kind 1), checked first
_SCALARS = frozenset({int, str, float, bytes, Decimal, dt.datetime, dt.date, dt.time, UUID})


def _q_shape(q: Q) -> tuple[Any, ...] | None:
    """A Q's structure with each value reduced to what changes the SQL text."""
    out: list[Any] = []
    for child in q.children:
        if isinstance(child, Q):
            shape = _q_shape(child)
            if shape is None:
                return None
            out.append(shape)
            continue
        key, value = child
        if type(value) in _SCALARS:
            kind: Any = 1
        elif value is None:
            kind = 0
        elif isinstance(value, bool):  # x__isnull=True and =False are different SQL
            kind = ("b", value)
        elif isinstance(value, Expression) or hasattr(value, "_as_subquery"):
            return None
        elif isinstance(value, (list, tuple, set, frozenset)):
            kind = ("n", sum(1 for v in value if v is not None))
        else:
            kind = 1
        out.append((key, kind))
    return (q.connector, q.negated, tuple(out))


def _bind(steps: Sequence[Any], values: Sequence[Any], dialect: str) -> list[Any]:
    """The parameters of a prepared shape: each filter value validated and converted by the
    (field, lookup) its recipe step names (None: a value that is not a parameter)."""
    params: list[Any] = []
    for step, value in zip(steps, values):
        if step is not None:
            field, lookup = step
            if type(value) not in _SCALARS and hasattr(value, "_meta"):
                value = value.pk
            params.extend(lookup.param_values(field, lookup.prepare(field, value), dialect))
    return params


def _remember_db(objs: list[Any], plan: RowPlan, alias: str) -> None:
    """Instances loaded from a non-default alias keep it: their saves, relation managers and
    lazy loads go to the same database."""
    for obj in objs:
        obj.__dict__["_db"] = alias
        for cache_name, _, sub in plan.related:
            related = obj.__dict__.get(cache_name)
            if related is not None:
                _remember_db([related], sub, alias)


class QuerySet(Generic[T]):
    """A lazy query; ``await qs`` runs it and returns a list."""

    __slots__ = ("model", "_filters", "_order", "_limit", "_offset", "_distinct", "_mode",
                 "_fields", "_annotations", "_select_related", "_prefetch", "_using",
                 "_values_at")

    def __init__(self, model: type[Model], using: str = "default") -> None:
        self.model = model
        self._filters: tuple[Q, ...] = ()
        self._order: tuple[str, ...] | None = None
        self._limit: int | None = None
        self._offset: int | None = None
        self._distinct = False
        self._mode = "model"
        self._fields: tuple[str, ...] = ()
        #: (name, expression, how many filter() calls came before the annotate() call)
        self._annotations: tuple[tuple[str, Any, int], ...] = ()
        self._select_related: tuple[str, ...] = ()
        self._prefetch: tuple[Any, ...] = ()
        self._using = using
        #: how many annotations existed when values() was called: later ones join its rows
        self._values_at = 0

    def _chain(self, **changes: Any) -> Any:
        qs = object.__new__(type(self))
        qs.model = self.model
        qs._filters = self._filters
        qs._order = self._order
        qs._limit = self._limit
        qs._offset = self._offset
        qs._distinct = self._distinct
        qs._mode = self._mode
        qs._fields = self._fields
        qs._annotations = self._annotations
        qs._select_related = self._select_related
        qs._prefetch = self._prefetch
        qs._using = self._using
        qs._values_at = self._values_at
        for key, value in changes.items():
            setattr(qs, key, value)
        return qs

    # building intents -------------------------------------------------------------------
    def all(self) -> QuerySet[T]:
        return self._chain()

    def filter(self, *args: Q, **kwargs: Any) -> QuerySet[T]:
        """Rows matching every condition (``age__gt=18``, ``Q(a=1) | Q(b=2)``)."""
        if not args and not kwargs:
            return self._chain()
        return self._chain(_filters=self._filters + (Q(*args, **kwargs),))

    def exclude(self, *args: Q, **kwargs: Any) -> QuerySet[T]:
        """Rows not matching the conditions (NULLs kept, as in Django)."""
        return self._chain(_filters=self._filters + (~Q(*args, **kwargs),))

    def order_by(self, *fields: str) -> QuerySet[T]:
        """Sort by fields; ``-field`` is descending, ``'?'`` is random."""
        return self._chain(_order=tuple(fields))

    def limit(self, n: int) -> QuerySet[T]:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"limit() takes a non-negative integer, not {n!r}")
        return self._chain(_limit=n)

    def offset(self, n: int) -> QuerySet[T]:
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"offset() takes a non-negative integer, not {n!r}")
        return self._chain(_offset=n)

    def distinct(self) -> QuerySet[T]:
        return self._chain(_distinct=True)

    def using(self, alias: str) -> QuerySet[T]:
        return self._chain(_using=alias)

    def values(self, *fields: str) -> QuerySet[dict[str, Any]]:
        """Rows as dicts of the named fields (all fields when none are named)."""
        return self._chain(_mode="dict", _fields=tuple(fields),
                           _values_at=len(self._annotations))

    def values_list(self, *fields: str, flat: bool = False) -> QuerySet[Any]:
        """Rows as tuples; ``flat=True`` with one field gives the bare values."""
        if flat and len(fields) != 1:
            raise TypeError("values_list(flat=True) takes exactly one field")
        return self._chain(_mode="flat" if flat else "tuple", _fields=tuple(fields),
                           _values_at=len(self._annotations))

    def annotate(self, *args: Aggregate, **kwargs: Any) -> QuerySet[T]:
        """Add computed values: aggregates per row (or per group after ``values()``)."""
        new = list(self._annotations)
        before = len(self._filters)
        named: list[tuple[str, Any]] = []
        for agg in args:
            if not isinstance(agg, Aggregate):
                raise TypeError("positional arguments to annotate() must be aggregates")
            named.append((agg.default_alias, agg))
        named += list(kwargs.items())
        meta = self.model._meta
        for name, expr in named:
            if not isinstance(expr, Expression):
                expr = Value(expr)
            if name in meta.fields_map or name in meta.relations or name == "pk":
                raise FieldError(f"annotation {name!r} clashes with the field or relation "
                                 f"{self.model.__name__}.{name}; choose another name")
            new.append((name, expr, before))
        return self._chain(_annotations=tuple(new))

    def select_related(self, *fields: str) -> QuerySet[T]:
        """Load related objects in the same query (a JOIN) or, for reverse and many-to-many
        relations, in one extra query each."""
        return self._chain(_select_related=self._select_related + fields)

    def prefetch_related(self, *lookups: str | Prefetch) -> QuerySet[T]:
        """Load related objects with one extra query per relation level."""
        return self._chain(_prefetch=self._prefetch + lookups)

    def __getitem__(self, key: Any) -> QuerySet[T]:
        if isinstance(key, slice):
            if key.step not in (None, 1):
                raise ValueError("QuerySet slices do not support a step")
            start = key.start or 0
            if start < 0 or (key.stop is not None and key.stop < 0):
                raise ValueError("QuerySet slices do not support negative indexes")
            # Slicing a slice narrows it, like slicing a list (Django).
            offset = (self._offset or 0) + start
            limit = None if key.stop is None else max(0, key.stop - start)
            if self._limit is not None:
                left = max(0, self._limit - start)
                limit = left if limit is None else min(limit, left)
            return self._chain(_offset=offset or None, _limit=limit)
        raise TypeError(
            f"QuerySets are lazy and cannot be indexed; use 'await qs.first()', "
            f"'await qs.offset({key!r}).first()' or '(await qs)[{key!r}]'"
        )

    # building the tree ------------------------------------------------------------------
    def _annotate_builder(self, b: Builder) -> dict[str, Any]:
        from covet.database.orm.sql.joins import annotation_node

        convs: dict[str, Any] = {}
        group = self._mode != "model" and bool(self._fields)
        for i, (name, expr, before) in enumerate(self._annotations):
            # Annotations made before values() are per object; later ones are per group.
            node, field, is_agg, conv = annotation_node(
                b, expr, grouped=group and i >= self._values_at, qs=self, before=before)
            b.annotations[name] = (node, field, is_agg)
            convs[name] = conv
        return convs

    def _where(self, b: Builder) -> tuple[Node | None, Node | None]:
        from covet.database.orm.sql.joins import has_multi_aggregate, semi_join

        where: list[Node] = []
        having: list[Node] = []
        # With annotations over multi-valued relations, a filter() across such a relation
        # chooses objects (pk IN ...) instead of joining rows that would repeat them.
        semi = self._mode == "model" and has_multi_aggregate(self)
        for i, q in enumerate(self._filters):
            b.scope = i
            heads = [k.split("__", 1)[0] for k, _ in q.leaves()]
            uses_agg = any(h in b.annotations and b.annotations[h][2] for h in heads)
            uses_ann = any(h in b.annotations for h in heads)
            if semi and not uses_ann and any(b.is_multi(k) for k, _ in q.leaves()):
                node = semi_join(b, q)
            else:
                node = b.where(q)
            (having if uses_agg else where).append(node)
        b.scope = 0

        def combine(nodes: list[Node]) -> Node | None:
            if not nodes:
                return None
            return and_(*nodes)

        return combine(where), combine(having)

    def _build(self, dialect: str, params: list[Any] | None = None,
               counter: list[int] | None = None) -> tuple[Node, list[Any], RowPlan]:
        if _relationships._pending:
            _relationships.finalize_pending()
        b = Builder(self.model, dialect, params, counter)
        return self._build_with(b)

    def _build_with(self, b: Builder) -> tuple[Node, list[Any], RowPlan]:
        model = self.model
        meta = model._meta
        convs = self._annotate_builder(b)
        where, having = self._where(b)
        columns: list[tuple[Node, str | None]] = []
        group_by: tuple[Node, ...] = ()
        has_agg = any(v[2] for v in b.annotations.values())
        if self._mode == "model":
            names, conv_pairs = model_columns(model, b.dialect)
            converters = list(conv_pairs)
            columns = [(("col", b.alias, f.column), None) for f in meta.fields]
            if has_agg:
                group_by = tuple(c for c, _ in columns)
            names_l = list(names)
            for name, *_ in self._annotations:
                if convs[name] is not None:
                    converters.append((len(columns), convs[name]))
                columns.append((b.annotations[name][0], name))
                names_l.append(name)
            from covet.database.orm.sql.joins import select_related_plan

            related = select_related_plan(b, self._select_related, columns, converters)
            plan = RowPlan("model", names_l, converters, model=model, related=related)
        else:
            fields = self._fields or tuple(f.attname for f in meta.fields) + tuple(
                n for n, *_ in self._annotations)
            converters = []
            keys = []
            value_nodes = []
            for i, name in enumerate(fields):
                if name in b.annotations:
                    node = b.annotations[name][0]
                    conv = convs[name]
                else:
                    r = b.resolve(name, allow_relation_end=True)
                    if r.rest:
                        raise FieldError(f"values({name!r}): {r.rest[0]!r} is not a field of "
                                         f"{r.model.__name__}")
                    node = r.node
                    conv = r.field.from_db_converter(b.dialect) if r.field is not None else None
                    value_nodes.append(node)
                if conv is not None:
                    converters.append((i, conv))
                columns.append((node, name))
                keys.append(name)
            if self._fields and self._mode != "flat":
                extra = [n for n, *_ in self._annotations[self._values_at:] if n not in fields]
                for name in extra:  # annotations not named in values() still come along
                    if convs[name] is not None:
                        converters.append((len(columns), convs[name]))
                    columns.append((b.annotations[name][0], name))
                    keys.append(name)
            if has_agg:
                group_by = tuple(value_nodes) if self._fields else tuple(
                    ("col", b.alias, f.column) for f in meta.fields)
            plan = RowPlan(self._mode, keys, converters)
        if self._order is not None:
            order_names = self._order
        elif has_agg or (self._distinct and self._mode != "model"):
            order_names = ()  # Meta.ordering does not apply to groupings or distinct values
        else:
            order_names = tuple(meta.ordering)
        order = b.order(order_names)
        limit = b.param(self._limit) if self._limit is not None else None
        offset = b.param(self._offset) if self._offset else None
        tree = select(
            tuple(columns), ("table", meta.db_table, None if b.alias == meta.db_table else b.alias),
            distinct=self._distinct, joins=tuple(b.joins), where=where, group_by=group_by,
            having=having, order_by=order, limit=limit, offset=offset,
        )
        return tree, b.params, plan

    def _as_subquery(self, b: Builder) -> Node:
        """This QuerySet as ``IN (subquery)``: one column (the primary key by default)."""
        qs = self
        if qs._mode == "model":
            qs = qs._chain(_mode="flat", _fields=("pk",))
        elif len(qs._fields) != 1:
            raise FieldError("a QuerySet used with __in must select exactly one field: use "
                             "values_list('field', flat=True)")
        child = b.child(qs.model)
        tree, _, _ = qs._build_with(child)
        return tree

    def _shape(self, dialect: str) -> tuple[Any, ...] | None:
        """What determines this query's SQL text (not its values), or None when a part of it
        (annotations, expressions, subqueries) is not worth caching."""
        if self._annotations:
            return None
        filters = []
        for q in self._filters:
            shape = _q_shape(q)
            if shape is None:
                return None
            filters.append(shape)
        return (self.model, dialect, self._mode, self._fields, tuple(filters), self._order,
                self._limit is not None, bool(self._offset), self._distinct,
                self._select_related)

    def _prepared(self, dialect: str) -> tuple[str, list[Any], RowPlan]:
        """SQL, parameters and row plan; a query shape seen before only rebinds its values."""
        key = self._shape(dialect)
        entry = _PREPARED.get(key) if key is not None else None
        if entry is None:
            recipe: list[Any] | None = [] if key is not None else None
            if _relationships._pending:
                _relationships.finalize_pending()
            tree, params, plan = self._build_with(Builder(self.model, dialect, recipe=recipe))
            sql = compile_sql(tree, dialect)
            if key is not None and recipe is not None:
                if len(_PREPARED) >= _PREPARED_MAX:
                    _PREPARED.clear()
                _PREPARED[key] = (sql, tuple(recipe), plan)
            return sql, params, plan
        sql, steps, plan = entry
        params = _bind(steps, [v for q in self._filters for _, v in q.leaves()], dialect)
        if self._limit is not None:
            params.append(self._limit)
        if self._offset:
            params.append(self._offset)
        return sql, params, plan

    def sql(self) -> CompiledQuery:
        """The SQL and parameters this QuerySet sends, without running anything."""
        sql, params, _ = self._prepared(_dialect(self._using))
        return CompiledQuery(sql, params)

    def __repr__(self) -> str:
        try:
            text = self.sql().sql
        except Exception as exc:  # noqa: BLE001 - repr must not raise
            text = f"<cannot build: {exc}>"
        return f"<QuerySet {self.model.__name__}: {text}>"

    # running ----------------------------------------------------------------------------
    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._fetch_all().__await__()

    async def _fetch_all(self) -> list[T]:
        adapter = _adapter(self._using)
        sql, params, plan = self._prepared(adapter.dialect)
        rows = await adapter.run_fetch(sql, params)
        results = plan.decode(rows)
        if self._using != "default" and self._mode == "model":
            _remember_db(results, plan, self._using)
        if self._select_related or self._prefetch:
            await self._after_fetch(results)
        return results

    async def _after_fetch(self, results: list[Any]) -> None:
        if not (self._select_related or self._prefetch) or self._mode != "model" or not results:
            return
        from covet.database.orm.prefetch import prefetch_objects
        from covet.database.orm.sql.joins import split_select_related

        _, reverse = split_select_related(self.model, self._select_related)
        lookups = list(reverse) + list(self._prefetch)
        if lookups:
            await prefetch_objects(results, lookups)

    async def __aiter__(self) -> AsyncIterator[T]:
        async with aclosing(self.iterator()) as rows:
            async for obj in rows:
                yield obj

    async def iterator(self, chunk_size: int = 2000) -> AsyncGenerator[T, None]:
        """Stream results in chunks (a server-side cursor on PostgreSQL)."""
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        adapter = _adapter(self._using)
        sql, params, plan = self._prepared(adapter.dialect)
        # aclosing: the cursor's connection goes back to the pool as soon as the caller stops.
        # Without anything to prefetch per chunk, rows are decoded a slice at a time, so that a
        # chunk's objects never all exist at once: streaming holds about what the driver holds.
        related = bool(self._select_related or self._prefetch)
        step = chunk_size if related else _STREAM_SLICE
        remember = self._using != "default" and self._mode == "model"
        async with aclosing(adapter.run_iterate(sql, params, chunk_size)) as chunks:
            async for rows in chunks:
                # decode_slices releases each driver row once its object exists (the chunk
                # list is ours: the adapter made it for this iteration).
                for results in plan.decode_slices(rows, step):
                    if remember:
                        _remember_db(results, plan, self._using)
                    if related:
                        await self._after_fetch(results)
                    for obj in results:
                        yield obj

    async def get(self, *args: Q, **kwargs: Any) -> T:
        """The one row matching; raises ``Model.DoesNotExist`` / ``MultipleObjectsReturned``."""
        prepared = self._get_prepared(kwargs) if not args and kwargs else None
        if prepared is not None:
            adapter, sql, params, plan = prepared
            rows = plan.decode(await adapter.run_fetch(sql, params))
            if self._using != "default":
                _remember_db(rows, plan, self._using)
        else:
            filters = self._filters + (Q(*args, **kwargs),) if (args or kwargs) else self._filters
            if self._limit is None and not self._offset:
                qs = self._chain(_filters=filters, _limit=2, _order=())
            else:
                qs = self._chain(_filters=filters)
            rows = await qs._fetch_all()
        if len(rows) == 1:
            return rows[0]
        desc = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        if not rows:
            raise self.model.DoesNotExist(
                f"{self.model.__name__} matching query does not exist ({desc or 'no filters'})")
        raise self.model.MultipleObjectsReturned(
            f"get() returned more than one {self.model.__name__} ({desc or 'no filters'}); "
            f"use filter() or first()")

    def _get_prepared(
        self, kwargs: dict[str, Any]
    ) -> tuple[Adapter, str, list[Any], RowPlan] | None:
        """``get(**kwargs)`` of a plain QuerySet (``Model.objects.get(pk=1)``) whose shape was
        prepared before: adapter, SQL, parameters and row plan, without building the filtered
        QuerySet. None otherwise.

        The key is what :meth:`_shape` gives for ``self.filter(**kwargs)`` with ``LIMIT 2`` and
        no ordering, so the entry is the one the general path made and keeps using.
        """
        if (self._filters or self._annotations or self._mode != "model" or self._limit is not None
                or self._offset or self._distinct or self._select_related or self._prefetch):
            return None
        names = sorted(kwargs)
        values = [kwargs[name] for name in names]
        for value in values:
            if type(value) not in _SCALARS:
                return None
        adapter = _adapter(self._using)
        dialect = adapter.dialect
        entry = _PREPARED.get((self.model, dialect, "model", (),
                               (("AND", False, tuple([(name, 1) for name in names])),),
                               (), True, False, False, ()))
        if entry is None:
            return None
        sql, steps, plan = entry
        params = _bind(steps, values, dialect)
        params.append(2)
        return adapter, sql, params, plan

    def _unordered(self) -> QuerySet[T]:
        """The same rows without ORDER BY, unless a limit or offset makes the order matter."""
        if self._limit is not None or self._offset:
            return self
        return self._chain(_order=())

    def _ordered(self, reverse: bool) -> QuerySet[T]:
        order = self._order if self._order is not None else tuple(self.model._meta.ordering)
        if not order:
            order = ("pk",)
        if reverse:
            order = tuple(o[1:] if o.startswith("-") else "-" + o for o in order if o != "?")
        return self._chain(_order=order)

    async def first(self) -> T | None:
        """The first row (by the ordering, else by primary key), or None."""
        rows = await self._ordered(False)._chain(_limit=1)
        return rows[0] if rows else None

    async def last(self) -> T | None:
        """The last row (by the ordering, else by primary key), or None."""
        rows = await self._ordered(True)._chain(_limit=1)
        return rows[0] if rows else None

    async def count(self) -> int:
        adapter = _adapter(self._using)
        tree, params = self._count_tree(adapter.dialect)
        rows = await adapter.run_fetch(compile_sql(tree, adapter.dialect), params)
        return int(rows[0][0])

    def _count_tree(self, dialect: str) -> tuple[Node, list[Any]]:
        count_star: Node = ("func", "COUNT", (("star",),), False)
        needs_sub = (self._distinct or self._limit is not None or self._offset
                     or bool(self._annotations))
        if needs_sub:
            inner, params, _ = self._unordered()._build(dialect)
            return select(((count_star, None),), ("subquery", inner, "subquery")), params
        b = Builder(self.model, dialect)
        where, _ = self._where(b)
        tree = select(((count_star, None),), ("table", self.model._meta.db_table, None),
                      joins=tuple(b.joins), where=where)
        return tree, b.params

    async def exists(self) -> bool:
        adapter = _adapter(self._using)
        b = Builder(self.model, adapter.dialect)
        if self._annotations or self._limit is not None or self._offset or self._distinct:
            inner, params, _ = self._unordered()._build(adapter.dialect)
            tree = select(((("int", 1), "a"),), ("subquery", inner, "subquery"),
                          limit=("param", len(params) + 1))
            params = params + [1]
        else:
            where, _ = self._where(b)
            tree = select(((("int", 1), "a"),), ("table", self.model._meta.db_table, None),
                          joins=tuple(b.joins), where=where, limit=b.param(1))
            params = b.params
        rows = await adapter.run_fetch(compile_sql(tree, adapter.dialect), params)
        return bool(rows)

    async def aggregate(self, *args: Aggregate, **kwargs: Aggregate) -> dict[str, Any]:
        """Aggregate over the rows: ``aggregate(Avg('age'))`` -> ``{'age__avg': ...}``."""
        named: list[tuple[str, Aggregate]] = [(a.default_alias, a) for a in args]
        named += list(kwargs.items())
        for name, agg in named:
            if not isinstance(agg, Aggregate):
                raise TypeError(f"aggregate({name}=...) takes an aggregate such as Count('id')")
        if not named:
            raise TypeError("aggregate() needs at least one aggregate")
        adapter = _adapter(self._using)
        dialect = adapter.dialect
        from covet.database.orm.sql.joins import aggregate_subqueries, multi_roots

        if any(multi_roots(self.model, agg) for _, agg in named):
            # Over multi-valued relations: each aggregate is its own subquery over the chosen
            # rows, so no relation multiplies another's rows.
            tree, params, convs = aggregate_subqueries(self, named, dialect)
            rows = await adapter.run_fetch(compile_sql(tree, dialect), params)
            return {name: (conv(v) if conv is not None and v is not None else v)
                    for (name, _), conv, v in zip(named, convs, rows[0])}
        if self._limit is not None or self._offset or self._distinct or self._annotations:
            inner_qs = self._unordered()
            inner, params, _ = inner_qs._build(dialect)
            b = Builder(self.model, dialect, params, alias="subquery")
            for name, *_ in self._annotations:  # aggregate(Max('n')) over annotate(n=...)
                b.annotations[name] = (("col", "subquery", name), None, False)
            from_: Node = ("subquery", inner, "subquery")
        else:
            b = Builder(self.model, dialect)
            from_ = ("table", self.model._meta.db_table, None)
        where, _ = (None, None) if from_[0] == "subquery" else self._where(b)
        columns = []
        convs = []
        for name, agg in named:
            columns.append((b.aggregate(agg), name))
            convs.append(b.aggregate_converter(agg))
        tree = select(tuple(columns), from_, joins=tuple(b.joins), where=where)
        rows = await adapter.run_fetch(compile_sql(tree, dialect), b.params)
        row = rows[0]
        return {name: (conv(v) if conv is not None and v is not None else v)
                for (name, _), conv, v in zip(named, convs, row)}

    async def update(self, **kwargs: Any) -> int:
        """UPDATE the matching rows; values are validated, ``F('x') + 1`` works. Returns the count."""
        from covet.database.orm import persistence

        return await persistence.update_queryset(self, kwargs)

    async def delete(self) -> int:
        """DELETE the matching rows; returns how many were deleted."""
        from covet.database.orm import persistence

        return await persistence.delete_queryset(self)

    def _where_pk_subquery(self, dialect: str) -> tuple[Node | None, list[Any]]:
        """A WHERE for UPDATE/DELETE: plain when no joins are needed, else ``pk IN (...)``."""
        if not self._annotations:
            b = Builder(self.model, dialect)
            where, having = self._where(b)
            if not b.joins and having is None and self._limit is None and not self._offset:
                return where, b.params
        inner, params, _ = self._unordered()._chain(_mode="flat", _fields=("pk",))._build(dialect)
        pk = self.model._meta.pk
        return ("in", ("col", self.model._meta.db_table, pk.column), inner, False), params

    async def in_bulk(self, id_list: Iterable[Any] | None = None, *,
                      field_name: str = "pk") -> dict[Any, T]:
        """``{value: object}`` for the given values of ``field_name`` (all rows when None)."""
        qs = self if id_list is None else self.filter(**{f"{field_name}__in": list(id_list)})
        attname = self.model._meta.get_field(field_name).attname
        return {obj.__dict__[attname]: obj for obj in await qs}

    async def get_or_create(self, defaults: dict[str, Any] | None = None,
                            **kwargs: Any) -> tuple[T, bool]:
        """Get the matching row, or create it from ``kwargs`` and ``defaults``."""
        from covet.database.transaction import transaction

        try:
            return await self.get(**kwargs), False
        except self.model.DoesNotExist:
            pass
        params = {k: v for k, v in kwargs.items() if "__" not in k}
        params.update(defaults or {})
        try:
            async with transaction(using=self._using):
                obj = self.model(**params)
                await obj.save(force_insert=True, using=self._using)
            return obj, True  # type: ignore[return-value]
        except IntegrityError:
            # Somebody else created it meanwhile; any other constraint failure is the caller's.
            try:
                return await self.get(**kwargs), False
            except self.model.DoesNotExist:
                pass
            raise

    async def update_or_create(self, defaults: dict[str, Any] | None = None,
                               **kwargs: Any) -> tuple[T, bool]:
        """Update the matching row with ``defaults``, or create it."""
        from covet.database.transaction import transaction

        async with transaction(using=self._using):
            try:
                obj: Any = await self.get(**kwargs)
            except self.model.DoesNotExist:
                obj, created = await self.get_or_create(defaults, **kwargs)
                if not created:
                    for key, value in (defaults or {}).items():
                        setattr(obj, key, value)
                    await obj.save()
                return obj, created
            for key, value in (defaults or {}).items():
                setattr(obj, key, value)
            await obj.save(update_fields=list(defaults or {}) or None)
            return obj, False

    async def bulk_create(self, objs: Iterable[Any], batch_size: int | None = None, *,
                          progress: Callable[[int, int], None] | None = None) -> list[Any]:
        """INSERT many objects in batches, atomically; primary keys are set on the objects."""
        from covet.database.orm import persistence

        return await persistence.bulk_create(self.model, list(objs), batch_size, progress,
                                             self._using)

    async def bulk_update(self, objs: Iterable[Any], fields: Sequence[str],
                          batch_size: int | None = None) -> int:
        """UPDATE the given fields of many objects (one statement per object, pipelined)."""
        from covet.database.orm import persistence

        return await persistence.bulk_update(self.model, list(objs), fields, batch_size,
                                             self._using)

    def raw(self, sql: str, params: Sequence[Any] | None = None) -> RawQuerySet[T]:
        """Instances from your own SQL (``$1`` placeholders on every database)."""
        return RawQuerySet(self.model, sql, list(params or ()), self._using)

    async def explain(self, analyze: bool = False) -> Any:
        """The database's plan for this query (``EXPLAIN QUERY PLAN`` / ``EXPLAIN (FORMAT JSON)``)."""
        adapter = _adapter(self._using)
        tree, params, _ = self._build(adapter.dialect)
        return await adapter.explain(compile_sql(tree, adapter.dialect), params, analyze=analyze)


class RawQuerySet(Generic[T]):
    """``Model.objects.raw(sql, params)``: awaiting it returns model instances."""

    def __init__(self, model: type[Model], sql: str, params: list[Any], using: str) -> None:
        self.model = model
        self.raw_sql = sql
        self.params = params
        self._using = using

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self._fetch().__await__()

    async def _fetch(self) -> list[T]:
        adapter = _adapter(self._using)
        rows = await adapter.fetch(self.raw_sql, self.params)
        meta = self.model._meta
        by_column = {f.column: f for f in meta.fields}
        by_column.update({f.attname: f for f in meta.fields})
        out = []
        for row in rows:
            values: dict[str, Any] = {}
            for key, value in row.items():
                field = by_column.get(key)
                if field is None:
                    values[key] = value
                    continue
                conv = field.from_db_converter(adapter.dialect)
                values[field.attname] = conv(value) if conv is not None and value is not None else value
            out.append(self.model._from_db(values))
        return out  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"<RawQuerySet {self.model.__name__}: {self.raw_sql} params={self.params!r}>"

