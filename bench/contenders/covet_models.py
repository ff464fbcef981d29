"""The bench models in CovetPy's style (``covet_shell/demo.py``); their DDL is ``common.SCHEMA``."""

from __future__ import annotations

from covet.database.orm import Model
from covet.database.orm.fields import (
    BooleanField,
    CharField,
    DateTimeField,
    EmailField,
    IntegerField,
    TextField,
)
from covet.database.orm.relationships import ForeignKey


class User(Model):
    username = CharField(max_length=100, unique=True)
    email = EmailField(max_length=200)
    city = CharField(max_length=100, nullable=True)
    age = IntegerField(nullable=True)
    is_active = BooleanField(default=True)
    created_at = DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "users"


class Post(Model):
    user = ForeignKey(User, on_delete="CASCADE", related_name="posts")
    title = CharField(max_length=200)
    views = IntegerField(default=0)
    status = CharField(max_length=20, default="draft")

    class Meta:
        db_table = "posts"


class Comment(Model):
    post = ForeignKey(Post, on_delete="CASCADE", related_name="comments")
    body = TextField()
    likes = IntegerField(default=0)

    class Meta:
        db_table = "comments"
