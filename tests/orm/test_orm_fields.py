"""Every field type round-trips exactly on every database, and bad values are refused before SQL."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from models_core import AllTypes, Color, Priority, Stamped, statements

from covet.database import ConfigurationError, ValidationError, create_tables
from covet.database.orm import Model
from covet.database.orm.fields import ArrayField, CharField, IntegerField, TextField

UTC = dt.timezone.utc
PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))
NEG_TZ = dt.timezone(dt.timedelta(hours=-9, minutes=-30))


async def roundtrip(field: str, value: Any) -> Any:
    """Save ``value`` into ``AllTypes.<field>`` and read it back through a fresh query."""
    obj = await AllTypes.create(**{field: value})
    fresh = await AllTypes.objects.get(pk=obj.pk)
    listed = await AllTypes.objects.filter(pk=obj.pk).values_list(field, flat=True)
    assert listed == [getattr(fresh, field)], "values_list() disagrees with the instance"
    return getattr(fresh, field)


ROUND_TRIPS = [
    # integers: both boundaries of each width, zero and negatives
    ("i", -(2**31)), ("i", 2**31 - 1), ("i", 0), ("i", -1),
    ("bi", -(2**63)), ("bi", 2**63 - 1), ("bi", 2**53 + 1),
    ("si", -(2**15)), ("si", 2**15 - 1),
    # text
    ("ch", "x" * 20), ("ch", ""), ("ch", "é" * 20),
    ("tx", "naïve café — ünïcödé ✓"),
    ("tx", "emoji 😀👍🏽🇫🇷 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
    ("tx", "עברית RTL ‏mixed‎ العربية"),
    ("tx", "quotes ' and \" and '' and \"\""),
    ("tx", "back\\slash \\\\ \\n literally"),
    ("tx", "100% of a_b matches _%_"),
    ("tx", "line\nbreak\ttab\rcarriage"),
    ("tx", "$1 ?1 :name %s {} -- not a comment /* nor this */"),
    ("tx", "x" * 100_000),
    ("em", "first.last+tag@example.co.uk"),
    # booleans
    ("flag", True), ("flag", False),
    # dates and times
    ("day", dt.date(1, 1, 1)), ("day", dt.date(9999, 12, 31)), ("day", dt.date(2024, 2, 29)),
    ("day", dt.date(1970, 1, 1)), ("day", dt.date(1969, 12, 31)),
    ("clock", dt.time(0, 0)), ("clock", dt.time(23, 59, 59, 999999)),
    ("clock", dt.time(12, 30, 15, 1)),
    ("when", dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)),
    ("when", dt.datetime(1970, 1, 1, tzinfo=UTC)),
    ("when", dt.datetime(1969, 12, 31, 23, 59, 59, 1, tzinfo=UTC)),
    ("when", dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
    ("when", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
    ("when", dt.datetime(1, 1, 1, tzinfo=UTC)),
    # decimals: exact to the last place
    ("dec", Decimal("12345678.1234")), ("dec", Decimal("-99999999.9999")),
    ("dec", Decimal("0.0001")), ("dec", Decimal("0.1000")), ("dec", Decimal("0")),
    ("wide", Decimal("12345678901234567890.1234567891")),
    ("wide", Decimal("0.0000000001")),
    ("wide", Decimal("-98765432109876543210.0123456789")),
    # floats
    ("fl", 0.1), ("fl", -1.5e-300), ("fl", 1.7976931348623157e308), ("fl", 2.0**53 + 0.0),
    ("fl", float("inf")), ("fl", float("-inf")),
    # JSON: nested containers, unicode, JSON null inside the document
    ("js", {"a": [1, 2, {"b": None}], "c": "é😀", "d": True, "e": 1.5}),
    ("js", [None, 0, "", [], {}]),
    ("js", "just a string"), ("js", 42), ("js", False), ("js", []), ("js", {}),
    ("js", {"quote": "it's \"x\"", "slash": "a\\b", "pct": "100%"}),
    # enums
    ("color", Color.GREEN), ("color", Color.BLUE), ("prio", Priority.HIGH), ("prio", Priority.LOW),
    # binary: every byte value
    ("blob", bytes(range(256))), ("blob", b""), ("blob", b"\x00" * 10),
    # uuid
    ("uid", uuid.UUID("12345678-1234-5678-1234-567812345678")),
    ("uid", uuid.UUID(int=0)), ("uid", uuid.UUID(int=2**128 - 1)),
]


@pytest.mark.parametrize(("field", "value"), ROUND_TRIPS,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(ROUND_TRIPS)])
async def test_value_round_trips_exactly(db, field, value):
    await create_tables(AllTypes)
    back = await roundtrip(field, value)
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, Decimal):  # scaled to the field's decimal_places, like Django
        places = AllTypes._meta.get_field(field).decimal_places
        assert back.as_tuple().exponent == -places, back


@pytest.mark.parametrize(("field", "value", "text"), [
    ("day", dt.date(9999, 12, 31), "9999-12-31"),
    ("day", dt.date(1, 1, 1), "0001-01-01"),
    ("when", dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
     "9999-12-31 23:59:59.999999"),
    ("when", dt.datetime(1, 1, 1, tzinfo=UTC), "0001-01-01 00:00:00"),
])
async def test_extreme_dates_are_stored_as_dates_not_infinity(db, field, value, text):
    await create_tables(AllTypes)
    await AllTypes.create(**{field: value})
    stored = await db.fetch_value(f'SELECT CAST("{field}" AS TEXT) FROM all_types')
    assert stored.startswith(text), stored
    later = value + dt.timedelta(days=-1) if text.startswith("9999") else value + dt.timedelta(1)
    assert await AllTypes.objects.filter(**{f"{field}__gt": later}).count() == (
        1 if text.startswith("9999") else 0)


@pytest.mark.parametrize("field", [f.name for f in AllTypes._meta.fields if f.name != "id"])
async def test_none_is_stored_as_sql_null(db, field):
    await create_tables(AllTypes)
    obj = await AllTypes.create(**{field: None})
    assert await AllTypes.objects.filter(**{f"{field}__isnull": True}).count() == 1
    assert await AllTypes.objects.filter(**{f"{field}__isnull": False}).count() == 0
    fresh = await AllTypes.objects.get(pk=obj.pk)
    assert getattr(fresh, field) is None


async def test_json_null_inside_document_is_not_sql_null(db):
    await create_tables(AllTypes)
    inner = await AllTypes.create(js={"k": None})
    await AllTypes.create(js=None)
    not_null = await AllTypes.objects.filter(js__isnull=False)
    assert [o.pk for o in not_null] == [inner.pk]
    assert not_null[0].js == {"k": None}


async def test_decimal_rows_sort_and_compare_numerically(db):
    await create_tables(AllTypes)
    values = ["9.5", "10.25", "-3", "100", "0.0001", "99999999.9999"]
    for v in values:
        await AllTypes.create(dec=Decimal(v))
    ordered = await AllTypes.objects.order_by("dec").values_list("dec", flat=True)
    assert ordered == sorted(Decimal(v) for v in values)
    assert await AllTypes.objects.filter(dec__gt=Decimal("9.9")).count() == 3


async def test_wide_decimals_keep_every_digit_and_sort_numerically(db):
    await create_tables(AllTypes)
    values = [Decimal("12345678901234567890.0000000001"),
              Decimal("12345678901234567890.0000000002"), Decimal("2.5")]
    for v in values:
        await AllTypes.create(wide=v)
    assert await AllTypes.objects.order_by("wide").values_list("wide", flat=True) == sorted(values)
    assert await AllTypes.objects.filter(wide=values[1]).count() == 1


# datetimes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("tz", [PARIS_SUMMER, NEG_TZ, UTC])
async def test_aware_datetime_comes_back_as_same_instant_in_utc(db, tz):
    await create_tables(AllTypes)
    local = dt.datetime(2024, 7, 1, 12, 30, 45, 123456, tzinfo=tz)
    back = await roundtrip("when", local)
    assert back == local  # the same instant
    assert back.utcoffset() == dt.timedelta(0)
    assert back.replace(tzinfo=None) == local.astimezone(UTC).replace(tzinfo=None)


async def test_naive_datetime_is_taken_as_utc(db):
    await create_tables(AllTypes)
    back = await roundtrip("when", dt.datetime(2024, 1, 2, 3, 4, 5, 6))
    assert back == dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert await AllTypes.objects.filter(when=dt.datetime(2024, 1, 2, 3, 4, 5, 6)).count() == 1


async def test_datetime_filters_compare_instants_across_time_zones(db):
    await create_tables(AllTypes)
    base = dt.datetime(2024, 3, 10, 10, 0, tzinfo=UTC)
    for minutes in (0, 30, 60):
        await AllTypes.create(when=base + dt.timedelta(minutes=minutes))
    # 11:15 in Paris summer time is 09:15 UTC: all three rows are later
    probe = dt.datetime(2024, 3, 10, 11, 15, tzinfo=PARIS_SUMMER)
    assert await AllTypes.objects.filter(when__gt=probe).count() == 3
    # 10:15 UTC expressed at -09:30
    probe = (base + dt.timedelta(minutes=15)).astimezone(NEG_TZ)
    assert await AllTypes.objects.filter(when__gt=probe).count() == 2
    assert await AllTypes.objects.filter(when=base.astimezone(NEG_TZ)).count() == 1


async def test_auto_now_add_and_auto_now(db):
    await create_tables(Stamped)
    before = dt.datetime.now(UTC)
    obj = await Stamped.create(note="a")
    after = dt.datetime.now(UTC)
    assert before <= obj.created_at <= after
    assert obj.created_at.utcoffset() == dt.timedelta(0)
    assert obj.updated_at is not None
    created = obj.created_at
    first_update = obj.updated_at

    obj.note = "b"
    await obj.save()
    fresh = await Stamped.objects.get(pk=obj.pk)
    assert fresh.created_at == created  # auto_now_add is not touched by an update
    assert fresh.updated_at >= first_update
    assert fresh.updated_at == obj.updated_at
    assert fresh.note == "b"

    await obj.save(update_fields=["note"])  # auto_now fields are always written
    assert (await Stamped.objects.get(pk=obj.pk)).updated_at == obj.updated_at


async def test_auto_now_add_keeps_an_explicit_value(db):
    await create_tables(Stamped)
    explicit = dt.datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    obj = await Stamped.create(note="x", created_at=explicit)
    assert (await Stamped.objects.get(pk=obj.pk)).created_at == explicit


async def test_queryset_update_refreshes_auto_now(db):
    await create_tables(Stamped)
    obj = await Stamped.create(note="a")
    # save() always overwrites an auto_now value, so make it old through update()
    await Stamped.objects.filter(pk=obj.pk).update(updated_at=dt.datetime(2000, 1, 1, tzinfo=UTC))
    await Stamped.objects.filter(pk=obj.pk).update(note="b")
    fresh = await Stamped.objects.get(pk=obj.pk)
    assert fresh.updated_at.year >= 2024


# validation: refused before any SQL ---------------------------------------------------------------
INVALID = [
    ("i", 2**31), ("i", -(2**31) - 1), ("i", "12x"), ("i", 1.5), ("i", True),
    ("bi", 2**63), ("bi", -(2**63) - 1),
    ("si", 2**15), ("si", -(2**15) - 1),
    ("ch", "x" * 21), ("ch", 5), ("tx", "nul\x00char"),
    ("em", "not-an-email"), ("em", "a@b"), ("em", "two@@example.com"), ("em", "x" * 250 + "@e.com"),
    ("flag", "yes"), ("flag", 2),
    ("day", dt.datetime(2020, 1, 1)), ("day", "2020-13-01"),
    ("clock", dt.time(1, 2, tzinfo=UTC)), ("clock", "25:00"),
    ("when", "yesterday"), ("when", dt.date(2020, 1, 1)),
    ("dec", Decimal("1.23456")),  # too many places
    ("dec", Decimal("123456789.1")),  # too many digits before the point
    ("dec", Decimal("NaN")), ("dec", "abc"),
    ("fl", float("nan")), ("fl", "abc"),
    ("js", {1, 2}), ("js", float("nan")),
    ("color", "purple"), ("prio", 3), ("prio", "low"),
    ("blob", "text"), ("uid", "not-a-uuid"), ("uid", 12),
]


@pytest.mark.parametrize(("field", "value"), INVALID,
                         ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
async def test_invalid_value_raises_validation_error_before_sql(db, field, value):
    await create_tables(AllTypes)
    with statements(db) as log:
        with pytest.raises(ValidationError) as info:
            await AllTypes.create(**{field: value})
    assert f"AllTypes.{field}" in str(info.value)
    assert log == [], f"SQL ran before validation: {[e.sql for e in log]}"
    assert await AllTypes.objects.count() == 0


async def test_enum_accepts_member_value_and_filters_by_member(db):
    await create_tables(AllTypes)
    await AllTypes.create(color="red", prio=5)
    await AllTypes.create(color=Color.BLUE, prio=Priority.HIGH)
    red = await AllTypes.objects.get(color=Color.RED)
    assert red.color is Color.RED and red.prio is Priority.MID
    assert await AllTypes.objects.filter(prio__gte=Priority.MID).count() == 2
    assert await AllTypes.objects.filter(color__in=[Color.BLUE, "green"]).count() == 1


async def test_uuid_and_binary_filters(db):
    await create_tables(AllTypes)
    u = uuid.uuid4()
    await AllTypes.create(uid=u, blob=bytes(range(256)))
    await AllTypes.create(uid=uuid.uuid4(), blob=b"other")
    assert (await AllTypes.objects.get(uid=u)).blob == bytes(range(256))
    assert (await AllTypes.objects.get(uid=str(u))).uid == u
    assert (await AllTypes.objects.get(blob=b"other")).blob == b"other"


# ArrayField --------------------------------------------------------------------------------------
class Tagged(Model):
    numbers = ArrayField(IntegerField(), nullable=True)
    words = ArrayField(CharField(max_length=5), nullable=True, size=3)
    texts = ArrayField(TextField(), default=list)


@pytest.mark.requires("arrays")
@pytest.mark.parametrize(("field", "value"), [
    ("numbers", [1, -(2**31), 2**31 - 1]), ("numbers", []), ("numbers", [1, None, 3]),
    ("words", ["a", "bb", "é😀"]), ("texts", ["it's", 'say "x"', "a\\b", "{braces}", "a,b"]),
])
async def test_array_round_trips(db, field, value):
    await create_tables(Tagged)
    obj = await Tagged.create(**{field: value})
    back = getattr(await Tagged.objects.get(pk=obj.pk), field)
    assert back == value


@pytest.mark.requires("arrays")
@pytest.mark.parametrize(("field", "value"), [
    ("numbers", [1, 2**31]), ("words", ["toolong"]), ("words", ["a", "b", "c", "d"]),
    ("numbers", "1,2"),
])
async def test_array_items_are_validated_by_the_base_field(db, field, value):
    await create_tables(Tagged)
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Tagged.create(**{field: value})
    assert f"Tagged.{field}" in str(info.value)
    assert log == []


async def test_array_field_on_database_without_arrays_is_a_configuration_error(db):
    if db.capabilities.arrays:
        pytest.skip("this database has arrays")
    with pytest.raises(ConfigurationError) as info:
        await create_tables(Tagged)
    message = str(info.value)
    assert "Tagged.numbers" in message and "arrays" in message.lower()
    with pytest.raises(ConfigurationError):
        await Tagged.objects.filter(numbers=[1])
