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

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from covet.database import connections
from covet.database.adapters.base import Adapter
from covet.database.config import configure

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
def _pg_bindir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))

    def version(path: str) -> tuple[int, ...]:
        name = path.split("/")[-2]
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as(user: pwd.struct_passwd | None, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; as ``user`` when given (PostgreSQL refuses to run as root)."""
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=env, cwd="/", **kwargs
    )


# Stops the cluster and removes its directory once the test process is gone, even if it died
# without tearing down (a segfault, SIGKILL). A normal teardown removes the data directory first,
# which ends the watchdog.
_WATCHDOG = (
    'while [ -d "/proc/$0" ] && [ -d "$2" ]; do sleep 1; done; '
    'if [ -d "$2" ]; then "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1; fi; rm -rf "$3"'
)


def _start_watchdog(user: pwd.struct_passwd | None, pg_ctl: str, data: str, base: str) -> None:
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    # The shell backgrounds the loop and exits at once: the loop outlives this process.
    subprocess.run(
        ["/bin/sh", "-c", f"({_WATCHDOG}) &", str(os.getpid()), pg_ctl, data, base],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, cwd="/", check=True, timeout=30, **kwargs,
    )


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
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
        return
    user: pwd.struct_passwd | None = None
    if os.geteuid() == 0:
        for name in ("postgres", "nobody"):
            try:
                user = pwd.getpwnam(name)
                break
            except KeyError:
                continue
        if user is None:
            _unavailable("running as root and no 'postgres' or 'nobody' user to run initdb as")
    base = tempfile.mkdtemp(prefix="covet-pg-")
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    bin_ = lambda name: os.path.join(bindir, name)  # noqa: E731
    started = False
    try:
        init = [bin_("initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
                "--no-sync"]
        done = _run_as(user, [*init, "--locale=C.UTF-8"])
        if done.returncode != 0:  # a system without the C.UTF-8 locale
            shutil.rmtree(data, ignore_errors=True)
            done = _run_as(user, [*init, "--no-locale"])
        if done.returncode != 0:
            _unavailable(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        port = _free_port()
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        done = _run_as(user, [bin_("pg_ctl"), "-D", data, "-l", log, "-w", "-t", "60",
                              "-o", options, "start"])
        if done.returncode != 0:
            server_log = Path(log).read_text() if os.path.exists(log) else ""
            _unavailable(f"pg_ctl start failed: {done.stderr.strip()} {server_log[-2000:]}")
        started = True
        _start_watchdog(user, bin_("pg_ctl"), data, base)
        createdb = [bin_("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                    PG_DATABASE]
        for _ in range(20):
            done = _run_as(user, createdb)
            if done.returncode == 0:
                break
            time.sleep(0.25)
        else:
            _unavailable(f"createdb failed: {done.stderr.strip()}")
        yield f"postgresql://postgres@127.0.0.1:{port}/{PG_DATABASE}"
    finally:
        if started:
            _run_as(user, [bin_("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)  # also tells the watchdog to exit


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
