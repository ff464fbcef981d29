"""Shared definitions for the benchmark suite: sizes, workloads, targets, schema and seed data.

Everything a contender needs to do *the same work* as the others lives here: the table layout
(the DDL CovetPy itself generates for the bench models), the deterministic seed data, the
parameters of each workload and the SQLite pragmas every contender must run with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

UTC = dt.timezone.utc

# --------------------------------------------------------------------------------------------
# Equal durability on SQLite: what CovetPy's adapter sets (covet/database/adapters/
# sqlite_support.py: open_connection), applied to every contender. synchronous is SQLite's
# default (FULL = 2) and is set explicitly for the contenders we configure ourselves; every
# contender reads its effective pragmas back, and run.py refuses results that differ.
SQLITE_PRAGMAS: dict[str, str] = {
    "journal_mode": "WAL",
    "synchronous": "FULL",
    "foreign_keys": "ON",
    "busy_timeout": "5000",
}
EXPECTED_SQLITE_PRAGMAS = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}

CITIES = ["Lisbon", "Berlin", "Nairobi", "Osaka", "Sao Paulo", "Toronto", "Lima", "Oslo",
          "Hanoi", None]
STATUSES = ["draft", "published", "published"]
USER_COLUMNS = ("id", "username", "email", "city", "age", "is_active", "created_at")
POST_COLUMNS = ("id", "user_id", "title", "views", "status")
COMMENT_COLUMNS = ("id", "post_id", "body", "likes")
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Data and workload sizes; ``QUICK`` keeps the whole run under two minutes."""

    users: int = 100_000
    posts_per_user: int = 2
    comments_per_post: int = 2
    w1_creates: int = 1_000
    w2_rows: int = 10_000
    w3_queries: int = 100
    w3_limit: int = 100
    w4_gets: int = 1_000
    w5_counts: int = 20
    w6_iterations: int = 10
    w6_users: int = 100
    w7_queries: int = 5
    w8_updates: int = 5
    w8_max_user: int = 10_000
    w9_fetches: int = 3
    w9_rows: int = 10_000
    w10_chunk: int = 1_000
    w11_queries: int = 10_000

    @property
    def posts(self) -> int:
        return self.users * self.posts_per_user

    @property
    def comments(self) -> int:
        return self.posts * self.comments_per_post


FULL = Sizes()
QUICK = Sizes(users=10_000, w1_creates=100, w2_rows=1_000, w3_queries=20, w4_gets=200,
              w5_counts=5, w6_iterations=3, w7_queries=3, w8_updates=2, w8_max_user=1_000,
              w9_fetches=1, w9_rows=2_000, w11_queries=1_000)


@dataclasses.dataclass(frozen=True)
class Workload:
    key: str
    title: str
    what: str  # what one timed run does (with FULL sizes)
    target_sqlite: float | None
    target_pg: float | None
    rust_2x: bool = False  # CovetPy (Rust) must be >= 2x faster than CovetPy (pure Python)

    def target(self, db: str) -> float | None:
        return self.target_sqlite if db == "sqlite" else self.target_pg


WORKLOADS: list[Workload] = [
    Workload("W1", "create (autocommit)", "1,000 x User.create(...), id read back; one commit each",
             1.2, 1.15),
    Workload("W2", "bulk insert", "bulk_create of 10,000 users, in one transaction", 1.2, 1.2),
    Workload("W3", "filter+limit", "100 x filter(is_active=True).limit(100) on 100,000 users",
             1.0, 1.2, rust_2x=True),
    Workload("W4", "get by pk", "1,000 x get(id=pk) (random pks)", 0.5, 1.2, rust_2x=True),
    Workload("W5", "count", "20 x filter(is_active=True, age__gte=30).count()", 1.1, 1.1),
    Workload("W6", "eager load", "10 x 100 users + their posts + their comments "
             "(prefetch_related('posts__comments'); raw: 3 queries into dicts)", 1.5, 1.5),
    Workload("W7", "group by", "5 x values('city').annotate(Count('id'), Avg('age'))",
             1.1, 1.1),
    Workload("W8", "filtered update", "5 x filter(status='draft', user_id<=10,000)"
             ".update(views=F('views')+1) (~6,700 rows each)", 1.1, 1.1),
    Workload("W9", "fetch objects", "3 x 10,000 users as objects (raw drivers: tuples)",
             1.3, 1.3, rust_2x=True),
    Workload("W10", "stream", "iterator(chunk_size=1000) over 100,000 users; peak memory "
             "measured in a separate pass", None, None),
    Workload("W11", "query loop memory", "10,000 x get(id=pk); RSS and traced memory before and "
             "after", None, None),
]
WORKLOAD_KEYS = [w.key for w in WORKLOADS]
BY_KEY = {w.key: w for w in WORKLOADS}
W10_MEMORY_TARGET = 1.2  # peak traced memory vs the raw async driver
W11_GROWTH_LIMIT = 64 * 1024  # bytes of traced memory still alive after 10,000 queries

# --------------------------------------------------------------------------------------------
# contenders
RAW_ASYNC = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
CONTENDERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite3", "aiosqlite", "covet-rust", "covet-py", "sqlalchemy", "tortoise"),
    "postgresql": ("asyncpg", "covet-rust", "covet-py", "sqlalchemy", "tortoise"),
}
# Not run by default: CovetPy with the Rust core but the aiosqlite engine (only differs from
# covet-rust once the native SQLite engine exists; separates the engine from the rest).
OPTIONAL_CONTENDERS = ("covet-rust-aiosqlite",)
LABELS = {
    "sqlite3": "raw sqlite3",
    "aiosqlite": "raw aiosqlite",
    "asyncpg": "raw asyncpg",
    "covet-rust": "CovetPy (Rust)",
    "covet-py": "CovetPy (pure Python)",
    "covet-rust-aiosqlite": "CovetPy (Rust core, aiosqlite engine)",
    "sqlalchemy": "SQLAlchemy 2 async ORM",
    "tortoise": "Tortoise ORM",
}

# --------------------------------------------------------------------------------------------
# schema: exactly what CovetPy's create_tables() emits for bench/contenders/covet_orm.py's models
SCHEMA = {
    "sqlite": [
        """CREATE TABLE "users" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT,
    "username" VARCHAR(100) NOT NULL UNIQUE,
    "email" VARCHAR(200) NOT NULL,
    "city" VARCHAR(100),
    "age" INTEGER,
    "is_active" BOOLEAN NOT NULL,
    "created_at" DATETIME NOT NULL
)""",
        """CREATE TABLE "posts" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT,
    "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "title" VARCHAR(200) NOT NULL,
    "views" INTEGER NOT NULL,
    "status" VARCHAR(20) NOT NULL
)""",
        'CREATE INDEX "posts_user_id_idx" ON "posts" ("user_id")',
        """CREATE TABLE "comments" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT,
    "post_id" INTEGER NOT NULL REFERENCES "posts" ("id") ON DELETE CASCADE,
    "body" TEXT NOT NULL,
    "likes" INTEGER NOT NULL
)""",
        'CREATE INDEX "comments_post_id_idx" ON "comments" ("post_id")',
    ],
    "postgresql": [
        """CREATE TABLE "users" (
    "id" INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    "username" VARCHAR(100) NOT NULL UNIQUE,
    "email" VARCHAR(200) NOT NULL,
    "city" VARCHAR(100),
    "age" INTEGER,
    "is_active" BOOLEAN NOT NULL,
    "created_at" TIMESTAMP WITH TIME ZONE NOT NULL
)""",
        """CREATE TABLE "posts" (
    "id" INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    "user_id" INTEGER NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
    "title" VARCHAR(200) NOT NULL,
    "views" INTEGER NOT NULL,
    "status" VARCHAR(20) NOT NULL
)""",
        'CREATE INDEX "posts_user_id_idx" ON "posts" ("user_id")',
        """CREATE TABLE "comments" (
    "id" INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    "post_id" INTEGER NOT NULL REFERENCES "posts" ("id") ON DELETE CASCADE,
    "body" TEXT NOT NULL,
    "likes" INTEGER NOT NULL
)""",
        'CREATE INDEX "comments_post_id_idx" ON "comments" ("post_id")',
    ],
}


def sqlite_datetime(value: dt.datetime) -> str:
    """A datetime as CovetPy stores it on SQLite (DateTimeField.to_db)."""
    return (f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}+00:00")


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


# --------------------------------------------------------------------------------------------
# seed data (deterministic)
_WORDS = ("alpha beta gamma delta async rust python query index cache sqlite postgres "
          "model field row plan tree join").split()


def users(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(1)
    for i in range(1, sizes.users + 1):
        age = None if rng.random() < 0.05 else rng.randint(18, 80)
        yield (i, f"user{i}", f"user{i}@example.com", rng.choice(CITIES), age,
               rng.random() < 0.8, BASE_TIME + dt.timedelta(seconds=i))


def posts(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(2)
    pid = 0
    for u in range(1, sizes.users + 1):
        for j in range(sizes.posts_per_user):
            pid += 1
            yield (pid, u, f"Post {j} by user{u}", rng.randint(0, 10_000), rng.choice(STATUSES))


def comments(sizes: Sizes) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(3)
    cid = 0
    for p in range(1, sizes.posts + 1):
        for _ in range(sizes.comments_per_post):
            cid += 1
            body = " ".join(rng.choice(_WORDS) for _ in range(6))
            yield (cid, p, body, rng.randint(0, 50))


def get_pks(sizes: Sizes, n: int, seed: int = 4) -> list[int]:
    """``n`` primary keys of seeded users, the same sequence for every contender."""
    rng = random.Random(seed)
    return [rng.randint(1, sizes.users) for _ in range(n)]


def new_user_values(tag: str, i: int) -> dict[str, Any]:
    """Field values of the i-th user created by W1/W2 (``tag`` keeps usernames unique)."""
    return {"username": f"{tag}_{i}", "email": f"{tag}_{i}@example.com", "city": "Lisbon",
            "age": 20 + i % 50, "is_active": True}


W3_SQL_COLUMNS = ", ".join(f'"{c}"' for c in USER_COLUMNS)
