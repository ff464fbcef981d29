"""``covet shell``: IPython's terminal in a real pty (pexpect), and ``-c`` exit statuses."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.shell.shellutil import covet_command, subprocess_env

pexpect = pytest.importorskip("pexpect")

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]")
TIMEOUT = 60


class Terminal:
    """A ``covet shell`` session in a pseudo-terminal; output read with ANSI codes removed."""

    def __init__(self, env: dict[str, str], cwd: Path, *args: str) -> None:
        command = covet_command("shell", *args)
        self.child = pexpect.spawn(command[0], command[1:], env=env, cwd=str(cwd),
                                   encoding="utf-8", timeout=TIMEOUT, dimensions=(50, 160))
        self.pending = ""

    def read_until(self, pattern: str) -> str:
        """Everything up to the first match of ``pattern`` (a regex on the cleaned text)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                self.pending += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                break
            clean = ANSI.sub("", self.pending)
            match = re.search(pattern, clean)
            if match:
                self.pending = ""
                return clean[: match.end()]
        raise AssertionError(f"{pattern!r} never appeared in {ANSI.sub('', self.pending)!r}")

    def cell(self, code: str, number: int) -> str:
        """Type one line; the output up to the next prompt ``In [number + 1]``."""
        self.child.sendline(code)
        return self.read_until(rf"In \[{number + 1}\]: ")

    def close(self) -> int:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus or 0)


def test_terminal_session_awaits_and_renders(demo_url: str, tmp_path: Path) -> None:
    env = subprocess_env(demo_url, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    term = Terminal(env, tmp_path)
    try:
        banner = term.read_until(r"In \[1\]: ")
        assert "CovetPy shell" in banner and "User, Tag, Post, Comment, Order" in banner
        out = term.cell("User.objects.filter(age__gt=30).order_by('id').values('username')[:3]", 1)
        assert re.search(r"┃ username ┃", out) and "3 rows in" in out and "params: [30, 3]" in out
        assert "[covet] 1 query" in out
        assert "Out[2]: 20" in term.cell("n = await User.objects.count(); n + 0", 2)
        out = term.cell("%covet_explain User.objects.filter(city='Berlin')", 3)
        assert "Index(fields=['city'])" in out
        out = term.cell("User.objects.get(id=-1)", 4)
        assert "DoesNotExist" in out and "__covet_resolve__" in out
        assert "Out[5]: 20" in term.cell("User.objects.count()", 5)  # still alive, same loop
    finally:
        assert term.close() == 0


def run_c(url: str, cwd: Path, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(covet_command("shell", "-c", code), env=subprocess_env(url), cwd=cwd,
                          check=False, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize(("code", "status", "output"), [
    ("User.objects.filter(id__lte=2).values('id')", 0, "2 rows in"),
    ("User.objects.get(id=-1)", 1, "DoesNotExist"),
])
def test_c_runs_one_cell_and_exits_with_its_status(
    demo_url: str, tmp_path: Path, code: str, status: int, output: str
) -> None:
    done = run_c(demo_url, tmp_path, code)
    assert done.returncode == status, done.stderr
    assert output in done.stdout + done.stderr
    assert "CovetPy shell" not in done.stdout  # no banner for -c


@pytest.mark.parametrize(("code", "status", "output"), [
    ("%covet_explain 3", 1, "UsageError: %covet_explain takes a QuerySet"),
    ("import sys; sys.exit(3)", 3, ""),
    ("print('fine')", 0, "fine"),
])
def test_c_exit_status_without_queries(tmp_path: Path, code: str, status: int, output: str) -> None:
    done = run_c(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path, code)
    assert done.returncode == status, done.stderr
    assert output in done.stdout + done.stderr


def test_database_and_models_options(demo_url: str, tmp_path: Path) -> None:
    env = subprocess_env("sqlite:///not-this.db")
    env.pop("COVET_MODELS")
    done = subprocess.run(
        covet_command("shell", "--database", demo_url, "--models", "covet_shell.demo",
                      "-c", "print(User.__module__, await User.objects.count())"),
        env=env, cwd=tmp_path, check=False, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert "covet_shell.demo 20" in done.stdout
    assert not (tmp_path / "not-this.db").exists()


def test_demo_builds_the_database_once(tmp_path: Path) -> None:
    env = subprocess_env("sqlite:///ignored.db")
    env.pop("COVET_MODELS")
    run = [*covet_command("shell", "--demo", "-c", "User.objects.count()")]
    first = subprocess.run(run, env=env, cwd=tmp_path, check=False, capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert first.returncode == 0, first.stderr
    # IPython 8 numbers the -c cell 1, IPython 9 numbers it 0.
    assert "building the demo database" in first.stderr
    assert re.search(r"Out\[\d+\]: 60", first.stdout), first.stdout
    assert (tmp_path / "covet_demo.db").exists()
    second = subprocess.run(run, env=env, cwd=tmp_path, check=False, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert second.returncode == 0 and "building" not in second.stderr
    clash = subprocess.run([*covet_command("shell", "--demo", "--database", "x.db", "-c", "1")],
                           env=env, cwd=tmp_path, check=False, capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert clash.returncode == 2 and "--demo uses its own SQLite file" in clash.stderr


def test_cli_lists_the_shell_command() -> None:
    done = subprocess.run([sys.executable, "-m", "covet.cli", "--help"], check=False,
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env=subprocess_env("sqlite:///x.db"))
    assert "shell" in done.stdout and "demo" in done.stdout
