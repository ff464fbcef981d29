"""Field options: primary_key, nullable, unique, db_index, default, choices, db_column, validators,
and the automatic / big automatic primary keys."""

from __future__ import annotations

import uuid

import pytest
from models_core import (
    BigThing,
    Country,
    Gadget,
    Person,
    Token,
    index_columns,
    statements,
    table_columns,
)

from covet.database import IntegrityError, ValidationError, create_tables

# primary keys -------------------------------------------------------------------------------------


async def test_auto_id_is_added_and_increments(db):
    await create_tables(Person)
    assert Person._meta.pk.name == "id"
    a = await Person.create(name="a")
    b = await Person.create(name="b")
    assert isinstance(a.id, int) and isinstance(b.id, int)
    assert b.id > a.id
    assert a.pk == a.id
    assert (await Person.objects.get(pk=b.pk)).name == "b"


async def test_big_auto_field_takes_64_bit_keys(db):
    await create_tables(BigThing)
    assert BigThing._meta.pk.name == "id"
    assert [f.name for f in BigThing._meta.fields].count("id") == 1
    auto = await BigThing.create(label="auto")
    assert isinstance(auto.id, int) and auto.id >= 1
    big = await BigThing.create(id=2**40, label="big")
    fresh = await BigThing.objects.get(pk=2**40)
    assert fresh.label == "big" and fresh.id == big.id == 2**40
    with pytest.raises(ValidationError):
        await BigThing.create(id=2**63, label="too big")


async def test_custom_primary_key(db):
    await create_tables(Country)
    assert "id" not in [f.name for f in Country._meta.fields]
    assert "id" not in await table_columns(db, "country")
    fr = await Country.create(code="FR", name="France")
    assert fr.pk == "FR"
    await Country.create(code="DE", name="Germany")
    assert (await Country.objects.get(pk="FR")).name == "France"
    assert await Country.objects.order_by("code").values_list("pk", flat=True) == ["DE", "FR"]
    fr.name = "République française"
    await fr.save()
    assert await Country.objects.count() == 2
    assert (await Country.objects.get(code="FR")).name == "République française"
    with pytest.raises(IntegrityError):
        await Country.create(code="FR", name="again")
    assert await fr.delete() == 1
    assert not await Country.objects.filter(pk="FR").exists()


async def test_custom_primary_key_must_be_given(db):
    await create_tables(Country)
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Country.create(name="Nowhere")
    assert "Country.code" in str(info.value)
    assert log == []


async def test_uuid_primary_key_with_callable_default(db):
    await create_tables(Token)
    a = await Token.create(label="a")
    b = await Token.create(label="b")
    assert isinstance(a.key, uuid.UUID) and a.key != b.key
    assert (await Token.objects.get(pk=a.key)).label == "a"
    assert (await Token.objects.get(key=str(b.key))).label == "b"


# nullable -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["name", "is_active"])
async def test_none_in_non_nullable_field_is_refused_before_sql(db, field):
    await create_tables(Person)
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Person.create(**{"name": "n", field: None})
    assert f"Person.{field}" in str(info.value)
    assert log == [], [e.sql for e in log]


async def test_none_in_non_nullable_field_refused_on_update_and_queryset_update(db):
    await create_tables(Person)
    p = await Person.create(name="kept")
    p.name = None
    with statements(db) as log:
        with pytest.raises(ValidationError, match="Person.name"):
            await p.save()
        with pytest.raises(ValidationError, match="Person.name"):
            await p.save(update_fields=["name"])
        with pytest.raises(ValidationError, match="Person.name"):
            await Person.objects.filter(pk=p.pk).update(name=None)
    assert log == [], [e.sql for e in log]
    assert (await Person.objects.get(pk=p.pk)).name == "kept"


async def test_nullable_field_accepts_none(db):
    await create_tables(Person)
    p = await Person.create(name="n", age=None, city=None)
    fresh = await Person.objects.get(pk=p.pk)
    assert fresh.age is None and fresh.city is None


# unique -------------------------------------------------------------------------------------------
async def test_unique_violation_is_integrity_error(db):
    await create_tables(Gadget)
    await Gadget.create(sku="A-1")
    with pytest.raises(IntegrityError):
        await Gadget.create(sku="A-1")
    assert await Gadget.objects.count() == 1
    other = await Gadget.create(sku="A-2")
    other.sku = "A-1"
    with pytest.raises(IntegrityError):
        await other.save()
    with pytest.raises(IntegrityError):
        await Gadget.objects.filter(pk=other.pk).update(sku="A-1")


async def test_unique_nullable_allows_many_nulls(db):
    await create_tables(Person)
    await Person.create(name="a", email=None)
    await Person.create(name="b", email=None)
    await Person.create(name="c", email="c@example.com")
    with pytest.raises(IntegrityError):
        await Person.create(name="d", email="c@example.com")
    assert await Person.objects.filter(email__isnull=True).count() == 2


# db_index / db_column -----------------------------------------------------------------------------
async def test_db_index_creates_an_index(db):
    await create_tables(Gadget)
    found = await index_columns(db, "gadget")
    plain = [cols for uniq, cols in found.values() if cols == ["slot"]]
    assert plain, found
    assert any(uniq and cols == ["sku"] for uniq, cols in found.values()), found


async def test_db_column_names_the_column_but_not_the_attribute(db):
    await create_tables(Gadget)
    columns = await table_columns(db, "gadget")
    assert "label_text" in columns and "label" not in columns
    g = await Gadget.create(sku="s", label="hello")
    assert (await Gadget.objects.get(label="hello")).pk == g.pk
    assert await Gadget.objects.values_list("label", flat=True) == ["hello"]
    assert (await Gadget.objects.values("label"))[0] == {"label": "hello"}
    assert await db.fetch_value("SELECT label_text FROM gadget") == "hello"
    await Gadget.objects.filter(pk=g.pk).update(label="bye")
    assert (await Gadget.objects.order_by("label").first()).label == "bye"
    raw = await Gadget.objects.raw("SELECT * FROM gadget WHERE label_text = $1", ["bye"])
    assert [r.label for r in raw] == ["bye"]


# defaults -----------------------------------------------------------------------------------------
async def test_value_and_callable_defaults(db):
    await create_tables(Gadget)
    a = Gadget(sku="a")
    b = Gadget(sku="b")
    assert a.slot == 7 and a.size == "M" and a.level == 1
    assert a.token != b.token  # the callable runs once per instance
    assert a.tags == [] and a.tags is not b.tags  # default=list gives each its own list
    await a.save()
    await b.save()
    fresh = await Gadget.objects.get(sku="a")
    assert (fresh.slot, fresh.size, fresh.token, fresh.tags) == (7, "M", a.token, [])
    c = await Gadget.create(sku="c", slot=3, token="mine")
    assert (await Gadget.objects.get(pk=c.pk)).slot == 3
    assert (await Gadget.objects.get(pk=c.pk)).token == "mine"


# choices ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "ok"), [
    ({"size": "S"}, True), ({"size": "L"}, True), ({"size": "X"}, False),
    ({"size": "Small"}, False),  # a label is not a value
    ({"level": 3}, True), ({"level": 4}, False),
])
async def test_choices(db, kwargs, ok):
    await create_tables(Gadget)
    if ok:
        g = await Gadget.create(sku="s", **kwargs)
        fresh = await Gadget.objects.get(pk=g.pk)
        assert all(getattr(fresh, k) == v for k, v in kwargs.items())
        return
    field = next(iter(kwargs))
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Gadget.create(sku="s", **kwargs)
    assert f"Gadget.{field}" in str(info.value)
    assert log == []


# validators ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"even": 3}, "3 is odd"),  # a validator raising ValidationError
    ({"handle": "has space"}, "spaces are not allowed"),  # one raising ValueError
])
async def test_validators_refuse_before_sql(db, kwargs, message):
    await create_tables(Gadget)
    field = next(iter(kwargs))
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Gadget.create(sku="s", **kwargs)
    assert f"Gadget.{field}" in str(info.value)
    assert message in str(info.value)
    assert log == []
    g = await Gadget.create(sku="ok", even=4, handle="nospace")
    g.even = 5
    with pytest.raises(ValidationError, match="Gadget.even"):
        await g.save()
    with pytest.raises(ValidationError, match="Gadget.even"):
        await Gadget.objects.filter(pk=g.pk).update(even=7)
    assert (await Gadget.objects.get(pk=g.pk)).even == 4


def test_full_clean_reports_every_bad_field():
    g = Gadget(sku="x" * 21, even=1, size="Q")
    with pytest.raises(ValidationError) as info:
        g.full_clean()
    text = str(info.value)
    for name in ("sku", "even", "size"):
        assert f"Gadget.{name}" in text
    assert len(info.value.errors) == 3
