"""Fixtures for the shell tests.

* ``ip`` (function): a :class:`~tests.shell.shellutil.TestingShell` with ``covet_shell`` loaded on
  a fresh demo database of each backend (the ``db_url`` fixture of ``tests/conftest.py``),
  everything run on IPython's own event loop; unloaded and closed at teardown.
* ``demo_url`` (function): a fresh demo database URL for subprocess tests (``covet shell``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from traitlets.config import Config

from covet.database import close_all, configure
from tests.shell.shellutil import (
    DEMO_USERS,
    TestingShell,
    build_demo_db,
    on_ipython_loop,
    reset_and_build,
)


@pytest.fixture
def demo_url(db_url: str) -> str:
    """A fresh demo database of each backend, for subprocesses."""
    build_demo_db(db_url)
    return db_url


@pytest.fixture
def ip(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestingShell]:
    """A shell with ``covet_shell`` loaded on a fresh demo database (sqlite and postgresql)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COVET_MODELS", "covet_shell.demo")
    monkeypatch.delenv("COVET_DATABASE_URL", raising=False)
    configure(db_url)
    on_ipython_loop(reset_and_build(DEMO_USERS))
    config = Config()
    config.HistoryManager.enabled = False
    shell = TestingShell.instance(config=config)
    shell.extension_manager.load_extension("covet_shell")
    try:
        yield shell
    finally:
        if "covet_shell" in shell.extension_manager.loaded:
            shell.extension_manager.unload_extension("covet_shell")
        TestingShell.clear_instance()
        on_ipython_loop(close_all())
