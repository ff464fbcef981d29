"""``%load_ext covet_shell`` on a real InteractiveShell: names, top-level await, rendering."""

from __future__ import annotations

import re
import sys
import textwrap
import types
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from covet.database import configure, connections
from covet.database.orm.options import registry
from covet.database.orm.query import QuerySet
from covet_shell.demo import User
from covet_shell.render import QueryResult
from covet_shell.transform import RESOLVE_NAME
from tests.shell.shellutil import TestingShell, formats, on_ipython_loop

HELPERS = ["Q", "F", "Count", "Sum", "Avg", "Min", "Max", "transaction", "get_adapter"]


def reload(ip: TestingShell) -> None:
    ip.extension_manager.unload_extension("covet_shell")
    ip.extension_manager.load_extension("covet_shell")


# loading and unloading ---------------------------------------------------------------------------
def test_load_pushes_models_helpers_and_prints_a_banner(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    reload(ip)
    banner = capsys.readouterr().out
    assert "CovetPy shell" in banner
    assert connections.get_config("default").describe() in banner
    assert "User, Tag, Post, Comment, Order" in banner
    for name in ["User", "Post", "Tag", "Comment", "Order", *HELPERS]:
        assert name in ip.user_ns, name
    assert "Post_tags" not in ip.user_ns  # the auto-created through model stays hidden
    assert RESOLVE_NAME in ip.user_ns_hidden


def test_banner_masks_the_password(ip: TestingShell, capsys: pytest.CaptureFixture[str]) -> None:
    configure("postgresql://alice:s3cr3t@127.0.0.1:1/app")  # loading never connects
    reload(ip)
    banner = capsys.readouterr().out
    assert "postgresql://alice:***@127.0.0.1:1/app" in banner
    assert "s3cr3t" not in banner


def test_unload_removes_everything_it_added(ip: TestingShell) -> None:
    magics = ip.magics_manager.registry["CovetMagics"]
    ip.run_cell("%unload_ext covet_shell")
    for name in ["User", "Q", "Count", "transaction", RESOLVE_NAME]:
        assert name not in ip.user_ns, name
    assert magics.transformer not in ip.input_transformers_post
    assert QueryResult not in ip.display_formatter.formatters["text/html"].type_printers
    assert ip.find_line_magic("covet_explain") is None
    assert ip.find_cell_magic("covet_sql") is None
    assert magics not in ip.configurables
    assert magics._pre_run_cell not in ip.events.callbacks["pre_run_cell"]
    before = len(magics.ledger.history)
    ip.run_cell("import covet_shell.demo as d")
    ip.run_cell("await d.User.objects.count()")
    assert len(magics.ledger.history) == before  # the listener is gone too


def test_unload_keeps_a_name_the_user_rebound(ip: TestingShell) -> None:
    ip.run_cell("Count = 'mine'")
    ip.run_cell("%unload_ext covet_shell")
    assert ip.user_ns["Count"] == "mine"


# model discovery ---------------------------------------------------------------------------------
@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A project directory whose modules are importable; new models are unregistered after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("COVET_MODELS", raising=False)
    known = set(registry)
    modules = set(sys.modules)
    yield tmp_path
    for model in set(registry) - known:
        registry.unregister(model)
    for name in set(sys.modules) - modules:
        del sys.modules[name]


MODEL_SOURCE = """
from covet.database.orm import Model
from covet.database.orm.fields import CharField

class {name}(Model):
    label = CharField(max_length=20)

    class Meta:
        db_table = "{table}"
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


@pytest.mark.parametrize("layout", ["models.py", "models/widgets.py"])
def test_models_in_the_working_directory_are_discovered(
    ip: TestingShell, project: Path, capsys: pytest.CaptureFixture[str], layout: str
) -> None:
    if "/" in layout:
        write(project / "models" / "__init__.py", "")
    write(project / layout, MODEL_SOURCE.format(name="Widget", table="shell_widgets"))
    reload(ip)
    assert ip.user_ns["Widget"].__name__ == "Widget"
    assert "Widget" in capsys.readouterr().out


def test_pyproject_models_and_name_clashes_get_a_module_prefix(
    ip: TestingShell, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for app in ("blog", "shop"):
        write(project / app / "__init__.py", "")
        write(project / app / "models.py",
              MODEL_SOURCE.format(name="Item", table=f"shell_{app}_items"))
    write(project / "pyproject.toml",
          '[tool.covet]\nmodels = ["blog.models", "shop.models"]\n')
    reload(ip)
    banner = capsys.readouterr().out
    assert ip.user_ns["blog_Item"].__module__ == "blog.models"
    assert ip.user_ns["shop_Item"].__module__ == "shop.models"
    assert "Item" not in ip.user_ns
    assert "name clash: blog.models.Item is blog_Item" in banner
    assert "[tool.covet] models" in banner


def test_a_broken_models_module_is_reported_not_raised(
    ip: TestingShell, project: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COVET_MODELS", "no_such_models_module")
    reload(ip)
    assert "cannot import 'no_such_models_module' ($COVET_MODELS)" in capsys.readouterr().out


# top-level await on IPython's loop ---------------------------------------------------------------
def test_an_unawaited_queryset_shows_its_rows(ip: TestingShell) -> None:
    expected = on_ipython_loop(User.objects.filter(age__gt=30).order_by("id"))
    result = ip.run_cell("User.objects.filter(age__gt=30).order_by('id')").result
    assert isinstance(result, QueryResult)
    assert [u.id for u in result.value] == [u.id for u in expected]
    assert result.params == [30]
    data = formats(ip, result)
    for user in expected:
        assert f"<td>{user.username}</td>" in data["text/html"]
        assert user.username in data["text/plain"]
    assert "<table>" in data["text/html"] and "FROM" in data["text/html"]
    assert f"{len(expected)} rows in" in data["text/plain"]
    assert "params: [30]" in data["text/plain"]


def test_a_coroutine_resolves_to_its_value(ip: TestingShell) -> None:
    assert ip.run_cell("User.objects.count()").result == 20
    assert ip.run_cell("User.objects.filter(id__lte=3).exists()").result is True


def test_awaited_expressions_and_assignments_are_left_alone(ip: TestingShell) -> None:
    awaited = ip.run_cell("await User.objects.filter(id__lte=2)").result
    assert isinstance(awaited, list) and len(awaited) == 2
    assert ip.run_cell("x = User.objects.all()").result is None
    assert isinstance(ip.user_ns["x"], QuerySet)
    assert isinstance(ip.run_cell("x.filter(id=1)").result, QueryResult)
    assert ip.run_cell("y = x.filter(id=1)\ny").result.value[0].id == 1


def test_instances_values_aggregates_render_as_tables(ip: TestingShell) -> None:
    one = ip.run_cell("User.objects.get(id=1)").result
    assert one.columns[:2] == ["id", "username"] and len(one.rows) == 1
    assert "SELECT" in (one.sql or "")
    values = ip.run_cell("User.objects.values('id', 'city').order_by('id')[:3]").result
    assert values.columns == ["id", "city"] and [r[0] for r in values.rows] == [1, 2, 3]
    agg = ip.run_cell("User.objects.aggregate(n=Count('id'), oldest=Max('age'))").result
    assert agg.columns == ["n", "oldest"] and agg.rows[0][0] == 20
    assert agg["n"] == 20
    annotated = ip.run_cell(
        "User.objects.annotate(n_posts=Count('posts')).order_by('id')[:2]").result
    assert "n_posts" in annotated.columns
    empty = ip.run_cell("User.objects.filter(id=-1)").result
    assert empty.rows == [] and "username" in empty.columns
    assert "0 rows in" in formats(ip, empty)["text/plain"]


def test_a_relation_of_an_instance_in_the_namespace_resolves(ip: TestingShell) -> None:
    ip.run_cell("post = await Post.objects.order_by('id').first()")
    author = ip.run_cell("post.author").result
    assert isinstance(author, QueryResult) and author.value.id == ip.user_ns["post"].author_id
    comments = ip.run_cell("post.comments.all()").result
    assert all(c.post_id == ip.user_ns["post"].id for c in comments)


def test_display_limit_counts_the_hidden_rows(ip: TestingShell) -> None:
    ip.run_cell("%config CovetMagics.displaylimit = 3")
    data = formats(ip, ip.run_cell("User.objects.order_by('id')").result)
    assert data["text/html"].count("<tr>") == 4  # header + 3 rows
    assert "17 more rows" in data["text/html"] and "17 more rows" in data["text/plain"]
    ip.run_cell("%config CovetMagics.displaylimit = -1")  # refused (traitlets logs why)
    assert ip.magics_manager.registry["CovetMagics"].displaylimit == 3


def test_show_sql_off_hides_the_sql(ip: TestingShell) -> None:
    ip.run_cell("%config CovetMagics.show_sql = False")
    data = formats(ip, ip.run_cell("User.objects.filter(id=1)").result)
    assert "SELECT" not in data["text/plain"] and "<pre" not in data["text/html"]


def test_what_cannot_be_resolved_shows_its_sql_and_how_to_await(ip: TestingShell) -> None:
    ip.run_cell("%autoawait off")
    qs = ip.run_cell("User.objects.filter(age__gt=30)").result
    assert isinstance(qs, QuerySet)
    text = formats(ip, qs)["text/plain"]
    assert "not run yet" in text and '"users"."age" >' in text and "await" in text
    assert "await" in formats(ip, qs)["text/html"]
    coro = ip.run_cell("User.objects.count()").result
    try:
        assert isinstance(coro, types.CoroutineType)
        text = formats(ip, coro)["text/plain"]
        assert "not run yet" in text and "QuerySet.count" in text  # the manager hands it on
        assert not re.search(r"<coroutine object", text)
    finally:
        coro.close()


def test_an_error_in_a_query_cell_is_the_users_error(ip: TestingShell) -> None:
    with pytest.raises(User.DoesNotExist):
        ip.run_cell("User.objects.get(id=-5)")
    assert ip.run_cell("User.objects.count()").result == 20  # the loop is still fine


def test_usage_errors_are_readable(ip: TestingShell) -> None:
    with pytest.raises(UsageError, match="needs a QuerySet"):
        ip.run_cell("%covet_explain")


def test_instances_kept_in_variables_render_as_tables(ip: TestingShell) -> None:
    ip.run_cell("users = await User.objects.order_by('id')[:3]\none = users[0]")
    data = formats(ip, ip.user_ns["users"])
    assert data["text/html"].count("<tr>") == 4 and "already loaded" in data["text/plain"]
    assert ip.user_ns["users"][2].username in data["text/plain"]
    assert "<td>" in formats(ip, ip.user_ns["one"])["text/html"]
    assert formats(ip, [1, 2]) == {"text/plain": "[1, 2]"}  # other lists are left alone
    nested = formats(ip, {"k": ip.user_ns["users"][:1]})["text/plain"]
    assert nested.startswith("{'k': [<User(")
    ip.run_cell("%unload_ext covet_shell")
    assert formats(ip, [1, 2]) == {"text/plain": "[1, 2]"}
    assert "text/html" not in formats(ip, ip.user_ns["users"])


def test_magics_that_compile_code_themselves_are_left_alone(ip: TestingShell) -> None:
    coro = ip.run_cell("%time User.objects.count()").result  # no 'await outside function'
    try:
        assert "not run yet" in formats(ip, coro)["text/plain"]
    finally:
        coro.close()


def test_a_bad_database_url_refuses_to_load(
    ip: TestingShell, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip.extension_manager.unload_extension("covet_shell")
    connections.unregister("default")
    monkeypatch.setenv("COVET_DATABASE_URL", "mysqlx://host/db")
    with pytest.raises(UsageError, match="covet_shell: unknown database engine 'mysqlx'"):
        ip.run_cell("%load_ext covet_shell")
    assert "User" not in ip.user_ns and "covet_shell" not in ip.extension_manager.loaded
    assert not any(type(c).__name__ == "CovetMagics" for c in ip.configurables)
