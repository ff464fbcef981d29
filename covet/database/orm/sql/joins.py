"""Relation-spanning pieces of a SELECT: ``select_related`` joins, annotations over relations
(correlated subqueries) and negated filters over multi-valued relations (``pk IN (subquery)``).

Barrier: like ``build.py``, produces tree nodes only; it decides *how* a relation is reached so
that several multi-valued annotations never multiply each other's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from covet.database.exceptions import FieldError
from covet.database.orm.aggregates import Aggregate
from covet.database.orm.expressions import Expression, Value
from covet.database.orm.fields.base import Converter, Field
from covet.database.orm.hydrate import RowPlan, model_columns
from covet.database.orm.sql.build import Builder, _check_resolved, multi_root
from covet.database.orm.sql.tree import Node, and_, select

__all__ = ["annotation_node", "select_related_plan", "split_select_related", "correlated_exists",
           "multi_root", "multi_roots", "semi_join", "has_multi_aggregate", "aggregate_subqueries"]


def multi_roots(model: Any, agg: Aggregate) -> set[str]:
    """The multi-valued relation roots an aggregate's paths (source and filter) go through."""
    return {r for r in (multi_root(model, p) for p in agg.field_names()) if r is not None}


def has_multi_aggregate(qs: Any) -> bool:
    return any(isinstance(e, Aggregate) and multi_roots(qs.model, e)
               for _, e, _ in qs._annotations)


def semi_join(b: Builder, q: Any) -> Node:
    """One filter() call as ``pk IN (SELECT pk ... WHERE <q>)``: its conditions still apply to
    the same related row, and the outer rows are not repeated."""
    child = b.child(b.model)
    cond = child.where(q)
    pk = b.model._meta.pk.column
    sub = select(((("col", child.alias, pk), None),), ("table", b.model._meta.db_table, None),
                 joins=tuple(child.joins), where=cond)
    return ("in", ("col", b.alias, pk), sub, False)


def _chosen_rows(qs: Any, child: Builder) -> Node | None:
    """``child.pk IN (the rows qs chooses)``, or None when qs chooses every row."""
    plain = [q for q in qs._filters
             if not any(k.split("__", 1)[0] in {n for n, *_ in qs._annotations}
                        for k, _ in q.leaves())]
    if not plain and qs._limit is None and not qs._offset:
        return None
    base = qs._chain(_filters=tuple(plain), _annotations=(), _select_related=(),
                     _prefetch=(), _mode="model", _fields=(), _distinct=False)
    base = base._unordered()
    pk = qs.model._meta.pk.column
    return ("in", ("col", child.alias, pk), base._as_subquery(child), False)


def _related_filters(qs: Any, child: Builder, roots: set[str], before: int) -> list[Node]:
    """Conditions of filter() calls made before annotate() that go through the aggregate's
    relation: as in Django, they restrict the related rows the aggregate sees."""
    out = []
    for q in qs._filters[:before]:
        keys = [k for k, _ in q.leaves()]
        if keys and all(multi_root(qs.model, k) in roots for k in keys):
            out.append(child.where(q))
    return out


def annotation_node(b: Builder, expr: Any, *, grouped: bool, qs: Any, before: int
                    ) -> tuple[Node, Field[Any] | None, bool, Converter | None]:
    """Resolve one annotation: (node, output field, is a GROUP BY aggregate, converter)."""
    if isinstance(expr, Aggregate):
        roots = multi_roots(b.model, expr)
        source = None if expr.source == "*" else expr.source
        if not roots:
            node = b.aggregate(expr)
            field = b.output_field(source) if source is not None else None
            return node, field, True, b.aggregate_converter(expr)
        # A correlated subquery: no relation multiplies the rows another one counts.
        child = b.child(b.model, correlated=True)
        inner = child.aggregate(expr)
        conv = child.aggregate_converter(expr)
        field = child.output_field(source) if source is not None else None
        pk = b.model._meta.pk.column
        conds: list[Node]
        if grouped:
            # One value per group: correlate on the grouped values (NULL-safe).
            names = {n for n, *_ in qs._annotations}
            conds = [("same", child.resolve(p).node, b.resolve(p).node)
                     for p in qs._fields if p not in names]
            chosen = _chosen_rows(qs, child)
            if chosen is not None:
                conds.append(chosen)
            conds += _related_filters(qs, child, roots, before)
        else:
            conds = [("bin", "=", ("col", child.alias, pk), ("col", b.alias, pk))]
            conds += _related_filters(qs, child, roots, before)
        sub = select(((inner, None),), ("table", b.model._meta.db_table, child.alias),
                     joins=tuple(child.joins), where=and_(*conds) if conds else None)
        return ("subquery", sub), field, grouped, conv
    if not isinstance(expr, Expression):
        expr = Value(expr)
    node = b.expression(expr)
    field = b.output_field(expr)
    conv = field.from_db_converter(b.dialect) if field is not None else None
    return node, field, bool(expr.contains_aggregate), conv


def aggregate_subqueries(qs: Any, named: list[tuple[str, Aggregate]], dialect: str
                         ) -> tuple[Node, list[Any], list[Converter | None]]:
    """``aggregate()`` over multi-valued relations: one scalar subquery per aggregate."""
    outer = Builder(qs.model, dialect)
    columns = []
    convs = []
    table = qs.model._meta.db_table
    for name, agg in named:
        child = outer.child(qs.model, correlated=True)
        node = child.aggregate(agg)
        convs.append(child.aggregate_converter(agg))
        conds = [c for c in [_chosen_rows(qs, child)] if c is not None]
        conds += _related_filters(qs, child, multi_roots(qs.model, agg), len(qs._filters))
        sub = select(((node, None),), ("table", table, child.alias), joins=tuple(child.joins),
                     where=and_(*conds) if conds else None)
        columns.append((("subquery", sub), name))
    return select(tuple(columns), None), outer.params, convs


def split_select_related(model: Any, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """(forward paths served by JOINs, reverse/many-to-many paths served by prefetching)."""
    forward: list[str] = []
    reverse: list[str] = []
    for name in names:
        m = model
        is_forward = True
        for part in name.split("__"):
            rel = m._meta.relations.get(part)
            if rel is None:
                _check_resolved(m._meta, part, m._meta.fields_map.get(part))
                raise FieldError(
                    f"select_related({name!r}): {m.__name__} has no relation {part!r}. "
                    + m._meta.unknown_field_message(part, name).split(". ", 1)[-1])
            if rel.kind not in ("fk", "o2o"):
                is_forward = False
            m = rel.target
        (forward if is_forward else reverse).append(name)
    return forward, reverse


def select_related_plan(b: Builder, names: Sequence[str], columns: list[tuple[Node, str | None]],
                        converters: list[tuple[int, Converter]]) -> tuple[Any, ...]:
    """Add the columns of forward ``select_related`` paths; return the nested row plans."""
    forward, _ = split_select_related(b.model, names)
    # Build a tree of paths: {'author': {'city': {}}}.
    tree: dict[str, Any] = {}
    for name in forward:
        node = tree
        for part in name.split("__"):
            node = node.setdefault(part, {})

    def add(model: Any, alias: str, walked: tuple[str, ...], sub: dict[str, Any]) -> list[Any]:
        plans = []
        for part, children in sub.items():
            rel = model._meta.relations[part]
            path = walked + (part,)
            new_alias, target = b.join(alias, rel, path, False)
            start = len(columns)
            names_, convs = model_columns(target, b.dialect)
            for f in target._meta.fields:
                columns.append((("col", new_alias, f.column), None))
            converters.extend((start + i, c) for i, c in convs)
            nested = add(target, new_alias, path, children)
            plans.append((rel.cache_name, start,
                          RowPlan("model", names_, (), model=target, related=nested)))
        return plans

    return tuple(add(b.model, b.alias, (), tree))


def correlated_exists(b: Builder, key: str, value: Any) -> Node:
    """``pk IN (SELECT pk ... WHERE <key=value>)``: a multi-valued condition the caller negates."""
    child = b.child(b.model)
    child.scope = b.scope
    cond = child.leaf(key, value, negated=False)
    pk = b.model._meta.pk.column
    sub = select(((("col", child.alias, pk), None),), ("table", b.model._meta.db_table, None),
                 joins=tuple(child.joins), where=cond)
    return ("in", ("col", b.alias, pk), sub, False)
