"""The alias registry and the context variable that binds transactions to tasks.

Barrier: this module maps an alias (``'default'``, ...) to its :class:`DatabaseConfig` and to one
lazily created :class:`~covet.database.adapters.base.Adapter`, and holds the context variable that
says which transaction (if any) the current task runs in, per alias. It does no I/O itself except
through ``get_adapter`` (which connects) and ``close_all``.

Transactions are bound with a :class:`contextvars.ContextVar`. Tasks copy the context when they
are created, so a task started inside ``transaction()`` inherits it and runs its statements on the
transaction's connection (one at a time, under :attr:`TransactionState.lock`), while a task
started elsewhere never sees it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import TYPE_CHECKING

from covet.database.adapters import adapter_class
from covet.database.config import DatabaseConfig, resolve_default_config
from covet.database.exceptions import ConfigurationError, TransactionError, close_matches

if TYPE_CHECKING:
    from covet.database.adapters.base import Adapter, Connection

__all__ = [
    "TransactionState",
    "adapter_for",
    "on_adapter_created",
    "aliases",
    "bind_transaction",
    "close_all",
    "current_connection",
    "current_transaction",
    "get_adapter",
    "get_config",
    "register",
    "registered_config",
    "unbind_transaction",
    "unregister",
]

_configs: dict[str, DatabaseConfig] = {}
_adapters: dict[str, Adapter] = {}
_retired: list[Adapter] = []
_created_hooks: list[Callable[[Adapter], None]] = []

_EMPTY: Mapping[str, TransactionState] = MappingProxyType({})
_transactions: ContextVar[Mapping[str, TransactionState]] = ContextVar(
    "covet_transactions", default=_EMPTY
)


class TransactionState:
    """One open database transaction: its connection, the statement lock, the savepoint stack.

    Shared by the outermost ``transaction()`` and every savepoint and task nested in it.

    Attributes:
        adapter: the adapter that owns ``connection``.
        connection: the pooled connection held for the whole transaction.
        lock: serialises statements of concurrent tasks on ``connection``.
        savepoints: names of the savepoints currently open, innermost last.
        closed: True once the transaction committed or rolled back.
        rollback_only: the outermost block rolls back instead of committing (a joined block
            failed, or a savepoint could not be rolled back).
        doomed: why the transaction can only roll back now (a statement in it was cancelled:
            PostgreSQL aborts the transaction, SQLite may already have rolled it back), or None.
    """

    __slots__ = (
        "adapter", "connection", "lock", "savepoints", "undone", "closed", "rollback_only",
        "doomed", "_counter",
    )

    def __init__(self, adapter: Adapter, connection: Connection) -> None:
        self.adapter = adapter
        self.connection = connection
        self.lock = asyncio.Lock()
        self.savepoints: list[str] = []
        self.undone: set[str] = set()  # savepoints rolled back by an enclosing one's rollback
        self.closed = False
        self.rollback_only = False
        self.doomed: str | None = None
        self._counter = 0

    def ensure_open(self) -> None:
        """Raise if a task uses a transaction that has finished or can only roll back."""
        if self.closed:
            raise TransactionError(
                f"the transaction on alias {self.adapter.alias!r} this task inherited has already "
                "finished; await the task inside the transaction, or start it outside"
            )
        if self.doomed is not None:
            raise TransactionError(
                f"the transaction on alias {self.adapter.alias!r} can only roll back: "
                f"{self.doomed}"
            )

    def doom(self, reason: str) -> None:
        """Refuse further statements; the outermost block will roll back."""
        self.doomed = reason
        self.rollback_only = True

    def next_savepoint_name(self) -> str:
        self._counter += 1
        return f"covet_sp_{self._counter}"

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        alias = self.adapter.alias
        return f"<TransactionState alias={alias!r} {state} savepoints={self.savepoints}>"


# registry ------------------------------------------------------------------------------------
def register(config: DatabaseConfig) -> None:
    """Register ``config`` under ``config.alias``, retiring an adapter already open for it."""
    _retire(config.alias)
    _configs[config.alias] = config


def unregister(alias: str = "default") -> None:
    """Forget ``alias``: its configuration and its adapter (closed by the next ``close_all``)."""
    _retire(alias)
    _configs.pop(alias, None)


def _retire(alias: str) -> None:
    adapter = _adapters.pop(alias, None)
    if adapter is not None:
        _retired.append(adapter)


def registered_config(alias: str = "default") -> DatabaseConfig | None:
    """The configuration registered for ``alias``, or None (no default resolution)."""
    return _configs.get(alias)


def aliases() -> list[str]:
    """The registered aliases."""
    return list(_configs)


def get_config(alias: str = "default") -> DatabaseConfig:
    """The configuration of ``alias``; for ``'default'``, resolve (and register) it if needed.

    Raises:
        ConfigurationError: ``alias`` is not ``'default'`` and was never configured.
    """
    config = _configs.get(alias)
    if config is not None:
        return config
    if alias == "default":
        config = resolve_default_config(alias)
        register(config)
        return config
    hint = close_matches(alias, _configs)
    extra = f"; did you mean {hint[0]!r}?" if hint else ""
    known = ", ".join(map(repr, _configs)) or "none"
    raise ConfigurationError(
        f"no database configured for alias {alias!r}{extra} (configured: {known}); "
        f"use configure(url, alias={alias!r}) or DatabaseConfig(..., alias={alias!r})"
    )


def adapter_for(alias: str = "default") -> Adapter:
    """The adapter of ``alias``, created on first use without any I/O (no connection yet)."""
    adapter = _adapters.get(alias)
    if adapter is None:
        config = get_config(alias)
        adapter = adapter_class(config.engine)(config)
        _adapters[alias] = adapter
        for hook in list(_created_hooks):
            hook(adapter)
    return adapter


def on_adapter_created(hook: Callable[[Adapter], None]) -> Callable[[], None]:
    """Call ``hook(adapter)`` whenever an adapter is created (e.g. after ``configure()``), so
    that a listener such as the shell's query ledger follows a reconfigured alias at once.

    Returns:
        A function that removes the hook.
    """
    _created_hooks.append(hook)

    def remove() -> None:
        if hook in _created_hooks:
            _created_hooks.remove(hook)

    return remove


async def get_adapter(alias: str = "default") -> Adapter:
    """The connected adapter of ``alias``; opens its pool lazily on the running event loop."""
    adapter = _adapters.get(alias) or adapter_for(alias)
    await adapter.connect()
    return adapter


async def close_all() -> None:
    """Close the pool of every adapter (registered and retired). They reopen lazily on use."""
    adapters = list(_adapters.values()) + _retired
    _retired.clear()
    errors: list[BaseException] = []
    for adapter in adapters:
        try:
            await adapter.close()
        except Exception as exc:  # close the others before reporting
            errors.append(exc)
    if errors:
        raise errors[0]


# the current transaction ---------------------------------------------------------------------
def current_transaction(alias: str = "default") -> TransactionState | None:
    """The open transaction of ``alias`` the current task runs in, or None."""
    state = _transactions.get().get(alias)
    return state


def current_connection(alias: str = "default") -> Connection | None:
    """The connection of the current task's transaction on ``alias``, or None outside one."""
    state = _transactions.get().get(alias)
    return None if state is None or state.closed else state.connection


def bind_transaction(
    alias: str, state: TransactionState | None
) -> Token[Mapping[str, TransactionState]]:
    """Make ``state`` the current transaction of ``alias`` in this context (None unbinds).

    Returns:
        The token to hand to :func:`unbind_transaction`.
    """
    bound = dict(_transactions.get())
    if state is None:
        bound.pop(alias, None)
    else:
        bound[alias] = state
    return _transactions.set(MappingProxyType(bound))


def unbind_transaction(token: Token[Mapping[str, TransactionState]], alias: str) -> None:
    """Undo :func:`bind_transaction`; tolerant of being called from another context."""
    try:
        _transactions.reset(token)
    except ValueError:  # exited in a different context than entered: drop the alias only
        bound = dict(_transactions.get())
        if bound.pop(alias, None) is not None:
            _transactions.set(MappingProxyType(bound))
