"""bulk_create and bulk_update: batching, primary keys, validation and atomicity."""

from __future__ import annotations

import pytest
from models_core import Account, Country, Person, Stamped, statements

from covet.database import FieldError, IntegrityError, ValidationError, create_tables


def _inserts(log: list) -> list:
    return [e for e in log if e.sql.lstrip().upper().startswith("INSERT")]


async def test_bulk_create_batches_and_sets_primary_keys(db):
    await create_tables(Person)
    await Person.create(name="existing")  # so keys do not simply start at 1
    people = [Person(name=f"p{i:02d}", age=i) for i in range(25)]
    with statements(db) as log:
        result = await Person.objects.bulk_create(people, batch_size=10)
    assert result is people or result == people
    assert len(_inserts(log)) == 3  # 10 + 10 + 5
    keys = [p.pk for p in people]
    assert all(isinstance(k, int) for k in keys) and len(set(keys)) == 25
    # each object got the key of its own row
    stored = {p.pk: (p.name, p.age) for p in await Person.objects.all()}
    for p in people:
        assert stored[p.pk] == (p.name, p.age)
    assert await Person.objects.count() == 26


async def test_bulk_created_objects_behave_as_saved(db):
    await create_tables(Person)
    people = [Person(name="a"), Person(name="b")]
    await Person.objects.bulk_create(people)
    people[0].age = 5
    with statements(db) as log:
        await people[0].save()
    assert [e.sql.split()[0].upper() for e in log] == ["UPDATE"]
    assert await Person.objects.count() == 2
    assert (await Person.objects.get(name="a")).age == 5


async def test_bulk_create_with_explicit_and_natural_keys(db):
    await create_tables(Country, Person)
    countries = [Country(code=c, name=c * 2) for c in ("FR", "DE", "IT")]
    await Country.objects.bulk_create(countries, batch_size=2)
    assert await Country.objects.order_by("code").values_list("code", flat=True) == [
        "DE", "FR", "IT"]
    mixed = [Person(name="auto1"), Person(id=100, name="explicit"), Person(name="auto2")]
    await Person.objects.bulk_create(mixed)
    assert mixed[1].pk == 100
    assert mixed[0].pk is not None and mixed[2].pk is not None
    stored = {p.pk: p.name for p in await Person.objects.all()}
    assert stored == {p.pk: p.name for p in mixed}


async def test_bulk_create_sets_auto_now_fields(db):
    await create_tables(Stamped)
    rows = [Stamped(note=str(i)) for i in range(3)]
    await Stamped.objects.bulk_create(rows)
    for r in await Stamped.objects.all():
        assert r.created_at is not None and r.updated_at is not None


async def test_bulk_create_of_nothing(db):
    await create_tables(Person)
    with statements(db) as log:
        assert await Person.objects.bulk_create([]) == []
    assert log == []


async def test_bulk_create_validates_every_object_before_sql(db):
    await create_tables(Person)
    people = [Person(name="ok"), Person(name="x" * 101), Person(name="fine", age="old")]
    with statements(db) as log, pytest.raises(ValidationError) as info:
        await Person.objects.bulk_create(people)
    message = str(info.value)
    assert "Person.name" in message and "Person.age" in message
    assert "[1]" in message and "[2]" in message  # which objects are bad
    assert log == []
    assert await Person.objects.count() == 0


async def test_bulk_create_refuses_objects_of_another_model(db):
    await create_tables(Person)
    with pytest.raises(TypeError):
        await Person.objects.bulk_create([Person(name="a"), Country(code="FR", name="F")])
    assert await Person.objects.count() == 0


@pytest.mark.parametrize(("handles", "batch_size"), [
    (["a", "b", "a", "c"], None),  # duplicate within one INSERT
    (["a", "b", "c", "d", "e", "c", "f"], 2),  # duplicate in a later batch: earlier ones ran
    (["a", "b", "c", "d", "taken"], 1),  # clashes with a row that was already there
])
async def test_failed_bulk_create_leaves_nothing_written(db, handles, batch_size):
    await create_tables(Account)
    await Account.create(handle="taken")
    accounts = [Account(handle=h) for h in handles]
    with pytest.raises(IntegrityError):
        await Account.objects.bulk_create(accounts, batch_size=batch_size)
    assert await Account.objects.values_list("handle", flat=True) == ["taken"]


async def test_bulk_create_reports_progress(db):
    await create_tables(Person)
    seen = []
    await Person.objects.bulk_create([Person(name=str(i)) for i in range(7)], batch_size=3,
                                     progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 7), (6, 7), (7, 7)]


# bulk_update --------------------------------------------------------------------------------------
async def test_bulk_update_writes_only_the_named_fields(db):
    await create_tables(Person)
    people = [await Person.create(name=f"p{i}", age=i, city="old") for i in range(5)]
    for p in people:
        p.age = p.age * 10
        p.city = "not saved"
    assert await Person.objects.bulk_update(people, ["age"], batch_size=2) == 5
    rows = await Person.objects.order_by("id").values_list("age", "city")
    assert rows == [(0, "old"), (10, "old"), (20, "old"), (30, "old"), (40, "old")]
    people[0].name, people[1].name = "renamed0", "renamed1"
    people[0].age = None
    await Person.objects.bulk_update(people[:2], ["name", "age"])
    assert await Person.objects.order_by("id").values_list("name", "age")[:2] == [
        ("renamed0", None), ("renamed1", 10)]


async def test_bulk_update_validates_before_sql(db):
    await create_tables(Person)
    people = [await Person.create(name=f"p{i}") for i in range(2)]
    people[1].name = None
    with statements(db) as log, pytest.raises(ValidationError, match="Person.name"):
        await Person.objects.bulk_update(people, ["name"])
    assert log == []
    with pytest.raises(ValueError):
        await Person.objects.bulk_update([Person(name="unsaved")], ["name"])
    with pytest.raises(FieldError, match="nmae"):
        await Person.objects.bulk_update(people, ["nmae"])


async def test_failed_bulk_update_leaves_nothing_written(db):
    await create_tables(Account)
    accounts = [await Account.create(handle=h) for h in ("a", "b", "c", "d")]
    for acc, new in zip(accounts, ("w", "x", "d", "z")):  # "d" clashes with the last row
        acc.handle = new
    with pytest.raises(IntegrityError):
        await Account.objects.bulk_update(accounts, ["handle"], batch_size=1)
    assert await Account.objects.order_by("id").values_list("handle", flat=True) == [
        "a", "b", "c", "d"]
