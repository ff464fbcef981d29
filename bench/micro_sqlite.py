"""Micro-benchmark: one-row primary-key lookups on SQLite, per engine. Not a test.

Runs N × ``SELECT ... FROM users WHERE id = ?`` fetching one row, sequentially on one event loop,
through:

* ``raw aiosqlite``: an ``aiosqlite`` connection, ``execute`` + ``fetchall`` (the reference
  engine's driver on its own);
* ``raw native``: a ``covet._covet_rs.NativeConnection`` called directly (one job per statement);
* ``adapter fetch``: ``adapter.run_fetch`` of CovetPy's adapter, per engine (pool, routing);
* ``ORM get``: ``await User.objects.get(id=pk)``, per engine (compile cache, decode, instance);
* ``ORM get, 8 tasks``: the same N lookups spread over 8 concurrent tasks (pool of 4), per engine:
  µs per lookup of wall time.

All with the adapter's pragmas (WAL, synchronous FULL, foreign keys). Prints µs per lookup, best
of several rounds::

    python bench/micro_sqlite.py [--n 2000] [--rounds 5] [--rows 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosqlite

from covet import _native
from covet.database import connections
from covet.database.adapters.sqlite_support import connection_pragmas
from covet.database.config import configure
from covet.database.orm import Model
from covet.database.orm.fields import BooleanField, CharField, IntegerField
from covet.database.orm.schema import create_tables

SQL = "SELECT id, username, email, age, is_active FROM users WHERE id = ?1"


class User(Model):
    username = CharField(max_length=100, unique=True)
    email = CharField(max_length=200)
    age = IntegerField(nullable=True)
    is_active = BooleanField(default=True)

    class Meta:
        db_table = "users"


async def best(label: str, n: int, rounds: int, once: Callable[[int], Awaitable[object]],
               ids: list[int]) -> None:
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for i in range(n):
            await once(ids[i % len(ids)])
        results.append((time.perf_counter() - started) / n * 1e6)
    print(f"{label:<28} {min(results):8.1f} µs/op   (median {sorted(results)[rounds // 2]:.1f})")


async def best_concurrent(label: str, n: int, rounds: int,
                          once: Callable[[int], Awaitable[object]], ids: list[int],
                          tasks: int = 8) -> None:
    async def share(k: int) -> None:
        for i in range(k, n, tasks):
            await once(ids[i % len(ids)])

    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        await asyncio.gather(*(share(k) for k in range(tasks)))
        results.append((time.perf_counter() - started) / n * 1e6)
    print(f"{label:<28} {min(results):8.1f} µs/op   (median {sorted(results)[rounds // 2]:.1f})")


async def seed(path: Path, rows: int) -> None:
    configure(f"sqlite+aiosqlite:///{path}", alias="default")
    await create_tables(User)
    await User.objects.bulk_create(
        [User(username=f"user{i}", email=f"u{i}@example.com", age=20 + i % 50)
         for i in range(rows)]
    )
    await connections.close_all()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "micro.db"
        await seed(path, args.rows)
        ids = list(range(1, args.rows + 1))
        random.Random(7).shuffle(ids)
        pragmas = connection_pragmas(str(path), {})
        print(f"{args.n} lookups × {args.rounds} rounds; SQLite {_sqlite_versions()}")

        async with aiosqlite.connect(path, isolation_level=None) as aio:
            for pragma in pragmas:
                await aio.execute(pragma)

            async def raw_aiosqlite(pk: int) -> object:
                cursor = await aio.execute(SQL, (pk,))
                rows = list(await cursor.fetchall())
                await cursor.close()
                assert len(rows) == 1
                return rows

            await best("raw aiosqlite", args.n, args.rounds, raw_aiosqlite, ids)

        rs = _native.native
        if rs is not None and hasattr(rs, "NativeConnection"):
            loop = asyncio.get_running_loop()
            conn = rs.NativeConnection(str(path), pragmas)
            fut = loop.create_future()
            conn.open(fut, loop)
            await fut

            async def raw_native(pk: int) -> object:
                fut = loop.create_future()
                conn.fetch(fut, loop, SQL, [pk])
                rows = await fut
                assert len(rows) == 1
                return rows

            await best("raw native", args.n, args.rounds, raw_native, ids)
            fut = loop.create_future()
            conn.close(fut, loop)
            await fut
        else:
            print("raw native                   (the Rust module is not built)")

        for scheme in ("sqlite+aiosqlite", "sqlite+native"):
            if scheme == "sqlite+native" and (rs is None or not hasattr(rs, "NativeConnection")):
                continue
            configure(f"{scheme}:///{path}", alias="default")
            adapter = await connections.get_adapter()

            async def fetch(pk: int, adapter: Any = adapter) -> object:
                return await adapter.run_fetch(SQL, [pk])

            async def get(pk: int) -> object:
                return await User.objects.get(id=pk)

            engine = scheme.split("+")[1]
            await best(f"adapter fetch ({engine})", args.n, args.rounds, fetch, ids)
            await best(f"ORM get ({engine})", args.n, args.rounds, get, ids)
            await best_concurrent(f"ORM get, 8 tasks ({engine})", args.n, args.rounds, get, ids)
            await connections.close_all()
        print(f"(compiler/decoder: {_native.implementation()})")


def _sqlite_versions() -> str:
    import sqlite3

    rs = _native.native
    native = rs.sqlite_version() if rs is not None and hasattr(rs, "sqlite_version") else "-"
    return f"python {sqlite3.sqlite_version}, native {native}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1000)
    asyncio.run(main(parser.parse_args()))
