"""Raw ``asyncpg`` on one connection: the reference for ratios on PostgreSQL.

One connection rather than a pool: an asyncpg pool runs a reset query on every release (an
extra round trip), which would flatter anything measured against it. Records are returned as
they come (``asyncpg.Record``, a tuple-like); no conversion.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from common import new_user_values, now
from contenders.base import Contender
from contenders.raw_sql import assemble, statements

SQL = statements("numeric")


class RawAsyncpg(Contender):
    async def open(self) -> None:
        self.conn = await asyncpg.connect(self.target)

    async def close(self) -> None:
        await self.conn.close()

    async def info(self) -> dict[str, Any]:
        c = self.conn
        return {"driver": f"asyncpg {asyncpg.__version__}", "engine": "asyncpg (one connection)",
                "settings": {"fsync": await c.fetchval("SHOW fsync"),
                             "synchronous_commit": await c.fetchval("SHOW synchronous_commit"),
                             "server_version": await c.fetchval("SHOW server_version")}}

    async def execute(self, sql: str) -> int:
        status = await self.conn.execute(sql)
        return int(status.rsplit(" ", 1)[-1]) if status.split()[0] in (
            "DELETE", "UPDATE", "INSERT") else 0

    def _row(self, tag: str, i: int) -> tuple[Any, ...]:
        v = new_user_values(tag, i)
        return (v["username"], v["email"], v["city"], v["age"], v["is_active"], now())

    async def w1(self, tag: str) -> Any:
        sql, conn = SQL["insert"], self.conn
        ids = [await conn.fetchval(sql, *self._row(tag, i)) for i in range(self.sizes.w1_creates)]
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        rows = [self._row(tag, i) for i in range(self.sizes.w2_rows)]
        async with self.conn.transaction():
            await self.conn.executemany(SQL["insert_many"], rows)
        return len(rows)

    async def w3(self) -> Any:
        total = 0
        for _ in range(self.sizes.w3_queries):
            total += len(await self.conn.fetch(SQL["w3"], True, self.sizes.w3_limit))
        return total

    async def w4(self, pks: list[int]) -> Any:
        total = 0
        sql, conn = SQL["get"], self.conn
        for pk in pks:
            rows = await conn.fetch(sql, pk)
            total += rows[0][0]
        return total

    async def w5(self) -> Any:
        for _ in range(self.sizes.w5_counts):
            n = await self.conn.fetchval(SQL["w5"], True, 30)
        return n

    async def w6(self) -> Any:
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            users = await self.conn.fetch(SQL["w6_users"], k * n, (k + 1) * n)
            posts = await self.conn.fetch(SQL["w6_posts"], [u[0] for u in users])
            comments = await self.conn.fetch(SQL["w6_comments"], [p[0] for p in posts])
            out, np, nc = assemble(users, posts, comments)
            totals[0] += len(out)
            totals[1] += np
            totals[2] += nc
        return totals

    async def w7(self) -> Any:
        for _ in range(self.sizes.w7_queries):
            rows = await self.conn.fetch(SQL["w7"])
        return [len(rows), sum(r[1] for r in rows)]

    async def w8(self) -> Any:
        total = 0
        for _ in range(self.sizes.w8_updates):
            status = await self.conn.execute(SQL["w8"], "draft", self.sizes.w8_max_user)
            total += int(status.rsplit(" ", 1)[-1])
        return total

    async def w9(self) -> Any:
        total = 0
        for _ in range(self.sizes.w9_fetches):
            total += len(await self.conn.fetch(SQL["w9"], self.sizes.w9_rows))
        return total

    async def w10(self) -> Any:
        n = 0
        async with self.conn.transaction():
            cur = await self.conn.cursor(SQL["w10"])
            while True:
                rows = await cur.fetch(self.sizes.w10_chunk)
                if not rows:
                    break
                for _row in rows:
                    n += 1
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)
