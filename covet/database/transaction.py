"""``transaction()``: one object for ``async with``, ``@transaction`` and ``@transaction()``.

Barrier: this module decides *when* to BEGIN, COMMIT, ROLLBACK and use savepoints; the adapter
decides *how* for its dialect, and ``covet.database.connections`` binds the open transaction to the
current task through a context variable.

Semantics:

* ``async with transaction() as tx:`` holds one pooled connection for the block; every statement
  of this task (and of tasks it starts, which copy the context) on that alias runs on it, one at
  a time, so ``asyncio.gather()`` inside a transaction works and stays atomic.
* A nested ``transaction()`` or ``async with tx.savepoint():`` is a SAVEPOINT: an exception inside
  rolls back to it, and the outer transaction continues if the exception is caught.
  ``transaction(savepoint=False)`` joins the outer transaction instead; an exception through it
  marks the outer transaction for rollback.
* An exception or a cancellation rolls back; otherwise the block commits. A statement cancelled
  inside a transaction dooms it (PostgreSQL aborts it; SQLite may already have rolled it back):
  further statements raise ``TransactionError`` and the outermost block rolls back, raising
  ``TransactionError`` if it was about to commit. The connection is
  released in ``finally`` and the context variable token reset, whatever happens; the ending
  itself is shielded, so a second cancellation cannot leave a connection half-finished.
* A task that outlives the transaction it inherited gets ``TransactionError`` instead of
  silently writing outside it.
* Savepoints opened *concurrently* by sibling tasks of one transaction share its connection, so
  SQL nests them in the order they were opened. When one ends out of order and that loses or
  merges another's work, the other gets ``TransactionError`` (and if its work can no longer be
  rolled back, the whole transaction rolls back). Sequential savepoints in tasks are fine.
* On SQLite a transaction starts with ``BEGIN IMMEDIATE`` (``readonly=True``: ``BEGIN DEFERRED``);
  on PostgreSQL with ``BEGIN`` (``BEGIN READ ONLY``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from covet.database.adapters.base import release_quietly, shielded
from covet.database.connections import (
    TransactionState,
    bind_transaction,
    current_transaction,
    get_adapter,
    unbind_transaction,
)
from covet.database.exceptions import TransactionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from covet.database.adapters.base import Adapter, Connection

__all__ = ["Transaction", "transaction"]

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("covet.database")


class Transaction:
    """A database transaction, or a savepoint inside one.

    Use it through :func:`transaction`. Attributes after entering: ``adapter``, ``connection``,
    ``is_savepoint``, ``savepoint_name``, ``active``.
    """

    __slots__ = (
        "using", "readonly", "use_savepoint", "_parent", "_state", "_token", "_savepoint_name",
        "_joined", "_rollback_only", "active",
    )

    def __init__(
        self,
        using: str = "default",
        *,
        savepoint: bool = True,
        readonly: bool = False,
        _parent: Transaction | None = None,
    ) -> None:
        self.using = using
        self.readonly = readonly
        self.use_savepoint = savepoint
        self._parent = _parent
        self._state: TransactionState | None = None
        self._token: Token[Mapping[str, TransactionState]] | None = None
        self._savepoint_name: str | None = None
        self._joined = False
        self._rollback_only = False
        self.active = False

    def __repr__(self) -> str:
        if not self.active:
            return f"<Transaction using={self.using!r} inactive>"
        kind = f"savepoint {self._savepoint_name}" if self._savepoint_name else (
            "joined" if self._joined else "outermost"
        )
        return f"<Transaction using={self.using!r} {kind}>"

    # views ----------------------------------------------------------------------------------------
    @property
    def adapter(self) -> Adapter:
        return self._require_state().adapter

    @property
    def connection(self) -> Connection:
        return self._require_state().connection

    @property
    def is_savepoint(self) -> bool:
        return self._savepoint_name is not None

    @property
    def savepoint_name(self) -> str | None:
        return self._savepoint_name

    def _require_state(self) -> TransactionState:
        if self._state is None or not self.active:
            raise TransactionError("this transaction is not active; use it inside `async with`")
        return self._state

    def savepoint(self) -> Transaction:
        """A savepoint inside this transaction: ``async with tx.savepoint(): ...``."""
        return Transaction(self.using, _parent=self)

    def set_rollback(self, rollback: bool = True) -> None:
        """Roll back (instead of committing) when this block ends without an exception."""
        self._require_state()
        self._rollback_only = rollback

    # context manager ----------------------------------------------------------------------------
    async def __aenter__(self) -> Transaction:
        if self.active:
            raise TransactionError(
                "this transaction object is already active; create a new transaction()"
            )
        state: TransactionState | None
        if self._parent is not None:
            state = self._parent._require_state()
        else:
            adapter = await get_adapter(self.using)
            state = current_transaction(self.using)
            if state is not None and state.adapter is not adapter:
                state = None  # the alias was reconfigured since that transaction began
        if state is None:
            await self._begin(adapter)
        elif not self.use_savepoint and self._parent is None:
            state.ensure_open()
            self._state, self._joined = state, True
        else:
            name = state.next_savepoint_name()
            async with state.lock:
                state.ensure_open()
                try:
                    await state.adapter.savepoint(state.connection, name)
                except asyncio.CancelledError:
                    state.doom("a SAVEPOINT statement was cancelled")
                    raise
                state.savepoints.append(name)
            self._state, self._savepoint_name = state, name
        self._rollback_only = False
        self.active = True
        return self

    async def _begin(self, adapter: Adapter) -> None:
        conn = await adapter.acquire()
        try:
            await adapter.begin(conn, self.readonly)
        except BaseException:
            await release_quietly(adapter, conn)
            raise
        state = TransactionState(adapter, conn)
        self._token = bind_transaction(self.using, state)
        self._state = state

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        state = self._require_state()
        commit = exc_type is None and not self._rollback_only
        try:
            if self._joined:
                if not commit:
                    state.rollback_only = True
            elif self._savepoint_name is not None:
                await shielded(self._end_savepoint(state, commit, exc_type is not None))
            else:
                await shielded(self._end(state, commit, exc_type is not None))
        finally:
            if self._token is not None:
                unbind_transaction(self._token, self.using)
            self._token = None
            self._state = None
            self._savepoint_name = None
            self._joined = False
            self.active = False

    async def _end(self, state: TransactionState, commit: bool, failing: bool) -> None:
        adapter, conn = state.adapter, state.connection
        try:
            async with state.lock:
                if commit and not state.rollback_only:
                    try:
                        await adapter.commit(conn)
                    except BaseException:
                        await self._rollback_quietly(state)
                        raise
                elif failing:
                    await self._rollback_quietly(state)  # the block's own error wins
                else:
                    await adapter.rollback(conn)
                    if commit and state.doomed is not None:
                        raise TransactionError(
                            f"the transaction was rolled back, not committed: {state.doomed}"
                        )
        finally:
            state.closed = True
            state.savepoints.clear()
            state.undone.clear()
            await release_quietly(adapter, conn)

    @staticmethod
    async def _rollback_quietly(state: TransactionState) -> None:
        try:
            await state.adapter.rollback(state.connection)
        except Exception:
            state.connection.broken = True  # the pool will not lend it out again
            log.exception("rollback failed on alias %r", state.adapter.alias)

    async def _end_savepoint(self, state: TransactionState, commit: bool, failing: bool) -> None:
        name = self._savepoint_name
        assert name is not None
        async with state.lock:
            if state.closed or state.doomed is not None:
                if failing:
                    return  # the enclosing transaction rolls back (or already has)
                state.ensure_open()
            if name not in state.savepoints:
                # Concurrent savepoints of sibling tasks share one connection: one opened before
                # ours ended first and took ours with it.
                if name in state.undone:
                    state.undone.discard(name)
                    if failing:
                        return  # rolled back already, as this block wants
                    raise TransactionError(
                        f"savepoint {name} was rolled back by a concurrent savepoint of another "
                        "task sharing this transaction; its work is lost"
                    )
                if commit:
                    return  # released already: the work is part of the enclosing level
                state.rollback_only = True
                raise TransactionError(
                    f"savepoint {name} was already released by a concurrent savepoint of another "
                    "task; it cannot be rolled back, so the whole transaction will be"
                )
            index = state.savepoints.index(name)
            try:
                if not commit:
                    await state.adapter.rollback_to_savepoint(state.connection, name)
                    state.undone.update(state.savepoints[index + 1:])
                await state.adapter.release_savepoint(state.connection, name)
            except Exception:
                state.rollback_only = True
                if not failing:
                    raise
                log.exception("rolling back to savepoint %s failed", name)
            finally:
                del state.savepoints[index:]

    # decorator ------------------------------------------------------------------------------------
    def __call__(
        self, fn: Callable[P, Awaitable[R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        """``@transaction()`` / ``@transaction(using='x')``: run each call in a transaction."""
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@transaction decorates async functions; {getattr(fn, '__qualname__', fn)!r} "
                "is not one"
            )
        using, savepoint, readonly = self.using, self.use_savepoint, self.readonly

        @functools.wraps(fn)
        async def run_in_transaction(*args: P.args, **kwargs: P.kwargs) -> R:
            async with Transaction(using, savepoint=savepoint, readonly=readonly):
                return await fn(*args, **kwargs)

        return run_in_transaction


@overload
def transaction(using: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]: ...


@overload
def transaction(
    using: str = "default", *, savepoint: bool = True, readonly: bool = False
) -> Transaction: ...


def transaction(
    using: str | Callable[P, Awaitable[R]] = "default",
    *,
    savepoint: bool = True,
    readonly: bool = False,
) -> Transaction | Callable[P, Coroutine[Any, Any, R]]:
    """A transaction on ``using``: ``async with``, ``@transaction`` or ``@transaction(...)``.

    Args:
        using: the database alias (or, as a bare decorator, the decorated function).
        savepoint: when nested, use a SAVEPOINT (True) or join the outer transaction (False).
        readonly: a read-only transaction (SQLite ``BEGIN DEFERRED``, PostgreSQL ``READ ONLY``).

    Examples::

        async with transaction() as tx:
            ...
            async with tx.savepoint():
                ...

        @transaction
        async def create_user_with_post(): ...

        @transaction(using="analytics")
        async def rebuild(): ...
    """
    if callable(using):
        return Transaction("default")(using)
    return Transaction(using, savepoint=savepoint, readonly=readonly)
