"""The neutral query tree: the contract between the ORM and the SQL compilers.

Barrier: this module knows the *structure* of a statement and nothing else. It never sees a value
(values live in a separate parameter list and are referred to as ``("param", i)``), never a model
class, and never SQL text. A tree is made only of tuples, ``str``, ``int``, ``bool`` and ``None``,
so it is hashable (the compilers cache on it) and crosses into Rust in one call.

Identifiers (table, alias and column names) are plain strings; the compiler quotes every one of
them. Function names and operators are checked by the compiler against fixed whitelists.

Statements::

    ("select", distinct: bool, columns, from_, joins, where, group_by, having, order_by,
               limit, offset)
        columns   tuple of (expr, alias | None)
        from_     table ref: ("table", name, alias | None) | ("subquery", select, alias)
                  | None (no FROM: a row of scalar subqueries; then no joins)
        joins     tuple of (kind "INNER" | "LEFT", table ref, on expr)
        where     expr | None
        group_by  tuple of expr
        having    expr | None
        order_by  tuple of (expr, descending: bool)
        limit     expr | None            (a param)
        offset    expr | None            (a param)
    ("insert", table, columns: tuple of str, rows: tuple of tuple of expr, returning: tuple of str)
    ("update", table, sets: tuple of (column, expr), where | None)
    ("delete", table, where | None)

Expressions::

    ("col", alias | None, name)             "alias"."name"
    ("param", i)                            $i (PostgreSQL) or ?i (SQLite); i starts at 1
    ("star",)                               *
    ("const", "TRUE" | "FALSE" | "NULL")
    ("int", n)                              an integer literal written by the ORM itself
    ("func", NAME, args: tuple, distinct)   NAME in FUNCTIONS
    ("bin", OP, left, right)                OP in BINARY_OPERATORS
    ("and", children) / ("or", children)    children: tuple of expr (empty: TRUE / FALSE)
    ("not", expr)
    ("isnull", expr, negated: bool)         IS NULL / IS NOT NULL
    ("in", expr, items: tuple | select, negated: bool)
    ("like", expr, pattern expr, case_insensitive: bool)   with ESCAPE '\\'
    ("regex", expr, pattern expr, case_insensitive: bool)
    ("case", whens: tuple of (cond, result), else | None)
    ("exists", select, negated: bool)
    ("subquery", select)                    a scalar subquery
    ("cast", expr, TYPE)                    CAST(expr AS TYPE), TYPE in CAST_TYPES
    ("same", left, right)                   NULL-safe equality: IS NOT DISTINCT FROM / IS
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BINARY_OPERATORS",
    "CAST_TYPES",
    "FUNCTIONS",
    "Node",
    "col",
    "param",
    "select",
    "table",
    "and_",
    "or_",
]

Node = tuple[Any, ...]

BINARY_OPERATORS = frozenset({"=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "||"})
CAST_TYPES = frozenset({"BIGINT", "DOUBLE PRECISION", "NUMERIC", "TEXT"})
FUNCTIONS = frozenset(
    {"COUNT", "SUM", "AVG", "MIN", "MAX", "LOWER", "UPPER", "LENGTH", "COALESCE", "ABS", "RANDOM"}
)


def col(alias: str | None, name: str) -> Node:
    return ("col", alias, name)


def param(i: int) -> Node:
    return ("param", i)


def table(name: str, alias: str | None = None) -> Node:
    return ("table", name, alias)


def and_(*children: Node) -> Node:
    flat: list[Node] = []
    for c in children:
        if c[0] == "and":
            flat.extend(c[1])
        else:
            flat.append(c)
    return flat[0] if len(flat) == 1 else ("and", tuple(flat))  # () compiles to TRUE


def or_(*children: Node) -> Node:
    return children[0] if len(children) == 1 else ("or", tuple(children))


def select(
    columns: tuple[tuple[Node, str | None], ...],
    from_: Node | None,
    *,
    distinct: bool = False,
    joins: tuple[Node, ...] = (),
    where: Node | None = None,
    group_by: tuple[Node, ...] = (),
    having: Node | None = None,
    order_by: tuple[tuple[Node, bool], ...] = (),
    limit: Node | None = None,
    offset: Node | None = None,
) -> Node:
    return (
        "select", distinct, columns, from_, joins, where, group_by, having, order_by, limit, offset
    )
