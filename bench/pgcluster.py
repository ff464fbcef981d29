"""A throwaway PostgreSQL cluster for the benchmarks (initdb + pg_ctl in a temp directory).

Adapted from ``tests/conftest.py`` with one deliberate difference: the server runs with
PostgreSQL's *default* settings (fsync, synchronous_commit and full_page_writes on), because the
benchmark compares contenders at equal, real durability. Only the port, the listen address and
the socket directory are set. As root, initdb/pg_ctl run as the ``postgres`` user (or
``nobody``), since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any


def bindir() -> str | None:
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))

    def version(path: str) -> tuple[int, ...]:
        name = path.split("/")[-2]
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return d
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run initdb as")


def _run_as(user: pwd.struct_passwd | None, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    kwargs: dict[str, Any] = {}
    if user is not None:
        kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd="/",
                          **kwargs)


# Stops the cluster and removes its directory if the benchmark process dies without cleaning up.
_WATCHDOG = (
    'while [ -d "/proc/$0" ] && [ -d "$2" ]; do sleep 1; done; '
    'if [ -d "$2" ]; then "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1; fi; rm -rf "$3"'
)


@contextlib.contextmanager
def cluster() -> Iterator[str]:
    """Start a cluster with default settings; yield a superuser URL to its ``postgres`` db."""
    bdir = bindir()
    if bdir is None:
        raise RuntimeError("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin; "
                           "pass --pg-url or --db sqlite")
    user = _user()
    base = tempfile.mkdtemp(prefix="covet-bench-pg-")
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    started = False
    try:
        # --no-sync only skips flushing initdb's own files; the server itself keeps fsync on.
        init = [os.path.join(bdir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--no-sync"]
        done = _run_as(user, [*init, "--locale=C.UTF-8"])
        if done.returncode != 0:
            shutil.rmtree(data, ignore_errors=True)
            done = _run_as(user, [*init, "--no-locale"])
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        port = _free_port()
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={base}"
        pg_ctl = os.path.join(bdir, "pg_ctl")
        done = _run_as(user, [pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", options,
                              "start"])
        if done.returncode != 0:
            tail = open(log).read()[-2000:] if os.path.exists(log) else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()} {tail}")
        started = True
        kwargs: dict[str, Any] = {}
        if user is not None:
            kwargs = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        subprocess.run(["/bin/sh", "-c", f"({_WATCHDOG}) &", str(os.getpid()), pg_ctl, data, base],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", check=True,
                       timeout=30, **kwargs)
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_ready(url)
        yield url
    finally:
        if started:
            _run_as(user, [os.path.join(bdir, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(url: str) -> None:
    import asyncio

    import asyncpg

    async def probe() -> None:
        for _ in range(40):
            try:
                conn = await asyncpg.connect(url)
                await conn.close()
                return
            except Exception:
                await asyncio.sleep(0.25)
        raise RuntimeError(f"PostgreSQL at {url} did not accept connections")

    asyncio.run(probe())


def version() -> str:
    bdir = bindir()
    if bdir is None:
        return "unavailable"
    out = subprocess.run([os.path.join(bdir, "postgres"), "--version"], capture_output=True,
                         text=True)
    return out.stdout.strip()


if __name__ == "__main__":  # manual check: start, print the URL, wait for Enter, stop
    with cluster() as u:
        print(u)
        time.sleep(0.1)
        input("running; press Enter to stop ")
