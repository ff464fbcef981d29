"""Aggregates across relations: annotate() per object and per values() group, filtered and
distinct counts, filters and ordering on annotations, aggregate() over relations, and several
multi-valued aggregates in one query without multiplying each other."""

from __future__ import annotations

from typing import Any

import pytest
from models_rel import Comment, Post, Tag, User, names, seed

from covet.database import FieldError
from covet.database.orm.aggregates import Avg, Count, Max, Min, Sum
from covet.database.orm.query import Q

ALICE_AVG = pytest.approx(155 / 3)

# annotation -> {username: value}, over all five users
USER_ANNOTATIONS = [
    ("post_count", Count("posts"), {"alice": 3, "bob": 2, "carol": 1, "dave": 1, "erin": 0}),
    ("published", Count("posts", filter=Q(posts__status="published")),
     {"alice": 2, "bob": 1, "carol": 0, "dave": 1, "erin": 0}),
    ("avg_views", Avg("posts__views"),
     {"alice": ALICE_AVG, "bob": 40.0, "carol": 0.0, "dave": 30.0, "erin": None}),
    ("sum_views", Sum("posts__views"),
     {"alice": 155, "bob": 80, "carol": 0, "dave": 30, "erin": None}),
    ("max_views", Max("posts__views"),
     {"alice": 100, "bob": 70, "carol": 0, "dave": 30, "erin": None}),
    ("tag_links", Count("posts__tags"), {"alice": 3, "bob": 4, "carol": 1, "dave": 0, "erin": 0}),
    ("tags", Count("posts__tags", distinct=True),
     {"alice": 2, "bob": 3, "carol": 1, "dave": 0, "erin": 0}),
    ("comments_received", Count("posts__comments"),
     {"alice": 4, "bob": 1, "carol": 2, "dave": 1, "erin": 0}),
    ("commenters", Count("posts__comments__author", distinct=True),
     {"alice": 3, "bob": 1, "carol": 1, "dave": 1, "erin": 0}),
    ("likes_received", Sum("posts__comments__likes"),
     {"alice": 14, "bob": 7, "carol": 22, "dave": 5, "erin": None}),
    ("best_like", Max("posts__comments__likes", filter=Q(posts__status="draft")),
     {"alice": 1, "bob": 7, "carol": 20, "dave": None, "erin": None}),
    ("comments_written", Count("comments"), {"alice": 3, "bob": 2, "carol": 1, "dave": 2,
                                             "erin": 0}),
    ("edited", Count("edited_posts"), {"alice": 1, "bob": 1, "carol": 0, "dave": 0, "erin": 0}),
]


@pytest.mark.parametrize(("name", "agg", "expected"), USER_ANNOTATIONS,
                         ids=[n for n, _, _ in USER_ANNOTATIONS])
async def test_annotate_users(db: Any, name: str, agg: Any, expected: dict[str, Any]) -> None:
    await seed()
    users = await User.objects.annotate(**{name: agg}).order_by("username")
    assert {u.username: getattr(u, name) for u in users} == expected
    rows = await User.objects.values("username").annotate(**{name: agg})
    assert {r["username"]: r[name] for r in rows} == expected


async def test_annotation_named_like_a_relation_is_refused(db: Any) -> None:
    """Django refuses an annotation that clashes with a field or relation name (here it would
    be hidden behind the ``user.posts`` manager)."""
    await seed()
    with pytest.raises(FieldError, match="posts"):
        await User.objects.annotate(posts=Count("posts"))


async def test_annotate_all_of_them_at_once(db: Any) -> None:
    """Every annotation above in one query: no multi-valued relation multiplies another."""
    await seed()
    users = await User.objects.annotate(**{n: a for n, a, _ in USER_ANNOTATIONS}).order_by(
        "username")
    for name, _, expected in USER_ANNOTATIONS:
        assert {u.username: getattr(u, name) for u in users} == expected, name


async def test_case_study_analytics(db: Any) -> None:
    await seed()
    qs = User.objects.annotate(
        post_count=Count("posts"),
        published_count=Count("posts", filter=Q(posts__status="published")),
        avg_views=Avg("posts__views"),
    )
    alice = await qs.get(username="alice")
    assert (alice.post_count, alice.published_count, alice.avg_views) == (3, 2, ALICE_AVG)
    erin = await qs.get(username="erin")
    assert (erin.post_count, erin.published_count, erin.avg_views) == (0, 0, None)


async def test_two_multi_valued_counts_do_not_multiply(db: Any) -> None:
    await seed()
    users = await User.objects.annotate(p=Count("posts"), c=Count("comments")).order_by(
        "username")
    assert [(u.username, u.p, u.c) for u in users] == [
        ("alice", 3, 3), ("bob", 2, 2), ("carol", 1, 1), ("dave", 1, 2), ("erin", 0, 0)]
    posts = await Post.objects.annotate(c=Count("comments"), t=Count("tags"),
                                        likes=Sum("comments__likes")).order_by("title")
    assert [(p.title, p.c, p.t, p.likes) for p in posts] == [
        ("a1", 3, 2, 13), ("a2", 1, 1, 1), ("a3", 0, 0, None), ("b1", 1, 1, 7),
        ("b2", 0, 3, None), ("c1", 2, 1, 22), ("d1", 1, 0, 5)]


async def test_values_group_with_several_multi_valued_counts(db: Any) -> None:
    await seed()
    rows = await User.objects.values("city").annotate(p=Count("posts"), c=Count("comments"))
    got = {r["city"]: (r["p"], r["c"]) for r in rows}
    assert got == {"Lisbon": (3, 3), "lisbon": (2, 2), "Berlin": (1, 1), None: (1, 2)}


async def test_values_group_distinct_count_with_another_relation(db: Any) -> None:
    objs = await seed()
    # erin (Berlin, like carol) writes a post tagged 'sql', as carol's c1 is
    e1 = await Post.create(title="e1", author=objs["erin"], views=10)
    await e1.tags.add(objs["sql"])
    rows = await User.objects.values("city").annotate(
        tags=Count("posts__tags", distinct=True), c=Count("comments"))
    got = {r["city"]: (r["tags"], r["c"]) for r in rows}
    assert got["Berlin"] == (1, 1)  # one distinct tag in Berlin, not one per user
    assert got == {"Lisbon": (2, 3), "lisbon": (3, 2), "Berlin": (1, 1), None: (0, 2)}


async def test_values_group_average_with_another_relation(db: Any) -> None:
    objs = await seed()
    await Post.create(title="e1", author=objs["erin"], views=10)
    rows = await User.objects.values("city").annotate(v=Avg("posts__views"), c=Count("comments"))
    got = {r["city"]: (r["v"], r["c"]) for r in rows}
    assert got == {"Lisbon": (ALICE_AVG, 3), "lisbon": (40.0, 2), "Berlin": (5.0, 1),
                   None: (30.0, 2)}


async def test_values_across_relation_then_annotate(db: Any) -> None:
    await seed()
    rows = await Post.objects.values("author__city").annotate(n=Count("id"), v=Sum("views"))
    assert {r["author__city"]: (r["n"], r["v"]) for r in rows} == {
        "Lisbon": (3, 155), "lisbon": (2, 80), "Berlin": (1, 0), None: (1, 30)}
    rows = await Comment.objects.filter(likes__gt=0).values("post__author__username").annotate(
        total_likes=Sum("likes")).order_by("post__author__username")
    assert [(r["post__author__username"], r["total_likes"]) for r in rows] == [
        ("alice", 14), ("bob", 7), ("carol", 22), ("dave", 5)]


async def test_values_group_plain_count_with_a_multi_valued_count(db: Any) -> None:
    """The join to tags must not multiply Count('id') (Django would; the issue forbids it)."""
    await seed()
    rows = await Post.objects.values("author__hometown__country__name").annotate(
        n=Count("id"), n_tags=Count("tags", distinct=True))
    assert {r["author__hometown__country__name"]: (r["n"], r["n_tags"]) for r in rows} == {
        "Portugal": (5, 3), "Germany": (1, 1), None: (1, 0)}


async def test_tag_annotations(db: Any) -> None:
    await seed()
    tags = await Tag.objects.annotate(n=Count("posts"),
                                      authors=Count("posts__author", distinct=True),
                                      views=Sum("posts__views")).order_by("name")
    assert [(t.name, t.n, t.authors, t.views) for t in tags] == [
        ("python", 3, 2, 115), ("rust", 2, 1, 80), ("sql", 3, 3, 110), ("unused", 0, 0, None)]


# -- filters and ordering on annotations ----------------------------------------------------------
async def test_filter_and_order_on_annotations(db: Any) -> None:
    await seed()
    qs = User.objects.annotate(post_count=Count("posts"))
    assert names(await qs.filter(post_count__gt=1).order_by("username")) == ["alice", "bob"]
    assert names(await qs.filter(post_count=0)) == ["erin"]
    assert names(await qs.exclude(post_count__lte=1).order_by("username")) == ["alice", "bob"]
    assert names(await qs.order_by("-post_count", "username")) == [
        "alice", "bob", "carol", "dave", "erin"]
    assert await qs.filter(post_count__gte=1).count() == 4
    both = User.objects.annotate(p=Count("posts"), c=Count("comments")).filter(p__gte=1, c__gte=2)
    assert sorted(names(await both)) == ["alice", "bob", "dave"]
    mixed = qs.filter(post_count__gte=1, city__isnull=False).filter(posts__views__gt=60)
    assert sorted(names(await mixed.distinct())) == ["alice", "bob"]
    rows = await User.objects.values("city").annotate(n=Count("posts")).filter(n__gte=2)
    assert sorted(r["city"] for r in rows) == ["Lisbon", "lisbon"]


async def test_exists_with_a_filter_on_an_annotation(db: Any) -> None:
    await seed()
    qs = User.objects.annotate(post_count=Count("posts"))
    assert await qs.filter(post_count__gte=3).exists()
    assert not await qs.filter(post_count__gt=3).exists()
    grouped = User.objects.values("city").annotate(n=Count("posts"))
    assert await grouped.filter(n__gte=3).exists()
    assert not await grouped.filter(n__gt=3).exists()


async def test_update_and_delete_filtered_on_an_annotation(db: Any) -> None:
    await seed()
    n = await User.objects.annotate(n=Count("posts")).filter(n__gte=2).update(city="Busy")
    assert n == 2
    assert sorted(await User.objects.filter(city="Busy").values_list("username", flat=True)) \
        == ["alice", "bob"]
    assert await User.objects.annotate(n=Count("posts")).filter(n=0).delete() == 1
    assert not await User.objects.filter(username="erin").exists()


async def test_annotate_and_filter_order_follows_django(db: Any) -> None:
    """Django: filter() before annotate() restricts the rows the aggregate counts; filter()
    after annotate() only chooses the objects."""
    await seed()
    before = User.objects.filter(posts__status="published").annotate(n=Count("posts"))
    assert {u.username: u.n for u in await before} == {"alice": 2, "bob": 1, "dave": 1}
    after = User.objects.annotate(n=Count("posts", distinct=True)).filter(
        posts__status="published").distinct()
    assert {u.username: u.n for u in await after} == {"alice": 3, "bob": 2, "dave": 1}


# -- aggregate() over relations -------------------------------------------------------------------
AGGREGATES = [  # queryset, aggregate kwargs, result
    (lambda: User.objects, {"n": Count("posts")}, {"n": 7}),
    (lambda: User.objects, {"n": Count("posts", distinct=True)}, {"n": 7}),
    (lambda: User.objects, {"n": Count("posts__tags", distinct=True)}, {"n": 3}),
    (lambda: User.objects.filter(city__iexact="lisbon"), {"v": Sum("posts__views")}, {"v": 235}),
    (lambda: User.objects, {"p": Count("posts"), "c": Count("comments")}, {"p": 7, "c": 8}),
    (lambda: User.objects, {"v": Sum("posts__views"), "l": Sum("comments__likes")},
     {"v": 265, "l": 48}),
    (lambda: Post.objects.filter(tags__name="python"), {"v": Sum("views"), "n": Count("id")},
     {"v": 115, "n": 3}),
    (lambda: Tag.objects, {"lo": Min("posts__views"), "hi": Max("posts__views")},
     {"lo": 0, "hi": 100}),
    (lambda: Post.objects, {"n": Count("comments", filter=Q(comments__likes__gte=5))}, {"n": 4}),
]


@pytest.mark.parametrize(("make", "kwargs", "expected"), AGGREGATES,
                         ids=[",".join(k) + f"-{i}" for i, (_, k, _) in enumerate(AGGREGATES)])
async def test_aggregate_over_relations(db: Any, make: Any, kwargs: dict[str, Any],
                                        expected: dict[str, Any]) -> None:
    await seed()
    assert await make().aggregate(**kwargs) == expected


async def test_aggregate_default_alias_and_over_annotation(db: Any) -> None:
    await seed()
    assert await User.objects.aggregate(Count("posts")) == {"posts__count": 7}
    assert await User.objects.aggregate(Avg("posts__views")) == {
        "posts__views__avg": pytest.approx(265 / 7)}
    got = await User.objects.annotate(n=Count("posts")).aggregate(avg=Avg("n"), top=Max("n"))
    assert got == {"avg": pytest.approx(7 / 5), "top": 3}


async def test_values_after_annotate_keeps_per_object_values(db: Any) -> None:
    """Django: values() after annotate() lists each object's annotation (no regrouping)."""
    await seed()
    rows = await User.objects.annotate(n=Count("posts")).values("username", "n")
    assert {r["username"]: r["n"] for r in rows} == {
        "alice": 3, "bob": 2, "carol": 1, "dave": 1, "erin": 0}
    pairs = await User.objects.annotate(n=Count("posts"), c=Count("comments")).filter(
        n__gte=1).order_by("username").values_list("username", "n", "c")
    assert pairs == [("alice", 3, 3), ("bob", 2, 2), ("carol", 1, 1), ("dave", 1, 2)]


async def test_filter_before_aggregate_restricts_the_related_rows(db: Any) -> None:
    """Django: a filter() across a multi-valued relation before aggregate() / values().annotate()
    limits the related rows the aggregate sees (as it does for annotate())."""
    await seed()
    drafts = User.objects.filter(posts__status="draft")
    assert await drafts.aggregate(p=Count("posts")) == {"p": 3}  # a2, b1, c1
    assert await drafts.aggregate(v=Sum("posts__views")) == {"v": 75}


async def test_filter_before_values_annotate_restricts_the_related_rows(db: Any) -> None:
    await seed()
    rows = await User.objects.filter(posts__status="published").values("city").annotate(
        n=Count("posts"))
    assert {r["city"]: r["n"] for r in rows} == {"Lisbon": 2, "lisbon": 1, None: 1}

