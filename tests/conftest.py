"""Shared fixtures: a throwaway PostgreSQL cluster, the ``db`` fixture and capability markers.

* ``pg_url`` (session): ``$COVET_TEST_PG_URL`` when set (a database the tests may wipe), else a
  cluster made with ``initdb`` in a temp directory, started with ``pg_ctl`` on a free port and
  removed at the end. Without PostgreSQL binaries the PostgreSQL half of the suite is skipped,
  or fails under ``CI=true``.
* ``db`` (function): parametrized ``sqlite``/``sqlite-aiosqlite``/``postgresql``; configures the
  ``default`` alias to a fresh database (a temp SQLite file; the PostgreSQL database with an empty
  ``public`` schema), yields the connected :class:`~covet.database.adapters.base.Adapter`, and
  closes everything at teardown. ``sqlite`` is the default SQLite engine (the native Rust
  executor), ``sqlite-aiosqlite`` the reference engine (``sqlite+aiosqlite:///``). With
  ``COVET_SQLITE_ENGINE=aiosqlite`` the default engine is the reference one everywhere (also for
  the tests that configure their own ``sqlite:///`` URLs and for subprocesses), and the
  ``sqlite-aiosqlite`` run is dropped as a duplicate.
* ``@pytest.mark.requires("arrays", ...)``: skip a ``db`` test unless the backend has these
  capabilities (names of ``Capabilities`` fields). Never skip on vendor names.

Every test also gets the alias registry restored afterwards, so a test that configures aliases
cannot leak them into the next one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from covet.database import connections
from covet.database.adapters.base import Adapter
from covet.database.config import configure
from tests import pgcluster

PG_DATABASE = "covet_test"
SQLITE_DEFAULT_IS_REFERENCE = (
    os.environ.get("COVET_SQLITE_ENGINE", "").strip().lower() == "aiosqlite"
)
BACKENDS = ["sqlite", *([] if SQLITE_DEFAULT_IS_REFERENCE else ["sqlite-aiosqlite"]), "postgresql"]


def requires(*capabilities: str) -> pytest.MarkDecorator:
    """``@requires('arrays')``: the same as ``@pytest.mark.requires('arrays')``."""
    return pytest.mark.requires(*capabilities)


def pytest_report_header(config: pytest.Config) -> str:
    from covet.database.adapters.sqlite_native import default_engine

    try:
        engine = default_engine().__name__
    except Exception as exc:  # reported by the tests that use it
        engine = f"unavailable ({exc})"
    return f"covet: db backends {', '.join(BACKENDS)}; sqlite engine {engine}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*capabilities): skip a `db` test unless the backend has these capabilities",
    )


# PostgreSQL cluster ------------------------------------------------------------------------------
#: The suite's server: nothing to keep, so no fsync; enough connections for the pool tests.
TEST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off",
                 "max_connections=200")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose database the tests may wipe."""
    url = os.environ.get("COVET_TEST_PG_URL", "").strip()
    if url:
        yield url
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(
                pgcluster.cluster(TEST_SETTINGS, PG_DATABASE, stop_mode="immediate"))
        except pgcluster.ClusterUnavailable as exc:
            _unavailable(str(exc))
        yield url


# the db fixture -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _isolate_alias_registry() -> Iterator[None]:
    """Restore the alias registry after each test; adapters left open are closed by the next
    ``close_all()``."""
    configs = dict(connections._configs)
    adapters = dict(connections._adapters)
    yield
    leftovers = [a for alias, a in connections._adapters.items() if adapters.get(alias) is not a]
    connections._retired.extend(leftovers)
    connections._configs.clear()
    connections._configs.update(configs)
    connections._adapters.clear()
    connections._adapters.update(adapters)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of a fresh database for the ``db`` fixture's backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if request.param == "sqlite-aiosqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def db(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Adapter]:
    """The connected adapter of the ``default`` alias, on a fresh database of each backend."""
    configure(db_url)
    adapter = connections.adapter_for("default")
    for marker in request.node.iter_markers("requires"):
        missing = [cap for cap in marker.args if not adapter.capabilities.has(cap)]
        if missing:
            connections.unregister("default")
            pytest.skip(f"{adapter.dialect} lacks {', '.join(missing)}")
    try:
        await adapter.connect()
        if adapter.dialect == "postgresql":
            await adapter.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        yield adapter
    finally:
        await connections.close_all()
        connections.unregister("default")
        await connections.close_all()
