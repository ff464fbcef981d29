"""The bench models for Tortoise ORM (same tables and columns as ``common.SCHEMA``)."""

from tortoise import fields
from tortoise.models import Model


class User(Model):
    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=100, unique=True)
    email = fields.CharField(max_length=200)
    city = fields.CharField(max_length=100, null=True)
    age = fields.IntField(null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "users"


class Post(Model):
    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="posts", on_delete=fields.CASCADE)
    title = fields.CharField(max_length=200)
    views = fields.IntField(default=0)
    status = fields.CharField(max_length=20, default="draft")

    class Meta:
        table = "posts"


class Comment(Model):
    id = fields.IntField(primary_key=True)
    post = fields.ForeignKeyField("models.Post", related_name="comments", on_delete=fields.CASCADE)
    body = fields.TextField()
    likes = fields.IntField(default=0)

    class Meta:
        table = "comments"
