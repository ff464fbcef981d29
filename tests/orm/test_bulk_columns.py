"""``Field.clean_column`` / ``to_db_column`` (the column-at-a-time path of ``bulk_create``) must
agree exactly with ``clean`` / ``to_db`` value by value, or decline (return None) so that the
per-value path reports the error. No database: these are pure functions of the field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covet.database.exceptions import ValidationError
from covet.database.orm import Model
from covet.database.orm.fields import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    EmailField,
    Field,
    IntegerField,
    SmallIntegerField,
    TextField,
)
from covet.database.orm.fields.temporal import UTC
from covet.database.orm.relationships import ForeignKey


class Shouting(CharField):
    """A subclass that changes to_python: the fast path must not apply to it."""

    def to_python(self, value: Any) -> str:
        return super().to_python(value).upper()


class Loud(Model):
    word = Shouting(max_length=10)

    class Meta:
        db_table = "bulk_loud"


def _below_ten(value: int) -> None:
    if value >= 10:
        raise ValueError("must be below 10")


class Columns(Model):
    n = IntegerField()
    n_null = IntegerField(nullable=True)
    small = SmallIntegerField(nullable=True)
    big = BigIntegerField(nullable=True)
    flag = BooleanField(nullable=True)
    name = CharField(max_length=5)
    text = TextField(nullable=True)
    email = EmailField(nullable=True)
    at = DateTimeField(nullable=True)
    stamped = DateTimeField(auto_now_add=True)
    choice = CharField(max_length=3, choices=["a", "b"], nullable=True)
    checked = IntegerField(nullable=True, validators=[_below_ten])
    owner = ForeignKey(Loud, on_delete="CASCADE", nullable=True, related_name="columns")

    class Meta:
        db_table = "bulk_columns"


FIELDS = {f.name: f for f in Columns._meta.fields} | {"word": Loud._meta.fields_map["word"]}
AMSTERDAM = dt.timezone(dt.timedelta(hours=1))

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**63, 32767, 32768]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.text(max_size=8),
    st.sampled_from(["a", "b", "c", "abcde", "abcdef", "a\x00b", "x@y.io", "x..y@z.io",
                     "not an email", "ü@ü.de", "a@b.c", "7", " 7 ", "2024-01-02T03:04:05"]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.sampled_from([UTC, AMSTERDAM])),
    st.sampled_from([dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                     dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC), dt.date(2024, 1, 2)]),
)


def per_value(field: Field[Any], column: list[Any]) -> list[Any] | None:
    """What clean() gives value by value, or None when it rejects any of them."""
    try:
        return [field.clean(v) for v in column]
    except ValidationError:
        return None


@pytest.mark.parametrize("name", sorted(FIELDS))
@settings(max_examples=150, deadline=None)
@given(column=st.lists(values, max_size=6))
def test_clean_column_agrees_with_clean(name: str, column: list[Any]) -> None:
    field = FIELDS[name]
    expected = per_value(field, list(column))
    got = field.clean_column(list(column))
    if got is None:
        return  # declined: bulk_create cleans value by value
    assert expected is not None, f"{name}: clean_column accepted {column!r}, clean rejects it"
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("name", sorted(FIELDS))
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
@settings(max_examples=100, deadline=None)
@given(column=st.lists(values, max_size=6))
def test_to_db_column_agrees_with_to_db(name: str, dialect: str, column: list[Any]) -> None:
    field = FIELDS[name]
    clean = per_value(field, list(column))
    if clean is None:
        return
    expected = [field.to_db(v, dialect) for v in clean]
    assert field.to_db_column(list(clean), dialect) == expected


def per_lookup_value(field: Field[Any], column: list[Any]) -> list[Any] | None:
    try:
        return [field.clean_lookup_value(v) for v in column]
    except ValidationError:
        return None


@pytest.mark.parametrize("name", sorted(FIELDS))
@settings(max_examples=150, deadline=None)
@given(column=st.lists(values.filter(lambda v: v is not None), max_size=6))
def test_clean_lookup_column_agrees_with_clean_lookup_value(name: str, column: list[Any]) -> None:
    """The ``__in`` path: the same values, or the same rejection."""
    field = FIELDS[name]
    expected = per_lookup_value(field, list(column))
    try:
        got = field.clean_lookup_column(list(column))
    except ValidationError:
        assert expected is None, f"{name}: clean_lookup_column rejected {column!r}"
        return
    assert expected is not None, f"{name}: clean_lookup_column accepted {column!r}"
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_fast_paths_apply_to_plain_columns() -> None:
    """The common case really takes the fast path (the column comes back as it is)."""
    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    plain = {
        "n": [1, 2, 3], "n_null": [None, 4], "flag": [True, None, False],
        "name": ["ab", "abcde"], "text": ["x" * 1000, None], "email": ["a@b.io", None],
        "at": [stamp, None], "stamped": [stamp, stamp], "owner": [1, None, 2],
    }
    for name, column in plain.items():
        assert FIELDS[name].clean_column(column) is column, name
    # ...and declines where it cannot vouch for every value
    declined = {
        "n": [1, None], "n_null": [1, True], "small": [32768], "name": ["abcdef"],
        "text": ["a\x00"], "email": ["x..y@z.io"], "at": [stamp.astimezone(AMSTERDAM)],
        "stamped": [None], "choice": ["a"], "checked": [1], "word": ["abc"],
        "owner": [Loud(word="x")],
    }
    for name, column in declined.items():
        assert FIELDS[name].clean_column(column) is None, name
    # __in lists of plain ids and strings come back as they are
    for name, column in {"n": [1, 2], "owner": [3, 4], "name": ["longer than five"]}.items():
        assert FIELDS[name].clean_lookup_column(column) is column, name


def test_datetime_text_keeps_zero_microseconds() -> None:
    field = FIELDS["at"]
    column = [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
              dt.datetime(999, 1, 2, 3, 4, 5, 60, tzinfo=UTC), None]
    assert field.to_db_column(column, "sqlite") == [
        "2024-01-02 03:04:05.000000+00:00", "0999-01-02 03:04:05.000060+00:00", None]


def test_bulk_errors_in_object_then_field_order() -> None:
    from covet.database.orm.persistence import _prepare_for_insert

    objs = [Columns(n=1, name="ok"), Columns(n="x", name="toolong"), Columns(n=2, name=7)]
    with pytest.raises(ValidationError) as info:
        _prepare_for_insert(Columns, objs)
    assert list(info.value.errors) == ["[1] Columns.n", "[1] Columns.name", "[2] Columns.name"]
    # the valid values were cleaned in place, the stamp set on every object
    assert objs[0].stamped is objs[1].stamped is not None
    assert isinstance(objs[0].stamped, dt.datetime)


def test_model_init_fast_path_matches_general_path() -> None:
    a = Columns(n=1, name="x", email="a@b.io")
    assert a.__dict__ == {f.attname: None for f in Columns._meta.fields} | {
        "n": 1, "name": "x", "email": "a@b.io"}
    with pytest.raises(Exception, match="unknown field 'nme'.*Did you mean 'name'"):
        Columns(nme="x")
