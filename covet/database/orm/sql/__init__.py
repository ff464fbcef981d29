"""SQL layer: the neutral tree, its compilers (Rust or the Python reference) and DDL.

``compile_sql(tree, dialect)`` is the single entry point the ORM uses; it picks the Rust compiler
through ``covet._native`` and caches the text by tree (trees hold no values, so a repeated query
shape costs one dictionary lookup).
"""

from __future__ import annotations

from typing import Any

from covet import _native
from covet.database.orm.sql import reference

__all__ = ["compile_sql", "quote_ident", "clear_cache"]

quote_ident = reference.quote_ident

_CACHE: dict[tuple[Any, str], str] = {}
_CACHE_MAX = 4096

if _native.USE_NATIVE:
    _compile = _native.native.compile_sql  # type: ignore[union-attr]
else:
    _compile = reference.compile_sql


def compile_sql(tree: Any, dialect: str) -> str:
    """Compile ``tree`` for ``dialect``, from the shape cache when it was seen before."""
    key = (tree, dialect)
    try:
        return _CACHE[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable tree (lists): compile without caching
        return _compile(tree, dialect)
    sql = _compile(tree, dialect)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = sql
    return sql


def clear_cache() -> None:
    _CACHE.clear()
