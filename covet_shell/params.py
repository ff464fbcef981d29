"""``:name`` parameters of ``%%covet_sql`` cells, turned into bound ``$n`` placeholders.

Barrier: this module reads SQL text and never runs it. It finds ``:name`` references outside
string literals, quoted identifiers, comments and ``::`` casts, numbers them ``$1, $2, ...`` in
order of first appearance (a name used twice reuses its number) and looks the values up in a
namespace. The values are *never* pasted into the SQL text: they travel as bound parameters of
the adapter's public raw API (``$1`` placeholders on every backend).

What the scanner understands (PostgreSQL and SQLite lexical rules):

* ``'...'`` string literals with ``''`` escapes, and ``E'...'`` strings with backslash escapes;
* ``"..."`` quoted identifiers with ``""`` escapes;
* dollar-quoted strings ``$$...$$`` and ``$tag$...$tag$``;
* ``-- ...`` line comments and ``/* ... */`` block comments (nested, as in PostgreSQL);
* ``::type`` casts, and a colon directly after a word character (``arr[lo:hi]``, ``a:b``),
  which are not parameters;
* ``\\:name`` writes a literal ``:name`` (the backslash is dropped).

A ``$1`` placeholder written by hand is refused: its value would have no name to come from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "BoundSQL",
    "ParameterError",
    "UnknownParameter",
    "bind",
    "first_keyword",
    "parse",
    "split_statements",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_POSITIONAL = re.compile(r"\$\d+")
_WORD = re.compile(r"\w")


class ParameterError(ValueError):
    """The SQL text of a ``%%covet_sql`` cell cannot be parametrized as written."""


class UnknownParameter(ParameterError):
    """A ``:name`` refers to no variable of the namespace.

    Attributes:
        name: the missing name.
    """

    def __init__(self, name: str, known: list[str] | None = None) -> None:
        self.name = name
        hint = f"; did you mean {', '.join(':' + k for k in known)}?" if known else ""
        super().__init__(f":{name} refers to no variable of the namespace{hint} "
                         f"(define {name} = ... in a cell first)")


@dataclass(frozen=True, slots=True)
class BoundSQL:
    """SQL with ``$n`` placeholders and the names (then values) bound to them.

    Attributes:
        sql: the SQL text with every ``:name`` replaced by its ``$n``.
        names: the parameter names, ``names[i]`` bound to ``$i+1``.
        values: the values, once looked up (``bind``); empty after ``parse``.
    """

    sql: str
    names: tuple[str, ...]
    values: tuple[Any, ...] = field(default=())


def _tokens(sql: str) -> Iterator[tuple[str, int, int]]:
    """Yield ``(kind, start, end)`` spans: ``code``, ``skip`` (literal/comment), ``param``,
    ``escaped`` (``\\:name``), ``semicolon`` and ``positional`` (a hand-written ``$1``).

    Raises:
        ParameterError: a literal, identifier or comment is not closed.
    """
    i, n = 0, len(sql)
    code_start = 0

    def flush(upto: int) -> Iterator[tuple[str, int, int]]:
        if upto > code_start:
            yield ("code", code_start, upto)

    while i < n:
        ch = sql[i]
        start = i
        if ch == "'" or (ch in "eE" and sql.startswith("'", i + 1)
                         and (i == 0 or not _WORD.match(sql[i - 1]))):
            backslash = ch != "'"
            i = i + 2 if backslash else i + 1
            while True:
                if i >= n:
                    raise ParameterError(f"unterminated string literal starting at offset {start}")
                c = sql[i]
                if backslash and c == "\\":
                    i += 2
                    continue
                if c == "'":
                    if sql.startswith("'", i + 1):
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
        elif ch == '"':
            i += 1
            while True:
                j = sql.find('"', i)
                if j < 0:
                    raise ParameterError(f"unterminated quoted identifier at offset {start}")
                if sql.startswith('"', j + 1):
                    i = j + 2
                    continue
                i = j + 1
                break
        elif ch == "-" and sql.startswith("-", i + 1):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif ch == "/" and sql.startswith("*", i + 1):
            depth, i = 1, i + 2
            while depth:
                if i >= n:
                    raise ParameterError(f"unterminated /* comment at offset {start}")
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch == "$" and (i == 0 or not _WORD.match(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None:
                close = sql.find(tag.group(0), tag.end())
                if close < 0:
                    raise ParameterError(f"unterminated dollar-quoted string {tag.group(0)} at "
                                         f"offset {start}")
                i = close + len(tag.group(0))
            else:
                positional = _POSITIONAL.match(sql, i)
                if positional is None:
                    i += 1
                    continue
                yield from flush(start)
                yield ("positional", start, positional.end())
                i = code_start = positional.end()
                continue
        elif ch == ":":
            if sql.startswith(":", i + 1):  # a ::cast
                i += 2
                continue
            name = _NAME.match(sql, i + 1)
            preceded = i > 0 and (_WORD.match(sql[i - 1]) or sql[i - 1] == ":")
            if name is None or preceded:
                i += 1
                continue
            escaped = i > 0 and sql[i - 1] == "\\"
            yield from flush(start - 1 if escaped else start)
            yield ("escaped" if escaped else "param", start, name.end())
            i = code_start = name.end()
            continue
        elif ch == ";":
            yield from flush(start)
            yield ("semicolon", start, i + 1)
            i = code_start = i + 1
            continue
        else:
            i += 1
            continue
        # a literal, identifier or comment spans [start, i)
        yield from flush(start)
        yield ("skip", start, i)
        code_start = i
    yield from flush(n)


def parse(sql: str) -> BoundSQL:
    """Replace each ``:name`` outside literals, comments and casts by ``$n``.

    Returns:
        The rewritten SQL and the names in placeholder order (no values yet).

    Raises:
        ParameterError: a hand-written ``$1`` placeholder, or an unterminated literal/comment.
    """
    out: list[str] = []
    names: list[str] = []
    for kind, start, end in _tokens(sql):
        text = sql[start:end]
        if kind == "param":
            name = text[1:]
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
        elif kind == "escaped":
            out.append(text)  # the backslash was left out of the preceding code span
        elif kind == "positional":
            raise ParameterError(
                f"{text} is a positional placeholder with no value: %%covet_sql takes :name "
                f"parameters that name a variable of the namespace (e.g. WHERE id = :user_id)"
            )
        else:
            out.append(text)
    return BoundSQL("".join(out), tuple(names))


def bind(sql: str, namespace: Mapping[str, Any]) -> BoundSQL:
    """Parse ``sql`` and look every ``:name`` up in ``namespace``.

    Raises:
        UnknownParameter: a name is not in ``namespace`` (the message names it).
        ParameterError: see :func:`parse`.
    """
    import difflib

    parsed = parse(sql)
    values = []
    for name in parsed.names:
        if name not in namespace:
            public = [k for k in namespace if not k.startswith("_")]
            raise UnknownParameter(name, difflib.get_close_matches(name, public, n=3))
        values.append(namespace[name])
    return BoundSQL(parsed.sql, parsed.names, tuple(values))


def split_statements(sql: str) -> list[str]:
    """Split a script on the semicolons outside literals and comments; blank parts dropped."""
    parts: list[str] = []
    begin = 0
    for kind, start, end in _tokens(sql):
        if kind == "semicolon":
            parts.append(sql[begin:start])
            begin = end
    parts.append(sql[begin:])
    return [p.strip() for p in parts if _has_code(p)]


def _has_code(sql: str) -> bool:
    return any(kind != "skip" and sql[s:e].strip() for kind, s, e in _tokens(sql))


def first_keyword(sql: str) -> str:
    """The first word of the statement outside comments, upper-cased (``''`` when none)."""
    for kind, start, end in _tokens(sql):
        text = sql[start:end]
        if (kind == "skip" and text.startswith(("--", "/*"))) or not text.strip():
            continue
        word = re.match(r"\s*([A-Za-z_]+)", text)
        return word.group(1).upper() if word is not None else ""
    return ""
