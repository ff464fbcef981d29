"""Every CovetPy code block of the migration guide runs as written, on SQLite and PostgreSQL.

Blocks are read from ``docs/migration-guide.md`` (kept identical to the spec) and executed with
top-level ``await``. Where a block defines models and then queries them, it runs in two chunks in
the same namespace (split at its ``# Usage`` line) so the test can create the tables in between,
as a reader would.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from covet.database import create_tables
from tests.guide import GUIDE, SHARED_GUIDE, block_with, covet_block, run_block, statements

PREAMBLE = """
from covet.database import DatabaseConfig, get_adapter
from covet.database.orm import Model, Index
from covet.database.orm.fields import *
from covet.database.orm.relationships import ForeignKey, ManyToManyField
from covet.database.orm.query import Q, F
from covet.database.orm.aggregates import Count, Avg, Sum, Min, Max
from covet.database.transaction import transaction
"""

QUERY_MODELS = """
class User(Model):
    username = CharField(max_length=100, unique=True)
    email = EmailField(unique=True)
    first_name = CharField(max_length=50, default='')
    last_name = CharField(max_length=50, default='')
    age = IntegerField(nullable=True)
    city = CharField(max_length=50, nullable=True)
    is_active = BooleanField(default=True)
    is_staff = BooleanField(default=False)
    is_superuser = BooleanField(default=False)
    created_at = DateTimeField(auto_now_add=True)

    class Meta:
        db_table = 'users'

class Order(Model):
    user = ForeignKey(User, on_delete='CASCADE', related_name='orders')
    total = DecimalField(max_digits=10, decimal_places=2)

    class Meta:
        db_table = 'orders'
"""

RELATION_MODELS = """
class User(Model):
    username = CharField(max_length=100)

    class Meta:
        db_table = 'users'

class Tag(Model):
    name = CharField(max_length=50)

    class Meta:
        db_table = 'tags'

class Post(Model):
    title = CharField(max_length=200)
    status = CharField(max_length=20, default='draft')
    views = IntegerField(default=0)
    author = ForeignKey(User, on_delete='CASCADE', related_name='posts')
    tags = ManyToManyField(Tag, related_name='posts')

    class Meta:
        db_table = 'posts'

class Comment(Model):
    post = ForeignKey(Post, on_delete='CASCADE', related_name='comments')
    body = TextField(default='')
    likes = IntegerField(default=0)

    class Meta:
        db_table = 'comments'
"""


def namespace(request: pytest.FixtureRequest, *sources: str) -> dict[str, Any]:
    ns: dict[str, Any] = {"__name__": "guide_" + request.node.name.replace("[", "_").strip("]")}
    for source in (PREAMBLE, *sources):
        exec(compile(source, "<test models>", "exec"), ns)  # noqa: S102
    return ns


def split_usage(code: str) -> tuple[str, str]:
    head, sep, tail = code.partition("# Usage")
    assert sep, "the block has no '# Usage' line"
    return head, sep + tail


async def seed_query_users(ns: dict[str, Any]) -> None:
    User = ns["User"]
    await create_tables(User, ns["Order"])
    people = [
        ("alice", "alice@example.com", "Alice", "Smith", 30, "Lisbon", True, False, False),
        ("bob", "bob@example.com", "Bob", "Jones", 17, "Berlin", True, True, False),
        ("carol", "carol@example.com", "Carol", "Adams", 65, None, False, False, True),
        ("dave_alice", "dave@example.com", "Dave", "Adams", None, "Berlin", True, False, False),
        ("erin", "erin@example.com", "Erin", "Smith", 18, "Lisbon", False, False, False),
    ]
    for u, e, f, l, a, c, act, staff, sup in people:
        await User.create(username=u, email=e, first_name=f, last_name=l, age=a, city=c,
                          is_active=act, is_staff=staff, is_superuser=sup)
    for user_id, total in [(1, "10.50"), (1, "20.25"), (2, "5.00")]:
        await ns["Order"].create(user_id=user_id, total=Decimal(total))


def names(users: list[Any]) -> list[str]:
    return [u.username for u in users]


def test_guide_copy_is_the_spec() -> None:
    if not SHARED_GUIDE.exists():
        pytest.skip("the shared spec is not beside this checkout")
    assert GUIDE.read_text(encoding="utf-8") == SHARED_GUIDE.read_text(encoding="utf-8")


# -- Model Definition ---------------------------------------------------------------------------
async def test_model_definition_basic(db: Any, request: pytest.FixtureRequest) -> None:
    ns = await run_block(covet_block("Model Definition", "Basic Models"),
                         {"__name__": "guide_basic_" + db.dialect})
    User = ns["User"]
    await create_tables(User)
    user = User(username="alice", email="alice@example.com")
    await user.save()
    assert repr(user) == "<User(id=1, username='alice')>"
    fetched = await User.objects.get(id=1)
    assert fetched.is_active is True
    assert fetched.created_at.tzinfo is not None
    assert abs(fetched.created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(minutes=5)


async def test_model_definition_column_options(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request)
    await run_block(covet_block("Model Definition", "Column Options"), ns)
    User = ns["User"]
    assert User._meta.get_field("email").db_index
    await create_tables(User)
    a = await User.create(email="a@example.com")
    b = await User.create(email="b@example.com", age=None, data={"k": [1, "two", None]})
    assert (await User.objects.get(id=a.id)).age == 0
    fetched = await User.objects.get(id=b.id)
    assert fetched.age is None and fetched.data == {"k": [1, "two", None]}


# -- Session vs Connection Management ------------------------------------------------------------
async def test_session_no_session(pg_url: str, request: pytest.FixtureRequest,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The guide's DatabaseConfig(host='localhost', database='db', user='user', password='pass')
    is used as written against a real server on localhost (the test cluster's port via PGPORT)."""
    from covet.database import close_all, configure, connections, get_adapter
    from tests.pgutil import ensure_guide_database

    port = await ensure_guide_database(pg_url)
    monkeypatch.setenv("PGPORT", str(port))
    ns = namespace(request)
    await run_block(covet_block("Model Definition", "Basic Models"), ns)
    code = covet_block("Session vs Connection Management", "SQLAlchemy Session Pattern")
    setup, usage = code.split("# Usage")
    try:
        await run_block(setup, ns)
        assert "pass" not in repr(ns["DATABASE"])
        adapter = await get_adapter("default")
        await adapter.execute('DROP TABLE IF EXISTS "users"')
        await create_tables(ns["User"])
        await run_block("# Usage" + usage, ns)
        assert ns["user"].id == 1
        assert await ns["User"].objects.count() == 1
    finally:
        await close_all()
        connections.unregister("default")
        configure(pg_url)  # give the fixture's teardown its database back


async def test_session_scoping(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS)
    await create_tables(ns["User"])
    await run_block(covet_block("Session vs Connection Management", "Session Scoping"), ns)
    await ns["create_user"]()
    assert names(await ns["User"].objects.all()) == ["alice"]


# -- Query API Comparison -------------------------------------------------------------------------
async def test_query_basic(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    await run_block(covet_block("Query API Comparison", "Basic Queries"), ns)
    assert len(ns["users"]) == 5
    assert sorted(names(ns["active_users"])) == ["alice", "bob", "dave_alice"]
    assert ns["user"].username == "alice"
    assert ns["count"] == 3


async def test_query_filtering(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    code = covet_block("Query API Comparison", "Filtering and Lookups")
    # Each statement as written, checking each result in turn.
    results = []
    for statement in statements(code):
        await run_block(statement, ns)
        if statement.startswith("users ="):
            results.append(sorted(names(ns["users"])))
    assert results == [
        ["alice", "carol"],                  # age__gt=18
        ["alice", "carol", "erin"],          # age__range=[18, 65]
        ["alice", "dave_alice"],             # username__contains='alice'
        ["alice", "bob", "carol"],           # id__in=[1, 2, 3]
        ["alice"],                           # is_active=True, age__gte=18
        ["bob", "carol"],                    # Q(is_staff=True) | Q(is_superuser=True)
        ["carol", "erin"],                   # exclude(is_active=True)
        ["carol", "erin"],                   # filter(~Q(is_active=True))
    ]


async def test_query_ordering(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    code = covet_block("Query API Comparison", "Ordering and Limiting")
    results = []
    for statement in statements(code):
        await run_block(statement, ns)
        results.append(names(ns["users"]))
    assert results[0] == ["erin", "dave_alice", "carol", "bob", "alice"]
    assert results[1] == ["carol", "dave_alice", "bob", "alice", "erin"]
    assert results[2] == ["alice", "bob", "carol", "dave_alice", "erin"]
    assert results[3] == []


async def test_query_aggregations(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    await run_block(covet_block("Query API Comparison", "Aggregations"), ns)
    assert ns["count"] == 5
    assert ns["avg_age"] == {"age__avg": pytest.approx((30 + 17 + 65 + 18) / 4)}
    assert ns["total"] == {"total__sum": Decimal("35.75")}
    assert ns["result"] == {"min_age": 17, "max_age": 65}
    by_city = {r["city"]: r["user_count"] for r in ns["results"]}
    assert by_city == {"Lisbon": 2, "Berlin": 2, None: 1}


# -- Relationships and Joins ----------------------------------------------------------------------
async def test_relationships_foreign_key(db: Any, request: pytest.FixtureRequest,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    ns = namespace(request)
    models, usage = split_usage(covet_block("Relationships and Joins", "Foreign Key Relationships"))
    await run_block(models, ns)
    User, Post = ns["User"], ns["Post"]
    await create_tables(User, Post)
    alice = await User.create(username="alice")
    bob = await User.create(username="bob")
    for title in ("one", "two"):
        await Post.create(title=title, author=alice)
    await Post.create(title="three", author=bob)
    await run_block(usage, ns)
    assert [p.title for p in ns["posts"]] == ["one", "two"]
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 2 and "one" in printed[0] and "three" in printed[1]


async def test_relationships_many_to_many(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request)
    models, usage = split_usage(covet_block("Relationships and Joins", "Many-to-Many Relationships"))
    await run_block(models, ns)
    await create_tables(ns["Post"], ns["Tag"])
    await run_block(usage, ns)
    post = ns["post"]
    assert sorted(t.name for t in await post.tags.all()) == ["async", "python", "tutorial"]
    assert [p.title for p in await ns["tag1"].posts.all()] == ["Hello"]


async def seed_relations(ns: dict[str, Any]) -> None:
    User, Post, Tag, Comment = ns["User"], ns["Post"], ns["Tag"], ns["Comment"]
    await create_tables(User, Tag, Post, Comment)
    python = await Tag.create(name="python")
    prolific = await User.create(username="prolific")
    for i in range(7):
        post = await Post.create(title=f"p{i}", author=prolific, views=i * 10,
                                 status="published" if i % 2 else "draft")
        await post.tags.add(python)
        await Comment.create(post=post, body="nice", likes=i)
    quiet = await User.create(username="quiet")
    await Post.create(title="q", author=quiet, status="draft")
    await User.create(username="nobody")


async def test_relationships_joins(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS)
    await seed_relations(ns)
    seen = []
    for statement in statements(covet_block("Relationships and Joins", "Joins")):
        await run_block(statement, ns)
        if statement.startswith("users ="):
            seen.append(ns["users"])
    assert [len(u.posts) for u in ns["results"]] == [7, 1, 0]
    assert all(len(p.tags) == (1 if p.title.startswith("p") else 0) for p in ns["posts"])
    assert names(seen[0]) == ["prolific"] * 3  # one row per published post (a JOIN)
    assert [(u.username, u.post_count) for u in seen[1]] == [("prolific", 7)]


# -- Transactions ---------------------------------------------------------------------------------
async def test_transactions_decorator_and_context(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS)
    await create_tables(ns["User"], ns["Tag"], ns["Post"])
    await run_block(covet_block("Transactions", "SQLAlchemy Transactions"), ns)
    assert ns["post"].author_id == ns["user"].id
    user = await ns["create_user_with_post"]()
    assert user.username == "alice"
    assert await ns["User"].objects.count() == 2
    assert await ns["Post"].objects.filter(author=user).count() == 1


async def test_transactions_savepoints(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS, """
class RiskyModel(Model):
    value = IntegerField()
""")
    await create_tables(ns["User"], ns["RiskyModel"])
    # As written, RiskyModel.create(...) fails: the savepoint and then the transaction roll back.
    with pytest.raises(TypeError):
        await run_block(covet_block("Transactions", "Savepoints"), ns)
    assert await ns["User"].objects.count() == 0
    assert await ns["RiskyModel"].objects.count() == 0


async def test_transactions_savepoint_caught(db: Any, request: pytest.FixtureRequest) -> None:
    """The same block with the failure caught: the outer transaction continues and commits."""
    ns = namespace(request, RELATION_MODELS, """
class RiskyModel(Model):
    value = IntegerField()
""")
    await create_tables(ns["User"], ns["RiskyModel"])
    code = covet_block("Transactions", "Savepoints").replace(
        "    async with tx.savepoint():", "    try:\n     async with tx.savepoint():").replace(
        "    # Continue with main transaction",
        "    except TypeError:\n        pass\n    # Continue with main transaction")
    await run_block(code, ns)
    assert names(await ns["User"].objects.all()) == ["alice"]
    assert await ns["RiskyModel"].objects.count() == 0


# -- Advanced features ----------------------------------------------------------------------------
async def test_hybrid_properties(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request)
    models, usage = split_usage(covet_block("Advanced Features", "Hybrid Properties"))
    await run_block(models, ns)
    await create_tables(ns["User"])
    await ns["User"].create(first_name="Alice", last_name="Smith")
    await ns["User"].create(first_name="Bob", last_name="Smith")
    await run_block(usage, ns)
    assert [u.full_name for u in ns["users"]] == ["Alice Smith"]


async def test_polymorphic_abstract_models(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request)
    models, _, usage = covet_block("Advanced Features", "Polymorphic Models (Inheritance)"
                                   ).partition("# Query")
    await run_block(models, ns)
    await create_tables(ns["Engineer"], ns["Manager"])
    await ns["Engineer"].create(name="Ada", engineer_info="compilers")
    await ns["Manager"].create(name="Grace", manager_info="navy")
    await run_block("# Query" + usage, ns)
    assert [(e.name, e.engineer_info) for e in ns["engineers"]] == [("Ada", "compilers")]
    assert [m.name for m in ns["managers"]] == ["Grace"]


# -- Performance snippets, pitfalls, case study, FAQ -----------------------------------------------
def covet_lines(marker: str) -> str:
    code = block_with("Performance Comparison", "Benchmark Results", marker)
    part = code.split("# CovetPy", 1)[1]
    return "\n".join(line for line in part.splitlines()[1:] if not line.startswith("# Time"))


async def test_performance_snippets(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS.replace(
        "    username = CharField(max_length=100)",
        "    username = CharField(max_length=100)\n    is_active = BooleanField(default=True)"))
    await seed_relations(ns)
    await run_block(covet_lines("**Simple Query:**"), ns)
    assert len(ns["users"]) == 3
    await run_block(covet_lines("**Complex Join:**"), ns)
    assert [len(u.posts) for u in ns["users"]] == [7, 1, 0]
    assert sum(len(p.comments) for p in ns["users"][0].posts) == 7
    await run_block(covet_lines("**Bulk Insert:**"), ns)
    assert await ns["User"].objects.count() == 3 + 10000
    assert ns["users"][-1].id is not None


async def test_pitfalls(db: Any, request: pytest.FixtureRequest,
                        capsys: pytest.CaptureFixture[str]) -> None:
    ns = namespace(request, RELATION_MODELS)
    await create_tables(ns["User"], ns["Tag"], ns["Post"])
    await run_block(block_with("Common Pitfalls", "1. Session Habits", "**Solution:**"), ns)
    await run_block(block_with("Common Pitfalls", "2. Query Execution", "**Solution:**"), ns)
    assert "alice" in capsys.readouterr().out
    await run_block(block_with("Common Pitfalls", "3. Relationship Access", "**Solution:**"), ns)
    assert ns["posts"] == []
    await run_block(block_with("Common Pitfalls", "4. Transaction Management", "**Solution:**"),
                    ns)
    assert await ns["User"].objects.count() == 1  # save() of a saved user is an UPDATE


async def test_pitfall_query_execution_problem_is_explained(db: Any,
                                                            request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS)
    with pytest.raises(TypeError, match="first()"):
        await run_block(block_with("Common Pitfalls", "2. Query Execution", "**Problem:**"), ns)


async def test_case_study_user_analytics(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, RELATION_MODELS)
    await seed_relations(ns)
    await run_block(covet_block("Case Study", "Project: Analytics Platform"), ns)
    result = await ns["get_user_analytics"](1)
    assert result == {"user_id": 1, "username": "prolific", "post_count": 7,
                      "published_count": 3, "avg_views": pytest.approx(30.0)}
    empty = await ns["get_user_analytics"](3)
    assert empty["post_count"] == 0 and empty["avg_views"] is None


async def test_faq_raw_sql(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    code = block_with("FAQ", "Q: What about SQLAlchemy Core?", "**A:**")
    await run_block(code, ns)
    assert ns["result"] == 2  # rows returned: alice (30) and carol (65)


async def test_faq_type_hints(db: Any, request: pytest.FixtureRequest) -> None:
    ns = namespace(request, QUERY_MODELS)
    await seed_query_users(ns)
    await run_block(block_with("FAQ", "Q: Type hints?", "**A:**"), ns)
    assert ns["user"].username == "alice"
