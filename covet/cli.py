"""The ``covet`` command: ``covet demo``, ``covet shell`` (later ``covet migration ...``).

Barrier: argument parsing only; the work lives in ``covet_shell`` (interactive pieces, rich
output) and ``covet.database``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from covet.database import close_all, configure
    from covet_shell import demo

    console = Console()
    configure(f"sqlite:///{args.path}")
    console.print(f"[bold]CovetPy demo[/bold]: building [cyan]{args.path}[/cyan] (SQLite)")

    async def run() -> None:
        with Progress(console=console, transient=True) as progress:
            tasks: dict[str, TaskID] = {}

            def report(table: str, done: int, total: int) -> None:
                if table not in tasks:
                    tasks[table] = progress.add_task(f"loading {table}", total=total)
                progress.update(tasks[table], completed=done)

            counts = await demo.build_demo(users=args.users, progress=report)
        console.print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        if not args.no_tour:
            await demo.run_tour(console)
        await close_all()

    asyncio.run(run())
    hint = ("covet shell --demo" if args.path == "covet_demo.db"
            else f"covet shell --database sqlite:///{args.path}")
    console.print(f"\nExplore it: [bold]{hint}[/bold]")
    return 0


def _shell_arguments(parser: argparse.ArgumentParser) -> None:
    from covet_shell.repl import add_arguments

    add_arguments(parser)


def _shell(args: argparse.Namespace) -> int:
    from covet_shell.repl import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="covet", description="CovetPy command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build the SQLite demo database and tour it")
    demo.add_argument("--path", default="covet_demo.db", help="SQLite file to (re)create")
    demo.add_argument("--users", type=int, default=60, help="number of demo users")
    demo.add_argument("--no-tour", action="store_true", help="only build the database")
    demo.set_defaults(func=_demo)
    shell = sub.add_parser(
        "shell", help="IPython with the models loaded; queries run without await",
        description="IPython's terminal with the covet_shell extension loaded.",
    )
    _shell_arguments(shell)
    shell.set_defaults(func=_shell)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
