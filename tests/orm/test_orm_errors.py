"""Errors are actionable and come before SQL: unknown fields and lookups name the model, the path
and the close matches; bad values name the field."""

from __future__ import annotations

import pytest
from models_core import Person, statements

from covet.database import FieldError, ValidationError, create_tables
from covet.database.orm import F, Q
from covet.database.orm.aggregates import Count, Sum


def _check_unknown(message: str, path: str, bad: str, hint: str | None) -> None:
    assert "Person" in message, message
    assert repr(bad) in message or repr(path) in message, message
    if hint is not None:
        assert "Did you mean" in message and repr(hint) in message, message


UNKNOWN_FIELD_CALLS = [
    ("filter", lambda: Person.objects.filter(nmae="x"), "nmae", "nmae", "name"),
    ("filter-lookup", lambda: Person.objects.filter(cty__iexact="x"), "cty__iexact", "cty",
     "city"),
    ("filter-Q", lambda: Person.objects.filter(Q(age=1) | Q(emial="x")), "emial", "emial",
     "email"),
    ("exclude", lambda: Person.objects.exclude(is_actve=True), "is_actve", "is_actve",
     "is_active"),
    ("get", lambda: Person.objects.get(scor=1), "scor", "scor", "score"),
    ("order_by", lambda: Person.objects.order_by("-agee"), "agee", "agee", "age"),
    ("values", lambda: Person.objects.values("naem"), "naem", "naem", "name"),
    ("values_list", lambda: Person.objects.values_list("citty", flat=True), "citty", "citty",
     "city"),
    ("F-in-filter", lambda: Person.objects.filter(age=F("aeg")), "aeg", "aeg", "age"),
    ("F-in-update", lambda: Person.objects.update(age=F("aeg") + 1), "aeg", "aeg", "age"),
    ("update", lambda: Person.objects.update(nme="x"), "nme", "nme", "name"),
    ("aggregate", lambda: Person.objects.aggregate(Sum("agge")), "agge", "agge", "age"),
    ("annotate", lambda: Person.objects.values("city").annotate(n=Count("idd")), "idd", "idd",
     "id"),
    ("count", lambda: Person.objects.filter(nam="x").count(), "nam", "nam", "name"),
    ("delete", lambda: Person.objects.filter(nam="x").delete(), "nam", "nam", "name"),
    ("nonsense", lambda: Person.objects.filter(zzzzzz=1), "zzzzzz", "zzzzzz", None),
]


@pytest.mark.parametrize(("call", "path", "bad", "hint"),
                         [c[1:] for c in UNKNOWN_FIELD_CALLS],
                         ids=[c[0] for c in UNKNOWN_FIELD_CALLS])
async def test_unknown_field_names_model_path_and_close_matches(db, call, path, bad, hint):
    await create_tables(Person)
    with statements(db) as log, pytest.raises(FieldError) as info:
        result = call()
        if hasattr(result, "__await__"):
            await result
    _check_unknown(str(info.value), path, bad, hint)
    assert log == [], [e.sql for e in log]


async def test_field_error_lists_the_available_fields(db):
    await create_tables(Person)
    with pytest.raises(FieldError) as info:
        await Person.objects.filter(zzzzzz=1)
    for name in ("name", "age", "city", "email", "score", "is_active"):
        assert name in str(info.value)


async def test_field_error_is_an_attribute_error(db):
    await create_tables(Person)
    with pytest.raises(AttributeError):
        await Person.objects.filter(nmae="x")


async def test_unknown_lookup_after_a_plain_field_mentions_the_path(db):
    await create_tables(Person)
    with pytest.raises(FieldError) as info:
        await Person.objects.filter(name__foo__bar="x")
    message = str(info.value)
    assert "name__foo__bar" in message and "Person.name" in message


async def test_unknown_lookup_on_exclude_and_q(db):
    await create_tables(Person)
    with pytest.raises(FieldError, match="Did you mean 'contains'"):
        await Person.objects.exclude(name__contans="x")
    with pytest.raises(FieldError, match="Did you mean .*'lte'"):
        await Person.objects.filter(Q(age__lte=1) | ~Q(age__let=3))


async def test_none_with_a_comparison_lookup_points_to_isnull(db):
    await create_tables(Person)
    with pytest.raises(FieldError, match="isnull"):
        await Person.objects.filter(age__gt=None)


BAD_VALUE_CALLS = [
    ("filter", lambda: Person.objects.filter(age="ten"), "age"),
    ("filter-range", lambda: Person.objects.filter(age__range=(1, 2**40)), "age"),
    ("exclude", lambda: Person.objects.exclude(score="12,5"), "score"),
    ("get", lambda: Person.objects.get(is_active="no"), "is_active"),
    ("count", lambda: Person.objects.filter(age__in=[1, "x"]).count(), "age"),
    ("exists", lambda: Person.objects.filter(age__lte="x").exists(), "age"),
    ("update", lambda: Person.objects.update(age="x"), "age"),
    ("update-too-long", lambda: Person.objects.update(name="n" * 101), "name"),
    ("update-bad-email", lambda: Person.objects.update(email="nope"), "email"),
    ("delete", lambda: Person.objects.filter(score__gt="a lot").delete(), "score"),
    ("create", lambda: Person.objects.create(name="x", score="1.234"), "score"),
    ("get_or_create", lambda: Person.objects.get_or_create(name="x", age="x"), "age"),
    ("get_or_create-defaults",
     lambda: Person.objects.get_or_create(name="new", defaults={"email": "bad"}), "email"),
    ("update_or_create",
     lambda: Person.objects.update_or_create(name="new", defaults={"age": 2**31}), "age"),
]


@pytest.mark.parametrize(("call", "field"), [c[1:] for c in BAD_VALUE_CALLS],
                         ids=[c[0] for c in BAD_VALUE_CALLS])
async def test_bad_values_raise_validation_error_naming_the_field(db, call, field):
    await create_tables(Person)
    await Person.create(name="x", age=1)
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await call()
    assert f"Person.{field}" in str(info.value)
    writes = [e.sql for e in log if not e.sql.lstrip().upper().startswith("SELECT")
              and e.kind != "control"]
    assert writes == [], writes
    if not any(name in call.__code__.co_names for name in ("get_or_create", "update_or_create")):
        assert log == [], [e.sql for e in log]
    assert await Person.objects.count() == 1
    assert (await Person.objects.get(name="x")).age == 1


async def test_instance_save_with_bad_value_names_the_field(db):
    await create_tables(Person)
    p = await Person.create(name="ok")
    p.age = "seven"
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await p.save()
    assert "Person.age" in str(info.value)
    assert info.value.errors and any("age" in key for key in info.value.errors)
    assert log == []
