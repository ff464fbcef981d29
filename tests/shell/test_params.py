"""``:name`` parameters of ``%%covet_sql``: found outside literals, comments and casts only."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from covet_shell.params import (
    ParameterError,
    UnknownParameter,
    bind,
    first_keyword,
    parse,
    split_statements,
)


class Err(NamedTuple):
    message: str


CASES: list[tuple[str, Any]] = [
    # (sql, expected: (sql with $n, names) or Err(message fragment))
    ("SELECT * FROM t WHERE id = :id", ("SELECT * FROM t WHERE id = $1", ("id",))),
    ("SELECT :a, :b, :a", ("SELECT $1, $2, $1", ("a", "b"))),
    ("SELECT ':a' , :b", ("SELECT ':a' , $1", ("b",))),
    ("SELECT 'it''s :a' || :b", ("SELECT 'it''s :a' || $1", ("b",))),
    ("SELECT E'it\\'s :a' || :b", ("SELECT E'it\\'s :a' || $1", ("b",))),
    ("SELECT e'\\\\' || :b", ("SELECT e'\\\\' || $1", ("b",))),
    ("SELECT name' :x'", ("SELECT name' :x'", ())),  # a literal after an identifier
    ("SELECT $$ :a $$ || :b", ("SELECT $$ :a $$ || $1", ("b",))),
    ("SELECT $fn$ it's :a $$ $fn$ || :b", ("SELECT $fn$ it's :a $$ $fn$ || $1", ("b",))),
    ('SELECT ":a" FROM t WHERE x = :x', ('SELECT ":a" FROM t WHERE x = $1', ("x",))),
    ('SELECT "we""ird :a" , :x', ('SELECT "we""ird :a" , $1', ("x",))),
    ("SELECT 1 -- :a\n, :b", ("SELECT 1 -- :a\n, $1", ("b",))),
    ("SELECT /* :a /* :nest */ :b */ :c", ("SELECT /* :a /* :nest */ :b */ $1", ("c",))),
    ("SELECT x::text, :y::int", ("SELECT x::text, $1::int", ("y",))),
    ("SELECT arr[1:2], a:b", ("SELECT arr[1:2], a:b", ())),
    ("SELECT \\:literal, :p", ("SELECT :literal, $1", ("p",))),
    ("SELECT a$b, :c", ("SELECT a$b, $1", ("c",))),
    ("SELECT :name_2, :_x", ("SELECT $1, $2", ("name_2", "_x"))),
    ("SELECT * FROM t WHERE id = $1", Err("positional placeholder")),
    ("SELECT 'open", Err("unterminated string")),
    ("SELECT $$ open", Err("unterminated dollar-quoted")),
    ("SELECT /* open", Err("unterminated /*")),
    ('SELECT "open', Err("unterminated quoted identifier")),
]


@pytest.mark.parametrize(("sql", "expected"), CASES)
def test_parse(sql: str, expected: Any) -> None:
    if isinstance(expected, Err):
        with pytest.raises(ParameterError, match=expected.message):
            parse(sql)
        return
    bound = parse(sql)
    assert (bound.sql, bound.names) == expected


def test_bind_looks_values_up_and_never_pastes_them() -> None:
    value = "O'Brien \"the\" \\ one"
    bound = bind("UPDATE t SET a = :v WHERE id = :id AND b <> ':v'", {"v": value, "id": 3})
    assert bound.sql == "UPDATE t SET a = $1 WHERE id = $2 AND b <> ':v'"
    assert bound.values == (value, 3)
    assert value not in bound.sql


def test_unknown_name_is_named_with_close_matches() -> None:
    with pytest.raises(UnknownParameter, match=r":user_idd refers to no variable.*:user_id"):
        bind("SELECT :user_idd", {"user_id": 1, "_private": 2})


@pytest.mark.parametrize(("script", "statements"), [
    ("SELECT 1; SELECT 2;", ["SELECT 1", "SELECT 2"]),
    ("SELECT ';'; -- a; comment\n", ["SELECT ';'"]),
    ("CREATE FUNCTION f() AS $$ a; b $$; SELECT 1",
     ["CREATE FUNCTION f() AS $$ a; b $$", "SELECT 1"]),
    ("  ;  ; ", []),
])
def test_split_statements(script: str, statements: list[str]) -> None:
    assert split_statements(script) == statements


@pytest.mark.parametrize(("sql", "keyword"), [
    ("select 1", "SELECT"),
    ("-- note\n/* c */ WITH x AS (SELECT 1) SELECT * FROM x", "WITH"),
    ("  update t set a = 1", "UPDATE"),
    ("'literal'", ""),
])
def test_first_keyword(sql: str, keyword: str) -> None:
    assert first_keyword(sql) == keyword
