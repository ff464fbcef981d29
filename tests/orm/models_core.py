"""Models and helpers shared by the ORM core tests (``tests/orm/test_orm_*.py``).

The models cover every scalar field type, every field option and the ``Meta`` options; the
helpers record the statements an adapter runs (to prove that a validation error came before any
SQL) and introspect the schema that ``create_tables`` made.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from covet.database.adapters.base import Adapter, QueryEvent
from covet.database.exceptions import ValidationError
from covet.database.orm import Index, Model
from covet.database.orm.fields import (
    BigAutoField,
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EmailField,
    EnumField,
    FloatField,
    IntegerField,
    JSONField,
    SmallIntegerField,
    TextField,
    TimeField,
    UUIDField,
)

__all__ = [
    "Color", "Priority", "AllTypes", "Person", "Country", "Token", "BigThing", "Gadget", "Book",
    "Employee", "Engineer", "Manager", "Stamped", "Account", "statements", "index_columns",
    "table_columns", "PEOPLE", "seed_people", "names",
]


class Color(str, enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue-ish"


class Priority(enum.IntEnum):
    LOW = 1
    MID = 5
    HIGH = 10


class AllTypes(Model):
    """One nullable column of every scalar field type."""

    i = IntegerField(nullable=True)
    bi = BigIntegerField(nullable=True)
    si = SmallIntegerField(nullable=True)
    ch = CharField(max_length=20, nullable=True)
    tx = TextField(nullable=True)
    em = EmailField(nullable=True)
    flag = BooleanField(nullable=True)
    when = DateTimeField(nullable=True)
    day = DateField(nullable=True)
    clock = TimeField(nullable=True)
    dec = DecimalField(max_digits=12, decimal_places=4, nullable=True)
    wide = DecimalField(max_digits=30, decimal_places=10, nullable=True)
    fl = FloatField(nullable=True)
    js = JSONField(nullable=True)
    color = EnumField(Color, nullable=True)
    prio = EnumField(Priority, nullable=True)
    blob = BinaryField(nullable=True)
    uid = UUIDField(nullable=True)

    class Meta:
        db_table = "all_types"


class Person(Model):
    """The model most query tests use."""

    name = CharField(max_length=100)
    age = IntegerField(nullable=True)
    city = CharField(max_length=50, nullable=True)
    email = EmailField(unique=True, nullable=True)
    score = DecimalField(max_digits=8, decimal_places=2, nullable=True)
    is_active = BooleanField(default=True)

    class Meta:
        db_table = "people"


class Country(Model):
    """A custom (natural) primary key."""

    code = CharField(max_length=2, primary_key=True)
    name = CharField(max_length=50)


class Token(Model):
    """A UUID primary key with a callable default."""

    key = UUIDField(primary_key=True, default=uuid.uuid4)
    label = CharField(max_length=20)


class BigThing(Model):
    id = BigAutoField()
    label = CharField(max_length=20)


_serial = itertools.count(1)


def next_token() -> str:
    return f"tok-{next(_serial)}"


def must_be_even(value: int) -> None:
    if value % 2:
        raise ValidationError(f"{value} is odd")


def no_spaces(value: str) -> None:
    if " " in value:
        raise ValueError("spaces are not allowed")


class Gadget(Model):
    """Every column option."""

    sku = CharField(max_length=20, unique=True)
    slot = IntegerField(db_index=True, default=7)
    token = CharField(max_length=40, default=next_token)
    size = CharField(max_length=1, choices=[("S", "Small"), ("M", "Medium"), ("L", "Large")],
                     default="M")
    level = IntegerField(choices=[1, 2, 3], default=1)
    label = CharField(max_length=30, db_column="label_text", nullable=True)
    even = IntegerField(validators=[must_be_even], default=0)
    handle = CharField(max_length=20, validators=[no_spaces], default="x")
    tags = JSONField(default=list)


class Book(Model):
    """Meta options: db_table, ordering, indexes, unique_together."""

    title = CharField(max_length=100)
    author = CharField(max_length=100)
    year = IntegerField()

    class Meta:
        db_table = "library_books"
        ordering = ["-year", "title"]
        indexes = [Index(fields=["author", "-year"]), Index("title", name="book_title_idx")]
        unique_together = [("title", "author")]


# The migration guide's abstract inheritance example, verbatim.
class Employee(Model):
    name = CharField(max_length=100)

    class Meta:
        abstract = True  # Not a real table


class Engineer(Employee):
    engineer_info = CharField(max_length=200)

    class Meta:
        db_table = "engineers"


class Manager(Employee):
    manager_info = CharField(max_length=200)

    class Meta:
        db_table = "managers"


class Stamped(Model):
    """auto_now_add / auto_now."""

    note = CharField(max_length=50)
    created_at = DateTimeField(auto_now_add=True)
    updated_at = DateTimeField(auto_now=True)


class Account(Model):
    """For transaction tests: a unique handle makes a failing INSERT easy to provoke."""

    handle = CharField(max_length=30, unique=True)
    balance = IntegerField(default=0)


# helpers ------------------------------------------------------------------------------------------
@contextlib.contextmanager
def statements(adapter: Adapter) -> Iterator[list[QueryEvent]]:
    """Record every statement ``adapter`` runs inside the block."""
    events: list[QueryEvent] = []
    adapter.add_listener(events.append)
    try:
        yield events
    finally:
        adapter.remove_listener(events.append)


async def table_columns(db: Adapter, table: str) -> list[str]:
    """The column names of ``table`` (schema introspection is vendor-specific by nature)."""
    if db.dialect == "sqlite":
        rows = await db.fetch(f'PRAGMA table_info("{table}")')
        return [r["name"] for r in rows]
    rows = await db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
        "ORDER BY ordinal_position", [table])
    return [r["column_name"] for r in rows]


async def index_columns(db: Adapter, table: str) -> dict[str, tuple[bool, list[str]]]:
    """``{index name: (unique, [column, ...])}`` for the indexes on ``table``."""
    out: dict[str, tuple[bool, list[str]]] = {}
    if db.dialect == "sqlite":
        for idx in await db.fetch(f'PRAGMA index_list("{table}")'):
            cols = await db.fetch(f'PRAGMA index_info("{idx["name"]}")')
            out[idx["name"]] = (bool(idx["unique"]), [c["name"] for c in cols])
        return out
    rows = await db.fetch(
        "SELECT i.relname AS name, ix.indisunique AS uniq, a.attname AS col, k.ord AS ord "
        "FROM pg_class t JOIN pg_index ix ON t.oid = ix.indrelid "
        "JOIN pg_class i ON i.oid = ix.indexrelid "
        "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
        "WHERE t.relname = $1 ORDER BY i.relname, k.ord", [table])
    for r in rows:
        entry = out.setdefault(r["name"], (bool(r["uniq"]), []))
        entry[1].append(r["col"])
    return out


PEOPLE = [
    # name, age, city, email, score, is_active
    ("Alice", 30, "Paris", "alice@x.org", "10.50", True),
    ("Bob", 25, "London", None, "7.25", True),
    ("Carol", 35, "Paris", "carol@x.org", None, False),
    ("Dave", None, "Berlin", None, "3.00", True),
    ("Eve", 28, None, "eve@x.org", "9.99", False),
    ("Frank", 40, "London", None, "12.00", True),
]


async def seed_people() -> list[Person]:
    """Create the ``people`` table with the six rows of ``PEOPLE``; returns them in order."""
    from covet.database import create_tables

    await create_tables(Person)
    out = []
    for name, age, city, email, score, active in PEOPLE:
        out.append(await Person.create(name=name, age=age, city=city, email=email,
                                       score=None if score is None else Decimal(score),
                                       is_active=active))
    return out


def names(objs: Any) -> list[str]:
    return [o.name for o in objs]
