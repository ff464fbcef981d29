"""Raw ``aiosqlite`` (one connection, autocommit): the reference for ratios on SQLite.

Each statement uses aiosqlite's cheapest call: ``execute_fetchall`` (one hop to the worker
thread for execute + fetch + close), ``executemany`` in a ``BEGIN IMMEDIATE`` transaction.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from common import SQLITE_PRAGMAS, new_user_values, now, sqlite_datetime
from contenders.base import Contender
from contenders.raw_sql import assemble, qmarks, statements

SQL = statements("qmark")


class RawAiosqlite(Contender):
    async def open(self) -> None:
        self.db = await aiosqlite.connect(self.target, isolation_level=None)
        for key, value in SQLITE_PRAGMAS.items():
            await self.db.execute_fetchall(f"PRAGMA {key} = {value}")

    async def close(self) -> None:
        await self.db.close()

    async def info(self) -> dict[str, Any]:
        async def q(s: str) -> Any:
            return (await self.db.execute_fetchall(s))[0][0]

        return {"driver": f"aiosqlite {aiosqlite.__version__}", "engine": "aiosqlite",
                "pragmas": {"journal_mode": await q("PRAGMA journal_mode"),
                            "synchronous": await q("PRAGMA synchronous"),
                            "foreign_keys": await q("PRAGMA foreign_keys")}}

    async def execute(self, sql: str) -> int:
        cur = await self.db.execute(sql)
        n = cur.rowcount
        await cur.close()
        return n

    def _row(self, tag: str, i: int) -> tuple[Any, ...]:
        v = new_user_values(tag, i)
        return (v["username"], v["email"], v["city"], v["age"], v["is_active"],
                sqlite_datetime(now()))

    async def w1(self, tag: str) -> Any:
        sql, db = SQL["insert"], self.db
        ids = [(await db.execute_fetchall(sql, self._row(tag, i)))[0][0]
               for i in range(self.sizes.w1_creates)]
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        rows = [self._row(tag, i) for i in range(self.sizes.w2_rows)]
        await self.db.execute("BEGIN IMMEDIATE")
        await self.db.executemany(SQL["insert_many"], rows)
        await self.db.execute("COMMIT")
        return len(rows)

    async def w3(self) -> Any:
        total = 0
        for _ in range(self.sizes.w3_queries):
            total += len(await self.db.execute_fetchall(SQL["w3"], (True, self.sizes.w3_limit)))
        return total

    async def w4(self, pks: list[int]) -> Any:
        total = 0
        sql, db = SQL["get"], self.db
        for pk in pks:
            rows = await db.execute_fetchall(sql, (pk,))
            total += rows[0][0]
        return total

    async def w5(self) -> Any:
        for _ in range(self.sizes.w5_counts):
            n = (await self.db.execute_fetchall(SQL["w5"], (True, 30)))[0][0]
        return n

    async def w6(self) -> Any:
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            users = await self.db.execute_fetchall(SQL["w6_users"], (k * n, (k + 1) * n))
            ids = [u[0] for u in users]
            posts = await self.db.execute_fetchall(SQL["w6_posts"].format(qmarks(len(ids))), ids)
            pids = [p[0] for p in posts]
            comments = await self.db.execute_fetchall(
                SQL["w6_comments"].format(qmarks(len(pids))), pids)
            out, np, nc = assemble(users, posts, comments)
            totals[0] += len(out)
            totals[1] += np
            totals[2] += nc
        return totals

    async def w7(self) -> Any:
        for _ in range(self.sizes.w7_queries):
            rows = await self.db.execute_fetchall(SQL["w7"])
        return [len(rows), sum(r[1] for r in rows)]

    async def w8(self) -> Any:
        total = 0
        for _ in range(self.sizes.w8_updates):
            cur = await self.db.execute(SQL["w8"], ("draft", self.sizes.w8_max_user))
            total += cur.rowcount
            await cur.close()
        return total

    async def w9(self) -> Any:
        total = 0
        for _ in range(self.sizes.w9_fetches):
            total += len(await self.db.execute_fetchall(SQL["w9"], (self.sizes.w9_rows,)))
        return total

    async def w10(self) -> Any:
        n = 0
        async with self.db.execute(SQL["w10"]) as cur:
            while True:
                rows = await cur.fetchmany(self.sizes.w10_chunk)
                if not rows:
                    break
                for _row in rows:
                    n += 1
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)
