"""Turn QuerySet intents into a neutral statement tree plus a parameter list.

Barrier: the builder knows models, fields and relations (to resolve ``author__city__iexact`` into
joins and columns) and produces *structure*: a tree of tuples (``sql/tree.py``) in which every
value is a numbered parameter. It never writes SQL text, and it validates every value through its
field (``ValidationError``) and every name against the model (``FieldError``) before a tree exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from covet.database.exceptions import FieldError, close_matches
from covet.database.orm.aggregates import Aggregate, aggregate_output
from covet.database.orm.expressions import CombinedExpression, Expression, F, Q, Value
from covet.database.orm.fields.base import Converter, Field
from covet.database.orm.lookups import LOOKUPS, lookups_for
from covet.database.orm.sql.tree import Node, and_

if TYPE_CHECKING:
    from covet.database.orm.models import Model

__all__ = ["Builder", "Resolved"]


def multi_root(model: Any, path: str) -> str | None:
    """The prefix of ``path`` up to its first multi-valued relation, or None if there is none."""
    walked = []
    for part in path.split("__"):
        rel = model._meta.relations.get(part)
        if rel is None:
            return None
        walked.append(part)
        if rel.multi_valued:
            return "__".join(walked)
        model = rel.target
    return None


class Resolved:
    """A resolved field path: the column node, its field, and what is left (lookup names)."""

    __slots__ = ("node", "field", "rest", "model", "multi", "joined")

    def __init__(self, node: Node, field: Field[Any] | None, rest: list[str], model: Any,
                 multi: bool, joined: bool = False) -> None:
        self.node = node
        self.field = field
        self.rest = rest
        self.model = model
        self.multi = multi
        #: the path went through a join, so the column can be NULL whatever its field says
        self.joined = joined


class Builder:
    """Builds one statement: joins, parameters and resolved names for one base model."""

    __slots__ = ("model", "dialect", "params", "alias", "joins", "_join_map", "_counter",
                 "annotations", "scope", "recipe")

    def __init__(self, model: type[Model], dialect: str, params: list[Any] | None = None,
                 counter: list[int] | None = None, alias: str | None = None,
                 recipe: list[Any] | None = None) -> None:
        self.model = model
        self.dialect = dialect
        self.params: list[Any] = [] if params is None else params
        self._counter = [0] if counter is None else counter
        self.alias = alias or model._meta.db_table
        self.joins: list[Node] = []
        self._join_map: dict[tuple[Any, ...], tuple[str, Any]] = {}
        #: name -> (node, output field or None, is aggregate), for filters and ordering.
        self.annotations: dict[str, tuple[Node, Field[Any] | None, bool]] = {}
        self.scope = 0
        #: when recording: per filter leaf, in order, (field, lookup) or None (no parameters),
        #: so that the same query shape can rebind new values without being built again
        self.recipe = recipe

    # parameters -------------------------------------------------------------------------
    def param(self, value: Any) -> Node:
        self.params.append(value)
        return ("param", len(self.params))

    def value(self, field: Field[Any], value: Any) -> Node:
        return self.param(field.to_db(value, self.dialect))

    def new_alias(self) -> str:
        self._counter[0] += 1
        return f"T{self._counter[0]}"

    def child(self, model: type[Model], correlated: bool = False) -> Builder:
        """A builder for a subquery sharing this one's parameters and alias counter."""
        return Builder(model, self.dialect, self.params, self._counter,
                       self.new_alias() if correlated else None, self.recipe)

    # names ------------------------------------------------------------------------------
    def resolve(self, path: str, *, allow_relation_end: bool = True) -> Resolved:
        """Resolve ``a__b__c`` to a column, adding the joins it needs (LEFT JOINs)."""
        parts = path.split("__")
        model = self.model
        alias = self.alias
        walked: list[str] = []
        multi = False
        i = 0
        while i < len(parts):
            name = parts[i]
            meta = model._meta
            if name == "pk":
                name = meta.pk.name
            rel = meta.relations.get(name)
            field = meta.fields_map.get(name)
            if rel is None and (field is None or field.is_relation):
                _check_resolved(meta, name, field)
            nxt = parts[i + 1] if i + 1 < len(parts) else None
            if rel is not None and nxt is not None and nxt not in LOOKUPS:
                walked.append(name)
                multi = multi or rel.multi_valued
                alias, model = self.join(alias, rel, tuple(walked), multi)
                i += 1
                continue
            if field is not None and not getattr(field, "is_m2m", False):
                return Resolved(("col", alias, field.column), field, parts[i + 1:], model, multi,
                                bool(walked))
            if rel is not None and allow_relation_end:
                # ``posts__isnull=True``, ``tags=tag``: compare the related primary key.
                walked.append(name)
                multi = multi or rel.multi_valued
                alias, model = self.join(alias, rel, tuple(walked), multi)
                pk = model._meta.pk
                return Resolved(("col", alias, pk.column), pk, parts[i + 1:], model, multi, True)
            where = "" if i == 0 else f" (following {'__'.join(parts[:i])!r})"
            raise FieldError(model._meta.unknown_field_message(parts[i], path).replace(
                f"has no field {parts[i]!r}", f"has no field {parts[i]!r}{where}", 1))
        raise FieldError(f"empty field path {path!r} on {self.model.__name__}")

    def join(self, alias: str, rel: Any, walked: tuple[str, ...], multi: bool) -> tuple[str, Any]:
        key = (self.scope if multi else None, walked)
        found = self._join_map.get(key)
        if found is not None:
            return found
        current = alias
        for from_col, table, to_col in rel.join_steps():
            new = self.new_alias()
            self.joins.append((
                "LEFT", ("table", table, new),
                ("bin", "=", ("col", current, from_col), ("col", new, to_col)),
            ))
            current = new
        result = (current, rel.target)
        self._join_map[key] = result
        return result

    def is_multi(self, key: str) -> bool:
        """Whether the filter key ``key`` walks through a multi-valued relation."""
        return multi_root(self.model, key) is not None

    # expressions ------------------------------------------------------------------------
    def expression(self, expr: Any) -> Node:
        if isinstance(expr, F):
            ann = self.annotations.get(expr.name)
            if ann is not None:
                return ann[0]
            r = self.resolve(expr.name, allow_relation_end=False)
            if r.rest:
                raise FieldError(f"F({expr.name!r}): lookups cannot be used inside F()")
            return r.node
        if isinstance(expr, Value):
            return self.param(expr.value)
        if isinstance(expr, CombinedExpression):
            return ("bin", expr.op, self.operand(expr.lhs, expr.rhs),
                    self.operand(expr.rhs, expr.lhs))
        if isinstance(expr, Aggregate):
            return self.aggregate(expr)
        raise FieldError(f"cannot use {expr!r} in a query")

    def operand(self, expr: Any, other: Any) -> Node:
        """One side of arithmetic. A plain value is converted through the other side's field
        and cast to a wide type, so ``F('small') * 2`` cannot overflow a SMALLINT parameter
        and a Decimal reaches SQLite as text it can compute with."""
        if not isinstance(expr, Value) or isinstance(expr.value, bool):
            return self.expression(expr)
        value = expr.value
        field = self.output_field(other) if not isinstance(other, Value) else None
        if isinstance(value, int):
            cast = "BIGINT"
        elif isinstance(value, float):
            cast = "DOUBLE PRECISION"
        elif isinstance(value, Decimal):
            cast = "NUMERIC"
        else:
            return self.param(field.to_db(value, self.dialect) if field is not None else value)
        bound = str(value) if isinstance(value, Decimal) else value
        return ("cast", self.param(bound), cast)

    def output_field(self, expr: Any) -> Field[Any] | None:
        if isinstance(expr, F):
            ann = self.annotations.get(expr.name)
            if ann is not None:
                return ann[1]
            return self.resolve(expr.name).field
        if isinstance(expr, CombinedExpression):
            return self.output_field(expr.lhs) or self.output_field(expr.rhs)
        return None

    def aggregate(self, agg: Aggregate) -> Node:
        if agg.source == "*":
            arg: Node = ("star",)
        elif isinstance(agg.source, F) and agg.source.name not in self.annotations:
            r = self.resolve(agg.source.name)  # Count('posts') counts related primary keys
            if r.rest:
                raise FieldError(f"{agg!r}: {r.rest[0]!r} is not a field of {r.model.__name__}")
            arg = r.node
        else:
            arg = self.expression(agg.source)
        if agg.filter is not None:
            cond = self.where(agg.filter)
            arg = ("case", ((cond, ("int", 1) if arg == ("star",) else arg),), None)
        return ("func", agg.function, (arg,), agg.distinct)

    def aggregate_converter(self, agg: Aggregate) -> Converter | None:
        source = None if agg.source == "*" else self.output_field(agg.source)
        return aggregate_output(agg, source, self.dialect)

    # conditions -------------------------------------------------------------------------
    def where(self, q: Q, negated: bool = False) -> Node:
        negated = negated ^ q.negated
        nodes = []
        for child in q.children:
            if isinstance(child, Q):
                nodes.append(self.where(child, negated))
            else:
                nodes.append(self.leaf(child[0], child[1], negated))
        if len(nodes) == 1:
            node = nodes[0]
        elif q.connector == "AND":
            node = and_(*nodes)
        else:
            node = ("or", tuple(nodes))
        return ("not", node) if q.negated else node

    def leaf(self, key: str, value: Any, negated: bool) -> Node:
        head, _, tail = key.partition("__")
        ann = self.annotations.get(head)
        if ann is not None:
            lhs, field, _agg = ann
            lookup_name = tail or "exact"
            return self._apply_lookup(lhs, field, lookup_name, value, key, negated, nullable=True)
        if negated and multi_root(self.model, key) is not None:
            return self._negated_multi(key, value)
        r = self.resolve(key)
        if len(r.rest) > 1:
            raise FieldError(self._bad_lookup_message(r.field, "__".join(r.rest), key))
        lookup_name = r.rest[0] if r.rest else "exact"
        nullable = r.field is None or r.field.nullable or r.joined
        return self._apply_lookup(r.node, r.field, lookup_name, value, key, negated, nullable)

    def _apply_lookup(self, lhs: Node, field: Field[Any] | None, lookup_name: str, value: Any,
                      key: str, negated: bool, nullable: bool) -> Node:
        cls = LOOKUPS.get(lookup_name)
        if cls is None or (field is not None and not cls.applies_to(field)):
            raise FieldError(self._bad_lookup_message(field, lookup_name, key))
        if hasattr(value, "_meta"):  # a model instance compares by its primary key
            value = value.pk
        if value is None and not cls.takes_none:
            if lookup_name != "exact":
                raise FieldError(f"{key}=None: None only works with exact/isnull; use "
                                 f"{key.rsplit('__', 1)[0]}__isnull=True")
            if self.recipe is not None:
                self.recipe.append(None)
            return ("isnull", lhs, False)
        if isinstance(value, Expression):
            prepared = value
        elif field is None:
            prepared = value
        else:
            prepared = cls.prepare(field, value)
        if field is None:
            field = _PassThrough()
        if self.recipe is not None:
            self.recipe.append((field, cls))
        node = cls.build(self, lhs, field, prepared)
        if negated and nullable and not cls.takes_none:
            # Django's semantics: exclude(x__gt=1) keeps the rows where x is NULL.
            node = ("and", (node, ("isnull", lhs, True)))
        return node

    def _negated_multi(self, key: str, value: Any) -> Node:
        """``exclude(posts__status='x')``: EXISTS over the related rows, negated by the caller."""
        from covet.database.orm.sql.joins import correlated_exists

        return correlated_exists(self, key, value)

    def _bad_lookup_message(self, field: Field[Any] | None, name: str, key: str) -> str:
        available = lookups_for(field) if field is not None else sorted(LOOKUPS)
        hints = close_matches(name, available)
        label = field.label if field is not None else key
        msg = f"unsupported lookup {name!r} for {type(field).__name__} {label} (in {key!r})."
        if hints:
            msg += f" Did you mean {' or '.join(repr(h) for h in hints)}?"
        return msg + f" Lookups: {', '.join(available)}."

    # ordering ---------------------------------------------------------------------------
    def order(self, names: Sequence[str]) -> tuple[tuple[Node, bool], ...]:
        out = []
        for name in names:
            if name == "?":
                out.append((("func", "RANDOM", (), False), False))
                continue
            desc = name.startswith("-")
            bare = name.lstrip("-+")
            ann = self.annotations.get(bare)
            if ann is not None:
                out.append((ann[0], desc))
                continue
            r = self.resolve(bare)
            if r.rest:
                raise FieldError(f"order_by({name!r}): {r.rest[0]!r} is not a field of "
                                 f"{r.model.__name__}")
            out.append((r.node, desc))
        return tuple(out)


def _check_resolved(meta: Any, name: str, field: Any) -> None:
    """A relation whose string target never resolved: say which model is missing."""
    from covet.database.exceptions import ConfigurationError
    from covet.database.orm.relationships import finalize_pending, unresolved_message

    finalize_pending()
    if name in meta.relations:
        return
    for candidate in [field, *meta.many_to_many]:
        if candidate is not None and getattr(candidate, "is_relation", False) \
                and getattr(candidate, "name", None) == name \
                and getattr(candidate, "target", None) is None:
            raise ConfigurationError(unresolved_message(str(candidate.to), candidate.label))


class _PassThrough(Field[Any]):
    """Stands in for the field of an annotation: values bind as they are."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "annotation"

    def to_db(self, value: Any, dialect: str) -> Any:
        return value

    def clean_lookup_value(self, value: Any) -> Any:
        return value
