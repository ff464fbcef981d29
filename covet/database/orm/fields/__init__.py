"""Model fields: ``from covet.database.orm.fields import CharField, EmailField, ...``."""

from __future__ import annotations

from covet.database.orm.fields.base import NOT_PROVIDED, Field
from covet.database.orm.fields.scalar import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BinaryField,
    BooleanField,
    CharField,
    DecimalField,
    EmailField,
    FloatField,
    IntegerField,
    SmallIntegerField,
    TextField,
    UUIDField,
)
from covet.database.orm.fields.structured import ArrayField, EnumField, JSONField
from covet.database.orm.fields.temporal import DateField, DateTimeField, TimeField

__all__ = [
    "NOT_PROVIDED",
    "Field",
    "AutoField",
    "BigAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "FloatField",
    "DecimalField",
    "BooleanField",
    "CharField",
    "TextField",
    "EmailField",
    "BinaryField",
    "UUIDField",
    "DateTimeField",
    "DateField",
    "TimeField",
    "JSONField",
    "EnumField",
    "ArrayField",
]
