"""The notebook path: a real ipykernel (one per database for the module), driven by
jupyter_client, and ``notebooks/shell_smoke.ipynb`` executed in it with nbclient.

In a kernel the event loop is always running, so these tests check that an un-awaited query
still runs (the cell rewrite makes the cell await it) and renders as HTML, with no stray outputs.
"""

from __future__ import annotations

import ast
import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
jupyter_client = pytest.importorskip("jupyter_client")

from tests.shell.shellutil import REPO, build_demo_db, subprocess_env

NOTEBOOK = REPO / "notebooks" / "shell_smoke.ipynb"
TIMEOUT = 60


@dataclass
class Kernel:
    client: Any
    notebook: Any
    url: str

    def run(self, code: str) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
        """Execute ``code``; the reply status and the outputs as ``(msg_type, content)``."""
        outputs: list[tuple[str, dict[str, Any]]] = []

        def hook(msg: dict[str, Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and outputs and outputs[-1][0] == "stream" and (
                outputs[-1][1]["name"] == content["name"]
            ):  # a print may arrive in pieces: join them, as a notebook does
                outputs[-1] = (kind, {**content, "text": outputs[-1][1]["text"] + content["text"]})
            elif kind in ("stream", "execute_result", "display_data", "error"):
                outputs.append((kind, content))

        reply = self.client.execute_interactive(code, output_hook=hook, timeout=TIMEOUT)
        return reply["content"]["status"], outputs

    def value(self, code: str) -> Any:
        """The ``text/plain`` result of ``code`` as a Python literal."""
        status, outputs = self.run(code)
        results = [c for t, c in outputs if t == "execute_result"]
        assert status == "ok" and len(results) == 1, outputs
        return ast.literal_eval(results[0]["data"]["text/plain"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kernel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Kernel]:
    """A kernel on a demo database, after running the smoke notebook in it."""
    from jupyter_client.manager import KernelManager

    workdir = tmp_path_factory.mktemp("kernel")
    if request.param == "sqlite":
        url = f"sqlite:///{workdir / 'demo.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    build_demo_db(url)
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=subprocess_env(url, JUPYTER_PLATFORM_DIRS="1"), cwd=str(workdir))
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        runner = nbclient.NotebookClient(notebook, km=manager, timeout=TIMEOUT)
        try:
            runner.execute(cleanup_kc=False)  # keep its client: the tests go on with it
        except BaseException:
            if runner.kc is not None:
                runner.kc.stop_channels()
            raise
        client, runner.kc = runner.kc, None
        try:
            yield Kernel(client, notebook, url)
        finally:
            client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)


def kinds(outputs: list[Any]) -> list[str]:
    return [o["output_type"] if isinstance(o, dict) else o[0] for o in outputs]


def test_the_notebook_runs_and_renders_rows_as_html(kernel: Kernel) -> None:
    load, rows, count, explain = kernel.notebook.cells[1:5]
    assert "CovetPy shell" in load.outputs[0]["text"]
    assert kinds(rows.outputs) == ["execute_result", "stream"]  # the table, then the summary
    page = rows.outputs[0]["data"]["text/html"]
    assert page.count("<tr>") == 6 and "<table>" in page  # header + 5 rows
    assert rows.outputs[1]["text"].startswith("[covet] 1 query")
    assert count.outputs[0]["data"]["text/plain"] == "20"
    assert "Index(fields=['city'])" in explain.outputs[0]["data"]["text/plain"]
    assert "Index(fields=[" in explain.outputs[0]["data"]["text/html"]


def test_an_unawaited_queryset_renders_its_rows_and_nothing_else(kernel: Kernel) -> None:
    names = kernel.value(
        "[u.username for u in await User.objects.filter(age__gt=30).order_by('id')]")
    status, outputs = kernel.run("User.objects.filter(age__gt=30).order_by('id')")
    assert status == "ok"
    assert kinds(outputs) == ["execute_result", "stream"], outputs
    data = outputs[0][1]["data"]
    assert set(data) == {"text/plain", "text/html"}
    cells = [html.unescape(c.split("</td>")[0]) for c in data["text/html"].split("<td>")[1:]]
    assert [name for name in names if name in cells] == names
    assert "\x1b[" not in data["text/plain"]  # plain text in a kernel: no ANSI codes
    assert f"{len(names)} rows in" in data["text/plain"]


def test_an_error_cell_leaves_the_kernel_alive(kernel: Kernel) -> None:
    status, outputs = kernel.run("User.objects.get(id=-1)")
    assert status == "error"
    errors = [c for t, c in outputs if t == "error"]
    assert errors and errors[0]["ename"] == "DoesNotExist"
    status, outputs = kernel.run("%covet_explain 42")
    assert status == "error" and "UsageError" in str(outputs)
    assert kernel.value("User.objects.count()") == 20
    assert kernel.value("await User.objects.filter(id__lte=2).count()") == 2


def test_covet_sql_value_with_both_quotes_and_a_backslash_changes_nothing_else(
    kernel: Kernel,
) -> None:
    # both quote kinds, a backslash and an injection attempt, within varchar(50)
    kernel.run("value = 'O\\'Re \"q\" b\\\\s \\'); DELETE FROM users; --'\nuid = 5")
    assert kernel.value("len(value) < 50 and '\\\\' in value") is True
    status, outputs = kernel.run("%%covet_sql --out before\n"
                                 "SELECT id, username, last_name, city FROM users ORDER BY id")
    assert status == "ok", outputs
    status, outputs = kernel.run("%%covet_sql\nUPDATE users SET last_name = :value WHERE id = :uid")
    assert status == "ok", outputs
    assert "1 row affected" in outputs[0][1]["data"]["text/plain"]
    kernel.run("%%covet_sql --out after\n"
               "SELECT id, username, last_name, city FROM users ORDER BY id")
    changed = kernel.value(
        "[(b['id'], a['last_name'] == value) for b, a in zip(before, after) if a != b]")
    assert changed == [(5, True)]
    assert kernel.value("len(after) == len(before) == 20") is True


def test_n_plus_one_warning_reaches_the_cell(kernel: Kernel) -> None:
    status, outputs = kernel.run(
        "for u in await User.objects.order_by('id')[:6]:\n    await u.orders.all()")
    assert status == "ok"
    err = "".join(c["text"] for t, c in outputs if t == "stream" and c["name"] == "stderr")
    assert "User.objects.prefetch_related('orders')" in err


def test_notebook_file_is_committed_without_outputs() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")
    assert Path(NOTEBOOK).stat().st_size < 10_000
