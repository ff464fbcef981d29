"""Build the seeded template database once, then hand each contender a fresh identical copy.

* SQLite: the template is a file built with ``sqlite3`` (WAL, ANALYZEd, checkpointed); each
  contender gets a byte copy of it.
* PostgreSQL: the template is a database ``bench_template`` loaded with COPY; each contender gets
  ``CREATE DATABASE bench_<contender> TEMPLATE bench_template``.

The schema is the DDL CovetPy generates (``common.SCHEMA``); the data come from ``common.users``,
``common.posts`` and ``common.comments`` (deterministic).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from urllib.parse import urlsplit, urlunsplit

from common import SCHEMA, Sizes, comments, posts, sqlite_datetime, users

TEMPLATE_DB = "bench_template"


# SQLite ---------------------------------------------------------------------------------------
def build_sqlite_template(path: str, sizes: Sizes) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        for stmt in SCHEMA["sqlite"]:
            conn.execute(stmt)
        conn.executemany(
            'INSERT INTO "users" VALUES (?, ?, ?, ?, ?, ?, ?)',
            ((i, u, e, c, a, int(act), sqlite_datetime(t)) for i, u, e, c, a, act, t in users(sizes)),
        )
        conn.executemany('INSERT INTO "posts" VALUES (?, ?, ?, ?, ?)', posts(sizes))
        conn.executemany('INSERT INTO "comments" VALUES (?, ?, ?, ?)', comments(sizes))
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def copy_sqlite(template: str, dest: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(dest + suffix):
            os.remove(dest + suffix)
    shutil.copyfile(template, dest)


def remove_sqlite(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


# PostgreSQL -----------------------------------------------------------------------------------
def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def db_name(contender: str) -> str:
    return "bench_" + contender.replace("-", "_")


async def _build_pg_template(admin_url: str, sizes: Sizes) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(admin_url, TEMPLATE_DB))
    try:
        async with conn.transaction():
            for stmt in SCHEMA["postgresql"]:
                await conn.execute(stmt)
            await conn.copy_records_to_table(
                "users", records=list(users(sizes)),
                columns=["id", "username", "email", "city", "age", "is_active", "created_at"])
            await conn.copy_records_to_table(
                "posts", records=list(posts(sizes)),
                columns=["id", "user_id", "title", "views", "status"])
            await conn.copy_records_to_table(
                "comments", records=list(comments(sizes)), columns=["id", "post_id", "body", "likes"])
            for table in ("users", "posts", "comments"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM \"{table}\"))")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def build_pg_template(admin_url: str, sizes: Sizes) -> None:
    asyncio.run(_build_pg_template(admin_url, sizes))


async def _pg_admin(admin_url: str, *statements: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(admin_url)
    try:
        for stmt in statements:
            await admin.execute(stmt)
    finally:
        await admin.close()


def copy_pg(admin_url: str, contender: str) -> str:
    name = db_name(contender)
    asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}"',
                          f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"'))
    return with_database(admin_url, name)


def drop_pg(admin_url: str, *names: str) -> None:
    asyncio.run(_pg_admin(admin_url, *(f'DROP DATABASE IF EXISTS "{n}"' for n in names)))
