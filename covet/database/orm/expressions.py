"""Query expressions: ``Q`` for combining conditions, ``F`` for column references.

Barrier: these are *intents*. They hold field names and Python values, never SQL; the builder
(``orm/sql/build.py``) resolves them against a model and turns them into tree nodes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Q", "F", "Value", "Expression", "CombinedExpression"]


class Expression:
    """Something that evaluates to a value in SQL; supports ``+ - * / %`` with others or values."""

    __slots__ = ()

    def _combine(self, other: Any, op: str, reverse: bool) -> CombinedExpression:
        other_expr = other if isinstance(other, Expression) else Value(other)
        if reverse:
            return CombinedExpression(other_expr, op, self)
        return CombinedExpression(self, op, other_expr)

    def __add__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "+", False)

    def __radd__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "+", True)

    def __sub__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "-", False)

    def __rsub__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "-", True)

    def __mul__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "*", False)

    def __rmul__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "*", True)

    def __truediv__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "/", False)

    def __rtruediv__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "/", True)

    def __mod__(self, other: Any) -> CombinedExpression:
        return self._combine(other, "%", False)

    def __neg__(self) -> CombinedExpression:
        return CombinedExpression(Value(0), "-", self)

    def field_names(self) -> list[str]:
        """The field paths this expression refers to."""
        return []

    @property
    def contains_aggregate(self) -> bool:
        return False


class F(Expression):
    """A reference to a field of the row, e.g. ``F('views') + 1`` or ``F('author__city')``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def field_names(self) -> list[str]:
        return [self.name]

    def __repr__(self) -> str:
        return f"F({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, F) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("F", self.name))


class Value(Expression):
    """A literal value, always sent as a bound parameter."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Value({self.value!r})"


class CombinedExpression(Expression):
    """``lhs <op> rhs``: arithmetic between expressions."""

    __slots__ = ("lhs", "op", "rhs")

    def __init__(self, lhs: Expression, op: str, rhs: Expression) -> None:
        self.lhs = lhs
        self.op = op
        self.rhs = rhs

    def field_names(self) -> list[str]:
        return self.lhs.field_names() + self.rhs.field_names()

    @property
    def contains_aggregate(self) -> bool:
        return self.lhs.contains_aggregate or self.rhs.contains_aggregate

    def __repr__(self) -> str:
        return f"({self.lhs!r} {self.op} {self.rhs!r})"


class Q:
    """A condition tree: ``Q(a=1) | Q(b=2)``, ``Q(a=1) & ~Q(b=2)``.

    Keyword arguments are ANDed together, in sorted order (as Django does), so the SQL is stable.
    """

    __slots__ = ("children", "connector", "negated")

    AND = "AND"
    OR = "OR"

    def __init__(self, *args: Q | tuple[str, Any], **kwargs: Any) -> None:
        connector = kwargs.pop("_connector", "AND")
        negated = kwargs.pop("_negated", False)
        self.children: list[Q | tuple[str, Any]] = [*args, *sorted(kwargs.items())]
        self.connector: str = connector
        self.negated: bool = negated

    def _combine(self, other: Q, connector: str) -> Q:
        if not isinstance(other, Q):
            raise TypeError(f"cannot combine Q with {type(other).__name__}")
        if not other.children:
            return self.copy()
        if not self.children:
            return other.copy()
        return Q(self, other, _connector=connector)

    def __or__(self, other: Q) -> Q:
        return self._combine(other, self.OR)

    def __and__(self, other: Q) -> Q:
        return self._combine(other, self.AND)

    def __invert__(self) -> Q:
        q = self.copy()
        q.negated = not self.negated
        return q

    def copy(self) -> Q:
        return Q(*self.children, _connector=self.connector, _negated=self.negated)

    def leaves(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for child in self.children:
            if isinstance(child, Q):
                out.extend(child.leaves())
            else:
                out.append(child)
        return out

    def __repr__(self) -> str:
        inner = f" {self.connector} ".join(
            repr(c) if isinstance(c, Q) else f"{c[0]}={c[1]!r}" for c in self.children
        )
        return f"{'~' if self.negated else ''}Q({inner})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Q)
            and other.children == self.children
            and other.connector == self.connector
            and other.negated == self.negated
        )

    __hash__ = None  # type: ignore[assignment]
