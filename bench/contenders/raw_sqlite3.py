"""Raw ``sqlite3`` (synchronous, one connection, autocommit): the floor for SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any

from common import SQLITE_PRAGMAS, new_user_values, now, sqlite_datetime
from contenders.base import Contender
from contenders.raw_sql import assemble, qmarks, statements

SQL = statements("qmark")


class RawSqlite3(Contender):
    sync = True

    async def open(self) -> None:
        self.conn = sqlite3.connect(self.target, isolation_level=None)
        for key, value in SQLITE_PRAGMAS.items():
            self.conn.execute(f"PRAGMA {key} = {value}").close()

    async def close(self) -> None:
        self.conn.close()

    async def info(self) -> dict[str, Any]:
        q = lambda s: self.conn.execute(s).fetchone()[0]  # noqa: E731
        return {"driver": f"sqlite3 {sqlite3.sqlite_version}",
                "engine": "sqlite3 (synchronous, in the event loop's thread)",
                "pragmas": {"journal_mode": q("PRAGMA journal_mode"),
                            "synchronous": q("PRAGMA synchronous"),
                            "foreign_keys": q("PRAGMA foreign_keys")}}

    async def execute(self, sql: str) -> int:
        return self.conn.execute(sql).rowcount

    def _row(self, tag: str, i: int) -> tuple[Any, ...]:
        v = new_user_values(tag, i)
        return (v["username"], v["email"], v["city"], v["age"], v["is_active"],
                sqlite_datetime(now()))

    async def w1(self, tag: str) -> Any:
        sql, conn = SQL["insert"], self.conn
        ids = [conn.execute(sql, self._row(tag, i)).fetchone()[0]
               for i in range(self.sizes.w1_creates)]
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        rows = [self._row(tag, i) for i in range(self.sizes.w2_rows)]
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.executemany(SQL["insert_many"], rows)
        self.conn.execute("COMMIT")
        return len(rows)

    async def w3(self) -> Any:
        total = 0
        for _ in range(self.sizes.w3_queries):
            total += len(self.conn.execute(SQL["w3"], (True, self.sizes.w3_limit)).fetchall())
        return total

    async def w4(self, pks: list[int]) -> Any:
        total = 0
        sql, conn = SQL["get"], self.conn
        for pk in pks:
            total += conn.execute(sql, (pk,)).fetchall()[0][0]
        return total

    async def w5(self) -> Any:
        return [self.conn.execute(SQL["w5"], (True, 30)).fetchone()[0]
                for _ in range(self.sizes.w5_counts)][-1]

    async def w6(self) -> Any:
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            users = self.conn.execute(SQL["w6_users"], (k * n, (k + 1) * n)).fetchall()
            ids = [u[0] for u in users]
            posts = self.conn.execute(SQL["w6_posts"].format(qmarks(len(ids))), ids).fetchall()
            pids = [p[0] for p in posts]
            comments = self.conn.execute(SQL["w6_comments"].format(qmarks(len(pids))),
                                         pids).fetchall()
            out, np, nc = assemble(users, posts, comments)
            totals[0] += len(out)
            totals[1] += np
            totals[2] += nc
        return totals

    async def w7(self) -> Any:
        for _ in range(self.sizes.w7_queries):
            rows = self.conn.execute(SQL["w7"]).fetchall()
        return [len(rows), sum(r[1] for r in rows)]

    async def w8(self) -> Any:
        return sum(self.conn.execute(SQL["w8"], ("draft", self.sizes.w8_max_user)).rowcount
                   for _ in range(self.sizes.w8_updates))

    async def w9(self) -> Any:
        return sum(len(self.conn.execute(SQL["w9"], (self.sizes.w9_rows,)).fetchall())
                   for _ in range(self.sizes.w9_fetches))

    async def w10(self) -> Any:
        n = 0
        cur = self.conn.execute(SQL["w10"])
        try:
            while True:
                rows = cur.fetchmany(self.sizes.w10_chunk)
                if not rows:
                    break
                for _row in rows:
                    n += 1
        finally:
            cur.close()
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)
