"""Database adapters and the scheme → adapter class registry.

Barrier: this package is the only place that knows a driver (aiosqlite, asyncpg). Everything above
it talks to an :class:`~covet.database.adapters.base.Adapter`.

The registry maps a URL scheme (``sqlite``, ``postgresql``, ``postgres``, ...) to a canonical
engine name and to the adapter class, named as ``"module:Class"`` so that a driver module is
imported only when its engine is used. Adding a backend means adding one entry with
:func:`register_adapter`, with no other edits.

An engine is a dialect, optionally with a driver after ``+``. SQLite has three:

* ``sqlite`` (also ``sqlite3``): the default engine, the native Rust executor
  (``sqlite_native.py``). If the Rust module is not built it falls back to aiosqlite with a
  ``RuntimeWarning``, except under ``CI=true``, where that is an ``ImportError``. The environment
  variable ``COVET_SQLITE_ENGINE=aiosqlite`` makes ``sqlite`` mean the reference engine instead
  (``native``, the default, keeps it).
* ``sqlite+native``: the Rust executor, never a fallback.
* ``sqlite+aiosqlite`` (also ``aiosqlite``): the reference engine, aiosqlite (``sqlite.py``).

``COVET_PURE_PYTHON=1`` selects the pure-Python compiler and decoder only; it does not change the
SQLite engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from covet.database.exceptions import ConfigurationError, close_matches

if TYPE_CHECKING:
    from covet.database.adapters.base import Adapter

__all__ = [
    "Adapter",
    "Capabilities",
    "Connection",
    "PoolStats",
    "QueryEvent",
    "NativeSQLiteAdapter",
    "PostgreSQLAdapter",
    "SQLiteAdapter",
    "adapter_class",
    "canonical_engine",
    "engine_dialect",
    "register_adapter",
    "registered_schemes",
]

# scheme -> (canonical engine name, "module:Class")
_REGISTRY: dict[str, tuple[str, str]] = {}


def register_adapter(scheme: str, target: str, engine: str | None = None) -> None:
    """Map a URL scheme to an adapter class.

    Args:
        scheme: the URL scheme or engine name, e.g. ``"postgres"`` (case-insensitive).
        target: the adapter class as ``"package.module:ClassName"``; imported on first use.
        engine: the canonical engine name the scheme stands for (defaults to ``scheme``).
    """
    _REGISTRY[scheme.lower()] = (engine or scheme.lower(), target)


register_adapter("sqlite", "covet.database.adapters.sqlite_native:DefaultSQLiteAdapter")
register_adapter("sqlite3", "covet.database.adapters.sqlite_native:DefaultSQLiteAdapter", "sqlite")
register_adapter("sqlite+native", "covet.database.adapters.sqlite_native:NativeSQLiteAdapter")
register_adapter("sqlite+aiosqlite", "covet.database.adapters.sqlite:SQLiteAdapter")
register_adapter("aiosqlite", "covet.database.adapters.sqlite:SQLiteAdapter", "sqlite+aiosqlite")
register_adapter("postgresql", "covet.database.adapters.postgresql:PostgreSQLAdapter")
for _alias in ("postgres", "pgsql", "pg", "postgresql+asyncpg", "postgres+asyncpg"):
    register_adapter(_alias, "covet.database.adapters.postgresql:PostgreSQLAdapter", "postgresql")
del _alias


def registered_schemes() -> list[str]:
    """Every scheme the registry knows, sorted."""
    return sorted(_REGISTRY)


def canonical_engine(scheme: str) -> str:
    """The canonical engine name (``'sqlite'``, ``'postgresql'``) for a scheme or engine name.

    Raises:
        ConfigurationError: the scheme is unknown; the message lists the close matches.
    """
    entry = _REGISTRY.get(scheme.lower())
    if entry is None:
        hint = close_matches(scheme.lower(), _REGISTRY)
        extra = f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""
        raise ConfigurationError(
            f"unknown database engine {scheme!r}{extra} "
            f"(known: {', '.join(sorted({e for e, _ in _REGISTRY.values()}))})"
        )
    return entry[0]


def engine_dialect(engine: str) -> str:
    """The dialect of a canonical engine name: ``'sqlite+aiosqlite'`` → ``'sqlite'``."""
    return engine.partition("+")[0]


def adapter_class(scheme: str) -> type[Adapter]:
    """Import and return the adapter class registered for ``scheme``."""
    canonical_engine(scheme)  # raises a helpful error for unknown names
    module_name, _, class_name = _REGISTRY[scheme.lower()][1].partition(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), class_name)
    return cls


_LAZY = {
    "Adapter": "covet.database.adapters.base",
    "Capabilities": "covet.database.adapters.base",
    "Connection": "covet.database.adapters.base",
    "PoolStats": "covet.database.adapters.base",
    "QueryEvent": "covet.database.adapters.base",
    "SQLiteAdapter": "covet.database.adapters.sqlite",
    "NativeSQLiteAdapter": "covet.database.adapters.sqlite_native",
    "PostgreSQLAdapter": "covet.database.adapters.postgresql",
}


def __getattr__(name: str) -> Any:
    """Import the adapter classes lazily, so importing the registry never imports a driver."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
