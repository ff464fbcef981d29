"""Field lookups, Q objects, F expressions and exclude()'s NULL semantics, on every database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from models_core import AllTypes, Person, statements

from covet.database import FieldError, ValidationError, create_tables
from covet.database.orm import F, Q

WORDS = [
    "Alice", "alice", "ALICE smith", "100% pure", "100 percent", "a_b", "axb", "back\\slash",
    "backslash", "école", "ÉCOLE publique", "Ünïcödé", "O'Brien", 'say "hi"', "x%y_z\\w",
]


async def seed_words() -> None:
    await create_tables(Person)
    for i, word in enumerate(WORDS):
        await Person.create(name=word, age=i)


async def matching(**lookup: object) -> set[str]:
    return set(await Person.objects.filter(**lookup).values_list("name", flat=True))


TEXT_CASES = [
    ("exact", "Alice", {"Alice"}),
    ("exact", "alice", {"alice"}),
    ("exact", "a_b", {"a_b"}),
    ("iexact", "alice", {"Alice", "alice"}),
    ("iexact", "ÉCOLE", {"école"}),
    ("iexact", "a_b", {"a_b"}),  # _ is not a wildcard
    ("iexact", "100%", set()),  # % is not a wildcard
    ("contains", "lic", {"Alice", "alice"}),
    ("contains", "LIC", {"ALICE smith"}),  # case-sensitive on every database
    ("contains", "%", {"100% pure", "x%y_z\\w"}),
    ("contains", "_", {"a_b", "x%y_z\\w"}),
    ("contains", "\\", {"back\\slash", "x%y_z\\w"}),
    ("contains", "\\s", {"back\\slash"}),
    ("contains", "%y_z\\", {"x%y_z\\w"}),
    ("contains", "'", {"O'Brien"}),
    ("contains", '"hi"', {'say "hi"'}),
    ("contains", "", set(WORDS)),
    ("icontains", "LIC", {"Alice", "alice", "ALICE smith"}),
    ("icontains", "ÉCOLE", {"école", "ÉCOLE publique"}),
    ("icontains", "école", {"école", "ÉCOLE publique"}),
    ("icontains", "ÜNÏ", {"Ünïcödé"}),
    ("icontains", "0% P", {"100% pure"}),
    ("icontains", "A_B", {"a_b"}),
    ("startswith", "A", {"Alice", "ALICE smith"}),
    ("startswith", "a", {"alice", "a_b", "axb"}),
    ("startswith", "100%", {"100% pure"}),
    ("startswith", "a_", {"a_b"}),
    ("startswith", "back\\", {"back\\slash"}),
    ("istartswith", "ali", {"Alice", "alice", "ALICE smith"}),
    ("istartswith", "éCo", {"école", "ÉCOLE publique"}),
    ("istartswith", "X%", {"x%y_z\\w"}),
    ("endswith", "ice", {"Alice", "alice"}),
    ("endswith", "ICE", set()),
    ("endswith", "\\w", {"x%y_z\\w"}),
    ("iendswith", "SMITH", {"ALICE smith"}),
    ("iendswith", "CÖDÉ", {"Ünïcödé"}),
    ("iendswith", "_Z\\W", {"x%y_z\\w"}),
    ("regex", r"^A", {"Alice", "ALICE smith"}),
    ("regex", r"^a.b$", {"a_b", "axb"}),
    ("regex", r"\d{3}", {"100% pure", "100 percent"}),
    ("regex", r"^al", {"alice"}),
    ("iregex", r"^al", {"Alice", "alice", "ALICE smith"}),
    ("iregex", r"SMITH$", {"ALICE smith"}),
    ("in", ["Alice", "axb", "nobody"], {"Alice", "axb"}),
    ("in", [], set()),
    ("in", ("école", "ÉCOLE publique"), {"école", "ÉCOLE publique"}),
    ("gt", "x", {"école", "ÉCOLE publique", "Ünïcödé", "x%y_z\\w"}),
    ("lt", "B", {"ALICE smith", "100% pure", "100 percent", "Alice"}),
]


@pytest.mark.parametrize(("lookup", "value", "expected"), TEXT_CASES,
                         ids=[f"{lk}-{i}" for i, (lk, _, _) in enumerate(TEXT_CASES)])
async def test_text_lookups(db, lookup, value, expected):
    await seed_words()
    assert await matching(**{f"name__{lookup}": value}) == expected


@pytest.mark.parametrize(("lookup", "value", "expected"), TEXT_CASES,
                         ids=[f"{lk}-{i}" for i, (lk, _, _) in enumerate(TEXT_CASES)])
async def test_negated_text_lookups_are_the_complement(db, lookup, value, expected):
    await seed_words()
    got = set(await Person.objects.exclude(**{f"name__{lookup}": value})
              .values_list("name", flat=True))
    assert got == set(WORDS) - expected


# numbers, NULLs, ranges, isnull -------------------------------------------------------------------
AGES = {"a": 10, "b": 20, "c": 30, "d": None, "e": 40, "f": 20}


async def seed_ages() -> None:
    await create_tables(Person)
    for name, age in AGES.items():
        await Person.create(name=name, age=age, city=None if name in "ce" else "X" + name)


NUMBER_CASES = [
    ({"age": 20}, "bf"),
    ({"age__exact": 20}, "bf"),
    ({"age__gt": 20}, "ce"),
    ({"age__gte": 20}, "bcef"),
    ({"age__lt": 20}, "a"),
    ({"age__lte": 20}, "abf"),
    ({"age__in": [10, 40, 99]}, "ae"),
    ({"age__in": [10, None]}, "a"),  # None in a list matches nothing, as in SQL and Django
    ({"age__range": (20, 30)}, "bcf"),
    ({"age__range": [30, 20]}, ""),
    ({"age__isnull": True}, "d"),
    ({"age__isnull": False}, "abcef"),
    ({"age": None}, "d"),
    ({"city__isnull": True}, "ce"),
    ({"age__gt": 15, "age__lt": 35}, "bcf"),
    ({"pk__in": [1, 3]}, "ac"),
]


@pytest.mark.parametrize(("lookup", "expected"), NUMBER_CASES)
async def test_number_and_null_lookups(db, lookup, expected):
    await seed_ages()
    assert await matching(**lookup) == set(expected)


EXCLUDE_CASES = [
    ({"age": 20}, "acde"),  # d (NULL age) is kept, as in Django
    ({"age__gt": 20}, "abdf"),
    ({"age__in": [10, 20]}, "cde"),
    ({"age__range": (15, 35)}, "ade"),
    ({"age__isnull": True}, "abcef"),
    ({"age": None}, "abcef"),
    ({"city": "Xa"}, "bcdef"),  # c and e have NULL cities and are kept
    ({"city__startswith": "X"}, "ce"),
    ({"age__gt": 15, "age__lt": 35}, "ade"),  # NOT (a AND b)
]


@pytest.mark.parametrize(("lookup", "expected"), EXCLUDE_CASES)
async def test_exclude_keeps_null_rows_like_django(db, lookup, expected):
    await seed_ages()
    assert set(await Person.objects.exclude(**lookup).values_list("name", flat=True)) == set(
        expected)
    assert set(await Person.objects.filter(~Q(**lookup)).values_list("name", flat=True)) == set(
        expected)


# Q ------------------------------------------------------------------------------------------------
Q_CASES = [
    (Q(age=10) | Q(age=40), "ae"),
    (Q(age__gte=20) & Q(age__lte=30), "bcf"),
    (~Q(age=20), "acde"),
    (Q(age=20) & ~Q(name="f"), "b"),
    ((Q(age=10) | Q(age=20)) & Q(city__isnull=False), "abf"),
    (Q(age=10) | (Q(age=20) & Q(name="f")), "af"),
    (~(Q(age=10) | Q(age__isnull=True)), "bcef"),
    (~~Q(age=20), "bf"),
    (~(Q(age__gt=15) & Q(city__startswith="X")), "acde"),
    (Q(), "abcdef"),
    (Q() | Q(age=10), "a"),
]


@pytest.mark.parametrize(("q", "expected"), Q_CASES, ids=[repr(q) for q, _ in Q_CASES])
async def test_q_combinations(db, q, expected):
    await seed_ages()
    assert await matching_q(q) == set(expected)


async def matching_q(q: Q) -> set[str]:
    return set(await Person.objects.filter(q).values_list("name", flat=True))


async def test_q_and_kwargs_and_chained_filters_combine_with_and(db):
    await seed_ages()
    qs = Person.objects.filter(Q(age=20) | Q(age=30), city__isnull=False)
    assert set(await qs.values_list("name", flat=True)) == {"b", "f"}
    qs = Person.objects.filter(Q(age__gte=20)).filter(Q(age__lte=20)).exclude(name="b")
    assert set(await qs.values_list("name", flat=True)) == {"f"}


async def test_in_with_a_queryset(db):
    await seed_ages()
    adults = Person.objects.filter(age__gte=30).values_list("pk", flat=True)
    assert await matching(pk__in=adults) == {"c", "e"}
    assert await matching(pk__in=Person.objects.filter(age=10)) == {"a"}
    ages = Person.objects.filter(name__in=["a", "b"]).values_list("age", flat=True)
    assert await matching(age__in=ages) == {"a", "b", "f"}
    assert set(await Person.objects.exclude(age__in=ages).values_list("name", flat=True)) == {
        "c", "d", "e"}


# F ------------------------------------------------------------------------------------------------
async def test_f_comparisons_and_arithmetic_in_filters(db):
    await create_tables(AllTypes)
    rows = [(1, 1), (2, 5), (3, 9), (4, None), (10, 20)]
    for i, bi in rows:
        await AllTypes.create(i=i, bi=bi)

    async def got(*args: Q, **kwargs: object) -> set[int]:
        return set(await AllTypes.objects.filter(*args, **kwargs).values_list("i", flat=True))

    assert await got(bi=F("i")) == {1}
    assert await got(bi__gt=F("i") * 2) == {2, 3}
    assert await got(bi__gte=F("i") * 2) == {2, 3, 10}
    assert await got(bi__lt=F("i") + 3) == {1}
    assert await got(Q(bi=F("i") * 2 + 1) | Q(bi=F("i") - 0)) == {1, 2}
    assert await got(i__lt=F("bi") / 2) == {3}  # integer division: both sides are integers
    assert set(await AllTypes.objects.exclude(bi=F("i")).values_list("i", flat=True)) == {
        2, 3, 4, 10}


# other value types --------------------------------------------------------------------------------
async def test_date_decimal_and_boolean_lookups(db):
    await create_tables(AllTypes)
    data = [
        (dt.date(2024, 2, 28), Decimal("1.0001"), True),
        (dt.date(2024, 2, 29), Decimal("2.5000"), False),
        (dt.date(2024, 3, 1), Decimal("-3.0000"), None),
        (dt.date(1, 1, 1), Decimal("0"), True),
        (dt.date(9999, 12, 31), Decimal("99999999.9999"), False),
    ]
    for day, dec, flag in data:
        await AllTypes.create(day=day, dec=dec, flag=flag)

    async def days(**kw: object) -> list[dt.date]:
        return await AllTypes.objects.filter(**kw).order_by("day").values_list("day", flat=True)

    assert await days(day__range=(dt.date(2024, 2, 28), dt.date(2024, 3, 1))) == [
        dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(2024, 3, 1)]
    assert await days(day__gt="2024-02-29") == [dt.date(2024, 3, 1), dt.date(9999, 12, 31)]
    assert await days(day__lt=dt.date(1970, 1, 1)) == [dt.date(1, 1, 1)]
    assert await days(dec__gt=Decimal("1")) == [
        dt.date(2024, 2, 28), dt.date(2024, 2, 29), dt.date(9999, 12, 31)]
    assert await days(dec__lte=0) == [dt.date(1, 1, 1), dt.date(2024, 3, 1)]
    assert await days(dec=Decimal("2.5")) == [dt.date(2024, 2, 29)]
    assert await days(flag=True) == [dt.date(1, 1, 1), dt.date(2024, 2, 28)]
    assert await days(flag=False) == [dt.date(2024, 2, 29), dt.date(9999, 12, 31)]
    assert await AllTypes.objects.exclude(flag=True).count() == 3  # False, False and NULL


# errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lookup", "hint"), [
    ({"name__icontans": "x"}, "icontains"),
    ({"name__startwith": "x"}, "startswith"),
    ({"age__gte_": 1}, "gte"),
    ({"age__isnul": True}, "isnull"),
])
async def test_unknown_lookup_lists_close_matches(db, lookup, hint):
    await create_tables(Person)
    with statements(db) as log, pytest.raises(FieldError) as info:
        await Person.objects.filter(**lookup)
    message = str(info.value)
    assert "Did you mean" in message and repr(hint) in message
    assert next(iter(lookup)).split("__")[1] in message
    assert log == []


@pytest.mark.parametrize("lookup", [
    {"age__contains": 1}, {"age__regex": "1"}, {"is_active__icontains": "t"},
])
async def test_text_lookup_on_a_non_text_field_is_refused(db, lookup):
    await create_tables(Person)
    with pytest.raises(FieldError):
        await Person.objects.filter(**lookup)


@pytest.mark.parametrize("lookup", [
    {"age": "ten"}, {"age__gt": "x"}, {"age__in": [1, "two"]}, {"age__range": (1, "z")},
    {"score__lt": "abc"}, {"is_active": "maybe"}, {"age__isnull": "yes"}, {"email__in": "abc"},
])
async def test_bad_lookup_values_are_refused_before_sql(db, lookup):
    await create_tables(Person)
    with statements(db) as log, pytest.raises((ValidationError, FieldError)) as info:
        await Person.objects.filter(**lookup)
    field = next(iter(lookup)).split("__")[0]
    assert field in str(info.value)
    assert log == []
