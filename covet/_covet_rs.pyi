"""The Rust core of CovetPy (``rust_ext/``), built by maturin as ``covet._covet_rs``.

Import it only through ``covet._native``, which says whether it is there and whether the
pure-Python reference has been asked for instead.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["__version__", "compile_sql"]

__version__: Final[str]
"""The version of the Rust crate (``Cargo.toml``)."""

def compile_sql(tree: tuple[Any, ...], dialect: str) -> str:
    """Compile one statement tree to SQL text for ``dialect``.

    The Rust twin of ``covet.database.orm.sql.reference.compile_sql``: for every tree it returns
    byte-for-byte the same text, and it refuses every tree the reference refuses.

    Arguments:
        tree: a ``select``, ``insert``, ``update`` or ``delete`` node in the neutral tree format of
            ``covet.database.orm.sql.tree``, made of tuples, ``str``, ``int``, ``bool`` and
            ``None``. Values never appear in it; parameters are ``("param", i)`` with ``i >= 1``.
        dialect: ``'sqlite'`` (placeholders ``?i``) or ``'postgresql'`` (placeholders ``$i``).

    Returns:
        The SQL text. Every identifier is double-quoted with inner ``"`` doubled.

    Raises:
        ValueError: the dialect is unknown, or the tree is malformed or holds an unknown node,
            function, operator, constant or join kind, an invalid identifier (not a string, empty,
            or containing NUL), or an invalid parameter index or integer literal (not an
            ``int``, a ``bool``, or an index below 1).
        RecursionError: selects and expressions nest more than 700 levels deep (the reference
            gives up before that at Python's default recursion limit).
    """
