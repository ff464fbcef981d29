"""The ORM: ``from covet.database.orm import Model, Index``."""

from __future__ import annotations

from covet.database.orm.expressions import F, Q, Value
from covet.database.orm.manager import Manager
from covet.database.orm.models import Model
from covet.database.orm.options import Index
from covet.database.orm.query import Prefetch, QuerySet

__all__ = ["Model", "Index", "Manager", "QuerySet", "Q", "F", "Value", "Prefetch"]
