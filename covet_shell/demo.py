"""The demo database: the migration guide's models with a small, varied data set.

``covet demo`` and ``covet shell --demo`` build it (an SQLite file, ``covet_demo.db`` by default)
and the teaching notebooks use it. Everything here goes through the public ORM API.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from covet.database import create_tables, drop_tables
from covet.database.orm import Index, Model
from covet.database.orm.fields import (
    BooleanField,
    CharField,
    DateTimeField,
    DecimalField,
    EmailField,
    IntegerField,
    TextField,
)
from covet.database.orm.relationships import ForeignKey, ManyToManyField

__all__ = ["User", "Post", "Tag", "Comment", "Order", "MODELS", "build_demo", "DEMO_PATH"]

DEMO_PATH = "covet_demo.db"


class User(Model):
    """A user, as in the guide's "Model Definition" section."""

    username = CharField(max_length=100, unique=True)
    email = EmailField(unique=True, db_index=True)
    first_name = CharField(max_length=50, default="")
    last_name = CharField(max_length=50, default="")
    age = IntegerField(nullable=True, default=0)
    city = CharField(max_length=100, nullable=True)
    is_active = BooleanField(default=True)
    is_staff = BooleanField(default=False)
    is_superuser = BooleanField(default=False)
    created_at = DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "users"
        indexes = [Index(fields=["last_name", "first_name"])]

    def __repr__(self) -> str:
        return f"<User(id={self.id}, username='{self.username}')>"


class Tag(Model):
    name = CharField(max_length=50, unique=True)

    class Meta:
        db_table = "tags"


class Post(Model):
    title = CharField(max_length=200)
    body = TextField(default="")
    status = CharField(max_length=20, default="draft", choices=["draft", "published"])
    views = IntegerField(default=0)
    author = ForeignKey(User, on_delete="CASCADE", related_name="posts")
    tags = ManyToManyField(Tag, related_name="posts")
    created_at = DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "posts"


class Comment(Model):
    post = ForeignKey(Post, on_delete="CASCADE", related_name="comments")
    author = ForeignKey(User, on_delete="CASCADE", related_name="comments")
    body = TextField()
    likes = IntegerField(default=0)

    class Meta:
        db_table = "comments"


class Order(Model):
    user = ForeignKey(User, on_delete="CASCADE", related_name="orders")
    total = DecimalField(max_digits=10, decimal_places=2)
    created_at = DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "orders"


MODELS: list[type[Model]] = [User, Tag, Post, Comment, Order]

_FIRST = ["Alice", "Bob", "Chloé", "Dmitri", "Eve", "Fatima", "Günter", "Hiro", "Ines", "José",
          "Kwame", "Lena", "Mateo", "Nadia", "Olu", "Priya", "Quinn", "Rosa", "Sven", "Tomás"]
_LAST = ["Smith", "O'Brien", "Müller", "Nguyen", "García", "Kowalski", "Tanaka", "Okafor",
         "Rossi", "Dubois"]
_CITIES = ["Lisbon", "Berlin", "Nairobi", "Osaka", "São Paulo", "Toronto", None]
_TAGS = ["python", "async", "rust", "sql", "tutorial", "performance", "100%_real"]
_TITLES = ["Getting started with {}", "Why {} matters", "{} in production", "Notes on {}",
           "A deep dive into {}"]


async def build_demo(users: int = 60, seed: int = 7,
                     progress: Callable[[str, int, int], None] | None = None) -> dict[str, int]:
    """(Re)create the demo tables on the default database and fill them.

    Returns the number of rows per table. ``progress(table, done, total)`` is called as rows go in.
    """
    rng = random.Random(seed)
    await drop_tables(*MODELS)
    await create_tables(*MODELS)

    def report(table: str) -> Callable[[int, int], None] | None:
        if progress is None:
            return None
        return lambda done, total: progress(table, done, total)

    people = []
    for i in range(users):
        first = _FIRST[i % len(_FIRST)]
        last = _LAST[(i * 7) % len(_LAST)]
        people.append(User(
            username=f"{first.lower()}{i}",
            email=f"{first.lower()}.{i}@example.com".replace("é", "e").replace("ü", "u")
            .replace("á", "a"),
            first_name=first, last_name=last,
            age=rng.choice([None, *range(16, 80)]),
            city=rng.choice(_CITIES),
            is_active=rng.random() > 0.2,
            is_staff=i % 10 == 0,
            is_superuser=i == 0,
        ))
    await User.objects.bulk_create(people, progress=report("users"))
    tags = await Tag.objects.bulk_create([Tag(name=n) for n in _TAGS], progress=report("tags"))
    posts = []
    for user in people:
        for _ in range(rng.randint(0, 5)):
            topic = rng.choice(_TAGS)
            posts.append(Post(title=rng.choice(_TITLES).format(topic), author=user,
                              status=rng.choice(["draft", "published", "published"]),
                              views=rng.randint(0, 5000)))
    await Post.objects.bulk_create(posts, progress=report("posts"))
    links = []
    through = Post._meta.relations["tags"].field.through_model
    for post in posts:
        for tag in rng.sample(tags, rng.randint(0, 3)):
            links.append(through(post_id=post.id, tag_id=tag.id))
    await through.objects.bulk_create(links, progress=report("post tags"))
    comments = [
        Comment(post=post, author=rng.choice(people), likes=rng.randint(0, 40),
                body=rng.choice(["Great post!", "I disagree.", 'He said "hi" \\o/', "+1"]))
        for post in posts for _ in range(rng.randint(0, 4))
    ]
    await Comment.objects.bulk_create(comments, progress=report("comments"))
    orders = [Order(user=rng.choice(people),
                    total=Decimal(rng.randint(100, 99999)) / Decimal(100))
              for _ in range(users * 2)]
    await Order.objects.bulk_create(orders, progress=report("orders"))
    return {"users": len(people), "tags": len(tags), "posts": len(posts),
            "post tags": len(links), "comments": len(comments), "orders": len(orders)}


def namespace() -> dict[str, Any]:
    """The names the shell pushes for the demo database."""
    return {m.__name__: m for m in MODELS}


TOUR: list[tuple[str, str]] = [
    ("Active users in Berlin, youngest first",
     "User.objects.filter(is_active=True, city='Berlin').order_by('age')[:5]"),
    ("Case-insensitive search across a relation",
     "Post.objects.filter(author__first_name__icontains='chlo').select_related('author')[:3]"),
    ("Counting", "User.objects.filter(age__gte=18).count()"),
    ("Aggregates", "User.objects.aggregate(Avg('age'), oldest=Max('age'))"),
    ("GROUP BY with values().annotate()",
     "User.objects.values('city').annotate(users=Count('id')).order_by('-users')"),
    ("Annotations over a relation",
     "User.objects.annotate(post_count=Count('posts')).filter(post_count__gt=3)"
     ".order_by('-post_count')[:5]"),
]


async def run_tour(console: Any = None) -> None:
    """Print each tour query with its SQL, parameters, rows and timing (rich)."""
    import time

    from rich.console import Console
    from rich.syntax import Syntax
    from rich.table import Table

    from covet.database.orm.aggregates import Avg, Count, Max

    console = console or Console()
    ns: dict[str, Any] = {**namespace(), "Avg": Avg, "Count": Count, "Max": Max}
    for title, code in TOUR:
        console.rule(f"[bold]{title}")
        console.print(Syntax(f"await {code}", "python", theme="ansi_dark"))
        query = eval(code, ns)  # noqa: S307 - our own fixed tour strings
        sql = query.sql() if hasattr(query, "sql") else None
        started = time.perf_counter()
        result = await query
        elapsed = (time.perf_counter() - started) * 1000
        if sql is not None:
            console.print(Syntax(sql.sql, "sql", theme="ansi_dark", word_wrap=True))
            console.print(f"[dim]params: {sql.params!r}[/dim]")
        if isinstance(result, list) and result:
            rows = [r if isinstance(r, dict) else
                    {f.attname: r.__dict__.get(f.attname) for f in type(r)._meta.fields[:6]}
                    | {k: v for k, v in r.__dict__.items() if k == "post_count"}
                    for r in result]
            table = Table(*rows[0].keys())
            for row in rows:
                table.add_row(*("NULL" if v is None else str(v) for v in row.values()))
            console.print(table)
            console.print(f"[dim]{len(result)} rows in {elapsed:.1f} ms[/dim]")
        else:
            console.print(f"{result!r}  [dim]({elapsed:.1f} ms)[/dim]")
