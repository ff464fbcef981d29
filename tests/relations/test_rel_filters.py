"""Filters across relations at any depth (forward, reverse, many-to-many), Django's semantics for
multi-valued relations in filter()/exclude(), distinct(), ordering across relations, writes
through relation filters, and the errors for unknown relation paths."""

from __future__ import annotations

from typing import Any

import pytest
from models_rel import City, Comment, Country, Post, Tag, User, names, seed

from covet.database import FieldError
from covet.database.orm.query import F, Q

# (model, filter kwargs, expected names sorted; distinct() applied)
FILTER_CASES = [
    # forward, depth 1..3
    (Post, {"author__username": "bob"}, ["b1", "b2"]),
    (Post, {"author__city__iexact": "LISBON"}, ["a1", "a2", "a3", "b1", "b2"]),
    (Post, {"author__city": "lisbon"}, ["b1", "b2"]),
    (Post, {"author__hometown__name": "Porto"}, ["b1", "b2"]),
    (Post, {"author__hometown__country__name": "Portugal"}, ["a1", "a2", "a3", "b1", "b2"]),
    (Post, {"author__hometown__country__code__in": ["DE", "FR"]}, ["c1"]),
    (Post, {"author__hometown__country__isnull": True}, ["d1"]),
    (Post, {"editor__username__startswith": "a"}, ["b1"]),
    (Post, {"editor__isnull": True}, ["a2", "a3", "b2", "c1", "d1"]),
    (Post, {"author": 3}, ["c1"]),
    (Post, {"author__id__gte": 3}, ["c1", "d1"]),
    (Comment, {"post__author__hometown__country__code": "DE"}, ["c5", "c6"]),
    # reverse
    (User, {"posts__status": "published"}, ["alice", "bob", "dave"]),
    (User, {"posts__views__gt": 60}, ["alice", "bob"]),
    (User, {"posts__isnull": True}, ["erin"]),
    (User, {"posts__isnull": False}, ["alice", "bob", "carol", "dave"]),
    (User, {"posts__comments__likes__gt": 5}, ["alice", "bob", "carol"]),
    (User, {"posts__comments__author__username": "dave"}, ["carol"]),
    (User, {"comments__post__author__username": "alice"}, ["alice", "bob", "carol"]),
    (User, {"edited_posts__title": "a1"}, ["bob"]),
    (User, {"profile__bio__contains": "lot"}, ["alice", "carol"]),
    (User, {"profile__isnull": True}, ["bob", "dave", "erin"]),
    (City, {"residents__posts__tags__name": "rust"}, ["Porto"]),
    (Country, {"cities__residents__posts__comments__likes__gte": 10}, ["DE", "PT"]),
    (Country, {"cities__isnull": True}, ["FR"]),
    # many-to-many, both sides
    (Post, {"tags__name": "python"}, ["a1", "a2", "b2"]),
    (Post, {"tags__name__in": ["rust", "sql"]}, ["a1", "b1", "b2", "c1"]),
    (Post, {"tags__isnull": True}, ["a3", "d1"]),
    (Post, {"tags": 2}, ["b1", "b2"]),
    (Tag, {"posts__author__username": "bob"}, ["python", "rust", "sql"]),
    (Tag, {"posts__isnull": True}, ["unused"]),
    (Tag, {"posts__comments__likes__gte": 20}, ["sql"]),
    (User, {"posts__tags__name": "rust"}, ["bob"]),
    # None means isnull, as in Django
    (User, {"posts": None}, ["erin"]),
    (Post, {"editor": None}, ["a2", "a3", "b2", "c1", "d1"]),
    (Tag, {"posts": None}, ["unused"]),
    # F() across relations
    (Comment, {"likes__gte": F("post__views")}, ["c5", "c6"]),
    (Post, {"views__gt": F("author__posts__views")}, ["a1", "a3", "b1"]),
]


def _key(model: Any) -> str:
    return {User: "username", Post: "title", Tag: "name", City: "name", Country: "code",
            Comment: "body"}[model]


@pytest.mark.parametrize(("model", "kwargs", "expected"), FILTER_CASES,
                         ids=[f"{m.__name__}-{next(iter(k))}" for m, k, _ in FILTER_CASES])
async def test_filter_across_relations(db: Any, model: Any, kwargs: dict[str, Any],
                                       expected: list[str]) -> None:
    await seed()
    qs = model.objects.filter(**kwargs)
    assert sorted(names(await qs.distinct(), _key(model))) == expected
    assert sorted(set(names(await qs, _key(model)))) == expected
    assert await qs.distinct().count() == len(expected)
    assert await qs.exists() == bool(expected)
    assert sorted(await qs.distinct().values_list(_key(model), flat=True)) == expected


async def test_filter_by_instance_forward(db: Any) -> None:
    objs = await seed()
    assert sorted(names(await Post.objects.filter(author=objs["bob"]), "title")) == ["b1", "b2"]
    assert sorted(names(await Post.objects.filter(
        author__in=[objs["bob"], objs["carol"]]), "title")) == ["b1", "b2", "c1"]
    assert sorted(names(await Post.objects.exclude(author=objs["alice"]), "title")) == [
        "b1", "b2", "c1", "d1"]
    assert sorted(names(await City.objects.filter(country=objs["PT"]), "name")) == [
        "Lisbon", "Porto"]
    assert sorted(names(await City.objects.filter(country="PT"), "name")) == ["Lisbon", "Porto"]


async def test_filter_by_instance_reverse_and_many(db: Any) -> None:
    objs = await seed()
    assert sorted(names(await Post.objects.filter(tags=objs["rust"]), "title")) == ["b1", "b2"]
    assert names(await User.objects.filter(posts=objs["c1"])) == ["carol"]
    assert sorted(names(await Tag.objects.filter(posts__in=[objs["a1"], objs["b1"]]).distinct(),
                        "name")) == ["python", "rust", "sql"]
    assert sorted(names(await Post.objects.filter(
        author__in=User.objects.filter(city__iexact="lisbon")), "title")) == [
        "a1", "a2", "a3", "b1", "b2"]


# -- Django's multi-valued semantics --------------------------------------------------------------
async def test_conditions_in_one_filter_apply_to_the_same_related_row(db: Any) -> None:
    await seed()
    one_call = User.objects.filter(posts__status="published", posts__views__gt=60)
    assert names(await one_call) == ["alice"]  # a1 is both
    two_calls = User.objects.filter(posts__status="published").filter(posts__views__gt=60)
    # bob: b2 is published, b1 has 70 views. Without distinct() there is one row per pair
    # of matching related rows, as in Django (alice: a1/a3 x a1).
    assert sorted(names(await two_calls)) == ["alice", "alice", "bob"]
    assert sorted(names(await two_calls.distinct())) == ["alice", "bob"]
    assert await two_calls.distinct().count() == 2
    q_and = User.objects.filter(Q(posts__status="draft") & Q(posts__views__gte=70))
    assert names(await q_and) == ["bob"]
    both_tags = Post.objects.filter(Q(tags__name="python") & Q(tags__name="sql"))
    assert names(await both_tags, "title") == []  # one tag row cannot have two names
    chained = Post.objects.filter(tags__name="python").filter(tags__name="sql")
    assert sorted(names(await chained, "title")) == ["a1", "b2"]
    deep = User.objects.filter(posts__comments__likes__gt=5, posts__comments__author__username="dave")
    assert names(await deep) == ["carol"]
    deep2 = User.objects.filter(posts__comments__likes__lt=5, posts__status="published")
    assert names(await deep2.distinct()) == ["alice"]


async def test_or_across_relations(db: Any) -> None:
    await seed()
    qs = User.objects.filter(Q(posts__tags__name="rust") | Q(profile__bio__startswith="reads"))
    assert sorted(names(await qs.distinct())) == ["bob", "carol"]
    qs = Post.objects.filter(Q(author__city__isnull=True) | Q(tags__name="rust"))
    assert sorted(names(await qs.distinct(), "title")) == ["b1", "b2", "d1"]


EXCLUDE_CASES = [  # Django: exclude() drops objects having ANY related row that matches
    (User, {"posts__status": "draft"}, ["dave", "erin"]),
    (User, {"posts__status": "published"}, ["carol", "erin"]),
    (User, {"posts__comments__likes__gt": 5}, ["dave", "erin"]),
    (User, {"posts__tags__name": "sql"}, ["dave", "erin"]),
    (User, {"posts__isnull": True}, ["alice", "bob", "carol", "dave"]),
    (User, {"profile__bio__contains": "writes"}, ["bob", "carol", "dave", "erin"]),
    (Post, {"tags__name": "python"}, ["a3", "b1", "c1", "d1"]),
    (Post, {"tags__name__in": ["python", "rust"]}, ["a3", "c1", "d1"]),
    (Post, {"comments__author__username": "alice"}, ["a2", "a3", "b2", "c1"]),
    (Tag, {"posts__author__username": "alice"}, ["rust", "unused"]),
    (Country, {"cities__residents__username": "carol"}, ["FR", "PT"]),
    # forward (single-valued): rows whose related value is NULL stay, as in Django
    (Post, {"author__city": "Berlin"}, ["a1", "a2", "a3", "b1", "b2", "d1"]),
    (Post, {"author__hometown__country__code": "PT"}, ["c1", "d1"]),
    (Post, {"editor__username": "bob"}, ["a2", "a3", "b1", "b2", "c1", "d1"]),
]


@pytest.mark.parametrize(("model", "kwargs", "expected"), EXCLUDE_CASES,
                         ids=[f"{m.__name__}-{next(iter(k))}" for m, k, _ in EXCLUDE_CASES])
async def test_exclude_across_relations(db: Any, model: Any, kwargs: dict[str, Any],
                                        expected: list[str]) -> None:
    await seed()
    qs = model.objects.exclude(**kwargs)
    got = names(await qs, _key(model))
    assert sorted(got) == expected  # no duplicates either
    assert await qs.count() == len(expected)
    assert sorted(names(await model.objects.filter(~Q(**kwargs)), _key(model))) == expected


async def test_exclude_with_two_conditions_and_filter_mix(db: Any) -> None:
    await seed()
    # Django: each condition of a multi-valued exclude() is checked on its own related rows:
    # excluded are users having a draft post AND having a post with >= 50 views.
    qs = User.objects.exclude(posts__status="draft", posts__views__gte=50)
    assert sorted(names(await qs)) == ["carol", "dave", "erin"]
    # exclude + filter over the same relation
    qs = User.objects.filter(posts__status="published").exclude(posts__tags__name="python")
    assert sorted(names(await qs.distinct())) == ["dave"]
    qs = Post.objects.exclude(tags__name="python").filter(tags__name="sql")
    assert names(await qs, "title") == ["c1"]
    # the Django idiom for "same related row" exclusion
    bad = Post.objects.filter(status="draft", views__gte=50)
    assert sorted(names(await User.objects.exclude(posts__in=bad))) == [
        "alice", "carol", "dave", "erin"]


async def test_distinct_with_ordering_and_slicing(db: Any) -> None:
    await seed()
    qs = User.objects.filter(posts__tags__name__in=["python", "sql"]).distinct()
    assert names(await qs.order_by("username")) == ["alice", "bob", "carol"]
    assert names(await qs.order_by("-username")[:2]) == ["carol", "bob"]
    assert await qs.count() == 3
    assert (await qs.order_by("username").first()).username == "alice"
    tags = Tag.objects.filter(posts__status="published").distinct().order_by("name")
    assert await tags.values_list("name", flat=True) == ["python", "rust", "sql"]
    assert await tags.values("name") == [{"name": "python"}, {"name": "rust"}, {"name": "sql"}]


async def test_order_by_across_relations(db: Any) -> None:
    await seed()
    posts = Post.objects.order_by("author__username", "-views")
    assert names(await posts, "title") == ["a1", "a3", "a2", "b1", "b2", "c1", "d1"]
    comments = Comment.objects.order_by("post__author__hometown__name", "-likes", "id")
    # Berlin (carol: c1), Lisbon (alice: a1, a2), Porto (bob: b1), NULL hometown (dave: d1)
    got = [c.likes for c in await comments]
    nulls_last = [20, 2, 10, 3, 1, 0, 7, 5]
    nulls_first = [5, 20, 2, 10, 3, 1, 0, 7]
    assert got in (nulls_last, nulls_first)
    assert await Post.objects.filter(author__city__isnull=False).order_by(
        "-author__username", "title").values_list("title", flat=True) == [
        "c1", "b1", "b2", "a1", "a2", "a3"]


async def test_values_across_relations(db: Any) -> None:
    await seed()
    annotated = await Post.objects.annotate(who=F("author__username"),
                                            where=F("author__hometown__name")).order_by("title")
    assert [(p.title, p.who, p.where) for p in annotated][:4:3] == [
        ("a1", "alice", "Lisbon"), ("b1", "bob", "Porto")]
    tag_names = await User.objects.filter(username__in=["alice", "carol"]).values_list(
        "posts__tags__name", flat=True).distinct()
    assert len(tag_names) == 3 and set(tag_names) == {"python", "sql", None}  # a3 has no tag
    rows = await Post.objects.filter(tags__name="rust").order_by("title").values(
        "title", "author__username", "author__hometown__country__name")
    assert rows == [
        {"title": "b1", "author__username": "bob", "author__hometown__country__name": "Portugal"},
        {"title": "b2", "author__username": "bob", "author__hometown__country__name": "Portugal"},
    ]
    pairs = await User.objects.filter(username__in=["bob", "erin"]).order_by(
        "username", "posts__title").values_list("username", "posts__title")
    assert pairs == [("bob", "b1"), ("bob", "b2"), ("erin", None)]


async def test_update_and_delete_through_relation_filters(db: Any) -> None:
    await seed()
    n = await Post.objects.filter(author__hometown__country__code="PT", status="draft").update(
        status="review")
    assert n == 2
    assert sorted(await Post.objects.filter(status="review").values_list("title", flat=True)) \
        == ["a2", "b1"]
    n = await User.objects.filter(posts__tags__name="sql").distinct().update(city="SQLville")
    assert n == 3
    assert await User.objects.filter(city="SQLville").count() == 3
    deleted = await Comment.objects.filter(post__tags__name="python", likes__lt=5).delete()
    assert deleted == 3  # a1 (3, 0) and a2 (1)
    assert await Comment.objects.count() == 5
    await Tag.objects.exclude(posts__isnull=False).delete()
    assert sorted(await Tag.objects.values_list("name", flat=True)) == ["python", "rust", "sql"]


# -- errors for unknown relation paths ------------------------------------------------------------
PATH_ERRORS = [  # how to build the query, words the message must contain
    (lambda: User.objects.filter(postz__status="x"), ["User", "postz", "posts"]),
    (lambda: User.objects.filter(posts__statuz="x"), ["Post", "statuz", "status"]),
    (lambda: User.objects.filter(posts__comments__likez__gt=1), ["Comment", "likez", "likes"]),
    (lambda: Post.objects.filter(tags__nmae="x"), ["Tag", "nmae", "name"]),
    (lambda: Post.objects.filter(author__hometwon__name="x"), ["User", "hometwon", "hometown"]),
    (lambda: User.objects.exclude(posts__statuz="x"), ["Post", "statuz", "status"]),
    (lambda: User.objects.order_by("posts__titel"), ["Post", "titel", "title"]),
    (lambda: Post.objects.order_by("-autor__username"), ["Post", "autor", "author"]),
    (lambda: Post.objects.select_related("autor"), ["Post", "autor", "author"]),
    (lambda: Post.objects.select_related("author__hometwon"), ["User", "hometwon", "hometown"]),
    (lambda: User.objects.select_related("post"), ["User", "post", "posts"]),
    (lambda: User.objects.prefetch_related("post"), ["User", "post", "posts"]),
    (lambda: User.objects.prefetch_related("posts__coments"), ["Post", "coments", "comments"]),
    (lambda: Post.objects.prefetch_related("tag"), ["Post", "tag", "tags"]),
    (lambda: User.objects.values("posts__titel"), ["Post", "titel", "title"]),
]


@pytest.mark.parametrize(("make", "words"), PATH_ERRORS,
                         ids=[f"{i}-{w[1]}" for i, (_, w) in enumerate(PATH_ERRORS)])
async def test_unknown_relation_path_errors(db: Any, make: Any, words: list[str]) -> None:
    await seed()
    with pytest.raises(FieldError) as err:
        await make()
    msg = str(err.value)
    model, bad, hint = words
    assert f"{model} has no" in msg, msg
    assert repr(bad) in msg, msg
    assert "Did you mean" in msg and repr(hint) in msg.split("Did you mean", 1)[1], msg


async def test_select_related_on_a_plain_field_is_refused(db: Any) -> None:
    await seed()
    with pytest.raises(FieldError, match="title"):
        await Post.objects.select_related("title")
    with pytest.raises(FieldError, match="views"):
        await User.objects.prefetch_related("posts__views")
