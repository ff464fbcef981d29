"""The ``%covet_*`` magics and the query ledger, on a real InteractiveShell and both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from IPython.core.error import UsageError

from covet.database import connections, describe_database
from covet_shell.demo import User
from covet_shell.explain import Plan
from covet_shell.render import HistoryReport, ModelsReport, QueryResult
from tests.shell.shellutil import TestingShell, formats, on_ipython_loop


def dialect() -> str:
    return connections.adapter_for("default").dialect


# %covet_explain ----------------------------------------------------------------------------------
def test_explain_flags_a_full_scan_of_a_filtered_column(ip: TestingShell) -> None:
    plan = ip.run_cell("%covet_explain User.objects.filter(city='Berlin')").result
    assert isinstance(plan, Plan)
    assert plan.sql == User.objects.filter(city="Berlin").sql().sql and plan.params == ["Berlin"]
    assert plan.flagged, plan.roots
    scan = plan.flagged[0]
    assert scan.label.startswith("SCAN users" if dialect() == "sqlite" else "Seq Scan on users")
    assert "Index(fields=['city'])" in (scan.warning or "")
    assert any("db_index=True on User.city" in s for s in plan.suggestions)
    data = formats(ip, plan)
    assert "Index(fields=['city'])" in data["text/plain"] and "<ul>" in data["text/html"]
    assert plan.sql.split()[0] in data["text/plain"]


def test_explain_says_nothing_when_an_index_covers_the_filter(ip: TestingShell) -> None:
    plan = ip.run_cell("%covet_explain User.objects.filter(email='a@example.com')").result
    assert plan.suggestions == [] and plan.flagged == []


def test_explain_follows_joins_and_ordering(ip: TestingShell) -> None:
    plan = ip.run_cell(
        "%covet_explain Post.objects.filter(author__city='Osaka').order_by('views')").result
    # which table the planner scans depends on the data; what it flags must be about the
    # filtered column behind the join (users.city) or the ordered one (posts.views)
    assert plan.flagged and plan.suggestions
    assert all(s.startswith(("User.city is not indexed", "Post.views is not indexed", "or one"))
               for s in plan.suggestions), plan.suggestions


def test_explain_analyze(ip: TestingShell) -> None:
    plan = ip.run_cell("%covet_explain --analyze Post.objects.filter(views__gt=100)").result
    assert isinstance(plan, Plan) and plan.analyze
    if dialect() == "postgresql":
        assert any("actual" in d for node in plan.roots for d in node.details)


@pytest.mark.parametrize(("line", "message"), [
    ("%covet_explain", "needs a QuerySet"),
    ("%covet_explain 42", "takes a QuerySet such as User.objects.filter"),
    ("%covet_explain User.objects.filter(", "not a Python expression"),
    ("%covet_explain --bogus User.objects.all()", "unrecognized arguments"),
])
def test_explain_usage_errors(ip: TestingShell, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_cell(line)


def test_explain_not_on_the_last_line_is_displayed_where_it_stands(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell("%covet_explain User.objects.filter(city='Lisbon')\nx = 1")
    assert "Index(fields=['city'])" in capsys.readouterr().out


def test_explain_inside_a_loop_runs_each_time(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    ip.run_cell("for field in ['city', 'last_name']:\n"
                "    %covet_explain User.objects.filter(**{field: 'Lisbon'})")
    out = capsys.readouterr().out
    assert '"users"."city" = ' in out and '"users"."last_name" = ' in out, out
    assert out.count("Index(fields=['city'])") == 2  # warning and suggestion, city only
    assert "[covet] 2 queries" in out and "not run yet" not in out


# %%covet_sql -------------------------------------------------------------------------------------
def test_sql_binds_names_from_the_namespace(ip: TestingShell) -> None:
    ip.user_ns["last"] = "O'Brien"
    result = ip.run_cell(
        "%%covet_sql --out rows\n"
        "SELECT username, ':last' AS lit -- :nope\n"
        "FROM users WHERE last_name = :last ORDER BY id").result
    expected = on_ipython_loop(User.objects.filter(last_name="O'Brien").order_by("id"))
    assert [r["username"] for r in ip.user_ns["rows"]] == [u.username for u in expected]
    assert {r["lit"] for r in ip.user_ns["rows"]} == {":last"}
    assert isinstance(result, QueryResult) and result.columns == ["username", "lit"]
    assert result.params == ["O'Brien"] and "$1" in (result.sql or "")
    assert "<table>" in formats(ip, result)["text/html"]


def test_sql_value_with_quotes_and_backslash_changes_only_its_row(ip: TestingShell) -> None:
    ip.user_ns["value"] = 'O\'Brien "the" \\ one\'; DROP TABLE users; --'
    ip.user_ns["uid"] = 3
    ip.run_cell("%%covet_sql --out before\nSELECT id, last_name, city FROM users ORDER BY id")
    result = ip.run_cell(
        "%%covet_sql\nUPDATE users SET last_name = :value WHERE id = :uid").result
    assert result.affected == 1 and "1 row affected" in formats(ip, result)["text/plain"]
    ip.run_cell("%%covet_sql --out after\nSELECT id, last_name, city FROM users ORDER BY id")
    before, after = ip.user_ns["before"], ip.user_ns["after"]
    assert len(after) == len(before) == 20
    changed = [(b, a) for b, a in zip(before, after) if b != a]
    assert changed == [(before[2], {**before[2], "last_name": ip.user_ns["value"]})]


def test_sql_runs_several_statements_and_shows_each(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.user_ns["tag"] = "brand-new"
    result = ip.run_cell(
        "%%covet_sql\nINSERT INTO tags (name) VALUES (:tag);\n"
        "SELECT name FROM tags WHERE name = :tag").result
    assert result.value == [{"name": "brand-new"}]
    assert "1 row affected" in capsys.readouterr().out


@pytest.mark.parametrize(("cell", "message"), [
    ("%%covet_sql\nSELECT :missing_name", ":missing_name refers to no variable"),
    ("%%covet_sql\nSELECT * FROM users WHERE id = $1", "positional placeholder"),
    ("%%covet_sql\n-- nothing\n", "holds no SQL"),
    ("%%covet_sql --out 1x\nSELECT 1", "not a valid variable name"),
    ("%%covet_sql\nSELECT * FROM no_such_table", "no_such_table"),
])
def test_sql_usage_errors(ip: TestingShell, cell: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_cell(cell)


# %covet_models -----------------------------------------------------------------------------------
def test_models_lists_tables_fields_types_and_relations(ip: TestingShell) -> None:
    report = ip.run_cell("%covet_models User Post").result
    assert isinstance(report, ModelsReport) and report.dialect == dialect()
    user, post = report.models
    assert (user["name"], user["table"], post["table"]) == ("User", "users", "posts")
    username = next(f for f in user["fields"] if f[0] == "username")
    field = User._meta.get_field("username")
    assert username[2:4] == (field.type_label, field.db_type(dialect()))
    assert ("posts", "reverse_fk", "Post") in user["relations"]
    assert ("tags", "m2m", "Tag") in post["relations"]
    text = formats(ip, report)["text/plain"]
    assert "table users" in text and field.db_type(dialect()) in text
    assert "posts → Post" in formats(ip, report)["text/html"]
    everything = ip.run_cell("%covet_models").result
    assert {"User", "Post", "Tag", "Comment", "Order"} <= {m["name"] for m in everything.models}


def test_models_unknown_name(ip: TestingShell) -> None:
    with pytest.raises(UsageError, match="no model named 'Usr'; did you mean User"):
        ip.run_cell("%covet_models Usr")


# %covet_log and the ledger -----------------------------------------------------------------------
def test_log_echoes_every_statement(ip: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_cell("%covet_log on")
    ip.run_cell("User.objects.filter(age__gt=40).count()")
    out = capsys.readouterr().out
    assert "query log on" in out
    assert '[covet]' in out and 'FROM "users"' in out and "params [40]" in out and "1 row" in out
    ip.run_cell("%covet_log off")
    ip.run_cell("User.objects.count()")
    out = capsys.readouterr().out
    assert "params" not in out and "1 query" in out


def test_each_cell_ends_with_a_summary_and_history_keeps_it(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    ip.run_cell("a = await User.objects.count()\nb = await Post.objects.count()")
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("[covet] 2 queries, ") and "slowest" in out[-1]
    ip.run_cell("x = 1")
    assert "[covet]" not in capsys.readouterr().out  # no query, no summary
    report = ip.run_cell("%covet_history -n 1").result
    assert isinstance(report, HistoryReport) and len(report.cells) == 1
    assert [e.sql.split(" FROM ")[1].split()[0] for e in report.cells[0].events] == [
        '"users"', '"posts"']
    assert "posts" in formats(ip, report)["text/plain"]
    ip.run_cell("%covet_history --clear")
    assert ip.run_cell("%covet_history").result.cells == []


def test_queries_right_after_configure_are_in_the_same_cell(
    ip: TestingShell, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """configure() makes a new adapter; the ledger follows it within the cell that made it."""
    magics = ip.magics_manager.registry["CovetMagics"]
    try:
        ip.run_cell(
            "from covet.database import configure, get_adapter\n"
            f"configure('sqlite:///{tmp_path}/side.db', alias='side')\n"
            "rows = await (await get_adapter('side')).fetch('SELECT 41 + $1 AS answer', [1])")
        assert ip.user_ns["rows"] == [{"answer": 42}]
        cell = magics.ledger.history[-1]
        assert [e.alias for e in cell.events] == ["side"]
        assert "SELECT 41 +" in cell.events[0].sql
        assert capsys.readouterr().out.strip().splitlines()[-1].startswith("[covet] 1 query")
    finally:
        connections.unregister("side")


@pytest.mark.parametrize(("loop", "fix"), [
    ("for p in await Post.objects.order_by('id')[:8]:\n    await p.author",
     "Post.objects.select_related('author')"),
    ("for u in await User.objects.order_by('id')[:8]:\n    await u.posts.all()",
     "User.objects.prefetch_related('posts')"),
    ("for p in await Post.objects.order_by('id')[:8]:\n    await p.tags.all()",
     "Post.objects.prefetch_related('tags')"),
])
def test_n_plus_one_warning_names_the_fix(
    ip: TestingShell, capsys: pytest.CaptureFixture[str], loop: str, fix: str
) -> None:
    ip.run_cell(loop)
    err = capsys.readouterr().err
    assert "N+1: the same query ran 8 times" in err and fix in err, err


def test_n_plus_one_threshold_is_configurable(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    ip.run_cell("%config CovetMagics.n_plus_one_threshold = 9")
    ip.run_cell("for p in await Post.objects.order_by('id')[:8]:\n    await p.author")
    assert "N+1" not in capsys.readouterr().err
    ip.run_cell("%config CovetMagics.n_plus_one_threshold = 3")
    ip.run_cell("for p in await Post.objects.order_by('id')[:3]:\n    await p.author")
    assert "ran 3 times" in capsys.readouterr().err
    ip.run_cell("for p in await Post.objects.select_related('author')[:8]:\n    p.author.username")
    assert "N+1" not in capsys.readouterr().err


# %covet_connect ----------------------------------------------------------------------------------
def test_connect_switches_the_database(ip: TestingShell, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    other = tmp_path / "other.db"
    ip.run_cell(f"%covet_connect sqlite:///{other}")
    assert str(other) in describe_database() and "connected: " in capsys.readouterr().out
    ip.run_cell("%%covet_sql\nCREATE TABLE t (x INTEGER)")
    assert other.exists()
    assert ip.run_cell("%%covet_sql\nSELECT count(*) AS n FROM t").result.value == [{"n": 0}]


def test_connect_failure_keeps_the_previous_database(ip: TestingShell) -> None:
    before = describe_database()
    with pytest.raises(UsageError, match=r"cannot connect to postgresql://bob:\*\*\*@") as info:
        ip.run_cell("%covet_connect postgresql://bob:hunter2@127.0.0.1:1/nowhere")
    assert "hunter2" not in str(info.value)
    assert describe_database() == before
    assert ip.run_cell("User.objects.count()").result == 20
    with pytest.raises(UsageError, match="unknown database engine"):
        ip.run_cell("%covet_connect mysqlx://host/db")
