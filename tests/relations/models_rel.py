"""Models, seed data and helpers shared by the relation tests (``tests/relations/test_rel_*.py``).

The blog schema (Country <- City <- User <- Post <-> Tag, Comment, Profile, ...) carries the
filter / eager-loading / aggregate tests; smaller groups cover on_delete, self references,
explicit through models, abstract bases and FKs without ``related_name``.

Seed data (``seed()``), with the numbers the tests rely on:

=======  ==========  ==========  =====================================  ==================
user     city        hometown    posts (status, views, tags)            comments authored
=======  ==========  ==========  =====================================  ==================
alice    Lisbon      Lisbon/PT   a1 pub 100 [python,sql]; a2 draft 5     3 (on a1, b1, d1)
                                 [python]; a3 pub 50 []
bob      lisbon      Porto/PT    b1 draft 70 [rust]; b2 pub 10          2 (on a1, a2)
                                 [python,rust,sql]
carol    Berlin      Berlin/DE   c1 draft 0 [sql]                       1 (on a1)
dave     None        None        d1 pub 30 []                           2 (on c1, c1)
erin     Berlin      Atlantis/-  none                                   0
=======  ==========  ==========  =====================================  ==================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from covet.database import create_tables
from covet.database.adapters.base import Adapter, QueryEvent
from covet.database.orm import Model
from covet.database.orm.fields import CharField, IntegerField, TextField
from covet.database.orm.relationships import (
    CASCADE,
    DO_NOTHING,
    PROTECT,
    RESTRICT,
    SET_DEFAULT,
    SET_NULL,
    ForeignKey,
    ManyToManyField,
    OneToOneField,
)


# -- the blog schema ------------------------------------------------------------------------------
class Country(Model):
    """A natural (string) primary key as a relation target."""

    code = CharField(max_length=2, primary_key=True)
    name = CharField(max_length=50)

    class Meta:
        db_table = "rel_countries"


class City(Model):
    name = CharField(max_length=50)
    country = ForeignKey(Country, on_delete=CASCADE, nullable=True, related_name="cities")

    class Meta:
        db_table = "rel_cities"


class User(Model):
    username = CharField(max_length=50, unique=True)
    city = CharField(max_length=50, nullable=True)
    hometown = ForeignKey(City, on_delete=SET_NULL, nullable=True, related_name="residents")

    class Meta:
        db_table = "rel_users"


class Profile(Model):
    user = OneToOneField(User, on_delete=CASCADE, related_name="profile")
    bio = CharField(max_length=100, default="")

    class Meta:
        db_table = "rel_profiles"


class Post(Model):
    title = CharField(max_length=100)
    status = CharField(max_length=20, default="draft")
    views = IntegerField(default=0)
    author = ForeignKey(User, on_delete="CASCADE", related_name="posts")  # the guide's spelling
    editor = ForeignKey("User", on_delete=SET_NULL, nullable=True, related_name="edited_posts")
    tags = ManyToManyField("Tag", related_name="posts")  # a string target defined below

    class Meta:
        db_table = "rel_posts"


class Tag(Model):
    name = CharField(max_length=30, unique=True)

    class Meta:
        db_table = "rel_tags"


class Comment(Model):
    post = ForeignKey(Post, on_delete=CASCADE, related_name="comments")
    author = ForeignKey(User, on_delete=CASCADE, nullable=True, related_name="comments")
    body = TextField(default="")
    likes = IntegerField(default=0)

    class Meta:
        db_table = "rel_comments"


class Review(Model):
    """A ForeignKey with its own column name (``db_column``)."""

    reviewer = ForeignKey(User, on_delete=CASCADE, db_column="reviewer_uid", related_name="reviews")
    post = ForeignKey("models_rel.Post", on_delete=CASCADE, related_name="reviews")
    score = IntegerField(default=0)

    class Meta:
        db_table = "rel_reviews"


class Note(Model):
    """No related_name: the reverse manager is ``user.note_set``."""

    owner = ForeignKey(User, on_delete=CASCADE)
    text = CharField(max_length=50)

    class Meta:
        db_table = "rel_notes"


class Article(Model):
    """A many-to-many without related_name: the reverse manager is ``user.article_set``."""

    headline = CharField(max_length=50)
    readers = ManyToManyField(User)

    class Meta:
        db_table = "rel_articles"


BLOG = [Country, City, User, Profile, Post, Tag, Comment, Review, Note, Article]


# -- self references and an explicit through model ------------------------------------------------
class Category(Model):
    name = CharField(max_length=30)
    parent = ForeignKey("self", on_delete=CASCADE, nullable=True, related_name="children")

    class Meta:
        db_table = "rel_categories"


class Person(Model):
    name = CharField(max_length=30)
    friends = ManyToManyField("self")
    follows = ManyToManyField("self", related_name="followers")

    class Meta:
        db_table = "rel_people"


class Club(Model):
    name = CharField(max_length=30)
    members = ManyToManyField(Person, through="Membership", related_name="clubs")

    class Meta:
        db_table = "rel_clubs"


class Membership(Model):
    person = ForeignKey(Person, on_delete=CASCADE, related_name="memberships")
    club = ForeignKey(Club, on_delete=CASCADE, related_name="memberships")
    role = CharField(max_length=20, default="member")

    class Meta:
        db_table = "rel_memberships"
        unique_together = (("person", "club"),)


SOCIAL = [Category, Person, Club, Membership]


# -- on_delete: one child model per action --------------------------------------------------------
class Owner(Model):
    name = CharField(max_length=30)

    class Meta:
        db_table = "rel_owners"


class CascadeChild(Model):
    owner = ForeignKey(Owner, on_delete=CASCADE, related_name="cascade_children")


class GuideCascadeChild(Model):
    owner = ForeignKey(Owner, on_delete="CASCADE", related_name="guide_children")


class SetNullChild(Model):
    owner = ForeignKey(Owner, on_delete=SET_NULL, nullable=True, related_name="setnull_children")


class SetDefaultChild(Model):
    owner = ForeignKey(Owner, on_delete=SET_DEFAULT, default=1, related_name="setdefault_children")


class ProtectChild(Model):
    owner = ForeignKey(Owner, on_delete=PROTECT, related_name="protect_children")


class RestrictChild(Model):
    owner = ForeignKey(Owner, on_delete=RESTRICT, related_name="restrict_children")


class DoNothingChild(Model):
    owner = ForeignKey(Owner, on_delete=DO_NOTHING, related_name="donothing_children")


ON_DELETE_CHILDREN = [CascadeChild, GuideCascadeChild, SetNullChild, SetDefaultChild,
                      ProtectChild, RestrictChild, DoNothingChild]


# -- an abstract base with a relation -------------------------------------------------------------
class OwnedItem(Model):
    name = CharField(max_length=30)
    owner = ForeignKey(User, on_delete=CASCADE, related_name="%(class)s_items")

    class Meta:
        abstract = True


class Book(OwnedItem):
    class Meta:
        db_table = "rel_books"


class Gadget(OwnedItem):
    class Meta:
        db_table = "rel_gadgets"


# -- helpers --------------------------------------------------------------------------------------
def m2m(model: Any, name: str) -> Any:
    """The ManyToManyField ``model.<name>`` (its ``through_model`` is the join table's model)."""
    return next(f for f in model._meta.many_to_many if f.name == name)


class Queries:
    """Records the statements an adapter runs (``with count_queries(db) as q: ... q.n``)."""

    def __init__(self) -> None:
        self.events: list[QueryEvent] = []

    def __call__(self, event: QueryEvent) -> None:
        if event.kind != "control":
            self.events.append(event)

    @property
    def n(self) -> int:
        return len(self.events)

    @property
    def sql(self) -> list[str]:
        return [e.sql for e in self.events]

    def __repr__(self) -> str:
        return f"<{self.n} queries: " + " | ".join(self.sql) + ">"


@contextlib.contextmanager
def count_queries(adapter: Adapter) -> Iterator[Queries]:
    q = Queries()
    adapter.add_listener(q)
    try:
        yield q
    finally:
        adapter.remove_listener(q)


USERS = [  # username, city, hometown
    ("alice", "Lisbon", "Lisbon"),
    ("bob", "lisbon", "Porto"),
    ("carol", "Berlin", "Berlin"),
    ("dave", None, None),
    ("erin", "Berlin", "Atlantis"),
]
TAGS = ["python", "rust", "sql", "unused"]
POSTS = [  # title, author, status, views, tags, editor
    ("a1", "alice", "published", 100, ["python", "sql"], "bob"),
    ("a2", "alice", "draft", 5, ["python"], None),
    ("a3", "alice", "published", 50, [], None),
    ("b1", "bob", "draft", 70, ["rust"], "alice"),
    ("b2", "bob", "published", 10, ["python", "rust", "sql"], None),
    ("c1", "carol", "draft", 0, ["sql"], None),
    ("d1", "dave", "published", 30, [], None),
]
COMMENTS = [  # post, author, likes
    ("a1", "bob", 3), ("a1", "carol", 10), ("a1", "alice", 0),
    ("a2", "bob", 1),
    ("b1", "alice", 7),
    ("c1", "dave", 2), ("c1", "dave", 20),
    ("d1", "alice", 5),
]


async def seed(using: str = "default", *, tables: bool = True) -> dict[str, Any]:
    """Create the blog tables and the data above on ``using``; returns objects by name.

    Writes go through ``save(using=...)`` and the join table's model, so the same code loads any
    alias; the relation managers are tested on their own.
    """
    if tables:
        await create_tables(*BLOG, using=using)
    objs: dict[str, Any] = {}

    async def put(obj: Any, key: str | None = None) -> Any:
        await obj.save(using=using)
        if key is not None:
            objs[key] = obj
        return obj

    for code, name in [("PT", "Portugal"), ("DE", "Germany"), ("FR", "France")]:
        await put(Country(code=code, name=name), code)
    for name, country in [("Lisbon", "PT"), ("Porto", "PT"), ("Berlin", "DE"),
                          ("Atlantis", None)]:
        await put(City(name=name, country_id=country), name)
    for username, city, hometown in USERS:
        await put(User(username=username, city=city,
                       hometown=objs[hometown] if hometown else None), username)
    for name in TAGS:
        await put(Tag(name=name), name)
    through = m2m(Post, "tags").through_model
    for title, author, status, views, tags, editor in POSTS:
        post = await put(Post(title=title, author=objs[author], status=status, views=views,
                              editor=objs[editor] if editor else None), title)
        for tag in tags:
            await put(through(post_id=post.id, tag_id=objs[tag].id))
    for i, (post, author, likes) in enumerate(COMMENTS):
        await put(Comment(post=objs[post], author=objs[author], likes=likes, body=f"c{i}"))
    await put(Profile(user=objs["alice"], bio="writes a lot"))
    await put(Profile(user=objs["carol"], bio="reads a lot"))
    return objs


def names(objs: Any, attr: str = "username") -> list[Any]:
    return [getattr(o, attr) for o in objs]
