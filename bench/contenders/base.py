"""The interface every contender implements; one method per workload.

``target`` is a file path (SQLite) or a PostgreSQL URL. Each workload method does one timed run
and returns a *check* value (row counts and the like) that run.py compares across contenders, so
a contender doing less (or different) work than the others is caught.
"""

from __future__ import annotations

import abc
from typing import Any

from common import Sizes


class Contender(abc.ABC):
    #: whether workloads are plain synchronous code (raw sqlite3)
    sync = False

    def __init__(self, name: str, db: str, target: str, sizes: Sizes) -> None:
        self.name = name
        self.db = db
        self.target = target
        self.sizes = sizes

    @abc.abstractmethod
    async def open(self) -> None:
        ...

    @abc.abstractmethod
    async def close(self) -> None:
        ...

    @abc.abstractmethod
    async def info(self) -> dict[str, Any]:
        """Versions, the engine in use and the effective durability settings."""
        ...

    @abc.abstractmethod
    async def execute(self, sql: str) -> None:
        """Run maintenance SQL (cleanup between runs; never timed)."""
        ...

    # workloads: one timed run each; ``tag`` makes inserted usernames unique per run
    async def w1(self, tag: str) -> Any: ...
    async def w2(self, tag: str) -> Any: ...
    async def w3(self) -> Any: ...
    async def w4(self, pks: list[int]) -> Any: ...
    async def w5(self) -> Any: ...
    async def w6(self) -> Any: ...
    async def w7(self) -> Any: ...
    async def w8(self) -> Any: ...
    async def w9(self) -> Any: ...
    async def w10(self) -> Any: ...
    async def w11(self, pks: list[int]) -> Any: ...
