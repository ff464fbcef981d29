"""Aggregates: ``Count``, ``Sum``, ``Avg``, ``Min``, ``Max``.

``aggregate(Avg('age'))`` returns ``{'age__avg': ...}`` (the default alias is
``<field>__<name>``); ``aggregate(n=Count('id'))`` uses the given name. ``filter=Q(...)`` limits
the rows an aggregate sees (compiled as ``CASE WHEN`` so it works on every database).

Result types are the same on every database: ``Count`` is an ``int``; ``Sum``, ``Min`` and
``Max`` have the source field's type; ``Avg`` is a ``float`` (a ``Decimal`` for a DecimalField).
"""

from __future__ import annotations

from typing import Any, ClassVar

from covet.database.orm.expressions import Expression, F, Q

__all__ = ["Aggregate", "Count", "Sum", "Avg", "Min", "Max", "AGGREGATES", "aggregate_output"]


class Aggregate(Expression):
    """Base class; subclasses set ``function`` and ``name``."""

    __slots__ = ("source", "distinct", "filter")
    function: ClassVar[str] = ""
    name: ClassVar[str] = ""

    def __init__(self, source: str | Expression = "*", *, distinct: bool = False,
                 filter: Q | None = None) -> None:  # noqa: A002 - Django's keyword
        if isinstance(source, str) and source != "*":
            source = F(source)
        if filter is not None and not isinstance(filter, Q):
            raise TypeError(f"{type(self).__name__}(filter=...) takes a Q object")
        self.source = source
        self.distinct = distinct
        self.filter = filter

    @property
    def contains_aggregate(self) -> bool:
        return True

    @property
    def default_alias(self) -> str:
        if isinstance(self.source, F):
            return f"{self.source.name}__{self.name}"
        if self.source == "*":
            return f"{self.name}"
        raise TypeError(
            f"{type(self).__name__} over an expression needs a name: aggregate(name={self!r})"
        )

    def field_names(self) -> list[str]:
        names = [] if self.source == "*" else self.source.field_names()  # type: ignore[union-attr]
        if self.filter is not None:
            names.extend(k for k, _ in self.filter.leaves())
        return names

    def __repr__(self) -> str:
        extra = ", distinct=True" if self.distinct else ""
        if self.filter is not None:
            extra += f", filter={self.filter!r}"
        src = "'*'" if self.source == "*" else repr(self.source)
        return f"{type(self).__name__}({src}{extra})"


class Count(Aggregate):
    """Number of rows (``Count('*')``) or of non-null values of a field."""

    __slots__ = ()
    function = "COUNT"
    name = "count"


class Sum(Aggregate):
    __slots__ = ()
    function = "SUM"
    name = "sum"


class Avg(Aggregate):
    __slots__ = ()
    function = "AVG"
    name = "avg"


class Min(Aggregate):
    __slots__ = ()
    function = "MIN"
    name = "min"


class Max(Aggregate):
    __slots__ = ()
    function = "MAX"
    name = "max"


AGGREGATES: dict[str, type[Aggregate]] = {
    cls.name: cls for cls in (Count, Sum, Avg, Min, Max)
}


def aggregate_output(agg: Aggregate, source_field: Any, dialect: str) -> Any:
    """The converter for one aggregate's result value (see the module docstring)."""
    from decimal import Decimal

    from covet.database.orm.fields import DecimalField, FloatField

    if isinstance(agg, Count):
        return lambda v: 0 if v is None else int(v)
    if isinstance(agg, Avg):
        if isinstance(source_field, DecimalField):
            return lambda v: None if v is None else Decimal(repr(v) if isinstance(v, float) else str(v))
        return lambda v: None if v is None else float(v)
    if source_field is None:
        return None
    if isinstance(agg, Sum) and not isinstance(source_field, (DecimalField, FloatField)):
        return lambda v: None if v is None else int(v)
    return source_field.from_db_converter(dialect)
