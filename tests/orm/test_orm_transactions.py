"""Transactions with the ORM: context manager, both decorators, savepoints, atomic bulk writes."""

from __future__ import annotations

import asyncio

import pytest
from models_core import Account, Person

from covet.database import IntegrityError, ValidationError, create_tables
from covet.database.exceptions import TransactionError
from covet.database.orm import F
from covet.database.transaction import transaction


class Boom(Exception):
    pass


async def handles() -> list[str]:
    return await Account.objects.order_by("handle").values_list("handle", flat=True)


async def test_context_manager_commits(db):
    await create_tables(Account)
    async with transaction() as tx:
        assert db.in_transaction()
        await Account.create(handle="a")
        await Account.objects.filter(handle="a").update(balance=5)
        assert tx.active and not tx.is_savepoint
    assert not db.in_transaction()
    assert (await Account.objects.get(handle="a")).balance == 5


async def test_exception_rolls_everything_back(db):
    await create_tables(Account)
    await Account.create(handle="before")
    with pytest.raises(Boom):
        async with transaction():
            await Account.create(handle="a")
            await Account.objects.filter(handle="before").update(balance=100)
            await Account.objects.filter(handle="before").delete()
            await Account.objects.bulk_create([Account(handle="b"), Account(handle="c")])
            raise Boom
    assert await handles() == ["before"]
    assert (await Account.objects.get(handle="before")).balance == 0


async def test_bare_decorator(db):
    await create_tables(Account)

    @transaction
    async def create_two(fail: bool) -> str:
        await Account.create(handle="x")
        await Account.create(handle="y")
        if fail:
            raise Boom
        return "done"

    with pytest.raises(Boom):
        await create_two(True)
    assert await handles() == []
    assert await create_two(False) == "done"
    assert await handles() == ["x", "y"]
    assert create_two.__name__ == "create_two"


async def test_called_decorator(db):
    await create_tables(Account)

    @transaction()
    async def transfer(src: str, dst: str, amount: int) -> None:
        await Account.objects.filter(handle=src).update(balance=F("balance") - amount)
        if (await Account.objects.get(handle=src)).balance < 0:
            raise ValueError("insufficient funds")
        await Account.objects.filter(handle=dst).update(balance=F("balance") + amount)

    await Account.objects.bulk_create([Account(handle="a", balance=10), Account(handle="b")])
    await transfer("a", "b", 7)
    with pytest.raises(ValueError):
        await transfer("a", "b", 7)
    balances = await Account.objects.order_by("handle").values_list("balance", flat=True)
    assert balances == [3, 7]


async def test_nested_transaction_is_a_savepoint(db):
    await create_tables(Account)
    async with transaction():
        await Account.create(handle="outer")
        with pytest.raises(Boom):
            async with transaction() as inner:
                assert inner.is_savepoint
                await Account.create(handle="inner")
                raise Boom
        async with transaction():
            await Account.create(handle="kept")
        await Account.create(handle="after")
    assert await handles() == ["after", "kept", "outer"]


async def test_tx_savepoint_as_in_the_guide(db):
    await create_tables(Account)
    async with transaction() as tx:
        user = await Account.create(handle="alice")
        try:
            async with tx.savepoint():
                await Account.create(handle="risky")
                await Account.create(handle="alice")  # unique violation: rolls back "risky"
        except IntegrityError:
            pass
        user.balance = 1
        await user.save()
    assert await handles() == ["alice"]
    assert (await Account.objects.get(handle="alice")).balance == 1


async def test_integrity_error_inside_savepoint_keeps_outer_usable(db):
    await create_tables(Account)
    await Account.create(handle="dup")
    async with transaction():
        with pytest.raises(IntegrityError):
            async with transaction():
                await Account.create(handle="dup")
        await Account.create(handle="fine")  # the outer transaction was not poisoned
    assert await handles() == ["dup", "fine"]


async def test_failed_bulk_create_inside_a_transaction_leaves_nothing(db):
    await create_tables(Account, Person)
    with pytest.raises(IntegrityError):
        async with transaction():
            await Person.create(name="written first")
            await Account.objects.bulk_create(
                [Account(handle=h) for h in ("a", "b", "c", "b", "d")], batch_size=2)
    assert await handles() == []
    assert await Person.objects.count() == 0


async def test_caught_bulk_create_failure_in_a_transaction_undoes_only_the_bulk(db):
    await create_tables(Account)
    async with transaction():
        await Account.create(handle="first")
        with pytest.raises(IntegrityError):
            await Account.objects.bulk_create(
                [Account(handle=h) for h in ("a", "b", "first")], batch_size=1)
        await Account.create(handle="last")
    assert await handles() == ["first", "last"]


async def test_validation_error_inside_transaction_rolls_back(db):
    await create_tables(Account)
    with pytest.raises(ValidationError):
        async with transaction():
            await Account.create(handle="ok")
            await Account.create(handle="x" * 31)
    assert await handles() == []


async def test_rollback_is_invisible_to_other_tasks_and_commit_visible(db):
    await create_tables(Account)
    seen_outside: list[int] = []
    inside = asyncio.Event()
    checked = asyncio.Event()

    async def outsider() -> None:
        await inside.wait()
        seen_outside.append(await Account.objects.count())
        checked.set()

    task = asyncio.get_running_loop().create_task(outsider())  # started outside: no inheritance
    async with transaction():
        await Account.create(handle="uncommitted")
        inside.set()
        await checked.wait()
        assert await Account.objects.count() == 1  # visible to its own transaction
    await task
    assert seen_outside == [0]
    assert await Account.objects.count() == 1


async def test_gather_inside_a_transaction_is_atomic(db):
    await create_tables(Account)
    with pytest.raises(IntegrityError):
        async with transaction():
            await asyncio.gather(*(Account.create(handle=f"h{i}") for i in range(5)))
            await asyncio.gather(Account.create(handle="h9"), Account.create(handle="h0"))
    assert await handles() == []


async def test_savepoint_outside_a_transaction_is_refused(db):
    await create_tables(Account)
    tx = transaction()
    with pytest.raises(TransactionError):
        async with tx.savepoint():
            pass


async def test_iterator_inside_a_transaction_sees_its_own_writes(db):
    await create_tables(Account)
    async with transaction():
        await Account.objects.bulk_create([Account(handle=f"h{i}") for i in range(5)])
        seen = [a.handle async for a in Account.objects.order_by("handle").iterator(chunk_size=2)]
        assert seen == [f"h{i}" for i in range(5)]
        streamed = [a.handle async for a in Account.objects.filter(handle__gte="h3")]
        assert sorted(streamed) == ["h3", "h4"]
        await Account.create(handle="after-iteration")  # the connection is usable again
    assert await Account.objects.count() == 6


async def test_get_or_create_reraises_an_unrelated_integrity_error(db):
    # Django: when the INSERT fails and the row still cannot be found, the IntegrityError is
    # re-raised (not hidden behind DoesNotExist)
    await create_tables(Person)
    await Person.create(name="Alice", email="alice@x.org")
    with pytest.raises(IntegrityError):
        await Person.objects.get_or_create(name="Zed", defaults={"email": "alice@x.org"})
    assert await Person.objects.filter(name="Zed").count() == 0
