"""Models: Meta options, abstract inheritance, save/create/delete/refresh, identity, errors."""

from __future__ import annotations

import pytest
from models_core import Book, Employee, Engineer, Manager, Person, index_columns, statements

from covet.database import (
    ConfigurationError,
    FieldError,
    IntegrityError,
    ValidationError,
    create_tables,
)
from covet.database.exceptions import MultipleObjectsReturned, ObjectDoesNotExist
from covet.database.orm import Model
from covet.database.orm.aggregates import Count
from covet.database.orm.fields import CharField, IntegerField

# Meta ---------------------------------------------------------------------------------------------


async def test_meta_db_table(db):
    await create_tables(Book, Person)
    await Book.create(title="t", author="a", year=2000)
    assert await db.fetch_value("SELECT COUNT(*) FROM library_books") == 1
    await Person.create(name="p")
    assert await db.fetch_value("SELECT name FROM people") == "p"


def test_default_table_name_is_snake_case_of_the_class():
    class LineItemThing(Model):
        n = IntegerField()

    assert LineItemThing._meta.db_table == "line_item_thing"


async def test_meta_ordering_is_the_default_order(db):
    await create_tables(Book)
    for title, year in [("b", 2001), ("a", 2001), ("c", 1999), ("d", 2010)]:
        await Book.create(title=title, author="x", year=year)
    assert [b.title for b in await Book.objects.all()] == ["d", "a", "b", "c"]
    assert (await Book.objects.first()).title == "d"
    assert (await Book.objects.last()).title == "c"
    # an explicit order_by replaces the default; order_by() with nothing removes ordering
    assert [b.title for b in await Book.objects.order_by("title")] == ["a", "b", "c", "d"]
    assert "ORDER BY" not in Book.objects.order_by().sql().sql
    assert "ORDER BY" in Book.objects.all().sql().sql


async def _books() -> None:
    await create_tables(Book)
    for title, author, year in [("a", "Le Guin", 1969), ("b", "Le Guin", 1974),
                                ("c", "Herbert", 1965), ("d", "Herbert", 1969)]:
        await Book.create(title=title, author=author, year=year)


async def test_meta_ordering_does_not_break_distinct_values(db):
    # the default ordering names columns that are not selected (Django: still runs)
    await _books()
    authors = await Book.objects.values_list("author", flat=True).distinct()
    assert set(authors) == {"Le Guin", "Herbert"}


async def test_meta_ordering_is_not_applied_to_group_by_queries(db):
    # Django >= 3.1 ignores Meta.ordering in values().annotate() GROUP BY queries
    await _books()
    rows = await Book.objects.values("author").annotate(n=Count("id"))
    assert sorted((r["author"], r["n"]) for r in rows) == [("Herbert", 2), ("Le Guin", 2)]


async def test_meta_indexes_are_created(db):
    await create_tables(Book)
    found = await index_columns(db, "library_books")
    assert "book_title_idx" in found and found["book_title_idx"] == (False, ["title"])
    assert any(cols == ["author", "year"] and not uniq for uniq, cols in found.values()), found
    assert any(cols == ["title", "author"] and uniq for uniq, cols in found.values()), found


async def test_meta_unique_together(db):
    await create_tables(Book)
    await Book.create(title="Dune", author="Herbert", year=1965)
    await Book.create(title="Dune", author="Someone", year=2000)  # one column alone may repeat
    await Book.create(title="Other", author="Herbert", year=1970)
    with pytest.raises(IntegrityError):
        await Book.create(title="Dune", author="Herbert", year=2021)
    assert await Book.objects.count() == 3


def test_unknown_meta_option_is_refused():
    with pytest.raises(ConfigurationError, match="ordering"):
        class Bad(Model):
            n = IntegerField()

            class Meta:
                orderin = ["n"]


# abstract inheritance (the guide's Employee / Engineer / Manager) ---------------------------------
async def test_abstract_inheritance_gives_separate_tables(db):
    await create_tables(Engineer, Manager)
    assert [f.name for f in Engineer._meta.fields] == ["id", "name", "engineer_info"]
    assert [f.name for f in Manager._meta.fields] == ["id", "name", "manager_info"]
    assert Engineer._meta.get_field("name") is not Manager._meta.get_field("name")
    e = await Engineer.create(name="Ada", engineer_info="compilers")
    m = await Manager.create(name="Grace", manager_info="navy")
    assert [x.name for x in await Engineer.objects.all()] == ["Ada"]
    assert [x.name for x in await Manager.objects.all()] == ["Grace"]
    assert await db.fetch_value("SELECT engineer_info FROM engineers") == "compilers"
    assert await db.fetch_value("SELECT manager_info FROM managers") == "navy"
    assert e.pk == m.pk == 1  # independent tables, independent keys
    assert e != m
    with pytest.raises(ValidationError, match="Engineer.name"):
        await Engineer.create(name="x" * 101, engineer_info="i")


async def test_abstract_model_has_no_table_manager_or_instances(db):
    assert Employee._meta.abstract
    assert not Engineer._meta.abstract
    with pytest.raises(AttributeError):
        Employee.objects  # noqa: B018
    with pytest.raises(TypeError):
        Employee(name="x")
    with pytest.raises(ConfigurationError):
        await create_tables(Employee)


def test_concrete_inheritance_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="abstract"):
        class SubPerson(Person):
            extra = CharField(max_length=5)


# save / create / delete / refresh -----------------------------------------------------------------
async def test_save_inserts_then_updates(db):
    await create_tables(Person)
    p = Person(name="Ann", age=30)
    assert p.pk is None
    with statements(db) as log:
        await p.save()
    assert p.pk is not None
    assert [e.sql.split()[0].upper() for e in log] == ["INSERT"]
    p.age = 31
    with statements(db) as log:
        await p.save()
    assert [e.sql.split()[0].upper() for e in log] == ["UPDATE"]
    assert await Person.objects.count() == 1
    assert (await Person.objects.get(pk=p.pk)).age == 31


async def test_save_update_fields_writes_only_those_columns(db):
    await create_tables(Person)
    p = await Person.create(name="Ann", age=30, city="Oslo")
    a = await Person.objects.get(pk=p.pk)
    b = await Person.objects.get(pk=p.pk)
    a.name = "Anna"
    b.age = 99
    await a.save(update_fields=["name"])
    await b.save(update_fields=["age"])
    fresh = await Person.objects.get(pk=p.pk)
    assert (fresh.name, fresh.age, fresh.city) == ("Anna", 99, "Oslo")
    with statements(db) as log:
        await a.save(update_fields=["city"])
    assert len(log) == 1 and "name" not in log[0].sql and "city" in log[0].sql
    with pytest.raises(FieldError, match="nmae"):
        await a.save(update_fields=["nmae"])


async def test_update_fields_skips_validation_of_other_fields(db):
    await create_tables(Person)
    p = await Person.create(name="Ann", age=30)
    p.city = "x" * 500  # invalid, but not being saved
    p.age = 31
    await p.save(update_fields=["age"])
    fresh = await Person.objects.get(pk=p.pk)
    assert fresh.age == 31 and fresh.city is None


async def test_model_create_and_manager_create(db):
    await create_tables(Person)
    a = await Person.create(name="a", age=1)
    b = await Person.objects.create(name="b", age=2)
    assert isinstance(a, Person) and isinstance(b, Person)
    assert sorted(await Person.objects.values_list("name", flat=True)) == ["a", "b"]


async def test_delete(db):
    await create_tables(Person)
    a = await Person.create(name="a")
    b = await Person.create(name="b")
    pk = a.pk
    assert await a.delete() == 1
    with pytest.raises(Person.DoesNotExist):
        await Person.objects.get(pk=pk)
    assert await a.delete() == 0
    assert [p.pk for p in await Person.objects.all()] == [b.pk]
    with pytest.raises(ValueError):
        await Person(name="never saved").delete()


async def test_saving_a_deleted_instance_inserts_it_again(db):
    await create_tables(Person)
    a = await Person.create(name="a")
    await a.delete()
    await a.save()
    assert await Person.objects.filter(name="a").count() == 1


async def test_refresh_from_db(db):
    await create_tables(Person)
    p = await Person.create(name="Ann", age=30, city="Oslo")
    await Person.objects.filter(pk=p.pk).update(age=40, city="Rome")
    assert p.age == 30
    await p.refresh_from_db(fields=["age"])
    assert (p.age, p.city) == (40, "Oslo")
    await p.refresh_from_db()
    assert (p.age, p.city) == (40, "Rome")
    await Person.objects.filter(pk=p.pk).delete()
    with pytest.raises(Person.DoesNotExist):
        await p.refresh_from_db()


def test_full_clean_normalises_and_validates():
    p = Person(name="n", age="42")
    p.full_clean()
    assert p.age == 42
    p.age = "forty"
    with pytest.raises(ValidationError, match="Person.age"):
        p.full_clean()
    p.full_clean(exclude=["age"])


# identity, repr -----------------------------------------------------------------------------------
async def test_equality_and_hash_by_primary_key(db):
    await create_tables(Person, Engineer)
    p = await Person.create(name="a")
    q = await Person.create(name="b")
    one, two = await Person.objects.get(pk=p.pk), await Person.objects.get(pk=p.pk)
    assert one == two and one is not two and hash(one) == hash(two)
    assert one != q
    assert len({one, two, q}) == 2
    e = await Engineer.create(name="a", engineer_info="x")
    assert e.pk == p.pk and e != p
    unsaved, other = Person(name="u"), Person(name="u")
    assert unsaved == unsaved and unsaved != other
    with pytest.raises(TypeError):
        hash(unsaved)


async def test_repr_names_the_class_and_key(db):
    await create_tables(Person)
    p = await Person.create(name="Zoë")
    text = repr(p)
    assert text.startswith("<Person") and f"id={p.pk}" in text and "Zoë" in text


# per-model errors ---------------------------------------------------------------------------------
async def test_does_not_exist_and_multiple_objects_returned(db):
    await create_tables(Person, Book)
    await Person.create(name="twin")
    await Person.create(name="twin")
    with pytest.raises(Person.DoesNotExist) as info:
        await Person.objects.get(name="nobody")
    assert isinstance(info.value, ObjectDoesNotExist)
    assert "nobody" in str(info.value)
    with pytest.raises(Person.MultipleObjectsReturned) as many:
        await Person.objects.get(name="twin")
    assert isinstance(many.value, MultipleObjectsReturned)
    assert Person.DoesNotExist is not Book.DoesNotExist
    assert not issubclass(Person.DoesNotExist, Book.DoesNotExist)
    with pytest.raises(Book.DoesNotExist):
        await Book.objects.get(pk=1)


@pytest.mark.parametrize(("kwargs", "hint"), [
    ({"nmae": "x"}, "'name'"), ({"agee": 3}, "'age'"), ({"is_actve": True}, "'is_active'"),
])
def test_unknown_constructor_kwarg_is_field_error_with_close_matches(kwargs, hint):
    with pytest.raises(FieldError) as info:
        Person(**kwargs)
    message = str(info.value)
    assert "Person" in message and next(iter(kwargs)) in message
    assert "Did you mean" in message and hint in message


async def test_unknown_create_kwarg_runs_no_sql(db):
    await create_tables(Person)
    with statements(db) as log, pytest.raises(FieldError, match="Did you mean 'city'"):
        await Person.create(name="x", ciyt="Oslo")
    assert log == []
