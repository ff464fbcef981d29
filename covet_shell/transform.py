"""Queries without ``await``: the cell rewrite and the resolve step it calls.

Barrier: this module decides *which* expression of a cell is a query to run and *runs* it on
IPython's own top-level await (it never starts, replaces or nests an event loop). It renders
nothing: the resolve step returns a :class:`~covet_shell.render.QueryResult` that the display
formatters show.

In a Jupyter kernel the event loop is always running, so a display hook cannot run a query.
Instead, an input transformer (``InteractiveShell.input_transformers_post``) parses each cell
and rewrites its **last expression** into ``await __covet_resolve__(<expression>)`` when it is
rooted in a model, manager, QuerySet or model instance of the namespace (or in a name bound to
one earlier in the same cell), or when it is a ``%covet_...`` magic call. The cell then becomes
an async cell and IPython awaits it, in the terminal and in a kernel alike. Left alone:
expressions already awaited, assignments, anything else, and every cell when top-level await
is off (``%autoawait off``) or runs on a loop runner other than asyncio.

A ``%covet_...`` magic call on another line of the cell, or inside a loop, ``if``, ``with``,
``try`` or ``match`` block of the cell (not inside a function body), is awaited the same way and
its result displayed where it stands (once per loop iteration).
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from covet_shell.render import QueryResult, tabulate

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from covet_shell.ledger import QueryLedger

__all__ = ["RESOLVE_NAME", "CellTransformer", "Pending", "Resolver", "is_covet_object", "rewrite"]

RESOLVE_NAME = "__covet_resolve__"
_MAGIC_RUNNERS = ("run_line_magic", "run_cell_magic")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Pending:
    """A magic's database work, to be awaited by the cell (``await`` it, or let the shell).

    Attributes:
        label: what it is, for its repr (``%covet_explain``).
    """

    __slots__ = ("_factory", "label")

    def __init__(self, factory: Callable[[], Awaitable[Any]], label: str) -> None:
        self._factory = factory
        self.label = label

    def __await__(self) -> Any:
        return self._factory().__await__()

    def __repr__(self) -> str:
        return f"<{self.label}: not run yet; await it>"


def is_covet_object(value: Any) -> bool:
    """A model class or instance, a manager, a QuerySet or a related manager."""
    from covet.database.orm.manager import Manager
    from covet.database.orm.models import Model
    from covet.database.orm.query import QuerySet, RawQuerySet
    from covet.database.orm.related import RelatedManager

    if isinstance(value, type):
        return issubclass(value, Model) and value is not Model
    return isinstance(value, (Model, Manager, QuerySet, RawQuerySet, RelatedManager))


# the rewrite ----------------------------------------------------------------------------------
def _root(node: ast.AST, through_await: bool = False) -> str | None:
    """The name an attribute/call/subscript chain starts from (``User`` in ``User.objects...``)."""
    while True:
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif through_await and isinstance(node, ast.Await):
            node = node.value
        else:
            break
    return node.id if isinstance(node, ast.Name) else None


def _is_covet_magic(node: ast.AST) -> bool:
    """``get_ipython().run_line_magic('covet_...', ...)`` (what IPython makes of ``%covet_...``)."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in _MAGIC_RUNNERS
        and isinstance(node.func.value, ast.Call)
        and isinstance(node.func.value.func, ast.Name)
        and node.func.value.func.id == "get_ipython"
        and bool(node.args)
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and node.args[0].value.startswith("covet_")
    )


def _targets(stmt: ast.stmt) -> tuple[list[str], ast.AST | None]:
    if isinstance(stmt, ast.Assign):
        return [t.id for t in stmt.targets if isinstance(t, ast.Name)], stmt.value
    if isinstance(stmt, (ast.AnnAssign, ast.AugAssign)) and isinstance(stmt.target, ast.Name):
        return [stmt.target.id], stmt.value if isinstance(stmt, ast.AnnAssign) else None
    return [], None


def _block_statements(stmt: ast.stmt) -> list[ast.stmt]:
    """The statements inside a top-level compound statement (loops, ``if``, ``with``, ``try``,
    ``match``), at any depth; not those of a function or class body, where ``await`` would
    not be top-level."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return []
    found: list[ast.stmt] = []
    for name in ("body", "orelse", "finalbody", "handlers", "cases"):
        for child in getattr(stmt, name, None) or ():
            inner = [child] if isinstance(child, ast.stmt) else list(getattr(child, "body", ()))
            for s in inner:
                found.append(s)
                found.extend(_block_statements(s))
    return found


def rewrite(source: str, is_covet_name: Callable[[str], bool]) -> str | None:
    """The cell with its query expressions awaited, or None when nothing needs rewriting.

    Args:
        source: the cell after IPython's own transforms (magics are ``get_ipython()`` calls).
        is_covet_name: whether a name of the namespace holds a covet object.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None  # IPython reports it
    body = tree.body
    if not body:
        return None
    covet_names: dict[str, bool] = {}

    def covet_root(node: ast.AST, through_await: bool = False) -> bool:
        name = _root(node, through_await)
        if name is None:
            return False
        return covet_names[name] if name in covet_names else is_covet_name(name)

    edits: list[tuple[ast.expr, bool]] = []  # (expression, display it where it stands)
    for stmt in body:  # a magic inside a block runs (and shows) where it stands
        for inner in _block_statements(stmt):
            if isinstance(inner, ast.Expr) and _is_covet_magic(inner.value):
                edits.append((inner.value, True))
    for stmt in body[:-1]:
        if isinstance(stmt, ast.Expr) and _is_covet_magic(stmt.value):
            edits.append((stmt.value, True))
        names, value = _targets(stmt)
        for name in names:
            covet_names[name] = value is not None and covet_root(value, through_await=True)
    last = body[-1]
    if isinstance(last, ast.Expr) and not isinstance(last.value, ast.Await) and (
        _is_covet_magic(last.value) or covet_root(last.value)
    ):
        edits.append((last.value, False))
    if not edits:
        return None
    return _apply(source, edits)


def _apply(source: str, edits: list[tuple[ast.expr, bool]]) -> str:
    """Wrap each expression's text (positions are UTF-8 byte offsets per line)."""
    data = source.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = []
    for node, show in edits:
        begin = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[operator]
        spans.append((begin, end, show))
    for begin, end, show in sorted(spans, reverse=True):
        suffix = ", display=True)" if show else ")"
        data = (data[:begin] + f"await {RESOLVE_NAME}(".encode() + data[begin:end]
                + suffix.encode() + data[end:])
    return data.decode("utf-8")


class CellTransformer:
    """The ``input_transformers_post`` entry: rewrites a cell's lines with :func:`rewrite`."""

    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    def enabled(self) -> bool:
        """Top-level await is on and runs on asyncio (IPython's own runner)."""
        from IPython.core.async_helpers import _asyncio_runner

        return bool(self.shell.autoawait) and self.shell.loop_runner is _asyncio_runner

    def _is_covet_name(self, name: str) -> bool:
        ns = self.shell.user_ns
        return name in ns and is_covet_object(ns[name])

    def __call__(self, lines: list[str]) -> list[str]:
        if not self.enabled() or _inside_magic():
            return lines
        source = "".join(lines)
        if "get_ipython" not in source and not any(
            self._is_covet_name(n) for n in _candidate_names(source)
        ):
            return lines  # fast path: nothing of ours in this cell
        new = rewrite(source, self._is_covet_name)
        return lines if new is None else new.splitlines(keepends=True)


def _inside_magic() -> bool:
    """True when a magic (``%time``, ``%timeit``...) transforms code it compiles itself.

    Such magics compile without top-level await, so their code must be left as written.
    """
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_name in _MAGIC_RUNNERS and "IPython" in code.co_filename:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _candidate_names(source: str) -> set[str]:
    return set(_IDENTIFIER.findall(source))


# the resolve step -----------------------------------------------------------------------------
class Resolver:
    """``__covet_resolve__``: awaits a query expression and wraps what it fetched.

    Args:
        ledger: the query ledger, to know the statements the step ran.
    """

    def __init__(self, ledger: QueryLedger) -> None:
        self.ledger = ledger

    async def __call__(self, value: Any, display: bool = False) -> Any:
        __tracebackhide__ = True  # IPython hides this frame: the user's code failed, not ours
        result = await self.resolve(value)
        if display:
            if result is not None:
                from IPython.display import display as show

                show(result)
            return None
        return result

    async def resolve(self, value: Any) -> Any:
        """Run ``value`` when it is a query (or awaitable); return what the cell shows."""
        __tracebackhide__ = True
        from covet.database.orm.manager import Manager
        from covet.database.orm.query import QuerySet, RawQuerySet
        from covet.database.orm.related import RelatedManager

        if isinstance(value, Pending):
            return await value
        if isinstance(value, (Manager, RelatedManager)):
            value = value.all()
        sql: str | None = None
        params: list[Any] = []
        fields: tuple[str, ...] = ()
        if isinstance(value, QuerySet):
            sql, params = value.sql()
            fields = value._fields or tuple(f.attname for f in value.model._meta.fields)
        elif isinstance(value, RawQuerySet):
            sql, params = value.raw_sql, value.params
        elif not inspect.isawaitable(value):
            return value
        ran_query = sql is not None  # a QuerySet always runs one; other awaitables may not
        self.ledger.attach()
        mark = self.ledger.mark()
        started = time.perf_counter()
        fetched = await value
        elapsed = time.perf_counter() - started
        events = self.ledger.since(mark)
        table = tabulate(fetched, fields)
        if table is None:
            return fetched
        if sql is None and events:
            sql, params = events[0].sql, list(events[0].params)
        columns, rows = table
        queries = max(len(events), 1) if ran_query else len(events)
        return QueryResult(fetched, columns, rows, sql, params, elapsed, queries)
