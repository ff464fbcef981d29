"""Relation access: forward references (loaded / unloaded / assigned), reverse managers,
many-to-many managers on both sides, ``fetch_related`` and ``prefetch_objects``."""

from __future__ import annotations

from typing import Any

import pytest
from models_rel import (
    BLOG,
    SOCIAL,
    Article,
    Comment,
    Note,
    Person,
    Post,
    Profile,
    Tag,
    User,
    count_queries,
    m2m,
    names,
    seed,
)

from covet.database import FieldError, create_tables
from covet.database.exceptions import RelationNotLoaded
from covet.database.orm.aggregates import Count
from covet.database.orm.prefetch import prefetch_objects


# -- forward references ---------------------------------------------------------------------------
async def test_unloaded_forward_reference(db: Any) -> None:
    objs = await seed()
    post = await Post.objects.get(title="b1")
    assert post.author_id == objs["bob"].id  # always there, no query
    with count_queries(db) as q, pytest.raises(RelationNotLoaded) as err:
        post.author.username  # noqa: B018
    assert q.n == 0
    msg = str(err.value)
    assert "Post.author" in msg and "username" in msg
    assert "await" in msg and "fetch_related('author')" in msg and "select_related" in msg
    assert "unloaded" in repr(post.author)
    with count_queries(db) as q:
        author = await post.author
    assert q.n == 1 and author.username == "bob"
    with count_queries(db) as q:
        assert post.author is author and post.author.username == "bob"  # cached
    assert q.n == 0
    assert post.editor is not None and (await post.editor).username == "alice"
    no_editor = await Post.objects.get(title="a2")
    assert no_editor.editor is None and no_editor.editor_id is None


async def test_forward_reference_after_select_related_and_create(db: Any) -> None:
    objs = await seed()
    with count_queries(db) as q:
        post = await Post.objects.select_related("author", "editor").get(title="a2")
        assert (post.author.username, post.editor) == ("alice", None)
    assert q.n == 1
    created = await Post.create(title="new", author=objs["carol"])
    assert created.author is objs["carol"] and created.author_id == objs["carol"].id
    by_id = await Post.create(title="new2", author=objs["carol"].id)
    assert by_id.author_id == objs["carol"].id
    assert (await by_id.author).username == "carol"
    by_attname = await Post.create(title="new3", author_id=objs["dave"].id)
    assert (await Post.objects.select_related("author").get(pk=by_attname.pk)).author.username \
        == "dave"


async def test_forward_assignment(db: Any) -> None:
    objs = await seed()
    post = await Post.objects.select_related("author").get(title="a1")
    post.author = objs["bob"]  # an instance: id and cache
    assert post.author_id == objs["bob"].id and post.author is objs["bob"]
    await post.save()
    assert (await Post.objects.get(pk=post.pk)).author_id == objs["bob"].id
    post.author = objs["carol"].id  # an id: the cache is dropped
    assert post.author_id == objs["carol"].id
    assert (await post.author).username == "carol"
    await post.save()
    assert (await Post.objects.get(pk=post.pk)).author_id == objs["carol"].id
    post.editor = None
    await post.save()
    assert (await Post.objects.get(pk=post.pk)).editor_id is None
    with pytest.raises(TypeError, match="User"):
        post.author = objs["python"]
    with pytest.raises(ValueError, match="save"):
        post.author = User(username="unsaved")


async def test_setting_the_id_attribute_drops_a_stale_cache(db: Any) -> None:
    """As in Django: ``post.author_id = x`` must not leave ``post.author`` pointing elsewhere."""
    objs = await seed()
    post = await Post.objects.select_related("author").get(title="a1")
    assert post.author.username == "alice"
    post.author_id = objs["bob"].id
    current = post.author
    assert not isinstance(current, User) or current.username == "bob", "stale cached author"
    await post.fetch_related("author")
    assert post.author.username == "bob"


async def test_reverse_one_to_one(db: Any) -> None:
    await seed()
    alice = await User.objects.get(username="alice")
    with pytest.raises(RelationNotLoaded, match="profile"):
        alice.profile.bio  # noqa: B018
    assert (await alice.profile).bio == "writes a lot"
    assert alice.profile.bio == "writes a lot"
    bob = await User.objects.get(username="bob")
    assert await bob.profile is None
    users = await User.objects.select_related("profile").order_by("username")
    assert [u.profile.bio if u.profile else None for u in users] == [
        "writes a lot", None, "reads a lot", None, None]
    assert names(await User.objects.filter(profile__bio__startswith="reads")) == ["carol"]
    profile = await Profile.objects.select_related("user").get(bio="reads a lot")
    assert profile.user.username == "carol"


# -- reverse managers -----------------------------------------------------------------------------
async def test_reverse_manager_queries(db: Any) -> None:
    objs = await seed()
    alice = objs["alice"]
    assert sorted(names(await alice.posts.all(), "title")) == ["a1", "a2", "a3"]
    assert names(await alice.posts.filter(status="published").order_by("-views"), "title") == [
        "a1", "a3"]
    assert names(await alice.posts.exclude(status="published"), "title") == ["a2"]
    assert await alice.posts.count() == 3
    assert await alice.posts.exists()
    assert not await objs["erin"].posts.exists()
    assert await objs["erin"].posts.count() == 0
    assert (await alice.posts.get(views=5)).title == "a2"
    assert names(await alice.posts.filter(tags__name="sql"), "title") == ["a1"]
    assert names(await alice.edited_posts.all(), "title") == ["b1"]
    assert sorted(names(await alice.comments.all(), "likes")) == [0, 5, 7]


async def test_reverse_manager_create(db: Any) -> None:
    objs = await seed()
    erin = objs["erin"]
    post = await erin.posts.create(title="e1", views=3)
    assert post.author_id == erin.id and post.pk is not None
    assert (await Post.objects.get(pk=post.pk)).author_id == erin.id
    assert await erin.posts.count() == 1
    comment = await post.comments.create(body="hi", author=objs["bob"])
    assert (comment.post_id, comment.author_id) == (post.id, objs["bob"].id)


async def test_reverse_manager_default_name(db: Any) -> None:
    await create_tables(*BLOG)
    ann = await User.create(username="ann")
    await Note.create(owner=ann, text="first")
    await ann.note_set.create(text="second")
    assert sorted(names(await ann.note_set.all(), "text")) == ["first", "second"]
    assert names(await User.objects.filter(note_set__text="second")) == ["ann"]
    article = await Article.create(headline="news")
    await article.readers.add(ann)
    assert names(await ann.article_set.all(), "headline") == ["news"]
    await ann.article_set.create(headline="more")
    assert sorted(names(await ann.article_set.all(), "headline")) == ["more", "news"]
    assert names(await User.objects.filter(article_set__headline="more")) == ["ann"]


async def test_reverse_manager_needs_a_saved_instance_and_load(db: Any) -> None:
    await create_tables(*BLOG)
    with pytest.raises(ValueError, match="save"):
        await User(username="x").posts.all()
    ann = await User.create(username="ann")
    with pytest.raises(RelationNotLoaded, match="prefetch_related"):
        len(ann.posts)
    with pytest.raises(RelationNotLoaded, match="await"):
        list(ann.posts)
    assert "not loaded" in repr(ann.posts)
    with pytest.raises(AttributeError, match="create"):
        ann.posts = []


# -- many-to-many managers ------------------------------------------------------------------------
async def test_many_to_many_add_remove_clear_set(db: Any) -> None:
    objs = await seed()
    a3, python, rust, sql = objs["a3"], objs["python"], objs["rust"], objs["sql"]
    through = m2m(Post, "tags").through_model

    async def tags() -> list[str]:
        return sorted(names(await a3.tags.all(), "name"))

    await a3.tags.add(python, rust.id)  # instances and ids
    assert await tags() == ["python", "rust"]
    await a3.tags.add(python)  # already there: no duplicate, no error
    assert await through.objects.filter(post_id=a3.id).count() == 2
    await a3.tags.remove(rust, objs["unused"])  # removing a non-member is fine
    assert await tags() == ["python"]
    await a3.tags.set([sql, rust])
    assert await tags() == ["rust", "sql"]
    await a3.tags.set([sql.id])
    assert await tags() == ["sql"]
    assert await a3.tags.count() == 1 and await a3.tags.exists()
    await a3.tags.clear()
    assert await tags() == [] and not await a3.tags.exists()
    assert await through.objects.filter(post_id=objs["a1"].id).count() == 2  # untouched
    with pytest.raises(TypeError, match="Tag"):
        await a3.tags.add(objs["alice"])
    with pytest.raises(ValueError, match="save"):
        await a3.tags.add(Tag(name="unsaved"))


async def test_many_to_many_reverse_side(db: Any) -> None:
    objs = await seed()
    rust = objs["rust"]
    assert sorted(names(await rust.posts.all(), "title")) == ["b1", "b2"]
    assert names(await rust.posts.filter(status="draft"), "title") == ["b1"]
    assert names(await rust.posts.exclude(status="draft"), "title") == ["b2"]
    assert await rust.posts.count() == 2
    await rust.posts.add(objs["a1"])
    assert sorted(names(await objs["a1"].tags.all(), "name")) == ["python", "rust", "sql"]
    await rust.posts.remove(objs["b1"])
    assert names(await objs["b1"].tags.all(), "name") == []
    created = await rust.posts.create(title="r1", author=objs["erin"])
    assert names(await created.tags.all(), "name") == ["rust"]
    await rust.posts.set([created])
    assert names(await rust.posts.all(), "title") == ["r1"]
    await rust.posts.clear()
    assert await rust.posts.count() == 0
    assert not await objs["unused"].posts.exists()


async def test_many_to_many_create_and_filters(db: Any) -> None:
    objs = await seed()
    new = await objs["d1"].tags.create(name="go")
    assert new.pk is not None and await Tag.objects.filter(name="go").exists()
    assert names(await objs["d1"].tags.all(), "name") == ["go"]
    assert names(await objs["b2"].tags.filter(name__in=["rust", "sql"]).order_by("name"),
                 "name") == ["rust", "sql"]
    assert names(await objs["b2"].tags.exclude(name="rust").order_by("name"), "name") == [
        "python", "sql"]
    assert (await objs["b2"].tags.get(name="sql")).pk == objs["sql"].pk
    with pytest.raises(TypeError, match="add"):
        Post(title="x", author=objs["alice"], tags=[objs["sql"]])
    with pytest.raises(AttributeError, match="set"):
        objs["b2"].tags = [objs["sql"]]


async def test_manager_cache_is_dropped_after_writes(db: Any) -> None:
    objs = await seed()
    erin = await User.objects.prefetch_related("posts").get(username="erin")
    assert len(erin.posts) == 0
    await erin.posts.create(title="e1")
    assert names(await erin.posts.all(), "title") == ["e1"]
    b2 = await Post.objects.prefetch_related("tags").get(title="b2")
    assert len(b2.tags) == 3
    await b2.tags.remove(objs["rust"])
    assert sorted(names(await b2.tags.all(), "name")) == ["python", "sql"]
    await b2.tags.add(objs["unused"])
    assert len(await b2.tags.all()) == 3


# -- fetch_related / prefetch_objects -------------------------------------------------------------
async def test_fetch_related_on_an_instance(db: Any) -> None:
    await seed()
    post = await Post.objects.get(title="b2")
    with count_queries(db) as q:
        await post.fetch_related("author", "tags", "comments")
    assert q.n == 3, q
    with count_queries(db) as q:
        assert post.author.username == "bob"
        assert sorted(names(post.tags, "name")) == ["python", "rust", "sql"]
        assert len(post.tags) == 3 and "python" in repr(post.tags)
        assert list(post.comments) == []
        assert [t.name for t in await post.tags.all()] == names(post.tags, "name")
    assert q.n == 0
    user = await User.objects.get(username="alice")
    await user.fetch_related("hometown__country", "posts__comments", "profile")
    assert user.hometown.country.name == "Portugal"
    assert user.profile.bio == "writes a lot"
    assert sorted((p.title, len(p.comments)) for p in user.posts) == [
        ("a1", 3), ("a2", 1), ("a3", 0)]
    with pytest.raises(FieldError, match="posts"):
        await user.fetch_related("postz")


async def test_prefetch_objects_on_a_list(db: Any) -> None:
    await seed()
    posts = await Post.objects.order_by("title")
    comments = await Comment.objects.order_by("id")
    with count_queries(db) as q:
        await prefetch_objects(posts, ["author", "editor"])
        await prefetch_objects(comments, ["post__author"])
    assert q.n == 4, q
    with count_queries(db) as q:
        assert [p.author.username for p in posts] == [
            "alice", "alice", "alice", "bob", "bob", "carol", "dave"]
        assert [p.editor.username if p.editor else None for p in posts] == [
            "bob", None, None, "alice", None, None, None]
        assert [c.post.author.username for c in comments] == [
            "alice", "alice", "alice", "alice", "bob", "carol", "carol", "dave"]
        # objects are shared: one instance per row
        assert posts[0].author is posts[1].author
    assert q.n == 0
    await prefetch_objects([], ["author"])  # nothing to do


# -- a symmetrical self many-to-many (Django's default for ManyToManyField('self')) -------------
async def test_symmetrical_friends_manager_operations(db: Any) -> None:
    await create_tables(*SOCIAL)
    a, b, c, d = [await Person.create(name=n) for n in "abcd"]

    async def friends() -> dict[str, list[str]]:
        people = await Person.objects.prefetch_related("friends").order_by("name")
        return {p.name: sorted(names(p.friends, "name")) for p in people}

    await a.friends.add(b, c)
    await c.friends.add(a, d)  # a-c exists already: no duplicate rows
    assert await friends() == {"a": ["b", "c"], "b": ["a"], "c": ["a", "d"], "d": ["c"]}
    assert await m2m(Person, "friends").through_model.objects.count() == 6
    assert sorted(names(await Person.objects.filter(friends__name="c"), "name")) == ["a", "d"]
    counts = await Person.objects.annotate(n=Count("friends")).order_by("name")
    assert [(p.name, p.n) for p in counts] == [("a", 2), ("b", 1), ("c", 2), ("d", 1)]
    await b.friends.set([c, d])
    assert await friends() == {"a": ["c"], "b": ["c", "d"], "c": ["a", "b", "d"],
                               "d": ["b", "c"]}
    await d.friends.remove(c)
    await c.friends.clear()
    assert await friends() == {"a": [], "b": ["d"], "c": [], "d": ["b"]}
    await b.delete()
    assert await m2m(Person, "friends").through_model.objects.count() == 0

