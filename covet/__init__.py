"""CovetPy: an async-first, Django-style ORM with a Rust core and an interactive shell."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
