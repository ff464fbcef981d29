"""Structured fields: JSON, Python enums and PostgreSQL arrays."""

from __future__ import annotations

import enum
import json
from typing import Any, Generic, TypeVar

from covet.database.exceptions import ConfigurationError
from covet.database.orm.fields.base import Converter, Field, native_converter

__all__ = ["JSONField", "EnumField", "ArrayField"]

E = TypeVar("E", bound=enum.Enum)


@native_converter("json", json.loads)
def _loads(v: Any) -> Any:
    return json.loads(v) if isinstance(v, (str, bytes)) else v


class JSONField(Field[Any]):
    """Any JSON-serialisable value (``JSONB`` on PostgreSQL, text on SQLite).

    ``None`` is stored as SQL NULL; nested dicts, lists, strings, numbers and booleans round-trip.
    """

    db_types = {"sqlite": "TEXT", "postgresql": "JSONB"}
    type_label = "json"

    def to_python(self, value: Any) -> Any:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise self.error(f"value is not JSON-serialisable: {exc}") from None
        return value

    def clean_lookup_value(self, value: Any) -> Any:
        return self.to_python(value)

    def to_db(self, value: Any, dialect: str) -> Any:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def from_db_converter(self, dialect: str) -> Converter | None:
        return _loads


class EnumField(Field[E], Generic[E]):
    """A member of a Python ``enum.Enum``, stored by its value.

    String-valued enums are stored as ``VARCHAR`` (long enough for the longest value), integer
    ones as ``INTEGER``. Accepts a member or a member's value.
    """

    type_label = "enum"

    def __init__(self, enum_class: type[E], *, max_length: int | None = None, **kwargs: Any) -> None:
        if not (isinstance(enum_class, type) and issubclass(enum_class, enum.Enum)):
            raise TypeError("EnumField needs an enum.Enum subclass")
        super().__init__(**kwargs)
        self.enum_class = enum_class
        values = [m.value for m in enum_class]
        self.int_valued = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
        if not self.int_valued and not all(isinstance(v, str) for v in values):
            raise TypeError("EnumField supports enums whose values are all str or all int")
        self.max_length = max_length or max((len(str(v)) for v in values), default=1)

    def db_type(self, dialect: str) -> str:
        return "INTEGER" if self.int_valued else f"VARCHAR({self.max_length})"

    def to_python(self, value: Any) -> E:
        if isinstance(value, self.enum_class):
            return value
        try:
            return self.enum_class(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in self.enum_class)
            raise self.error(
                f"{value!r} is not a {self.enum_class.__name__} (allowed: {allowed})"
            ) from None

    def to_db(self, value: Any, dialect: str) -> Any:
        return None if value is None else value.value

    def from_db_converter(self, dialect: str) -> Converter | None:
        cls = self.enum_class
        return lambda v: None if v is None else cls(v)

    def deconstruct(self) -> dict[str, Any]:
        out = super().deconstruct()
        out["enum_class"] = f"{self.enum_class.__module__}.{self.enum_class.__qualname__}"
        return out


class ArrayField(Field[list[Any]]):
    """A PostgreSQL array of ``base_field`` values.

    SQLite has no arrays: creating or querying a table with an ArrayField there raises
    ``ConfigurationError`` saying so.
    """

    type_label = "array"

    def __init__(self, base_field: Field[Any], *, size: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_field = base_field
        self.size = size

    def contribute_to_class(self, model: Any, name: str) -> None:
        super().contribute_to_class(model, name)
        self.base_field.name = name
        self.base_field.model = model

    def db_type(self, dialect: str) -> str:
        if dialect != "postgresql":
            raise ConfigurationError(
                f"{self.label} is an ArrayField: arrays need PostgreSQL (the 'arrays' capability); "
                f"this database is {dialect}. Use a JSONField for a list on {dialect}."
            )
        return self.base_field.db_type(dialect) + "[]"

    def to_python(self, value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise self.error(f"expected a list, got {type(value).__name__}")
        if self.size is not None and len(value) > self.size:
            raise self.error(f"{len(value)} items is more than size={self.size}")
        return [None if v is None else self.base_field.to_python(v) for v in value]

    def clean_lookup_value(self, value: Any) -> Any:
        return self.to_python(value)

    def to_db(self, value: Any, dialect: str) -> Any:
        if dialect != "postgresql":
            self.db_type(dialect)  # raises the explanatory error
        if value is None:
            return None
        return [self.base_field.to_db(v, dialect) for v in value]

    def from_db_converter(self, dialect: str) -> Converter | None:
        inner = self.base_field.from_db_converter(dialect)
        if inner is None:
            return None
        return lambda v: None if v is None else [inner(x) for x in v]
