"""CovetPy, in three configurations (the mode is fixed before import, by the parent process):

* ``covet-rust``: the Rust core, engine from ``sqlite:///`` (the native SQLite engine once it
  exists, aiosqlite until then);
* ``covet-py``: ``COVET_PURE_PYTHON=1`` and the aiosqlite reference engine
  (``sqlite+aiosqlite:///`` when that scheme is registered);
* ``covet-rust-aiosqlite`` (optional): the Rust core with the aiosqlite engine.

PostgreSQL always goes through CovetPy's asyncpg pool.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from common import new_user_values
from contenders.base import Contender


def sqlite_scheme(contender: str) -> str:
    """The URL scheme this contender uses on SQLite (``COVET_BENCH_SQLITE_SCHEME`` overrides)."""
    override = os.environ.get("COVET_BENCH_SQLITE_SCHEME")
    if override:
        return override
    from covet.database.adapters import registered_schemes

    if contender == "covet-rust":
        return "sqlite"
    return "sqlite+aiosqlite" if "sqlite+aiosqlite" in registered_schemes() else "sqlite"


class Covet(Contender):
    async def open(self) -> None:
        import warnings

        from covet.database import configure, get_adapter

        self.notes: list[str] = []
        if self.db == "sqlite":
            self.url = f"{sqlite_scheme(self.name)}:///{self.target}"
        else:
            self.url = self.target
        configure(self.url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.adapter = await get_adapter()
            except ImportError as exc:
                # The engine named by the URL is not importable in this checkout (e.g. the
                # native SQLite engine is half-landed): use the aiosqlite reference, and say so.
                if self.db != "sqlite":
                    raise
                self.notes.append(f"{self.url.split('://')[0]} unavailable ({exc}); "
                                  f"fell back to sqlite+aiosqlite")
                self.url = f"sqlite+aiosqlite:///{self.target}"
                configure(self.url)
                self.adapter = await get_adapter()
        self.notes += [f"{w.category.__name__}: {w.message}" for w in caught]
        for note in self.notes:
            print(f"note: {self.name}: {note}", file=sys.stderr)
        from contenders import covet_models
        from covet.database.orm.aggregates import Avg, Count
        from covet.database.orm.query import F

        self.m = covet_models
        self.Count, self.Avg, self.F = Count, Avg, F

    async def close(self) -> None:
        from covet.database import close_all

        await close_all()

    async def info(self) -> dict[str, Any]:
        import covet
        from covet import _native

        a = self.adapter
        out: dict[str, Any] = {
            "driver": f"covet {getattr(covet, '__version__', '?')}",
            "imported_from": os.path.dirname(os.path.dirname(os.path.abspath(covet.__file__))),
            "implementation": _native.implementation(),
            "engine": f"{type(a).__module__}.{type(a).__name__}",
            "url_scheme": self.url.split("://", 1)[0],
            "notes": self.notes,
        }
        if self.db == "sqlite" and "native" in out["engine"].lower():
            v = getattr(_native.native, "sqlite_version", None)
            bundled = getattr(_native.native, "SQLITE_BUNDLED", False)
            out["native_sqlite"] = (f"{v() if callable(v) else v} "
                                    f"({'bundled' if bundled else 'the system libsqlite3'})")
        if self.db == "sqlite":
            out["pragmas"] = {k: (await a.fetch_value(f"PRAGMA {k}"))
                              for k in ("journal_mode", "synchronous", "foreign_keys")}
        else:
            out["settings"] = {k: await a.fetch_value(f"SHOW {k}")
                               for k in ("fsync", "synchronous_commit")}
        expected = "python" if os.environ.get("COVET_PURE_PYTHON") == "1" else "rust"
        if out["implementation"] != expected:
            print(f"warning: {self.name} runs {out['implementation']}, expected {expected}",
                  file=sys.stderr)
        return out

    async def execute(self, sql: str) -> int:
        return int(await self.adapter.execute(sql))

    async def w1(self, tag: str) -> Any:
        User = self.m.User
        ids = []
        for i in range(self.sizes.w1_creates):
            u = await User.create(**new_user_values(tag, i))
            ids.append(u.id)
        return sum(1 for i in ids if i is not None)

    async def w2(self, tag: str) -> Any:
        User = self.m.User
        objs = await User.objects.bulk_create(
            [User(**new_user_values(tag, i)) for i in range(self.sizes.w2_rows)])
        return len(objs)

    async def w3(self) -> Any:
        User = self.m.User
        total = 0
        for _ in range(self.sizes.w3_queries):
            total += len(await User.objects.filter(is_active=True).limit(self.sizes.w3_limit))
        return total

    async def w4(self, pks: list[int]) -> Any:
        objects = self.m.User.objects
        total = 0
        for pk in pks:
            total += (await objects.get(id=pk)).id
        return total

    async def w5(self) -> Any:
        User = self.m.User
        for _ in range(self.sizes.w5_counts):
            n = await User.objects.filter(is_active=True, age__gte=30).count()
        return n

    async def w6(self) -> Any:
        User = self.m.User
        n = self.sizes.w6_users
        totals = [0, 0, 0]
        for k in range(self.sizes.w6_iterations):
            users = await User.objects.filter(id__gt=k * n, id__lte=(k + 1) * n) \
                .prefetch_related("posts__comments")
            totals[0] += len(users)
            for u in users:  # prefetched managers: len() and iteration run no query
                totals[1] += len(u.posts)
                for p in u.posts:
                    totals[2] += len(p.comments)
        return totals

    async def w7(self) -> Any:
        User = self.m.User
        for _ in range(self.sizes.w7_queries):
            rows = await User.objects.values("city").annotate(n=self.Count("id"),
                                                               avg_age=self.Avg("age"))
        return [len(rows), sum(r["n"] for r in rows)]

    async def w8(self) -> Any:
        Post = self.m.Post
        total = 0
        for _ in range(self.sizes.w8_updates):
            total += await Post.objects.filter(status="draft", user_id__lte=self.sizes.w8_max_user) \
                .update(views=self.F("views") + 1)
        return total

    async def w9(self) -> Any:
        User = self.m.User
        total = 0
        for _ in range(self.sizes.w9_fetches):
            total += len(await User.objects.limit(self.sizes.w9_rows))
        return total

    async def w10(self) -> Any:
        n = 0
        async for _u in self.m.User.objects.iterator(chunk_size=self.sizes.w10_chunk):
            n += 1
        return n

    async def w11(self, pks: list[int]) -> Any:
        return await self.w4(pks)
