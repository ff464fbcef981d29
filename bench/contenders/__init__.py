"""One module per contender; ``make(name, db, url, sizes)`` returns a ready-to-open instance.

Every contender implements the same methods (``contenders/base.py``) doing the same work: the
same rows read or written, the same statements' worth of round trips, at the same durability.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = {
    "sqlite3": ("contenders.raw_sqlite3", "RawSqlite3"),
    "aiosqlite": ("contenders.raw_aiosqlite", "RawAiosqlite"),
    "asyncpg": ("contenders.raw_asyncpg", "RawAsyncpg"),
    "covet-rust": ("contenders.covet_orm", "Covet"),
    "covet-py": ("contenders.covet_orm", "Covet"),
    "covet-rust-aiosqlite": ("contenders.covet_orm", "Covet"),
    "sqlalchemy": ("contenders.sqlalchemy_orm", "SQLAlchemyORM"),
    "tortoise": ("contenders.tortoise_orm", "TortoiseORM"),
}


def make(name: str, db: str, target: str, sizes: Any) -> Any:
    module, cls = _MODULES[name]
    return getattr(importlib.import_module(module), cls)(name, db, target, sizes)
