"""Field lookups (``age__gt=18``) as a registry: name -> Lookup.

Barrier: a lookup turns (a column node, a Python value) into a tree node, asking the builder to
bind every value as a parameter. Adding a lookup means adding one class with ``@register``; nothing
else changes.

Pattern lookups escape ``%``, ``_`` and ``\\`` in the value and compile to ``LIKE ... ESCAPE '\\'``;
case-sensitive ones are case-sensitive on SQLite too (the adapter turns ``case_sensitive_like``
on), and the case-insensitive ones compare lower-cased text (Unicode-aware on both databases).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from covet.database.exceptions import FieldError
from covet.database.orm.expressions import Expression
from covet.database.orm.fields.base import Field
from covet.database.orm.fields.scalar import TextField
from covet.database.orm.sql.tree import Node

if TYPE_CHECKING:
    from covet.database.orm.sql.build import Builder

__all__ = ["Lookup", "LOOKUPS", "register", "lookups_for", "escape_like"]

LOOKUPS: dict[str, type[Lookup]] = {}


def register(cls: type[Lookup]) -> type[Lookup]:
    """Class decorator: make ``cls`` available as ``field__<cls.lookup_name>``."""
    LOOKUPS[cls.lookup_name] = cls
    return cls


def lookups_for(field: Field[Any]) -> list[str]:
    return sorted(name for name, cls in LOOKUPS.items() if cls.applies_to(field))


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Lookup:
    """One lookup.

    ``prepare`` validates the Python value; ``param_values`` turns it into the values bound as
    parameters (in order); ``node`` builds the tree node from the column and those parameter
    nodes. The split lets a repeated query shape rebind new values without rebuilding its tree.
    """

    lookup_name: ClassVar[str] = ""
    #: True when ``None`` is meaningful (isnull), so the builder does not treat it as IS NULL.
    takes_none: ClassVar[bool] = False

    @classmethod
    def applies_to(cls, field: Field[Any]) -> bool:
        return True

    @classmethod
    def prepare(cls, field: Field[Any], value: Any) -> Any:
        return field.clean_lookup_value(value)

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return [field.to_db(value, dialect)]

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        raise NotImplementedError  # every registered lookup overrides this

    @classmethod
    def build(cls, b: Builder, lhs: Node, field: Field[Any], value: Any) -> Node:
        return cls.node(lhs, [b.param(v) for v in cls.param_values(field, value, b.dialect)])


class _Comparison(Lookup):
    operator: ClassVar[str] = "="

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        return ("bin", cls.operator, lhs, params[0])

    @classmethod
    def build(cls, b: Builder, lhs: Node, field: Field[Any], value: Any) -> Node:
        if isinstance(value, Expression):  # F('other') + 1
            return cls.node(lhs, [b.expression(value)])
        return super().build(b, lhs, field, value)


@register
class Exact(_Comparison):
    lookup_name = "exact"
    operator = "="


@register
class GreaterThan(_Comparison):
    lookup_name = "gt"
    operator = ">"


@register
class GreaterThanOrEqual(_Comparison):
    lookup_name = "gte"
    operator = ">="


@register
class LessThan(_Comparison):
    lookup_name = "lt"
    operator = "<"


@register
class LessThanOrEqual(_Comparison):
    lookup_name = "lte"
    operator = "<="


@register
class In(Lookup):
    lookup_name = "in"

    @classmethod
    def prepare(cls, field: Field[Any], value: Any) -> Any:
        if hasattr(value, "_as_subquery"):  # a QuerySet
            return value
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise FieldError(
                f"{field.label}__in takes a list, tuple, set or QuerySet, not {type(value).__name__}"
            )
        return field.clean_lookup_column([v.pk if hasattr(v, "_meta") else v
                                          for v in value if v is not None])

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return field.to_db_column(value, dialect)

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        return ("in", lhs, tuple(params), False)

    @classmethod
    def build(cls, b: Builder, lhs: Node, field: Field[Any], value: Any) -> Node:
        if hasattr(value, "_as_subquery"):
            return ("in", lhs, value._as_subquery(b), False)
        return super().build(b, lhs, field, value)


@register
class Range(Lookup):
    lookup_name = "range"

    @classmethod
    def prepare(cls, field: Field[Any], value: Any) -> Any:
        try:
            low, high = value
        except (TypeError, ValueError):
            raise FieldError(f"{field.label}__range takes two values, (low, high)") from None
        return field.clean_lookup_value(low), field.clean_lookup_value(high)

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return [field.to_db(value[0], dialect), field.to_db(value[1], dialect)]

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        return ("and", (("bin", ">=", lhs, params[0]), ("bin", "<=", lhs, params[1])))


@register
class IsNull(Lookup):
    lookup_name = "isnull"
    takes_none = True

    @classmethod
    def prepare(cls, field: Field[Any], value: Any) -> Any:
        if not isinstance(value, bool):
            raise FieldError(f"{field.label}__isnull takes True or False, not {value!r}")
        return value

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return []

    @classmethod
    def build(cls, b: Builder, lhs: Node, field: Field[Any], value: Any) -> Node:
        return ("isnull", lhs, not value)


class _Text(Lookup):
    @classmethod
    def applies_to(cls, field: Field[Any]) -> bool:
        return isinstance(field, TextField)

    @classmethod
    def prepare(cls, field: Field[Any], value: Any) -> Any:
        if not isinstance(value, str):
            raise FieldError(
                f"{field.label}__{cls.lookup_name} takes a string, not {type(value).__name__}"
            )
        return value


class _Pattern(_Text):
    template: ClassVar[str] = "{}"
    case_insensitive: ClassVar[bool] = False

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return [cls.template.format(escape_like(value))]

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        return ("like", lhs, params[0], cls.case_insensitive)


@register
class IExact(_Pattern):
    lookup_name = "iexact"
    case_insensitive = True


@register
class Contains(_Pattern):
    lookup_name = "contains"
    template = "%{}%"


@register
class IContains(Contains):
    lookup_name = "icontains"
    case_insensitive = True


@register
class StartsWith(_Pattern):
    lookup_name = "startswith"
    template = "{}%"


@register
class IStartsWith(StartsWith):
    lookup_name = "istartswith"
    case_insensitive = True


@register
class EndsWith(_Pattern):
    lookup_name = "endswith"
    template = "%{}"


@register
class IEndsWith(EndsWith):
    lookup_name = "iendswith"
    case_insensitive = True


@register
class Regex(_Text):
    lookup_name = "regex"
    case_insensitive: ClassVar[bool] = False

    @classmethod
    def param_values(cls, field: Field[Any], value: Any, dialect: str) -> list[Any]:
        return [value]

    @classmethod
    def node(cls, lhs: Node, params: list[Node]) -> Node:
        return ("regex", lhs, params[0], cls.case_insensitive)


@register
class IRegex(Regex):
    lookup_name = "iregex"
    case_insensitive = True
