"""The one importer of the Rust extension ``covet._covet_rs``.

It says whether the module is there and whether ``COVET_PURE_PYTHON=1`` asks for the pure-Python
reference. Callers (``orm/sql`` for compiling, ``orm/hydrate`` for decoding, the SQLite adapter for
the native engine) ask this module which implementation to use; nothing else imports the extension.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = ["native", "NATIVE_AVAILABLE", "USE_NATIVE", "IMPORT_ERROR", "implementation"]

native: ModuleType | None
IMPORT_ERROR: str | None = None
try:
    from covet import _covet_rs as native
except ImportError as exc:  # pragma: no cover - exercised only without a build
    native = None
    IMPORT_ERROR = str(exc)

NATIVE_AVAILABLE: bool = native is not None
USE_NATIVE: bool = NATIVE_AVAILABLE and os.environ.get("COVET_PURE_PYTHON", "") not in ("1", "true")


def implementation() -> str:
    """``'rust'`` when the Rust core is in use, ``'python'`` for the reference."""
    return "rust" if USE_NATIVE else "python"
