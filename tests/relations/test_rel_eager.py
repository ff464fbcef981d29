"""Eager loading: select_related (JOINs for forward relations, a prefetch query for reverse and
many-to-many ones), prefetch_related with nested paths and ``Prefetch`` objects, and the number
of queries each takes."""

from __future__ import annotations

from typing import Any

import pytest
from models_rel import (
    BLOG,
    Comment,
    Post,
    Tag,
    User,
    count_queries,
    names,
    seed,
)

from covet.database import create_tables
from covet.database.exceptions import RelationNotLoaded
from covet.database.orm.aggregates import Count
from covet.database.orm.query import Prefetch


# -- select_related -------------------------------------------------------------------------------
async def test_select_related_forward_is_one_join_query(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        posts = await Post.objects.select_related("author", "editor").order_by("title")
        got = [(p.title, p.author.username, p.editor.username if p.editor else None)
               for p in posts]
    assert q.n == 1, q
    assert "JOIN" in q.sql[0]
    assert got == [("a1", "alice", "bob"), ("a2", "alice", None), ("a3", "alice", None),
                   ("b1", "bob", "alice"), ("b2", "bob", None), ("c1", "carol", None),
                   ("d1", "dave", None)]


async def test_select_related_nested_and_nulls(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        users = await User.objects.select_related("hometown__country").order_by("username")
        got = [(u.username,
                u.hometown.name if u.hometown else None,
                u.hometown.country.name if u.hometown and u.hometown.country else None)
               for u in users]
    assert q.n == 1, q
    assert got == [("alice", "Lisbon", "Portugal"), ("bob", "Porto", "Portugal"),
                   ("carol", "Berlin", "Germany"), ("dave", None, None),
                   ("erin", "Atlantis", None)]
    with count_queries(db) as q:
        comments = await Comment.objects.select_related(
            "post__author__hometown__country", "author").filter(likes__gte=10).order_by("likes")
        got = [(c.likes, c.post.title, c.post.author.username,
                c.post.author.hometown.country.code, c.author.username) for c in comments]
    assert q.n == 1, q
    assert got == [(10, "a1", "alice", "PT", "carol"), (20, "c1", "carol", "DE", "dave")]


async def test_select_related_with_filters_get_first_and_slices(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        post = await Post.objects.select_related("author").get(author__username="carol")
        first = await Post.objects.select_related("author").filter(
            author__city__iexact="lisbon").order_by("-views").first()
        page = await Post.objects.select_related("author").order_by("title")[2:4]
        assert (post.title, post.author.username) == ("c1", "carol")
        assert (first.title, first.author.username) == ("a1", "alice")
        assert [(p.title, p.author.username) for p in page] == [("a3", "alice"), ("b1", "bob")]
    assert q.n == 3, q
    streamed = [(p.title, p.author.username)
                async for p in Post.objects.select_related("author").order_by("title")]
    assert streamed[0] == ("a1", "alice") and len(streamed) == 7


async def test_select_related_with_annotation(db: Any) -> None:
    await seed()
    posts = await Post.objects.select_related("author").annotate(
        n=Count("comments")).order_by("title")
    assert [(p.title, p.author.username, p.n) for p in posts] == [
        ("a1", "alice", 3), ("a2", "alice", 1), ("a3", "alice", 0), ("b1", "bob", 1),
        ("b2", "bob", 0), ("c1", "carol", 2), ("d1", "dave", 1)]


@pytest.mark.parametrize(("model", "path", "attr"), [
    (User, "posts", "title"),
    (Post, "tags", "name"),
    (Tag, "posts", "title"),
    (User, "article_set", "headline"),
])
async def test_select_related_reverse_and_many_is_a_prefetch(db: Any, model: Any, path: str,
                                                             attr: str) -> None:
    await seed()
    with count_queries(db) as q:
        objs = await model.objects.select_related(path).order_by("pk")
    assert q.n == 2, q
    with count_queries(db) as q:
        loaded = {o.pk: sorted(names(getattr(o, path), attr)) for o in objs}
        for o in objs:
            manager = getattr(o, path)
            assert len(manager) == len(loaded[o.pk])
            assert sorted(names(await manager.all(), attr)) == loaded[o.pk]
            assert await manager.count() == len(loaded[o.pk])
            assert await manager.exists() == bool(loaded[o.pk])
            assert repr(manager).startswith("[")
    assert q.n == 0, q
    fresh = {o.pk: sorted(names(await getattr(o, path).filter(), attr))
             for o in await model.objects.all()}
    assert loaded == fresh


async def test_select_related_mixed_forward_and_reverse(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        posts = await Post.objects.select_related("author", "tags", "comments").order_by("title")
        got = [(p.title, p.author.username, sorted(names(p.tags, "name")), len(p.comments))
               for p in posts]
    assert q.n == 3, q
    assert got[0] == ("a1", "alice", ["python", "sql"], 3)
    assert got[4] == ("b2", "bob", ["python", "rust", "sql"], 0)


async def test_prefetch_continues_from_select_related(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        posts = await Post.objects.select_related("author").prefetch_related(
            "author__posts", "author__hometown").order_by("title")
        got = {p.title: (len(p.author.posts), p.author.hometown.name if p.author.hometown
                         else None) for p in posts}
    assert q.n == 3, q
    assert got == {"a1": (3, "Lisbon"), "a2": (3, "Lisbon"), "a3": (3, "Lisbon"),
                   "b1": (2, "Porto"), "b2": (2, "Porto"), "c1": (1, "Berlin"), "d1": (1, None)}


# -- prefetch_related -----------------------------------------------------------------------------
async def make_users(n: int) -> None:
    await create_tables(*BLOG)
    users = await User.objects.bulk_create([User(username=f"u{i:03}") for i in range(n)])
    posts = await Post.objects.bulk_create(
        [Post(title=f"{u.username}-p{j}", author=u, views=j) for u in users for j in range(2)])
    await Comment.objects.bulk_create(
        [Comment(post=p, likes=k, author=users[k % n]) for p in posts for k in range(2)])


@pytest.mark.parametrize("n", [3, 30])
@pytest.mark.parametrize("how", ["prefetch", "select_then_prefetch", "prefetch_twice"])
async def test_users_posts_comments_take_three_queries(db: Any, n: int, how: str) -> None:
    await make_users(n)
    qs = {
        "prefetch": User.objects.prefetch_related("posts__comments"),
        "select_then_prefetch": User.objects.select_related("posts").prefetch_related(
            "posts__comments"),
        "prefetch_twice": User.objects.prefetch_related("posts", "posts__comments"),
    }[how]
    with count_queries(db) as q:
        users = await qs.order_by("username")
        shape = [(u.username, [(p.title, len(p.comments)) for p in u.posts]) for u in users]
        for u in users:
            for p in await u.posts.all():
                assert await p.comments.count() == 2
                assert sorted(c.likes for c in await p.comments.all()) == [0, 1]
    assert q.n == 3, q
    assert len(shape) == n
    assert shape[0] == ("u000", [("u000-p0", 2), ("u000-p1", 2)])
    assert all(len(posts) == 2 for _, posts in shape)


async def test_prefetch_many_levels_and_kinds(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        users = await User.objects.prefetch_related(
            "posts__comments__author", "posts__tags", "profile", "hometown").order_by("username")
    assert q.n == 7, q
    with count_queries(db) as q:
        alice = users[0]
        assert alice.hometown.name == "Lisbon" and alice.profile.bio == "writes a lot"
        a1 = next(p for p in alice.posts if p.title == "a1")
        assert sorted(c.author.username for c in a1.comments) == ["alice", "bob", "carol"]
        assert sorted(names(a1.tags, "name")) == ["python", "sql"]
        assert users[3].hometown is None and users[1].profile is None
        assert list(users[4].posts) == []
        # a back-reference is set on prefetched children
        assert all(p.author is alice for p in alice.posts)
    assert q.n == 0, q


async def test_prefetch_on_empty_results_and_empty_relations(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        assert await User.objects.filter(username="nobody").prefetch_related("posts__tags") == []
    assert q.n == 1, q
    erin = await User.objects.prefetch_related("posts__comments").get(username="erin")
    assert len(erin.posts) == 0 and await erin.posts.all() == []
    unused = await Tag.objects.prefetch_related("posts").get(name="unused")
    assert list(unused.posts) == []


async def test_prefetch_with_streaming(db: Any) -> None:
    await seed()
    got = {u.username: sorted(names(u.posts, "title"))
           async for u in User.objects.prefetch_related("posts")}
    assert got == {"alice": ["a1", "a2", "a3"], "bob": ["b1", "b2"], "carol": ["c1"],
                   "dave": ["d1"], "erin": []}


async def test_prefetched_all_still_chains_like_a_queryset(db: Any) -> None:
    """Code written against ``user.posts.all()`` must keep working once the relation is
    prefetched (Django: ``all()`` returns a QuerySet that merely has its results cached)."""
    await seed()
    alice = await User.objects.prefetch_related("posts").get(username="alice")
    published = alice.posts.all().filter(status="published").order_by("-views")
    assert names(await published, "title") == ["a1", "a3"]
    assert await alice.posts.all().count() == 3
    assert sorted([p.title async for p in alice.posts.all()]) == ["a1", "a2", "a3"]


# -- Prefetch objects -----------------------------------------------------------------------------
async def test_prefetch_object_with_queryset_and_to_attr(db: Any) -> None:
    await seed()
    published = Post.objects.filter(status="published").order_by("-views")
    with count_queries(db) as q:
        users = await User.objects.prefetch_related(
            Prefetch("posts", queryset=published, to_attr="published")).order_by("username")
    assert q.n == 2, q
    assert [(u.username, names(u.published, "title")) for u in users] == [
        ("alice", ["a1", "a3"]), ("bob", ["b2"]), ("carol", []), ("dave", ["d1"]),
        ("erin", [])]
    with pytest.raises(RelationNotLoaded):  # to_attr leaves the manager alone (as in Django)
        len(users[0].posts)


async def test_prefetch_object_without_to_attr_fills_the_manager(db: Any) -> None:
    await seed()
    users = await User.objects.prefetch_related(
        Prefetch("posts", queryset=Post.objects.filter(views__gte=50).order_by("views")),
        "posts__comments").order_by("username")
    assert [(u.username, names(u.posts, "title")) for u in users] == [
        ("alice", ["a3", "a1"]), ("bob", ["b1"]), ("carol", []), ("dave", []), ("erin", [])]
    assert [len(p.comments) for p in users[0].posts] == [0, 3]


async def test_prefetch_object_nested_and_select_related_inside(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        users = await User.objects.prefetch_related(
            Prefetch("posts__comments", queryset=Comment.objects.filter(likes__gt=2)
                     .select_related("author").order_by("-likes"), to_attr="liked"),
        ).order_by("username")
        got = {(u.username, p.title): [(c.likes, c.author.username) for c in p.liked]
               for u in users for p in u.posts}
    assert q.n == 3, q
    assert got[("alice", "a1")] == [(10, "carol"), (3, "bob")]
    assert got[("alice", "a2")] == []
    assert got[("carol", "c1")] == [(20, "dave")]
    assert got[("dave", "d1")] == [(5, "alice")]


async def test_prefetch_object_many_to_many(db: Any) -> None:
    await seed()
    with count_queries(db) as q:
        posts = await Post.objects.prefetch_related(
            Prefetch("tags", queryset=Tag.objects.exclude(name="sql").order_by("-name"),
                     to_attr="some_tags")).order_by("title")
    assert q.n == 2, q
    assert [(p.title, names(p.some_tags, "name")) for p in posts] == [
        ("a1", ["python"]), ("a2", ["python"]), ("a3", []), ("b1", ["rust"]),
        ("b2", ["rust", "python"]), ("c1", []), ("d1", [])]


async def test_prefetch_through_a_to_attr(db: Any) -> None:
    """Django: a later lookup may continue from an earlier Prefetch's to_attr."""
    await seed()
    users = await User.objects.prefetch_related(
        Prefetch("posts", queryset=Post.objects.filter(status="published"), to_attr="pub"),
        "pub__comments").order_by("username")
    assert sorted((p.title, len(p.comments)) for p in users[0].pub) == [("a1", 3), ("a3", 0)]


@pytest.mark.parametrize("path", ["posts", "tags"])
async def test_prefetch_object_with_annotated_queryset(db: Any, path: str) -> None:
    await seed()
    if path == "posts":
        users = await User.objects.prefetch_related(Prefetch(
            "posts", queryset=Post.objects.annotate(n=Count("comments")).order_by("title"))
        ).order_by("username")
        got = [(p.title, p.n) for p in users[0].posts]
        assert got == [("a1", 3), ("a2", 1), ("a3", 0)]
    else:
        posts = await Post.objects.prefetch_related(Prefetch(
            "tags", queryset=Tag.objects.annotate(n=Count("posts")).order_by("name"))
        ).order_by("title")
        got = [(t.name, t.n) for t in posts[4].tags]  # b2
        assert got == [("python", 3), ("rust", 2), ("sql", 3)]
