"""``covet shell``: IPython's terminal with ``covet_shell`` loaded.

Barrier: process-level set-up only (which database, which models, the demo file), then IPython's
own terminal application. Everything a cell can do comes from the extension, so ``-c CODE`` runs
through the same cell rewrite, top-level await and rendering as an interactive session, and the
exit status says whether it raised (``SystemExit`` keeps its own code).

Examples::

    covet shell --demo                       # build covet_demo.db if missing, load its models
    covet shell --database postgresql://u:p@localhost/app --models app.models
    covet shell -c "User.objects.count()"    # run, print, exit (status 1 on an exception)
    covet shell -- --simple-prompt           # options after -- go to IPython
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``covet shell`` options (``covet/cli.py`` owns the parser)."""
    parser.add_argument("--database", metavar="URL",
                        help="database URL or SQLite path (default: $COVET_DATABASE_URL, "
                             "[tool.covet] database, else ./covet.db)")
    parser.add_argument("--models", metavar="MODULES",
                        help="comma-separated model modules to import (default: "
                             "$COVET_MODELS, [tool.covet] models, else ./models.py)")
    parser.add_argument("--demo", action="store_true",
                        help="use the demo database (building covet_demo.db if missing) "
                             "and its models")
    parser.add_argument("-c", dest="code", metavar="CODE",
                        help="run CODE as one cell and exit (status 1 if it raises)")
    parser.add_argument("ipython_args", nargs=argparse.REMAINDER,
                        help="after --: options for IPython (e.g. --simple-prompt)")


def _use_database(url: str, source: str) -> None:
    from covet.database import DatabaseConfig

    if "://" in url:
        DatabaseConfig(url, source=source)
    else:
        DatabaseConfig(path=url, source=source)


def _build_demo(path: Path) -> None:
    """Create the demo database at ``path`` (the same data as ``covet demo``)."""
    from covet.database import close_all
    from covet_shell.demo import build_demo

    async def build() -> dict[str, int]:
        try:
            return await build_demo()
        finally:
            await close_all()

    print(f"building the demo database {path} ...", file=sys.stderr)
    counts = asyncio.run(build())
    print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()), file=sys.stderr)


def prepare(args: argparse.Namespace) -> None:
    """Configure the database and the model modules from the command line options."""
    from covet.database.exceptions import ConfigurationError
    from covet_shell.autoload import MODELS_ENV
    from covet_shell.demo import DEMO_PATH

    if args.demo:
        if args.database:
            raise ConfigurationError("--demo uses its own SQLite file (covet_demo.db); "
                                     "leave out --database, or build elsewhere with "
                                     "`covet demo --path FILE`")
        path = Path(DEMO_PATH).resolve()
        _use_database(str(path), "covet shell --demo")
        if not path.exists():
            _build_demo(path)
        os.environ[MODELS_ENV] = "covet_shell.demo"
    elif args.database:
        _use_database(args.database, "covet shell --database")
    if args.models:
        os.environ[MODELS_ENV] = args.models


def _close_pools() -> None:
    """Close the pools on IPython's loop, where the session opened them."""
    from IPython.core.async_helpers import get_asyncio_loop

    from covet.database import close_all

    loop = get_asyncio_loop()
    if not loop.is_running():
        loop.run_until_complete(close_all())


def _exit_status(result: Any) -> int:
    error = result.error_before_exec or result.error_in_exec
    if error is None:
        return 0
    if isinstance(error, SystemExit):
        code = error.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 1


def run(args: argparse.Namespace) -> int:
    """Start the shell (or run ``-c CODE``); the process exit status."""
    from IPython.terminal.ipapp import TerminalIPythonApp
    from traitlets.config import Config

    from covet.database.exceptions import ConfigurationError

    try:
        prepare(args)
    except ConfigurationError as exc:
        print(f"covet shell: {exc}", file=sys.stderr)
        return 2
    ipython_args = [a for a in args.ipython_args if a != "--"]
    config = Config()
    config.InteractiveShellApp.extensions = ["covet_shell"]
    if args.code is not None:
        config.TerminalIPythonApp.display_banner = False
        config.CovetMagics.banner = False
    app = TerminalIPythonApp.instance(config=config)
    app.initialize(ipython_args)
    shell = app.shell
    assert shell is not None
    if "covet_shell" not in shell.extension_manager.loaded:
        return 1  # IPython printed why the extension failed to load
    try:
        if args.code is not None:
            result = shell.run_cell(args.code, store_history=False)
            return _exit_status(result)
        app.start()
        return 0
    finally:
        _close_pools()
