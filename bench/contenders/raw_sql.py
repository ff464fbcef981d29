"""The hand-written SQL of the raw-driver contenders (``?`` for sqlite3/aiosqlite, ``$n`` for
asyncpg), and the dict assembly of W6. The statements match what the ORMs send: same columns,
same filters, same limits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common import COMMENT_COLUMNS, POST_COLUMNS, USER_COLUMNS


def _cols(columns: Sequence[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def statements(style: str) -> dict[str, str]:
    def p(i: int) -> str:
        return "?" if style == "qmark" else f"${i}"

    ucols = _cols(USER_COLUMNS)
    insert_cols = _cols(USER_COLUMNS[1:])
    values = ", ".join(p(i + 1) for i in range(len(USER_COLUMNS) - 1))
    in_list = "IN ({})" if style == "qmark" else "= ANY($1::int[])"
    return {
        "insert": f'INSERT INTO "users" ({insert_cols}) VALUES ({values}) RETURNING "id"',
        "insert_many": f'INSERT INTO "users" ({insert_cols}) VALUES ({values})',
        "w3": f'SELECT {ucols} FROM "users" WHERE "is_active" = {p(1)} LIMIT {p(2)}',
        "get": f'SELECT {ucols} FROM "users" WHERE "id" = {p(1)}',
        "w5": f'SELECT COUNT(*) FROM "users" WHERE "is_active" = {p(1)} AND "age" >= {p(2)}',
        "w6_users": f'SELECT {ucols} FROM "users" WHERE "id" > {p(1)} AND "id" <= {p(2)}',
        "w6_posts": f'SELECT {_cols(POST_COLUMNS)} FROM "posts" WHERE "user_id" {in_list} '
                    f'ORDER BY "id"',
        "w6_comments": f'SELECT {_cols(COMMENT_COLUMNS)} FROM "comments" WHERE "post_id" '
                       f'{in_list} ORDER BY "id"',
        "w7": 'SELECT "city", COUNT("id") AS "n", AVG("age") AS "avg_age" FROM "users" '
              'GROUP BY "city"',
        "w8": f'UPDATE "posts" SET "views" = "views" + 1 WHERE "status" = {p(1)} '
              f'AND "user_id" <= {p(2)}',
        "w9": f'SELECT {ucols} FROM "users" LIMIT {p(1)}',
        "w10": f'SELECT {ucols} FROM "users"',
    }


def qmarks(n: int) -> str:
    return ", ".join("?" * n)


def assemble(users: Sequence[Sequence[Any]], posts: Sequence[Sequence[Any]],
             comments: Sequence[Sequence[Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """Users as dicts, each with a ``posts`` list of dicts, each with a ``comments`` list."""
    out = []
    by_user: dict[Any, list[dict[str, Any]]] = {}
    for row in users:
        u = dict(zip(USER_COLUMNS, row))
        u["posts"] = by_user.setdefault(u["id"], [])
        out.append(u)
    by_post: dict[Any, list[dict[str, Any]]] = {}
    for row in posts:
        p = dict(zip(POST_COLUMNS, row))
        p["comments"] = by_post.setdefault(p["id"], [])
        by_user[p["user_id"]].append(p)
    for row in comments:
        c = dict(zip(COMMENT_COLUMNS, row))
        by_post[c["post_id"]].append(c)
    return out, len(posts), len(comments)
