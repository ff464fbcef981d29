"""Checked by mypy in tests/test_typing.py: the public API's types as a user sees them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, assert_type

from covet.database.orm import Model, QuerySet
from covet.database.orm.aggregates import Avg
from covet.database.orm.fields import (
    BooleanField,
    CharField,
    DateTimeField,
    DecimalField,
    EmailField,
    IntegerField,
)
from covet.database.orm.manager import Manager
from covet.database.orm.relationships import ForeignKey


class User(Model):
    username = CharField(max_length=100, unique=True)
    email = EmailField(unique=True)
    age = IntegerField(nullable=True)
    is_active = BooleanField(default=True)
    created_at = DateTimeField(auto_now_add=True)


class Post(Model):
    title = CharField(max_length=200)
    price = DecimalField(max_digits=8, decimal_places=2)
    author = ForeignKey(User, on_delete="CASCADE", related_name="posts")


async def usage() -> None:
    assert_type(User.objects, Manager[User])
    user: User = await User.objects.get(id=1)  # the guide's FAQ line
    assert_type(await User.objects.get(id=1), User)
    assert_type(user.username, str)
    assert_type(user.is_active, bool)
    assert_type(user.created_at, dt.datetime)
    assert_type(user.id, int)
    assert_type(User.objects.filter(age__gt=18), QuerySet[User])
    assert_type(await User.objects.filter(age__gt=18), list[User])
    assert_type(await User.objects.first(), User | None)
    assert_type(await User.objects.count(), int)
    assert_type(await User.objects.aggregate(Avg("age")), dict[str, Any])
    assert_type(await User.create(username="a", email="a@example.com"), User)
    post = await Post.objects.get(id=1)
    assert_type(post.price, Decimal)
    assert_type(post.author, User)
    async for u in User.objects.filter(is_active=True):
        assert_type(u, User)
    user.username = "renamed"
