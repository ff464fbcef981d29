"""Cross-database agreement: the same data in SQLite and PostgreSQL gives the same query results.

Each case loads one varied data set (NULLs, unicode, quotes, ``%``/``_``/``\\`` in strings,
boundary integers, dates near the epoch, leap days, years 1 and 9999, decimals) into a SQLite file
and into PostgreSQL at once (two aliases), runs one query with ``.using(alias)`` on each and
compares. NULLs sort last ascending and first descending on both (DESIGN.md). Text ordering
assumes the test cluster's C.UTF-8 collation (code point order, as SQLite's BINARY).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest

from covet.database import configure, connections, create_tables, get_adapter
from covet.database.orm import F, Model, Q
from covet.database.orm.aggregates import Avg, Count, Max, Min, Sum
from covet.database.orm.fields import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    DecimalField,
    FloatField,
    IntegerField,
    SmallIntegerField,
)

ALIASES = ("x_sqlite", "x_pg")
UTC = dt.timezone.utc


class Sample(Model):
    name = CharField(max_length=60, nullable=True)
    grp = CharField(max_length=5)
    n = IntegerField(nullable=True)
    big = BigIntegerField(nullable=True)
    small = SmallIntegerField(nullable=True)
    day = DateField(nullable=True)
    at = DateTimeField(nullable=True)
    amount = DecimalField(max_digits=12, decimal_places=3, nullable=True)
    flag = BooleanField(nullable=True)
    ratio = FloatField(nullable=True)

    class Meta:
        db_table = "xdb_sample"


D = Decimal
ROWS: list[tuple[Any, ...]] = [
    # name, grp, n, big, small, day, at, amount, flag, ratio
    ("Alice", "a", 42, 2**63 - 1, 32767, dt.date(1970, 1, 1),
     dt.datetime(1970, 1, 1, tzinfo=UTC), D("123.450"), True, 0.1),
    ("alice", "a", 42, -(2**63), -32768, dt.date(1969, 12, 31),
     dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), D("-999999999.999"), False, -2.5),
    ("ÉCOLE", "b", 0, 0, 0, dt.date(1, 1, 1), None, D("0.001"), None, None),
    ("école", "b", -1, None, -1, dt.date(9999, 12, 31),
     dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), D("0"), True, 1e10),
    ("100%", "c", 2**31 - 1, 2**62 + 1, None, dt.date(2000, 2, 29),
     dt.datetime(2000, 2, 29, 12, 0, tzinfo=UTC), None, False, 0.0),
    ("a_b", "c", -(2**31), 2**62, 1, dt.date(2024, 2, 29), None, D("999999999.999"), None, 3.75),
    ("axb", "a", None, 5, 2, None, dt.datetime(2024, 2, 29, 1, 2, 3, 4, tzinfo=UTC),
     D("-0.001"), True, None),
    ("back\\slash", "b", 7, 7, 7, dt.date(1900, 3, 1),
     dt.datetime(1900, 3, 1, tzinfo=UTC), D("7.000"), False, 7.0),
    ("O'Brien", "d", 7, None, None, dt.date(1970, 1, 2),
     dt.datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC), D("123.450"), None, -0.001),
    ('say "hi"', "d", 13, 13, 13, None, None, None, True, 13.0),
    (None, "a", None, None, None, None, None, None, None, None),
    ("", "e", 0, 1, 1, dt.date(2024, 3, 1), dt.datetime(2024, 3, 1, tzinfo=UTC), D("1.5"),
     False, 1.5),
    ("Zoë", "e", 100, 100, 100, dt.date(2023, 2, 28), dt.datetime(2023, 2, 28, tzinfo=UTC),
     D("100.000"), True, 100.0),
    ("日本語", "e", 99, -99, -99, dt.date(1999, 12, 31),
     dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC), D("-100.5"), False, -99.5),
    ("emoji 😀", "f", -50, 50, 50, dt.date(2038, 1, 19),
     dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), D("50.050"), None, 0.5),
    ("%_\\", "f", 1, 1, 1, dt.date(1970, 1, 1), dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
     D("0.010"), True, 2.25),
    ("MiXeD cAsE", "a", 3, 3, 3, dt.date(2020, 1, 1), None, D("3.333"), False, 3.333),
    ("trailing  ", "b", 3, None, 3, dt.date(2020, 1, 1),
     dt.datetime(2020, 1, 1, 12, tzinfo=UTC), D("3.333"), True, None),
    ("Ω omega", "c", None, 8, None, dt.date(2012, 12, 21), None, D("8.800"), None, 8.8),
    ("tab\tsep", "c", 21, 21, 21, dt.date(1600, 2, 29), dt.datetime(1600, 2, 29, tzinfo=UTC),
     D("21.021"), True, 21.21),
    ("x%y", "d", 8, 8, 8, None, dt.datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC), D("-8.000"),
     False, -8.0),
    ("ÿ last latin", "f", 5, 5, 5, dt.date(2024, 12, 31), None, None, None, 5.5),
]


def make_rows() -> list[Sample]:
    fields = ("name", "grp", "n", "big", "small", "day", "at", "amount", "flag", "ratio")
    return [Sample(**dict(zip(fields, row))) for row in ROWS]


@pytest.fixture
async def both(pg_url: str, tmp_path: Any) -> AsyncIterator[None]:
    """The data set in a SQLite file (alias x_sqlite) and in PostgreSQL (alias x_pg)."""
    configure(f"sqlite:///{tmp_path / 'cross.db'}", alias="x_sqlite")
    configure(pg_url, alias="x_pg")
    try:
        pg = await get_adapter("x_pg")
        await pg.execute("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        for alias in ALIASES:
            await create_tables(Sample, using=alias)
            await Sample.objects.using(alias).bulk_create(make_rows(), batch_size=7)
        yield
    finally:
        for alias in ALIASES:
            connections.unregister(alias)
        await connections.close_all()


def _normal(value: Any) -> Any:
    """Make results comparable: floats to 9 places (AVG may differ in the last bit)."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_normal(v) for v in value)
    if isinstance(value, Model):
        return ("model", value.pk, _normal({f.attname: getattr(value, f.attname)
                                             for f in value._meta.fields}))
    return value


Query = Callable[[Any], Awaitable[Any]]


def flat(qs: Any, field: str = "id") -> Any:
    return qs.values_list(field, flat=True)


QUERIES: list[tuple[str, Query, bool]] = [
    # id, query on Sample.objects.using(alias), may the result be empty?
    ("all-values", lambda qs: qs.order_by("id").values(), False),
    ("all-models", lambda qs: qs.order_by("id"), False),
    ("order-n-nulls-last", lambda qs: flat(qs.order_by("n", "id")), False),
    ("order-desc-n-nulls-first", lambda qs: flat(qs.order_by("-n", "id")), False),
    ("order-name", lambda qs: flat(qs.order_by("name", "id"), "name"), False),
    ("order-day-desc", lambda qs: flat(qs.order_by("-day", "-id")), False),
    ("order-amount", lambda qs: qs.order_by("amount", "id").values_list("amount", "id"), False),
    ("order-flag-at", lambda qs: flat(qs.order_by("flag", "-at", "id")), False),
    ("order-big-small", lambda qs: flat(qs.order_by("-big", "small", "id")), False),
    ("contains-percent", lambda qs: flat(qs.filter(name__contains="%").order_by("id")), False),
    ("contains-underscore", lambda qs: flat(qs.filter(name__contains="_").order_by("id")), False),
    ("contains-backslash", lambda qs: flat(qs.filter(name__contains="\\").order_by("id")), False),
    ("icontains-unicode", lambda qs: flat(qs.filter(name__icontains="école").order_by("id")),
     False),
    ("iexact", lambda qs: flat(qs.filter(name__iexact="ALICE").order_by("id")), False),
    ("startswith-case", lambda qs: flat(qs.filter(name__startswith="a").order_by("id")), False),
    ("istartswith", lambda qs: flat(qs.filter(name__istartswith="A").order_by("id")), False),
    ("endswith", lambda qs: flat(qs.filter(name__endswith="e").order_by("id")), False),
    ("iendswith", lambda qs: flat(qs.filter(name__iendswith="CASE").order_by("id")), False),
    ("regex", lambda qs: flat(qs.filter(name__regex=r"^[A-Z]").order_by("id")), False),
    ("iregex", lambda qs: flat(qs.filter(name__iregex=r"^a.?b").order_by("id")), False),
    ("isnull", lambda qs: flat(qs.filter(Q(n__isnull=True) | Q(day__isnull=True))
                               .order_by("id")), False),
    ("in-with-none", lambda qs: flat(qs.filter(n__in=[0, 42, None, 7]).order_by("id")), False),
    ("range", lambda qs: flat(qs.filter(n__range=(-1, 42)).order_by("id")), False),
    ("exclude-keeps-nulls", lambda qs: flat(qs.exclude(n__gt=0).order_by("id")), False),
    ("exclude-text", lambda qs: flat(qs.exclude(name__startswith="a").order_by("id")), False),
    ("q-or-not", lambda qs: flat(qs.filter(Q(flag=True) | ~Q(amount__gte=0)).order_by("id")),
     False),
    ("dates-before-epoch", lambda qs: flat(qs.filter(day__lt=dt.date(1970, 1, 1))
                                           .order_by("day")), False),
    ("datetime-range", lambda qs: flat(qs.filter(at__range=(
        dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime(2000, 2, 29, 12, tzinfo=UTC)))
        .order_by("at")), False),
    ("datetime-tz", lambda qs: flat(qs.filter(at__gt=dt.datetime(
        1970, 1, 1, 1, 0, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))).order_by("id")),
     False),
    ("bigint-boundaries", lambda qs: flat(qs.filter(Q(big__gt=2**62) | Q(big__lt=-(2**62)))
                                          .order_by("id")), False),
    ("decimal-compare", lambda qs: flat(qs.filter(amount__gt=D("3.333")).order_by("id")), False),
    ("decimal-exact", lambda qs: flat(qs.filter(amount=D("123.45")).order_by("id")), False),
    ("float-compare", lambda qs: flat(qs.filter(ratio__lt=1).order_by("id")), False),
    ("f-compare", lambda qs: flat(qs.filter(big=F("small")).order_by("id")), False),
    ("f-arithmetic", lambda qs: flat(qs.filter(n__gt=F("big") / 2 + 1).order_by("id")), False),
    # 32767 * 2 fits the result: the literal must not be typed as the column's smallint
    ("f-arithmetic-smallint", lambda qs: flat(qs.filter(n__gt=F("small") * 2 - 1)
                                              .order_by("id")), False),
    ("aggregate-ints", lambda qs: qs.aggregate(Count("id"), Count("n"), Sum("n"), Min("n"),
                                               Max("n"), Min("big"), Max("big"), Sum("small"),
                                               Avg("small")), False),
    ("aggregate-dates", lambda qs: qs.aggregate(Min("day"), Max("day"), Min("at"), Max("at")),
     False),
    ("aggregate-decimal", lambda qs: qs.aggregate(Sum("amount"), Min("amount"), Max("amount")),
     False),
    # AVG of a decimal is not exact on either database; compare it to 6 places
    ("aggregate-decimal-avg", lambda qs: _avg_amount(qs), False),
    ("aggregate-filtered", lambda qs: qs.filter(grp__in=["a", "b"]).aggregate(
        c=Count("id", filter=Q(flag=True)), d=Count("name", distinct=True)), False),
    ("group-by", lambda qs: qs.values("grp").annotate(c=Count("id"), s=Sum("n"), m=Max("amount"))
     .order_by("grp"), False),
    ("group-by-two", lambda qs: qs.values("grp", "flag").annotate(c=Count("id"))
     .order_by("grp", "flag"), False),
    ("having", lambda qs: qs.values("grp").annotate(c=Count("id")).filter(c__gte=4)
     .order_by("-c", "grp"), False),
    ("distinct-flat", lambda qs: flat(qs.order_by("grp"), "grp").distinct(), False),
    ("distinct-nullable", lambda qs: flat(qs.order_by("-flag"), "flag").distinct(), False),
    ("distinct-count", lambda qs: qs.values("day").distinct().count(), False),
    ("slice-middle", lambda qs: flat(qs.order_by("id")[3:8]), False),
    ("slice-top-n", lambda qs: flat(qs.order_by("-n", "id")[:5]), False),
    ("slice-past-end", lambda qs: flat(qs.order_by("id")[20:30]), False),
    ("count", lambda qs: qs.filter(flag__isnull=False).count(), False),
    ("exists-no", lambda qs: qs.filter(name="nobody").exists(), True),
    ("first-last", lambda qs: _first_last(qs), False),
    ("in-subquery", lambda qs: flat(qs.filter(n__in=qs.filter(grp="b").values_list("n", flat=True))
                                    .order_by("id")), False),
    ("update-f", lambda qs: _update_then_read(qs), False),
    ("delete", lambda qs: _delete_then_read(qs), False),
]


async def _avg_amount(qs: Any) -> Any:
    result = await qs.aggregate(Avg("amount"))
    value = result["amount__avg"]
    assert isinstance(value, Decimal)
    return round(value, 6)


async def _first_last(qs: Any) -> Any:
    ordered = qs.order_by("day", "id")
    first, last = await ordered.first(), await ordered.last()
    return first.pk, last.pk


async def _update_then_read(qs: Any) -> Any:
    count = await qs.filter(n__lt=10, n__gt=-1000).update(n=F("n") * 3 + 1)
    return count, await flat(qs.order_by("id"), "n")


async def _delete_then_read(qs: Any) -> Any:
    count = await qs.filter(Q(flag=False) | Q(name__contains="%")).delete()
    return count, await flat(qs.order_by("id"))


@pytest.mark.parametrize(("query", "may_be_empty"), [(q, e) for _, q, e in QUERIES],
                         ids=[name for name, _, _ in QUERIES])
async def test_sqlite_and_postgresql_agree(both, query, may_be_empty):
    results = {}
    for alias in ALIASES:
        results[alias] = _normal(await query(Sample.objects.using(alias)))
    assert results["x_sqlite"] == results["x_pg"]
    if not may_be_empty:
        assert results["x_sqlite"] not in ([], {}, None, 0, False)


async def test_data_set_round_trips_identically(both):
    """A sanity check on the fixture: every value comes back as written, on both."""
    expected = [_normal(dict(zip(("name", "grp", "n", "big", "small", "day", "at", "amount",
                                  "flag", "ratio"), row))) for row in ROWS]
    for alias in ALIASES:
        rows = await Sample.objects.using(alias).order_by("id").values(
            "name", "grp", "n", "big", "small", "day", "at", "amount", "flag", "ratio")
        assert _normal(rows) == expected, alias


async def test_nulls_sort_last_ascending_and_first_descending(both):
    for alias in ALIASES:
        qs = Sample.objects.using(alias)
        ascending = await flat(qs.order_by("n", "id"), "n")
        descending = await flat(qs.order_by("-n", "id"), "n")
        nulls = ascending.count(None)
        assert nulls == 3
        assert ascending[-nulls:] == [None] * nulls and None not in ascending[:-nulls], alias
        assert descending[:nulls] == [None] * nulls and None not in descending[nulls:], alias
        assert ascending[:-nulls] == sorted(ascending[:-nulls])
