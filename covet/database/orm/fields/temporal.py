"""Date and time fields.

``DateTimeField`` is timezone-aware: values come back as aware datetimes in UTC on every database.
A naive datetime given to it is taken to be UTC. On SQLite values are stored as fixed-width UTC
text (``YYYY-MM-DD HH:MM:SS.ffffff+00:00``) so that text order is time order.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from covet.database.orm.fields.base import Converter, Field, native_converter

__all__ = ["DateTimeField", "DateField", "TimeField", "now"]

UTC = dt.timezone.utc


def now() -> dt.datetime:
    """The current time, aware, in UTC, at microsecond precision (what the database keeps)."""
    return dt.datetime.now(UTC)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@native_converter("datetime")
def _parse_datetime(v: Any) -> Any:
    if v is None or isinstance(v, dt.datetime):
        return v
    return _aware(dt.datetime.fromisoformat(v))


class DateTimeField(Field[dt.datetime]):
    """A timezone-aware date and time.

    Args:
        auto_now_add: set to the current time when the row is first saved.
        auto_now: set to the current time on every ``save()``.
    """

    db_types = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP WITH TIME ZONE"}
    type_label = "datetime"

    def __init__(self, *, auto_now: bool = False, auto_now_add: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.auto_now = auto_now
        self.auto_now_add = auto_now_add

    def clean(self, value: Any) -> Any:
        if value is None and (self.auto_now or self.auto_now_add):
            return None  # filled in by save()
        return super().clean(value)

    def to_python(self, value: Any) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return _aware(value)
        if isinstance(value, str):
            try:
                return _aware(dt.datetime.fromisoformat(value))
            except ValueError:
                pass
        raise self.error(f"expected a datetime, got {type(value).__name__} {value!r}")

    def to_db(self, value: Any, dialect: str) -> Any:
        if value is None:
            return None
        value = _aware(value)
        if dialect == "sqlite":
            return (
                f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:"
                f"{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}+00:00"
            )
        return value

    def clean_column(self, values: list[Any]) -> list[Any] | None:
        if self.auto_now or self.auto_now_add:
            return None if None in values else self._clean_datetimes(values)
        return self._clean_datetimes(values)

    def _clean_datetimes(self, values: list[Any]) -> list[Any] | None:
        present = self._column_values(values, DateTimeField)
        if present is None:
            return None
        # Already aware in UTC: _aware() returns such a value itself.
        for value in present:
            if type(value) is not dt.datetime or value.tzinfo is not UTC:
                return None
        return values

    def to_db_column(self, values: list[Any], dialect: str) -> list[Any]:
        if type(self).to_db is not DateTimeField.to_db or dialect != "sqlite":
            return super().to_db_column(values, dialect)
        out: list[Any] = []
        last: Any = None
        text: Any = None
        for value in values:
            if value is not last:
                last = value
                if type(value) is dt.datetime and value.tzinfo is UTC:
                    # isoformat() leaves out a zero microsecond; the stored form never does.
                    text = value.isoformat(" ")
                    if len(text) == 25:
                        text = f"{text[:19]}.000000{text[19:]}"
                else:
                    text = self.to_db(value, dialect)
            out.append(text)
        return out

    def from_db_converter(self, dialect: str) -> Converter | None:
        return _parse_datetime if dialect == "sqlite" else None

    def deconstruct(self) -> dict[str, Any]:
        out = super().deconstruct()
        if self.auto_now:
            out["auto_now"] = True
        if self.auto_now_add:
            out["auto_now_add"] = True
        return out


@native_converter("date")
def _parse_date(v: Any) -> Any:
    return v if v is None or isinstance(v, dt.date) else dt.date.fromisoformat(v)


class DateField(Field[dt.date]):
    """A calendar date."""

    db_types = {"sqlite": "DATE", "postgresql": "DATE"}
    type_label = "date"

    def to_python(self, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self.error(f"expected a date, got the datetime {value!r}; use .date()")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        raise self.error(f"expected a date, got {type(value).__name__} {value!r}")

    def to_db(self, value: Any, dialect: str) -> Any:
        if dialect == "sqlite" and value is not None:
            return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        return value

    def from_db_converter(self, dialect: str) -> Converter | None:
        return _parse_date if dialect == "sqlite" else None


@native_converter("time")
def _parse_time(v: Any) -> Any:
    return v if v is None or isinstance(v, dt.time) else dt.time.fromisoformat(v)


class TimeField(Field[dt.time]):
    """A time of day, without a time zone."""

    db_types = {"sqlite": "TIME", "postgresql": "TIME"}
    type_label = "time"

    def to_python(self, value: Any) -> dt.time:
        if isinstance(value, dt.time):
            if value.tzinfo is not None:
                raise self.error("TimeField stores times without a time zone")
            return value
        if isinstance(value, str):
            try:
                return self.to_python(dt.time.fromisoformat(value))
            except ValueError:
                pass
        raise self.error(f"expected a time, got {type(value).__name__} {value!r}")

    def to_db(self, value: Any, dialect: str) -> Any:
        if dialect == "sqlite" and value is not None:
            return value.strftime("%H:%M:%S.%f")
        return value

    def from_db_converter(self, dialect: str) -> Converter | None:
        return _parse_time if dialect == "sqlite" else None
