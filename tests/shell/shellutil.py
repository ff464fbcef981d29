"""Helpers of the shell tests: a re-raising ``InteractiveShell``, demo databases, child env.

:func:`build_demo_db` fills a database with the demo data on a throwaway loop, leaving the alias
registry as it found it (for module-scoped fixtures); :func:`on_ipython_loop` runs a coroutine on
the loop IPython's top-level await uses.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from IPython.core.async_helpers import get_asyncio_loop
from IPython.core.interactiveshell import InteractiveShell

from covet.database import close_all, configure, connections, get_adapter

REPO = Path(__file__).resolve().parents[2]
DEMO_USERS = 20


class TestingShell(InteractiveShell):
    """An InteractiveShell that re-raises the cell's exception (jupysql's pattern)."""

    __test__ = False

    def run_cell(self, raw_cell: str, *args: Any, **kwargs: Any) -> Any:
        result = super().run_cell(raw_cell, *args, **kwargs)
        result.raise_error()
        return result


def on_ipython_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on the loop IPython's top-level await uses (one loop for the session)."""
    return get_asyncio_loop().run_until_complete(coro)


async def reset_and_build(users: int) -> dict[str, int]:
    from covet_shell.demo import build_demo

    adapter = await get_adapter()
    if adapter.dialect == "postgresql":
        await adapter.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
    return await build_demo(users=users)


def build_demo_db(url: str, users: int = DEMO_USERS) -> dict[str, int]:
    """Fill the database at ``url`` with the demo data; the alias registry is left unchanged."""
    previous = connections.registered_config("default")
    configure(url)

    async def build() -> dict[str, int]:
        try:
            return await reset_and_build(users)
        finally:
            await close_all()

    try:
        return asyncio.run(build())
    finally:
        if previous is not None:
            configure(previous)
        else:
            connections.unregister("default")


def subprocess_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a ``covet shell`` / kernel child: the repo importable, ``url`` used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVET_", "PYTEST"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["COVET_DATABASE_URL"] = url
    env["COVET_MODELS"] = "covet_shell.demo"
    if os.environ.get("COVET_PURE_PYTHON"):
        env["COVET_PURE_PYTHON"] = os.environ["COVET_PURE_PYTHON"]
    env.update(extra)
    return env


def covet_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "covet.cli", *args]


def formats(shell: InteractiveShell, value: Any) -> dict[str, str]:
    """What IPython's display formatters make of ``value`` (mime type -> text)."""
    data, _ = shell.display_formatter.format(value)
    return data
