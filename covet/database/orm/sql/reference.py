"""The pure-Python reference SQL compiler.

Barrier: turns a neutral tree (``sql/tree.py``) into SQL *text* for one dialect. It never sees a
value: parameters are numbered placeholders (``$i`` on PostgreSQL, ``?i`` on SQLite). The Rust
compiler (``rust_ext/src/compile``) must produce byte-for-byte the same text for every tree; the
parity tests compare them.

Rules both implementations follow:

* every identifier is double-quoted, inner ``"`` doubled; an empty name or one with NUL is refused;
* compound sub-expressions (``bin``, ``and``, ``or``, ``not``, ``isnull``, ``in``, ``like``,
  ``regex``, ``exists``) are wrapped in parentheses when nested;
* ascending ORDER BY puts NULLs last and descending puts them first on both dialects (PostgreSQL's
  default, spelled out on SQLite);
* SQLite's OFFSET without LIMIT is written ``LIMIT -1 OFFSET``.
"""

from __future__ import annotations

from typing import Any

from covet.database.orm.sql.tree import BINARY_OPERATORS, CAST_TYPES, FUNCTIONS, Node

__all__ = ["compile_sql", "quote_ident", "DIALECTS"]

DIALECTS = ("sqlite", "postgresql")
_COMPOUND = frozenset(
    {"bin", "and", "or", "not", "isnull", "in", "like", "regex", "exists", "same"}
)
_CONSTS = frozenset({"TRUE", "FALSE", "NULL"})


def quote_ident(name: str) -> str:
    """Quote one identifier; the only place identifiers become SQL text."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


class _Compiler:
    __slots__ = ("pg",)

    def __init__(self, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown dialect {dialect!r}; expected 'sqlite' or 'postgresql'")
        self.pg = dialect == "postgresql"

    # statements -------------------------------------------------------------------------
    def statement(self, node: Node) -> str:
        kind = node[0]
        if kind == "select":
            return self.select(node)
        if kind == "insert":
            return self.insert(node)
        if kind == "update":
            return self.update(node)
        if kind == "delete":
            return self.delete(node)
        raise ValueError(f"unknown statement node {kind!r}")

    def select(self, node: Node) -> str:
        (_, distinct, columns, from_, joins, where, group_by, having, order_by, limit,
         offset) = node
        parts = ["SELECT DISTINCT " if distinct else "SELECT "]
        parts.append(", ".join(self.column(c) for c in columns))
        if from_ is not None:
            parts.append(" FROM ")
            parts.append(self.table_ref(from_))
        elif joins:
            raise ValueError("a SELECT without FROM cannot have joins")
        for kind, ref, on in joins:
            if kind not in ("INNER", "LEFT"):
                raise ValueError(f"unknown join kind {kind!r}")
            parts.append(f" {kind} JOIN {self.table_ref(ref)} ON {self.expr(on, False)}")
        if where is not None:
            parts.append(" WHERE " + self.expr(where, False))
        if group_by:
            parts.append(" GROUP BY " + ", ".join(self.expr(e, False) for e in group_by))
        if having is not None:
            parts.append(" HAVING " + self.expr(having, False))
        if order_by:
            parts.append(" ORDER BY " + ", ".join(self.order(e, d) for e, d in order_by))
        if limit is not None:
            parts.append(" LIMIT " + self.expr(limit, False))
        if offset is not None:
            if limit is None and not self.pg:
                parts.append(" LIMIT -1")
            parts.append(" OFFSET " + self.expr(offset, False))
        return "".join(parts)

    def column(self, c: tuple[Node, str | None]) -> str:
        expr, alias = c
        text = self.expr(expr, False)
        return text if alias is None else f"{text} AS {quote_ident(alias)}"

    def order(self, e: Node, desc: bool) -> str:
        text = self.expr(e, False)
        if desc:
            return text + " DESC" if self.pg else text + " DESC NULLS FIRST"
        return text + " ASC" if self.pg else text + " ASC NULLS LAST"

    def table_ref(self, ref: Node) -> str:
        if ref[0] == "table":
            _, name, alias = ref
            text = quote_ident(name)
            return text if alias is None else f"{text} AS {quote_ident(alias)}"
        if ref[0] == "subquery":
            _, sel, alias = ref
            return f"({self.select(sel)}) AS {quote_ident(alias)}"
        raise ValueError(f"unknown table reference {ref[0]!r}")

    def insert(self, node: Node) -> str:
        _, table, columns, rows, returning = node
        head = "INSERT INTO " + quote_ident(table)
        if not columns:
            if len(rows) != 1:
                raise ValueError("an INSERT without columns takes exactly one row")
            text = head + " DEFAULT VALUES"
        else:
            cols = ", ".join(quote_ident(c) for c in columns)
            values = ", ".join(
                "(" + ", ".join(self.expr(v, False) for v in row) + ")" for row in rows
            )
            text = f"{head} ({cols}) VALUES {values}"
        if returning:
            text += " RETURNING " + ", ".join(quote_ident(c) for c in returning)
        return text

    def update(self, node: Node) -> str:
        _, table, sets, where = node
        if not sets:
            raise ValueError("an UPDATE needs at least one column")
        text = "UPDATE " + quote_ident(table) + " SET " + ", ".join(
            f"{quote_ident(c)} = {self.expr(e, False)}" for c, e in sets
        )
        if where is not None:
            text += " WHERE " + self.expr(where, False)
        return text

    def delete(self, node: Node) -> str:
        _, table, where = node
        text = "DELETE FROM " + quote_ident(table)
        if where is not None:
            text += " WHERE " + self.expr(where, False)
        return text

    # expressions ------------------------------------------------------------------------
    def expr(self, e: Node, nested: bool) -> str:
        text = self._expr(e)
        if nested and e[0] in _COMPOUND:
            return "(" + text + ")"
        return text

    def _expr(self, e: Node) -> str:  # noqa: C901 - one branch per node kind, mirrored in Rust
        kind = e[0]
        if kind == "col":
            _, alias, name = e
            return quote_ident(name) if alias is None else f"{quote_ident(alias)}.{quote_ident(name)}"
        if kind == "param":
            i = e[1]
            if not isinstance(i, int) or isinstance(i, bool) or i < 1:
                raise ValueError(f"invalid parameter index {i!r}")
            return f"${i}" if self.pg else f"?{i}"
        if kind == "star":
            return "*"
        if kind == "const":
            if e[1] not in _CONSTS:
                raise ValueError(f"unknown constant {e[1]!r}")
            return str(e[1])
        if kind == "int":
            n = e[1]
            if not isinstance(n, int) or isinstance(n, bool):
                raise ValueError(f"invalid integer literal {n!r}")
            return str(n)
        if kind == "func":
            _, name, args, distinct = e
            if name not in FUNCTIONS:
                raise ValueError(f"unknown SQL function {name!r}")
            if name == "RANDOM":
                return "random()" if self.pg else "RANDOM()"
            inner = ", ".join(self.expr(a, False) for a in args)
            return f"{name}(DISTINCT {inner})" if distinct else f"{name}({inner})"
        if kind == "bin":
            _, op, left, right = e
            if op not in BINARY_OPERATORS:
                raise ValueError(f"unknown operator {op!r}")
            return f"{self.expr(left, True)} {op} {self.expr(right, True)}"
        if kind == "and":
            if not e[1]:
                return "TRUE"
            return " AND ".join(self.expr(c, True) for c in e[1])
        if kind == "or":
            if not e[1]:
                return "FALSE"
            return " OR ".join(self.expr(c, True) for c in e[1])
        if kind == "not":
            return "NOT " + self.expr(e[1], True)
        if kind == "isnull":
            _, inner, negated = e
            return self.expr(inner, True) + (" IS NOT NULL" if negated else " IS NULL")
        if kind == "in":
            _, inner, items, negated = e
            op = " NOT IN " if negated else " IN "
            if items and items[0] == "select":
                return self.expr(inner, True) + op + "(" + self.select(items) + ")"
            if not items:
                return "TRUE" if negated else "FALSE"
            return (
                self.expr(inner, True) + op + "(" + ", ".join(self.expr(i, False) for i in items)
                + ")"
            )
        if kind == "like":
            _, inner, pattern, ci = e
            if ci:
                if self.pg:
                    return f"{self.expr(inner, True)} ILIKE {self.expr(pattern, True)} ESCAPE '\\'"
                return (
                    f"lower({self.expr(inner, False)}) LIKE lower({self.expr(pattern, False)})"
                    " ESCAPE '\\'"
                )
            return f"{self.expr(inner, True)} LIKE {self.expr(pattern, True)} ESCAPE '\\'"
        if kind == "regex":
            _, inner, pattern, ci = e
            if self.pg:
                op = " ~* " if ci else " ~ "
                return self.expr(inner, True) + op + self.expr(pattern, True)
            fn = "covet_iregexp" if ci else "covet_regexp"
            return f"{fn}({self.expr(pattern, False)}, {self.expr(inner, False)})"
        if kind == "case":
            _, whens, default = e
            if not whens:
                raise ValueError("a CASE needs at least one WHEN")
            text = "CASE" + "".join(
                f" WHEN {self.expr(c, False)} THEN {self.expr(r, False)}" for c, r in whens
            )
            if default is not None:
                text += " ELSE " + self.expr(default, False)
            return text + " END"
        if kind == "exists":
            _, sel, negated = e
            return ("NOT EXISTS (" if negated else "EXISTS (") + self.select(sel) + ")"
        if kind == "subquery":
            return "(" + self.select(e[1]) + ")"
        if kind == "same":
            _, left, right = e
            op = " IS NOT DISTINCT FROM " if self.pg else " IS "
            return self.expr(left, True) + op + self.expr(right, True)
        if kind == "cast":
            _, inner, type_name = e
            if type_name not in CAST_TYPES:
                raise ValueError(f"unknown cast type {type_name!r}")
            return f"CAST({self.expr(inner, False)} AS {type_name})"
        raise ValueError(f"unknown expression node {kind!r}")


_COMPILERS = {d: _Compiler(d) for d in DIALECTS}


def compile_sql(tree: Any, dialect: str) -> str:
    """Compile one statement tree to SQL text for ``dialect`` ('sqlite' or 'postgresql').

    Raises:
        ValueError: the tree is malformed, or names an unknown function, operator or dialect.
    """
    try:
        compiler = _COMPILERS[dialect]
    except KeyError:
        raise ValueError(
            f"unknown dialect {dialect!r}; expected 'sqlite' or 'postgresql'"
        ) from None
    try:
        return compiler.statement(tree)
    except (TypeError, IndexError) as exc:
        raise ValueError(f"malformed query tree: {exc}") from exc
