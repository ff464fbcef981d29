"""Aggregates, values().annotate() GROUP BY, and filters on annotations (HAVING)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from models_core import AllTypes, Person, seed_people as seed

from covet.database import FieldError, create_tables
from covet.database.orm import Q
from covet.database.orm.aggregates import Avg, Count, Max, Min, Sum


async def test_positional_aggregate_uses_field__name_keys(db):
    await seed()
    result = await Person.objects.aggregate(Avg("age"), Sum("age"), Min("age"), Max("age"),
                                            Count("age"), Count("id"))
    assert result == {"age__avg": 31.6, "age__sum": 158, "age__min": 25, "age__max": 40,
                      "age__count": 5, "id__count": 6}
    assert type(result["age__avg"]) is float
    assert type(result["age__sum"]) is int and type(result["age__count"]) is int


async def test_named_aggregates_as_in_the_guide(db):
    await seed()
    result = await Person.objects.aggregate(min_age=Min("age"), max_age=Max("age"))
    assert result == {"min_age": 25, "max_age": 40}
    assert await Person.objects.aggregate(n=Count("*")) == {"n": 6}


async def test_aggregate_respects_filters_and_exclusions(db):
    await seed()
    assert await Person.objects.filter(city="London").aggregate(Sum("age")) == {"age__sum": 65}
    assert await Person.objects.exclude(city="London").aggregate(Count("id")) == {"id__count": 4}
    assert await Person.objects.filter(Q(age__gt=26) & Q(is_active=True)).aggregate(
        total=Sum("age")) == {"total": 70}


async def test_aggregate_over_nothing(db):
    await seed()
    empty = Person.objects.filter(name="nobody")
    assert await empty.aggregate(Count("id"), Sum("age"), Avg("age"), Max("name")) == {
        "id__count": 0, "age__sum": None, "age__avg": None, "name__max": None}


async def test_decimal_aggregates_stay_exact(db):
    await seed()
    result = await Person.objects.aggregate(Sum("score"), Avg("score"), Max("score"))
    assert result["score__sum"] == Decimal("42.74")
    assert type(result["score__sum"]) is Decimal
    assert result["score__avg"] == Decimal("8.548")
    assert type(result["score__avg"]) is Decimal
    assert result["score__max"] == Decimal("12.00")


async def test_min_max_of_text_dates_and_datetimes(db):
    await create_tables(AllTypes)
    when = dt.datetime(2020, 5, 5, 5, 5, 5, 5, tzinfo=dt.timezone.utc)
    await AllTypes.create(ch="pear", day=dt.date(2024, 2, 29), when=when)
    await AllTypes.create(ch="apple", day=dt.date(1, 1, 1), when=when + dt.timedelta(days=1))
    await AllTypes.create(ch=None, day=None, when=None)
    assert await AllTypes.objects.aggregate(Min("ch"), Max("ch"), Min("day"), Max("day"),
                                            Min("when"), Max("when")) == {
        "ch__min": "apple", "ch__max": "pear",
        "day__min": dt.date(1, 1, 1), "day__max": dt.date(2024, 2, 29),
        "when__min": when, "when__max": when + dt.timedelta(days=1)}


async def test_count_distinct_and_filtered_aggregates(db):
    await seed()
    result = await Person.objects.aggregate(
        cities=Count("city", distinct=True),
        active=Count("id", filter=Q(is_active=True)),
        old_sum=Sum("age", filter=Q(age__gte=30)),
    )
    assert result == {"cities": 3, "active": 4, "old_sum": 105}


async def test_aggregate_over_a_slice_uses_the_ordering(db):
    await seed()
    youngest_two = Person.objects.order_by("age")[:2]
    assert await youngest_two.aggregate(Sum("age")) == {"age__sum": 53}
    oldest = Person.objects.exclude(age=None).order_by("-age")[:3]
    assert await oldest.aggregate(Min("age"), Count("id")) == {"age__min": 30, "id__count": 3}


def test_positional_aggregate_over_an_expression_needs_a_name():
    from covet.database.orm import F

    with pytest.raises(TypeError):
        Sum(F("age") * 2).default_alias  # noqa: B018


# GROUP BY and HAVING ------------------------------------------------------------------------------
async def test_values_annotate_groups_by_the_values(db):
    await seed()
    rows = await Person.objects.values("city").annotate(
        user_count=Count("id"), avg_age=Avg("age")).order_by("city")
    assert rows == [
        {"city": "Berlin", "user_count": 1, "avg_age": None},
        {"city": "London", "user_count": 2, "avg_age": 32.5},
        {"city": "Paris", "user_count": 2, "avg_age": 32.5},
        {"city": None, "user_count": 1, "avg_age": 28.0},
    ]


async def test_positional_annotation_and_values_list(db):
    await seed()
    rows = await Person.objects.values("is_active").annotate(Count("id")).order_by("is_active")
    assert rows == [{"is_active": False, "id__count": 2}, {"is_active": True, "id__count": 4}]
    pairs = await Person.objects.values_list("city").annotate(n=Sum("age")).order_by("-n", "city")
    # descending puts the NULL sum (Berlin: its only age is NULL) first
    assert pairs == [("Berlin", None), ("London", 65), ("Paris", 65), (None, 28)]


async def test_group_by_two_columns(db):
    await seed()
    rows = await Person.objects.values("city", "is_active").annotate(n=Count("id")).order_by(
        "city", "is_active")
    assert [(r["city"], r["is_active"], r["n"]) for r in rows] == [
        ("Berlin", True, 1), ("London", True, 2), ("Paris", False, 1), ("Paris", True, 1),
        (None, False, 1)]


async def test_filter_on_an_annotation_is_having(db):
    await seed()
    qs = Person.objects.values("city").annotate(n=Count("id")).filter(n__gt=1)
    assert "HAVING" in qs.sql().sql.upper()
    assert sorted(r["city"] for r in await qs) == ["London", "Paris"]
    qs = Person.objects.values("city").annotate(total=Sum("age")).filter(
        total__gte=60, city__startswith="L")
    assert await qs == [{"city": "London", "total": 65}]
    qs = Person.objects.values("city").annotate(n=Count("id")).exclude(n=1).order_by("-city")
    assert [r["city"] for r in await qs] == ["Paris", "London"]
    assert await Person.objects.values("city").annotate(n=Count("id")).filter(n__gt=1).count() == 2


async def test_order_by_annotation_and_slice(db):
    await seed()
    rows = await Person.objects.values("city").annotate(oldest=Max("age")).order_by(
        "oldest", "city")[:2]
    assert rows == [{"city": None, "oldest": 28}, {"city": "Paris", "oldest": 35}]
    # Berlin's group has only NULL ages: descending puts it first (NULLs first when descending)
    rows = await Person.objects.values("city").annotate(oldest=Max("age")).order_by("-oldest")
    assert [r["city"] for r in rows] == ["Berlin", "London", "Paris", None]


async def test_aggregate_over_annotations(db):
    await seed()
    per_city = Person.objects.values("city").annotate(n=Count("id"))
    assert await per_city.aggregate(Max("n")) == {"n__max": 2}


async def test_annotation_name_clashing_with_a_field_is_refused(db):
    with pytest.raises(FieldError):
        Person.objects.values("city").annotate(age=Count("id"))
