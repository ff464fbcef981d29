"""Tortoise ORM, its own aiosqlite client on SQLite (given ``common.SQLITE_PRAGMAS``, and
``journal_size_limit=-1``, SQLite's default, instead of Tortoise's 16384) and its asyncpg pool on
PostgreSQL.

Tortoise has no streaming iterator (``async for`` over a QuerySet fetches everything first), so
W10 is keyset pagination in pages of ``chunk_size`` (``id > last ORDER BY id LIMIT n``), the
usual way to stream with it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import tortoise
from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.expressions import F
from tortoise.functions import Avg, Count

from common import SQLITE_PRAGMAS, new_user_values
from contenders.base import Contender


class TortoiseORM(Contender):
    async def open(self) -> None:
        if self.db == "sqlite":
            conn: dict[str, Any] = {
                "engine": "tortoise.backends.sqlite",
                "credentials": {"file_path": self.target, **SQLITE_PRAGMAS,
                                "journal_size_limit": -1},
            }
        else:
            u = urlsplit(self.target)
            conn = {"engine": "tortoise.backends.asyncpg",
                    "credentials": {"host": u.hostname, "port": u.port or 5432,
                                    "user": unquote(u.username or ""),
                                    "password": unquote(u.password) if u.password else None,
                                    "database": u.path.lstrip("/")}}
        await Tortoise.init(config={
            "connections": {"default": conn},
            "apps": {"models": {"models": ["contenders.tortoise_models"],
                                "default_connection": "default"}},
            "use_tz": True, "timezone": "UTC"})
        from contenders import tortoise_models

        self.m = tortoise_models
        self.conn = get_connection("default")

    async def close(self) -> None:
        await Tortoise.close_connections()

    async def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"driver": f"tortoise-orm {tortoise.__version__}",
                               "engine": type(self.conn).__module__}
        if self.db == "sqlite":
            out["pragmas"] = {}
            for k in ("journal_mode", "synchronous", "foreign_keys"):
                _, rows = await self.conn.execute_query(f"PRAGMA {k}")
                out["pragmas"][k] = rows[0][0]
        else:
            out["settings"] = {}
            for k in ("fsync", "synchronous_commit"):
                _, rows = await self.conn.execute_query(f"SHOW {k}")
                out["settings"][k] = rows[0][0]
        return out

    async def execute(self, sql: str) -> int:
        n, _ = await self.conn.execute_query(sql)
        return int(n)

    async def w1(self, tag: str) -> Any:
        User = self.m.User
        ids = []
        for i in range(self.sizes.w1_creates):
            u = await User.create(**new_user_values(tag, i))
            ids.append(u.id)
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        User = self.m.User
        objs = [User(**new_user_values(tag, i)) for i in range(self.sizes.w2_rows)]
        await User.bulk_create(objs)
        return len(objs)

    async def w3(self) -> Any:
        User = self.m.User
        total = 0
        for _ in range(self.sizes.w3_queries):
            total += len(await User.filter(is_active=True).limit(self.sizes.w3_limit))
        return total

    async def w4(self, pks: list[int]) -> Any:
        User = self.m.User
        total = 0
        for pk in pks:
            total += (await User.get(id=pk)).id
        return total

    async def w5(self) -> Any:
        User = self.m.User
        for _ in range(self.sizes.w5_counts):
            n = await User.filter(is_active=True, age__gte=30).count()
        return n

    async def w6(self) -> Any:
        User = self.m.User
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            users = await User.filter(id__gt=k * n, id__lte=(k + 1) * n) \
                .prefetch_related("posts__comments")
            totals[0] += len(users)
            for u in users:
                posts = list(u.posts)
                totals[1] += len(posts)
                for p in posts:
                    totals[2] += len(list(p.comments))
        return totals

    async def w7(self) -> Any:
        User = self.m.User
        for _ in range(self.sizes.w7_queries):
            rows = await User.annotate(n=Count("id"), avg_age=Avg("age")).group_by("city") \
                .values("city", "n", "avg_age")
        return [len(rows), sum(r["n"] for r in rows)]

    async def w8(self) -> Any:
        Post = self.m.Post
        total = 0
        for _ in range(self.sizes.w8_updates):
            total += await Post.filter(status="draft", user_id__lte=self.sizes.w8_max_user) \
                .update(views=F("views") + 1)
        return total

    async def w9(self) -> Any:
        User = self.m.User
        total = 0
        for _ in range(self.sizes.w9_fetches):
            total += len(await User.all().limit(self.sizes.w9_rows))
        return total

    async def w10(self) -> Any:
        User = self.m.User
        n = 0
        last = 0
        chunk = self.sizes.w10_chunk
        while True:
            page = await User.filter(id__gt=last).order_by("id").limit(chunk)
            for _u in page:
                n += 1
            if len(page) < chunk:
                break
            last = page[-1].id
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)
