"""PostgreSQL helpers for tests that need a particular role or database on the test server."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg


async def ensure_guide_database(pg_url: str) -> int:
    """Create the guide's role ``user`` (password ``pass``) and database ``db`` if missing.

    Returns the server's port, so a test can reach it as ``localhost`` through ``PGPORT``.
    """
    conn = await asyncpg.connect(pg_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'user'"):
            await conn.execute("CREATE ROLE \"user\" LOGIN PASSWORD 'pass'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'db'"):
            await conn.execute('CREATE DATABASE "db" OWNER "user"')
        port = await conn.fetchval("SHOW port")
    finally:
        await conn.close()
    parts = urlsplit(pg_url)
    return int(parts.port or port)
