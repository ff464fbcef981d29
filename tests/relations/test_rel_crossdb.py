"""The same relational data in SQLite and PostgreSQL at once (two aliases): relation queries
give identical results on both, and relation work on instances stays on their database.

The ``default`` alias points at an empty SQLite file without tables, so anything that silently
falls back to ``default`` fails loudly instead of reading the wrong database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from models_rel import Comment, Country, Post, Tag, User, names, seed

from covet.database import configure, connections
from covet.database.orm.aggregates import Avg, Count, Sum
from covet.database.orm.prefetch import prefetch_objects
from covet.database.orm.query import Prefetch, Q

ALIASES = ("lite", "pg2")


@pytest.fixture
async def two_dbs(pg_url: str, tmp_path: Any) -> AsyncIterator[tuple[str, str]]:
    configure(f"sqlite:///{tmp_path / 'empty-default.db'}")
    configure(f"sqlite:///{tmp_path / 'cross.db'}", alias="lite")
    configure(pg_url, alias="pg2")
    try:
        pg = connections.adapter_for("pg2")
        await pg.connect()
        await pg.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        for alias in ALIASES:
            await seed(alias)
        yield ALIASES
    finally:
        await connections.close_all()
        for alias in ("default", *ALIASES):
            connections.unregister(alias)
        await connections.close_all()


def _sorted(rows: list[Any]) -> list[Any]:
    """Sort rows that may hold None (None first) into a database-independent order."""
    def key(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return tuple(key(v) for v in value)
        return (value is not None, value if value is not None else 0)
    return sorted(rows, key=key)


def _r(value: Any) -> Any:
    return None if value is None else round(float(value), 6)


async def q_filter_reverse(a: str) -> Any:
    return sorted(names(await User.objects.using(a).filter(posts__status="published").distinct()))


async def q_filter_forward_iexact(a: str) -> Any:
    return sorted(names(await Post.objects.using(a).filter(author__city__iexact="LISBON"), "title"))


async def q_filter_many(a: str) -> Any:
    qs = Post.objects.using(a).filter(tags__name="python").filter(tags__name="sql")
    return sorted(names(await qs, "title"))


async def q_filter_deep(a: str) -> Any:
    qs = Country.objects.using(a).filter(cities__residents__posts__comments__likes__gte=10)
    return sorted(names(await qs.distinct(), "code"))


async def q_same_row(a: str) -> Any:
    qs = User.objects.using(a).filter(posts__status="published", posts__views__gt=60)
    return sorted(names(await qs))


async def q_isnull(a: str) -> Any:
    return (names(await User.objects.using(a).filter(posts__isnull=True)),
            sorted(names(await Tag.objects.using(a).filter(posts__isnull=True), "name")))


async def q_exclude(a: str) -> Any:
    return (sorted(names(await User.objects.using(a).exclude(posts__status="draft"))),
            sorted(names(await Post.objects.using(a).exclude(tags__name="python"), "title")),
            sorted(names(await Post.objects.using(a).exclude(editor__username="bob"), "title")))


async def q_counts(a: str) -> Any:
    base = User.objects.using(a)
    return (await base.filter(posts__tags__name="sql").distinct().count(),
            await base.filter(posts__comments__likes__gt=5).exists(),
            await base.annotate(n=Count("posts")).filter(n__gte=2).count())


async def q_annotate_two(a: str) -> Any:
    users = await User.objects.using(a).annotate(p=Count("posts"), c=Count("comments"))
    return _sorted([(u.username, u.p, u.c) for u in users])


async def q_case_study(a: str) -> Any:
    users = await User.objects.using(a).annotate(
        post_count=Count("posts"), published=Count("posts", filter=Q(posts__status="published")),
        avg_views=Avg("posts__views"), tags=Count("posts__tags", distinct=True))
    return _sorted([(u.username, u.post_count, u.published, _r(u.avg_views), u.tags)
                    for u in users])


async def q_values_group(a: str) -> Any:
    rows = await User.objects.using(a).values("city").annotate(p=Count("posts"),
                                                               c=Count("comments"))
    return _sorted([(r["city"], r["p"], r["c"]) for r in rows])


async def q_values_related_group(a: str) -> Any:
    rows = await Post.objects.using(a).values("author__hometown__country__name").annotate(
        n=Count("id"), v=Sum("views"))
    return _sorted([(r["author__hometown__country__name"], r["n"], r["v"]) for r in rows])


async def q_aggregate(a: str) -> Any:
    got = await User.objects.using(a).aggregate(n=Count("posts"), v=Sum("posts__views"),
                                                avg=Avg("posts__views"))
    return {k: _r(v) for k, v in got.items()}


async def q_select_related(a: str) -> Any:
    posts = await Post.objects.using(a).select_related("author__hometown__country", "editor")
    return _sorted([(p.title, p.author.username,
                     p.author.hometown.country.code
                     if p.author.hometown and p.author.hometown.country else None,
                     p.editor.username if p.editor else None) for p in posts])


async def q_prefetch_nested(a: str) -> Any:
    users = await User.objects.using(a).prefetch_related("posts__comments", "profile")
    return _sorted([(u.username, u.profile.bio if u.profile else None,
                     _sorted([(p.title, len(p.comments)) for p in u.posts])) for u in users])


async def q_select_related_reverse(a: str) -> Any:
    posts = await Post.objects.using(a).select_related("tags")
    return _sorted([(p.title, sorted(names(p.tags, "name"))) for p in posts])


async def q_prefetch_object(a: str) -> Any:
    users = await User.objects.using(a).prefetch_related(Prefetch(
        "posts", queryset=Post.objects.filter(status="published").order_by("-views"),
        to_attr="pub"))
    return _sorted([(u.username, names(u.pub, "title")) for u in users])


async def q_ordering(a: str) -> Any:
    posts = Post.objects.using(a).order_by("author__username", "-views")
    comments = Comment.objects.using(a).filter(post__author__isnull=False).order_by(
        "post__title", "-likes")
    return (names(await posts, "title"), [c.likes for c in await comments])


async def q_tag_annotations(a: str) -> Any:
    tags = await Tag.objects.using(a).annotate(n=Count("posts"),
                                               authors=Count("posts__author", distinct=True))
    return _sorted([(t.name, t.n, t.authors) for t in tags])


QUERIES: list[Callable[[str], Any]] = [
    q_filter_reverse, q_filter_forward_iexact, q_filter_many, q_filter_deep, q_same_row,
    q_isnull, q_exclude, q_counts, q_annotate_two, q_case_study, q_values_group,
    q_values_related_group, q_aggregate, q_select_related, q_prefetch_nested,
    q_select_related_reverse, q_prefetch_object, q_ordering, q_tag_annotations,
]


@pytest.mark.parametrize("query", QUERIES, ids=[q.__name__[2:] for q in QUERIES])
async def test_same_answer_on_sqlite_and_postgresql(two_dbs: tuple[str, str],
                                                    query: Callable[[str], Any]) -> None:
    lite, pg = two_dbs
    on_sqlite = await query(lite)
    on_postgres = await query(pg)
    assert on_sqlite == on_postgres
    assert on_sqlite not in ([], (), {}, None)


# -- relation work stays on the instance's database (Django: instance._state.db) ---------------
async def test_related_managers_use_the_instance_database(two_dbs: tuple[str, str]) -> None:
    for alias in two_dbs:
        alice = await User.objects.using(alias).get(username="alice")
        assert sorted(names(await alice.posts.all(), "title")) == ["a1", "a2", "a3"], alias
        assert await alice.posts.filter(status="published").count() == 2, alias


async def test_forward_load_uses_the_instance_database(two_dbs: tuple[str, str]) -> None:
    for alias in two_dbs:
        post = await Post.objects.using(alias).get(title="b1")
        assert (await post.author).username == "bob", alias
        await post.fetch_related("tags", "editor")
        assert (names(post.tags, "name"), post.editor.username) == (["rust"], "alice"), alias


async def test_prefetch_objects_uses_the_instances_database(two_dbs: tuple[str, str]) -> None:
    for alias in two_dbs:
        users = await User.objects.using(alias).order_by("username")
        await prefetch_objects(users, ["posts"])
        assert [len(u.posts) for u in users] == [3, 2, 1, 1, 0], alias


async def test_many_to_many_writes_use_the_instance_database(two_dbs: tuple[str, str]) -> None:
    for alias in two_dbs:
        a3 = await Post.objects.using(alias).get(title="a3")
        rust = await Tag.objects.using(alias).get(name="rust")
        await a3.tags.add(rust)
        assert names(await a3.tags.all(), "name") == ["rust"], alias
        await a3.tags.clear()
        assert await a3.tags.count() == 0, alias
