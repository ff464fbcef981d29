"""CovetPy's IPython extension: ``%load_ext covet_shell`` (and ``covet shell``).

Loading it configures the database, imports the project's models into the namespace, lets a
query left as a cell's last line run without ``await``, renders results as tables and adds the
``%covet_*`` magics. ``%unload_ext covet_shell`` undoes all of it. The work lives in
:mod:`covet_shell.magics`; this module only registers it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Called by ``%load_ext covet_shell``."""
    from covet_shell.magics import CovetMagics

    CovetMagics(ipython).install()


def unload_ipython_extension(ipython: Any) -> None:
    """Called by ``%unload_ext covet_shell``."""
    magics = ipython.magics_manager.registry.get("CovetMagics")
    if magics is not None:
        magics.uninstall()
