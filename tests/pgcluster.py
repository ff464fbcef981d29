"""A throwaway PostgreSQL cluster: ``initdb`` in a temp directory, ``pg_ctl`` on a free port.

Shared by the test suite (``tests/conftest.py``: fsync off, a ``covet_test`` database) and the
benchmarks (``bench/run.py``: PostgreSQL's default, durable settings). No pytest here: a cluster
that cannot start raises :class:`ClusterUnavailable` and the caller decides (skip, fail, exit).

As root, ``initdb``/``pg_ctl`` run as the ``postgres`` user (or ``nobody``), since PostgreSQL
refuses to run as root. A watchdog shell loop stops the server and removes its directory when
the starting process dies without cleaning up (a segfault, SIGKILL); a normal exit removes the
directory first, which ends the watchdog.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ClusterUnavailable", "bindir", "cluster", "version"]


class ClusterUnavailable(RuntimeError):
    """No cluster could be started here; the message says why."""


def bindir() -> str | None:
    """The directory of ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))

    def major(path: str) -> tuple[int, ...]:
        name = path.split("/")[-2]
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            return d
    return None


def version() -> str:
    """``postgres --version`` of :func:`bindir`, or ``'unavailable'``."""
    bdir = bindir()
    if bdir is None:
        return "unavailable"
    out = subprocess.run([os.path.join(bdir, "postgres"), "--version"], capture_output=True,
                         text=True)
    return out.stdout.strip()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterUnavailable("running as root and no 'postgres' or 'nobody' user to run initdb as")


def _as(user: pwd.struct_passwd | None) -> dict[str, Any]:
    return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _run_as(user: pwd.struct_passwd | None, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C.UTF-8"
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd="/",
                          **_as(user))


_WATCHDOG = (
    'while [ -d "/proc/$0" ] && [ -d "$2" ]; do sleep 1; done; '
    'if [ -d "$2" ]; then "$1" -D "$2" -m immediate -w stop >/dev/null 2>&1; fi; rm -rf "$3"'
)


@contextlib.contextmanager
def cluster(settings: Sequence[str] = (), database: str = "postgres", *,
            stop_mode: str = "fast", prefix: str = "covet-pg-") -> Iterator[str]:
    """Start a cluster; yield a superuser URL (no password) to ``database``; stop and remove it.

    Args:
        settings: server settings (``"fsync=off"``, ...); none means PostgreSQL's defaults.
        database: created when it is not ``postgres``.
        stop_mode: ``pg_ctl stop -m`` at the end (``immediate`` is quicker; ``fast`` is clean).

    Raises:
        ClusterUnavailable: no binaries, initdb/pg_ctl/createdb failed.
    """
    bdir = bindir()
    if bdir is None:
        raise ClusterUnavailable("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
    user = _server_user()
    base = tempfile.mkdtemp(prefix=prefix)
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, log = os.path.join(base, "data"), os.path.join(base, "server.log")
    pg_ctl = os.path.join(bdir, "pg_ctl")
    started = False
    try:
        # --no-sync only skips flushing initdb's own files; the server's settings are its own.
        init = [os.path.join(bdir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                "--encoding=UTF8", "--no-sync"]
        done = _run_as(user, [*init, "--locale=C.UTF-8"])
        if done.returncode != 0:  # a system without the C.UTF-8 locale
            shutil.rmtree(data, ignore_errors=True)
            done = _run_as(user, [*init, "--no-locale"])
        if done.returncode != 0:
            raise ClusterUnavailable(
                f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        port = _free_port()
        options = " ".join([f"-p {port} -c listen_addresses=127.0.0.1",
                            f"-c unix_socket_directories={base}",
                            *(f"-c {s}" for s in settings)])
        done = _run_as(user, [pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", options,
                              "start"])
        if done.returncode != 0:
            tail = Path(log).read_text()[-2000:] if os.path.exists(log) else ""
            raise ClusterUnavailable(f"pg_ctl start failed: {done.stderr.strip()} {tail}")
        started = True
        # The shell backgrounds the loop and exits at once: the loop outlives this process.
        subprocess.run(["/bin/sh", "-c", f"({_WATCHDOG}) &", str(os.getpid()), pg_ctl, data, base],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", check=True,
                       timeout=30, **_as(user))
        _wait_ready(user, bdir, port, database)
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if started:
            _run_as(user, [pg_ctl, "-D", data, "-m", stop_mode, "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)  # also tells the watchdog to exit


def _wait_ready(user: pwd.struct_passwd | None, bdir: str, port: int, database: str) -> None:
    """Until the server answers (and ``database`` exists): pg_ctl -w may return a bit early."""
    host = ["-h", "127.0.0.1", "-p", str(port), "-U", "postgres"]
    if database == "postgres":
        cmd = [os.path.join(bdir, "pg_isready"), *host, "-d", "postgres"]
    else:
        cmd = [os.path.join(bdir, "createdb"), *host, database]
    for _ in range(40):
        done = _run_as(user, cmd)
        if done.returncode == 0:
            return
        time.sleep(0.25)
    raise ClusterUnavailable(f"{os.path.basename(cmd[0])} failed: {done.stderr.strip()}")


if __name__ == "__main__":  # manual check: start, print the URL, wait for Enter, stop
    with cluster() as url:
        print(url)
        input("running; press Enter to stop ")
