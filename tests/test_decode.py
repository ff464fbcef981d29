"""Row decoding: the Rust decoder (``covet._covet_rs.decode_rows``) and the pure-Python reference.

Every case decodes the same rows under both implementations through the module-level ``decode``
fixture and compares the results with the reference's exactly: the type and ``__dict__`` of every
instance, nested ``select_related`` instances included, and the type of every value (a Decimal's
exponent, a datetime's tzinfo). The property tests then feed the text parsers random strings and
require the reference's value or its exception. Under ``CI=true`` a missing Rust module fails the
run; locally its half of the cases is skipped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import gc
import json
import os
import re
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covet import _native
from covet.database.orm import Model
from covet.database.orm.fields import (
    BinaryField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    EnumField,
    IntegerField,
    JSONField,
    TimeField,
    UUIDField,
)
from covet.database.orm.fields.base import NATIVE_SPEC, native_converter
from covet.database.orm.hydrate import (
    RowPlan,
    decode_native,
    decode_reference,
    model_columns,
)
from covet.database.orm.relationships import CASCADE, ForeignKey

Decode = Callable[[RowPlan, Sequence[Sequence[Any]]], list[Any]]
UTC = dt.timezone.utc


def _rust_or_skip() -> Decode:
    """The Rust decoder; a missing module skips locally and fails under ``CI=true``."""
    if _native.native is None:
        message = f"the Rust extension covet._covet_rs is not built: {_native.IMPORT_ERROR}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return decode_native


@pytest.fixture(scope="module", params=("rust", "reference"))
def decode(request: pytest.FixtureRequest) -> Decode:
    if request.param == "rust":
        return _rust_or_skip()
    return decode_reference


@pytest.fixture(scope="module")
def rust_decode() -> Decode:
    return _rust_or_skip()


# -- models ----------------------------------------------------------------------------------


class Mood(str, enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class DecCountry(Model):
    name = CharField(max_length=20)
    founded = DateField(nullable=True)

    class Meta:
        db_table = "dec_countries"


class DecCity(Model):
    name = CharField(max_length=20)
    country = ForeignKey(DecCountry, on_delete=CASCADE, nullable=True, related_name="cities")

    class Meta:
        db_table = "dec_cities"


class DecThing(Model):
    """One column of every converter kind (on SQLite), and a relation."""

    flag = BooleanField(nullable=True)
    amount = DecimalField(max_digits=12, decimal_places=3, nullable=True)
    when = DateTimeField(nullable=True)
    day = DateField(nullable=True)
    clock = TimeField(nullable=True)
    uid = UUIDField(nullable=True)
    data = JSONField(nullable=True)
    mood = EnumField(Mood, nullable=True)
    blob = BinaryField(nullable=True)
    city = ForeignKey(DecCity, on_delete=CASCADE, nullable=True, related_name="things")

    class Meta:
        db_table = "dec_things"


class Custom(Model):
    """A model with its own ``_from_db`` hook: the Rust decoder leaves it to the reference."""

    n = IntegerField()

    class Meta:
        db_table = "dec_custom"

    @classmethod
    def _from_db(cls, values: dict[str, Any]) -> Any:
        values["hooked"] = True
        return super()._from_db(values)


# -- comparing results -----------------------------------------------------------------------


def _shape(value: Any) -> Any:
    """A value as plain data that compares equal only when the values are truly the same."""
    if isinstance(value, Model):
        return (type(value), [(k, _shape(v)) for k, v in value.__dict__.items()])
    if isinstance(value, dict):
        return ("dict", [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value), [_shape(v) for v in value])
    if isinstance(value, Decimal):
        return ("Decimal", str(value))  # the exponent shows in str()
    if isinstance(value, (dt.datetime, dt.time)):
        return (type(value), value.isoformat(), value.tzinfo, getattr(value, "fold", None))
    if isinstance(value, uuid.UUID):
        return (type(value), value.int, value.is_safe, value.__getstate__())
    return (type(value), value)


def _outcome(decode: Decode, plan: RowPlan, rows: Any) -> Any:
    try:
        return ("ok", _shape(decode(plan, rows)))
    except Exception as exc:  # noqa: BLE001 - the type and message are compared
        return ("error", type(exc), str(exc))


def _assert_same(decode: Decode, plan: RowPlan, rows: Any) -> Any:
    got = _outcome(decode, plan, rows)
    assert got == _outcome(decode_reference, plan, rows)
    return got


# -- rows --------------------------------------------------------------------------------------

U1 = "12345678-9abc-def0-1234-56789abcdef0"

# DecThing's columns: id, flag, amount, when, day, clock, uid, data, mood, blob, city_id
THING_ROWS: list[tuple[Any, ...]] = [
    (1, 1, "12.5", "2024-01-02 03:04:05.123456+00:00", "2024-02-29", "03:04:05.000001", U1,
     '{"a": [1, 2.5, null, "x"]}', "happy", b"\x00\x01", 7),
    (2, 0, 3, "2024-01-02T03:04:05", "0001-01-01", "23:59", U1.upper(), "[]", "sad", b"", None),
    (3, None, None, None, None, None, None, None, None, None, None),
    (4, 2, 12.25, "2024-01-01T01:30:00+05:30", "9999-12-31", "00:00:00.5", U1, '"text"', "sad",
     b"z", 9),
    (5, True, Decimal("1.23456"), "2024-06-30", "2000-01-01", "12:00:00", U1, b'{"b": true}',
     "happy", None, None),
    (6, 7, "-0.0005", "2024-01-02 03:04:05Z", "2024-01-02", "01:02:03.123", U1, "1e400", None,
     None, None),
    (7, 1, 12345678.9, "2024-01-02 03:04:05-00:00", "2024-12-01", "01:02", U1, "{}", None, None,
     None),
]


def thing_plan(mode: str = "model", dialect: str = "sqlite") -> RowPlan:
    names, convs = model_columns(DecThing, dialect)
    if mode == "model":
        return RowPlan("model", names, convs, model=DecThing)
    return RowPlan(mode, names, convs)


class Record:
    """An asyncpg-Record-like row: a sequence that is neither a tuple nor a list."""

    def __init__(self, *values: Any) -> None:
        self._values = values

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, i: Any) -> Any:
        return self._values[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


# -- cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["model", "dict", "tuple", "flat"])
def test_every_converter_in_every_mode(decode: Decode, mode: str) -> None:
    got = _assert_same(decode, thing_plan(mode), THING_ROWS)
    assert got[0] == "ok"


def test_values_are_converted(decode: Decode) -> None:
    first, second, empty, shifted, *_ = decode(thing_plan(), THING_ROWS)
    assert first.flag is True and second.flag is False and empty.flag is None
    assert str(first.amount) == "12.500" and str(second.amount) == "3.000"
    assert first.when == dt.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert first.when.tzinfo is UTC and second.when.tzinfo is UTC
    assert shifted.when == dt.datetime(2023, 12, 31, 20, 0, tzinfo=UTC)
    assert first.day == dt.date(2024, 2, 29) and first.clock == dt.time(3, 4, 5, 1)
    assert first.uid == uuid.UUID(U1) and second.uid == uuid.UUID(U1)
    assert first.data == {"a": [1, 2.5, None, "x"]} and first.mood is Mood.HAPPY
    assert first.__dict__["_persisted"] is True and first.city_id == 7
    assert empty.__dict__ == {**dict.fromkeys(empty.__dict__), "id": 3, "_persisted": True}


def test_rows_of_any_sequence_type(decode: Decode) -> None:
    for mode in ("model", "dict", "tuple", "flat"):
        plan = thing_plan(mode)
        _assert_same(decode, plan, [Record(*row) for row in THING_ROWS])
        _assert_same(decode, plan, [list(row) for row in THING_ROWS])
        _assert_same(decode, plan, tuple(THING_ROWS))
        assert _outcome(decode, plan, iter(THING_ROWS)) == _outcome(
            decode_reference, plan, iter(THING_ROWS))
        _assert_same(decode, plan, [])


def test_without_converters(decode: Decode) -> None:
    names, _ = model_columns(DecThing, "postgresql")
    rows = [(1, True, Decimal("1.500"), dt.datetime(2024, 1, 1, tzinfo=UTC), None, None, None,
             {"x": 1}, "sad", b"", None)]
    for plan in (RowPlan("model", names, (), model=DecThing), RowPlan("dict", names, ()),
                 RowPlan("tuple", names, ()), RowPlan("flat", names, ())):
        _assert_same(decode, plan, rows)
        _assert_same(decode, plan, [Record(*r) for r in rows])


def test_postgresql_plan(decode: Decode) -> None:
    """On PostgreSQL the driver's types are final for most fields; JSON and enums still convert."""
    rows = [(1, True, Decimal("2.5"), dt.datetime(2024, 1, 1, tzinfo=UTC), dt.date(2024, 1, 1),
             dt.time(1, 2), uuid.UUID(U1), '{"k": "v"}', "happy", b"\x01", None)]
    _assert_same(decode, thing_plan("model", "postgresql"), rows)


def test_annotations_and_duplicate_names(decode: Decode) -> None:
    conv = DecimalField(max_digits=5, decimal_places=1).from_db_converter("sqlite")
    assert conv is not None
    plan = RowPlan("dict", ("a", "b", "a"), [(0, conv), (2, conv), (2, conv)])
    _assert_same(decode, plan, [("1.25", 2, "3.35"), (None, None, None)])
    plan = RowPlan("model", ("id", "n", "total"), [(2, conv)], model=DecCity)
    _assert_same(decode, plan, [(1, "x", 4), (2, "y", "-0.05")])


def test_short_and_long_rows(decode: Decode) -> None:
    plan = RowPlan("dict", ("a", "b"), ())
    _assert_same(decode, plan, [(1,), (1, 2, 3), ()])
    _assert_same(decode, RowPlan("model", ("id", "name"), (), model=DecCity), [(1,), (1, 2, 3)])
    _assert_same(decode, RowPlan("tuple", ("a",), ()), [(), (1, 2)])


def test_errors_match(decode: Decode) -> None:
    names, convs = model_columns(DecThing, "sqlite")
    plan = RowPlan("model", names, convs, model=DecThing)
    base = THING_ROWS[0]
    for column, bad in [(2, "abc"), (2, "1" * 120), (3, "2024-13-01"), (3, "yesterday"), (3, 5),
                        (4, "2023-02-29"), (5, "25:00"), (6, "not-a-uuid"), (6, 12),
                        (7, "{bad json"), (8, "angry"), (2, object())]:
        row = base[:column] + (bad,) + base[column + 1:]
        assert _assert_same(decode, plan, [row])[0] == "error"
    # A converter for a column the row does not have; a flat row with no column.
    assert _assert_same(decode, RowPlan("tuple", ("a",), [(3, bool)]), [(1,)])[0] == "error"
    assert _assert_same(decode, RowPlan("flat", ("a",), ()), [()])[0] == "error"


def test_odd_values_take_the_python_converter(decode: Decode) -> None:
    """Values the native path does not read go to the field's converter, unchanged."""

    class Text(str):
        pass

    class MyDecimal(Decimal):
        pass

    names, convs = model_columns(DecThing, "sqlite")
    plan = RowPlan("dict", names, convs)
    aware = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = [
        (1, 0.0, Text("1.5"), Text("2024-01-02 03:04:05+00:00"), Text("2024-01-02"),
         Text("01:02"), Text(U1), Text("[1]"), Text("sad"), bytearray(b"ab"), None),
        (2, "", MyDecimal("1.0001"), aware, dt.datetime(2024, 1, 1, 5), dt.time(1, 2),
         uuid.UUID(U1), bytearray(b"[1]"), Mood.SAD, memoryview(b"cd"), None),
        (3, [], True, "2024-01-02T03:04:05.1234567", "20240102", "01:02:03,5", "{" + U1 + "}",
         5, "happy", b"", None),
        (4, 1.5, 10**30, "2024-W01-1 10:00", "2024-W01-1", "01:02:03+01:00", U1.replace("-", ""),
         {"already": "decoded"}, "sad", b"", None),
        (5, 1, "1e3", "2024-01-02 03:04:05 +00:00", "2024-01-02", "T01:02", "urn:uuid:" + U1,
         "null", "sad", b"", None),
        (6, 1, float("inf"), "0001-01-01 00:00:00-01:00", "2024-01-02", "01", U1, "1", None, None,
         None),
    ]
    for row in rows:
        _assert_same(decode, plan, [row])


def test_a_custom_from_db_hook_is_honoured(decode: Decode) -> None:
    plan = RowPlan("model", ("id", "n"), (), model=Custom)
    (obj,) = decode(plan, [(1, 2)])
    assert obj.__dict__ == {"id": 1, "n": 2, "hooked": True, "_persisted": True}
    _assert_same(decode, plan, [(1, 2), (3, 4)])


# -- select_related ----------------------------------------------------------------------------


def test_select_related_plan_from_a_queryset(decode: Decode) -> None:
    """The plan ``select_related`` builds: thing, then its city, then the city's country."""
    _, _, plan = DecThing.objects.select_related("city__country")._build("sqlite")
    assert [r[0] for r in plan.related] == ["_cache_city"]
    width = len(plan.names)
    full = (*THING_ROWS[0], 7, "Lyon", 3, 3, "France", "1792-09-22")
    no_country = (*THING_ROWS[1][:10], 8, 8, "Nowhere", None, None, None, None)
    no_city = (*THING_ROWS[2], None, None, None, None, None, None)
    rows = [full, no_country, no_city]
    assert all(len(r) == width + 6 for r in rows)
    got = _assert_same(decode, plan, rows)
    assert got[0] == "ok"
    thing, homeless, lonely = decode(plan, rows)
    assert thing.city.name == "Lyon" and thing.city.country.founded == dt.date(1792, 9, 22)
    assert thing.__dict__["_cache_city"].__dict__["_persisted"] is True
    assert homeless.city.country is None and lonely.__dict__["_cache_city"] is None
    assert list(thing.__dict__)[-2:] == ["_persisted", "_cache_city"]


def test_select_related_nested_by_hand(decode: Decode) -> None:
    country = RowPlan("model", ("id", "name", "founded"), (), model=DecCountry)
    city = RowPlan("model", ("id", "name", "country_id"), (), model=DecCity,
                   related=[("_cache_country", 3, country)])
    conv = DateField().from_db_converter("sqlite")
    assert conv is not None
    # The city's plan is nested twice, at different starts, with the outer plan converting.
    plan = RowPlan("model", ("id", "name", "country_id"), [(5, conv), (11, conv)], model=DecCity,
                   related=[("_cache_country", 3, country), ("_cache_other", 6, city)])
    rows = [
        (1, "a", 1, 1, "X", "2000-01-01", 2, "b", 9, 9, "Y", "1999-12-31"),
        (1, "a", None, None, None, None, 2, "b", None, None, None, None),
        (1, "a", 1, 1, "X", None, None, None, None, None, None, None),
    ]
    _assert_same(decode, plan, rows)
    _assert_same(decode, plan, [Record(*r) for r in rows])
    # A primary key column beyond the row's end is an IndexError in both.
    assert _assert_same(decode, plan, [rows[0][:4]])[0] == "error"


# -- the text parsers: parity with Python's fromisoformat --------------------------------------


def _counting(kind: str, convert: Callable[[Any], Any]) -> tuple[Callable[[Any], Any], list[Any]]:
    """``convert`` described as ``kind``, recording the values the Rust decoder hands it."""
    calls: list[Any] = []

    def fallback(v: Any) -> Any:
        calls.append(v)
        return convert(v)

    extra = getattr(convert, NATIVE_SPEC)[1]
    return native_converter(kind, extra)(fallback), calls


def _native_parity(rust_decode: Decode, kind: str, convert: Callable[[Any], Any], text: str,
                   must_be_native: bool) -> None:
    wrapped, calls = _counting(kind, convert)
    plan = RowPlan("flat", ("v",), [(0, wrapped)])
    got = _outcome(rust_decode, plan, [(text,)])
    assert got == _outcome(decode_reference, RowPlan("flat", ("v",), [(0, convert)]), [(text,)])
    if must_be_native:
        assert calls == [], f"{text!r} was not decoded natively"


def _converter(field: Any) -> Callable[[Any], Any]:
    conv = field.from_db_converter("sqlite")
    assert conv is not None
    return conv


DATETIME = _converter(DateTimeField())
DATE = _converter(DateField())
TIME = _converter(TimeField())
UUID_ = _converter(UUIDField())
DECIMAL = _converter(DecimalField(max_digits=30, decimal_places=4))

years = st.integers(1, 9999).map(lambda y: f"{y:04d}")
two = st.integers(0, 99).map(lambda n: f"{n:02d}")
dates = st.builds(lambda y, m, d: f"{y}-{m}-{d}", years, two, two)
fractions = st.text("0123456789", min_size=1, max_size=6).map(lambda f: "." + f)
times = st.builds(
    lambda h, m, s, f: f"{h}:{m}" + (f":{s}{f}" if s is not None else ""),
    two, two, st.none() | two, st.just("") | fractions,
)
offsets = st.one_of(
    st.just(""), st.just("Z"),
    st.builds(lambda sign, h, m, s: f"{sign}{h}:{m}" + (f":{s}" if s else ""),
              st.sampled_from("+-"), two, two, st.none() | two),
)
iso_datetimes = st.one_of(
    dates,
    st.builds(lambda d, sep, t, o: d + sep + t + o, dates, st.sampled_from("T "), times, offsets),
)
# Near misses: the pieces of the grammar in random order, and arbitrary text.
near_misses = st.lists(
    st.sampled_from(["2024", "-", "01", "02", "T", " ", ":", "03", ".", "5", "+", "Z", "24", "60",
                     "1234567", ",", "W", "x", "\u0662"]),
    max_size=12,
).map("".join)
texts = st.one_of(iso_datetimes, near_misses, st.text(max_size=40))


def _valid(s: str, parse: Callable[[str], Any]) -> bool:
    try:
        parse(s)
    except ValueError:
        return False
    return True


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(iso_datetimes, texts))
def test_datetime_text_matches_fromisoformat(rust_decode: Decode, text: str) -> None:
    _native_parity(rust_decode, "datetime", DATETIME, text, _in_native_subset(text))


def _in_native_subset(text: str) -> bool:
    """A valid datetime in the forms ``decode.rs`` reads, whose UTC value has a year 1 to 9999."""
    if not re.fullmatch(
        r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d(\.\d{1,6})?)?(Z|[+-]\d\d:[0-5]\d(:[0-5]\d)?)?)?", text
    ):
        return False  # (Python also takes offset minutes and seconds of 60 and more)
    try:
        DATETIME(text)
    except (ValueError, OverflowError):
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(dates, times, texts))
def test_date_and_time_text_match_fromisoformat(rust_decode: Decode, text: str) -> None:
    date_native = bool(re.fullmatch(r"\d{4}-\d\d-\d\d", text)) and _valid(
        text, dt.date.fromisoformat)
    _native_parity(rust_decode, "date", DATE, text, date_native)
    time_native = bool(re.fullmatch(r"\d\d:\d\d(:\d\d(\.\d{1,6})?)?", text)) and _valid(
        text, dt.time.fromisoformat)
    _native_parity(rust_decode, "time", TIME, text, time_native)


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()),
                       st.uuids().map(lambda u: u.hex), st.text(max_size=40)))
def test_uuid_text_matches(rust_decode: Decode, value: str) -> None:
    _native_parity(rust_decode, "uuid", UUID_, value, len(value) == 36 and _valid(value, uuid.UUID))


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(
    st.decimals(allow_nan=True).map(str), st.floats(), st.integers(-(10**40), 10**40),
    st.text("0123456789.-+eE", max_size=12),
))
def test_decimal_values_match(rust_decode: Decode, value: Any) -> None:
    _native_parity(rust_decode, "decimal", DECIMAL, value, False)


def test_json_uses_loads(rust_decode: Decode) -> None:
    conv = _converter(JSONField())
    for value in ['{"a": 1}', b"[1, 2]", "nope", 5, None, "\ufeff{}"]:
        plan = RowPlan("flat", ("v",), [(0, conv)])
        expected = _outcome(decode_reference, plan, [(value,)])
        assert _outcome(rust_decode, plan, [(value,)]) == expected
    assert json.loads is getattr(conv, NATIVE_SPEC)[1]


def test_decimal_invalid_operation_is_the_same(rust_decode: Decode) -> None:
    plan = RowPlan("flat", ("v",), [(0, DECIMAL)])
    with pytest.raises(InvalidOperation):
        rust_decode(plan, [("1" * 200,)])


# -- how instances are made ---------------------------------------------------------------------


class Counted(Model):
    """A model with its own ``__new__``: both decoders call it once per instance."""

    n = IntegerField()
    made = 0

    class Meta:
        db_table = "dec_counted"

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        Counted.made += 1
        return super().__new__(cls)


class Watched(Model):
    """A model with its own ``__setattr__``: ``obj.__dict__ = values`` goes through it."""

    n = IntegerField()
    seen: ClassVar[list[str]] = []

    class Meta:
        db_table = "dec_watched"

    def __setattr__(self, name: str, value: Any) -> None:
        Watched.seen.append(name)
        super().__setattr__(name, value)


def test_custom_new_and_setattr_are_honoured(decode: Decode) -> None:
    Counted.made = 0
    objs = decode(RowPlan("model", ("id", "n"), (), model=Counted), [(1, 2), (3, 4)])
    assert Counted.made == 2 and [o.n for o in objs] == [2, 4]
    Watched.seen = []
    objs = decode(RowPlan("model", ("id", "n"), (), model=Watched), [(1, 2)])
    assert Watched.seen == ["__dict__"] and objs[0].__dict__ == {"id": 1, "n": 2,
                                                                  "_persisted": True}
    _assert_same(decode, RowPlan("model", ("id", "n"), (), model=Watched), [(1, 2), (5, 6)])


def test_instances_are_plain(decode: Decode) -> None:
    (obj,) = decode(thing_plan(), THING_ROWS[:1])
    assert type(obj) is DecThing and type(obj.__dict__) is dict
    assert obj.flag is True and obj.pk == 1
    obj.extra = 5  # type: ignore[attr-defined]  # the instance dict is an ordinary dict
    assert obj.__dict__["extra"] == 5 and "extra" not in DecThing.__dict__


def test_persisted_as_a_column_name(decode: Decode) -> None:
    plan = RowPlan("model", ("id", "_persisted", "n"), (), model=DecCity)
    got = _assert_same(decode, plan, [(1, False, 2), (2, None, 3), (3,)])
    (_, items), *_ = got[1][1]
    assert dict(items)["_persisted"] == (bool, True)
    _assert_same(decode, RowPlan("dict", ("_persisted", "a"), ()), [(0, 1), (None,)])


def test_garbage_collector_tracking_matches(decode: Decode) -> None:
    """A row dict holding a container is tracked by the collector, one of atoms is not."""
    names, convs = model_columns(DecThing, "sqlite")
    with _collector_paused():
        for mode in ("model", "dict"):
            plan = RowPlan(mode, names, convs, model=DecThing if mode == "model" else None)
            for row in THING_ROWS:
                (got,) = decode(plan, [row])
                (want,) = decode_reference(plan, [row])
                d_got = got.__dict__ if mode == "model" else got
                d_want = want.__dict__ if mode == "model" else want
                assert gc.is_tracked(d_got) == gc.is_tracked(d_want), (mode, row)
    # A tuple value counts only while the collector has not untracked it.
    untracked = (1, "a")
    gc.collect()
    assert not gc.is_tracked(untracked)
    with _collector_paused():
        for value in ([1], untracked, (1, [2]), {"k": 1}, "text", 5):
            plan = RowPlan("dict", ("a", "b"), ())
            (got,) = decode(plan, [(1, value)])
            assert gc.is_tracked(got) == gc.is_tracked({"a": 1, "b": value}), value
            assert gc.is_tracked(got) == (value not in (untracked, "text", 5)), value


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No collection in between: it would untrack dicts and tuples of atoms as it goes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def test_conversion_errors_come_before_a_short_row(decode: Decode) -> None:
    """The reference converts every row of the batch before it builds any result."""
    plan = RowPlan("flat", ("a",), [(1, DATETIME)])
    rows: list[tuple[Any, ...]] = [(), ("x", "2024-01-01")]
    assert _assert_same(decode, RowPlan("flat", ("a",), ()), [(), (1,)])[0] == "error"
    short_then_bad = [(1, None), (2, "not a date")]
    got = _assert_same(decode, RowPlan("flat", ("a",), [(1, DATETIME)]), short_then_bad)
    assert got[0] == "error" and got[1] is ValueError
    assert _assert_same(decode, plan, rows)[0] == "error"  # IndexError while converting
    city = RowPlan("model", ("id", "name", "country_id"), (), model=DecCity,
                   related=[("_cache_country", 3, RowPlan("model", ("id", "name", "founded"), (),
                                                          model=DecCountry))])
    conv = DateField().from_db_converter("sqlite")
    assert conv is not None
    outer = RowPlan("model", ("id", "name", "country_id"), [(2, conv)], model=DecCity,
                    related=city.related)
    # Row 1 has no country primary key (a build error); row 2's date does not parse.
    bad = [(1, "a", "2024-01-01"), (2, "b", "2024-13-01", 1, "X", None)]
    got = _assert_same(decode, outer, bad)
    assert got[0] == "error" and got[1] is ValueError
    assert _assert_same(decode, outer, bad[:1])[1] is IndexError


def test_short_rows_of_every_type(decode: Decode) -> None:
    shapes: list[list[Any]] = [[()], [[]], [Record()], [iter(())]]
    for rows in shapes:
        _assert_same(decode, RowPlan("flat", ("a",), ()), rows)
        _assert_same(decode, RowPlan("tuple", ("a",), ()), rows)
    plan = RowPlan("model", ("id", "name", "country_id"), (), model=DecCity,
                   related=[("_cache_country", 3, RowPlan("model", ("id", "name", "founded"), (),
                                                          model=DecCountry))])
    for row in ((1, "a", 2), [1, "a", 2], Record(1, "a", 2)):
        assert _assert_same(decode, plan, [row])[0] == "error"


def test_tuple_rows_come_back_as_they_are(rust_decode: Decode) -> None:
    """``tuple(t) is t``: without converters a tuple row is the result (as in the reference)."""
    row = (1, "a")
    (got,) = rust_decode(RowPlan("tuple", ("a", "b"), ()), [row])
    assert got is row
    (got,) = rust_decode(RowPlan("tuple", ("a", "b"), [(0, bool)]), [row])
    assert got == (True, "a") and got is not row


# -- random plans and rows -------------------------------------------------------------------


def _atom_or_container() -> st.SearchStrategy[Any]:
    atoms = st.one_of(st.none(), st.integers(-5, 300), st.text(max_size=4), st.booleans(),
                      st.floats(allow_nan=False), st.binary(max_size=3))
    return st.one_of(atoms, st.lists(atoms, max_size=2), st.tuples(atoms),
                     st.dictionaries(st.text(max_size=2), atoms, max_size=2))


plan_names = st.lists(st.sampled_from(["id", "name", "country_id", "a", "b", "_persisted", "n"]),
                      min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(names=plan_names, mode=st.sampled_from(["model", "dict", "tuple", "flat"]),
       conv_at=st.lists(st.integers(0, 7), max_size=3),
       rows=st.lists(st.lists(_atom_or_container(), max_size=8), max_size=4),
       row_type=st.sampled_from([tuple, list, "record"]),
       with_related=st.booleans())
def test_random_plans_match_the_reference(rust_decode: Decode, names: list[str], mode: str,
                                          conv_at: list[int], rows: list[list[Any]],
                                          row_type: Any, with_related: bool) -> None:
    """Any names (repeated, ``_persisted`` among them), converters, row lengths and values."""
    converters = [(i, bool if i % 2 else repr) for i in sorted(conv_at)]
    related: list[Any] = []
    if mode == "model" and with_related:
        related = [("_cache_country", 2,
                    RowPlan("model", ("id", "name"), (), model=DecCountry))]
    plan = RowPlan(mode, names, converters, model=DecCity if mode == "model" else None,
                   related=related)
    if row_type == "record":
        typed: list[Any] = [Record(*r) for r in rows]
    else:
        typed = [row_type(r) for r in rows]
    got = _assert_same(rust_decode, plan, typed)
    if got[0] == "ok" and mode in ("model", "dict"):
        with _collector_paused():
            pairs = list(zip(rust_decode(plan, typed), decode_reference(plan, typed)))
            for a, b in pairs:
                da = a.__dict__ if mode == "model" else a
                db = b.__dict__ if mode == "model" else b
                assert list(da) == list(db) and gc.is_tracked(da) == gc.is_tracked(db)


# -- streaming: decoding a chunk a slice at a time -----------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_decode_slices_gives_what_decode_gives(decode: Decode, size: int) -> None:
    rows = list(THING_ROWS)
    whole = _shape(decode(thing_plan(), rows))
    plan = thing_plan()
    chunk = list(rows)
    use_native = _native.USE_NATIVE
    try:
        _native.USE_NATIVE = decode is not decode_reference
        slices = list(plan.decode_slices(chunk, size))
    finally:
        _native.USE_NATIVE = use_native
    assert [len(s) for s in slices] == [min(size, len(rows) - i) for i in range(0, len(rows), size)]
    assert _shape([obj for s in slices for obj in s]) == whole
    # The chunk is released as it goes: same length, every decoded row dropped.
    assert chunk == [None] * len(rows)


def test_decode_slices_releases_each_slice_before_the_next() -> None:
    plan = RowPlan("tuple", ("a", "b"), [(0, bool)])
    chunk: list[Any] = [(i, str(i)) for i in range(10)]
    seen = []
    for results in plan.decode_slices(chunk, 4):
        seen.append((len(results), sum(r is None for r in chunk)))
    assert seen == [(4, 4), (4, 8), (2, 10)]


def test_decode_slices_only_reads_other_sequences() -> None:
    plan = RowPlan("flat", ("a",), ())
    rows = tuple((i,) for i in range(5))
    assert [r for s in plan.decode_slices(rows, 2) for r in s] == [0, 1, 2, 3, 4]
    assert rows == tuple((i,) for i in range(5))
    assert list(plan.decode_slices([], 3)) == []
    with pytest.raises(ValueError):
        list(plan.decode_slices([(1,)], 0))


def test_decode_slices_bounds_the_memory_of_a_chunk() -> None:
    """Decoding 2,000 rows 50 at a time, the rows already decoded are freed: the traced peak
    stays well under that of decoding the chunk whole."""

    names, convs = model_columns(DecThing, "sqlite")
    plan = RowPlan("model", names, convs, model=DecThing)

    def chunk() -> list[Any]:
        return [(i, 1, "1.5", f"2024-01-02 03:04:{i % 60:02d}.000000+00:00", None, None, None,
                 None, None, b"x" * 100, None) for i in range(2000)]

    def peak(stream: bool) -> int:
        rows = chunk()
        gc.collect()
        tracemalloc.start()
        tracemalloc.reset_peak()
        if stream:
            for results in plan.decode_slices(rows, 50):
                del results
        else:
            results = plan.decode(rows)
            del rows
            del results
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(stream=True) * 4 < peak(stream=False)


# -- asyncpg records -------------------------------------------------------------------------------


async def test_asyncpg_records_decode_directly(rust_decode: Decode, pg_url: str) -> None:
    """``decode_rows`` reads asyncpg ``Record`` objects as they come (no copy into tuples)."""
    asyncpg = pytest.importorskip("asyncpg")
    conn = await asyncpg.connect(pg_url)
    try:
        records = await conn.fetch(
            "SELECT g AS id, g % 2 = 0 AS flag, (g * 1.25)::numeric(12, 3) AS amount,"
            " timestamptz '2024-01-02 03:04:05.123456+02' + g * interval '1 second' AS \"when\","
            " CASE WHEN g % 3 = 0 THEN NULL ELSE date '2024-02-29' END AS day,"
            " time '03:04:05.000001' AS clock,"
            " '12345678-9abc-def0-1234-56789abcdef0'::uuid AS uid, '{\"a\": [1, 2]}' AS data,"
            " 'happy' AS mood, '\\x0001'::bytea AS blob, NULL::int AS city_id"
            " FROM generate_series(1, 50) AS g")
    finally:
        await conn.close()
    assert type(records[0]).__name__ == "Record" and not isinstance(records[0], (tuple, list))
    for mode in ("model", "dict", "tuple", "flat"):
        plan = thing_plan(mode, "postgresql")
        got = _assert_same(rust_decode, plan, records)
        assert got[0] == "ok"
        assert got == _outcome(rust_decode, plan, [tuple(r) for r in records])
    objs = rust_decode(thing_plan("model", "postgresql"), records)
    assert objs[1].flag is True and objs[0].when.tzinfo is not None
    assert objs[0].data == {"a": [1, 2]} and objs[0].mood is Mood.HAPPY
    assert [o.id for o in objs] == list(range(1, 51))


def test_an_unreadable_row_after_a_short_one(decode: Decode) -> None:
    """Flat rows without converters are read and built in order (the short row's error comes
    first); with ``select_related``, every row is read before any related key is looked at."""
    rows: list[Any] = [(), 5]
    assert _assert_same(decode, RowPlan("flat", ("a",), ()), rows)[1] is IndexError
    assert _assert_same(decode, RowPlan("flat", ("a",), [(0, bool)]), rows)[1] is IndexError
    assert _assert_same(decode, RowPlan("flat", ("a",), [(0, bool)]), [(1,), 5])[1] is TypeError
    plan = RowPlan("model", ("id", "name", "country_id"), (), model=DecCity,
                   related=[("_cache_country", 3, RowPlan("model", ("id", "name", "founded"), (),
                                                          model=DecCountry))])
    assert _assert_same(decode, plan, [(1, "a", 2), 5])[1] is TypeError
