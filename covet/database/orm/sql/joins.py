"""Relation-spanning pieces of a SELECT: ``select_related`` joins, annotations over relations
(correlated subqueries) and negated filters over multi-valued relations (``pk IN (subquery)``).

Barrier: like ``build.py``, produces tree nodes only; it decides *how* a relation is reached so
that several multi-valued annotations never multiply each other's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from covet.database.exceptions import FieldError
from covet.database.orm.aggregates import Aggregate, Avg
from covet.database.orm.expressions import Expression, Value
from covet.database.orm.fields.base import Converter, Field
from covet.database.orm.hydrate import RowPlan, model_columns
from covet.database.orm.sql.build import Builder
from covet.database.orm.sql.tree import Node, select

__all__ = ["annotation_node", "select_related_plan", "split_select_related", "correlated_exists",
           "multi_root"]


def multi_root(model: Any, path: str) -> str | None:
    """The prefix of ``path`` up to its first multi-valued relation, or None if there is none."""
    parts = path.split("__")
    walked = []
    for part in parts:
        rel = model._meta.relations.get(part)
        if rel is None:
            return None
        walked.append(part)
        if rel.multi_valued:
            return "__".join(walked)
        model = rel.target
    return None


def _agg_multi_roots(model: Any, agg: Aggregate) -> set[str]:
    return {r for r in (multi_root(model, p) for p in agg.field_names()) if r is not None}


def annotation_node(b: Builder, expr: Any, *, grouped: bool, isolate: bool
                    ) -> tuple[Node, Field[Any] | None, bool, Converter | None]:
    """Resolve one annotation: (node, output field, is a GROUP BY aggregate, converter)."""
    if isinstance(expr, Aggregate):
        roots = _agg_multi_roots(b.model, expr)
        source = None if expr.source == "*" else expr.source
        if not roots or (grouped and not isolate):
            node = b.aggregate(expr)
            field = b.output_field(source) if source is not None else None
            return node, field, True, b.aggregate_converter(expr)
        # A correlated subquery per row: no row multiplication, whatever else is annotated.
        child = b.child(b.model, correlated=True)
        inner = child.aggregate(expr)
        conv = child.aggregate_converter(expr)
        field = child.output_field(source) if source is not None else None
        pk = b.model._meta.pk.column
        sub = select(((inner, None),), ("table", b.model._meta.db_table, child.alias),
                     joins=tuple(child.joins),
                     where=("bin", "=", ("col", child.alias, pk), ("col", b.alias, pk)))
        subquery: Node = ("subquery", sub)
        if not grouped:
            return subquery, field, False, conv
        if isinstance(expr, Avg):
            raise FieldError(
                f"{expr!r} cannot be grouped together with other annotations over multi-valued "
                f"relations without multiplying rows; compute it in a separate query")
        outer = "SUM" if expr.function in ("COUNT", "SUM") else expr.function
        return ("func", outer, (subquery,), False), field, True, conv
    if not isinstance(expr, Expression):
        expr = Value(expr)
    node = b.expression(expr)
    field = b.output_field(expr)
    conv = field.from_db_converter(b.dialect) if field is not None else None
    return node, field, bool(expr.contains_aggregate), conv


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
