"""The query ledger: every statement a cell runs, its summary, and N+1 warnings.

Barrier: listens to the adapters through their public hook (``Adapter.add_listener``, which
reports a :class:`~covet.database.adapters.base.QueryEvent` for every statement), follows the
adapters created later (``connections.on_adapter_created``: a ``configure()`` in a cell is
recorded from its next statement on) and keeps the events per cell. It never runs a query and never touches IPython; the extension calls
:meth:`QueryLedger.start_cell` / :meth:`QueryLedger.finish_cell` from IPython's events.

An N+1 pattern is one SQL text run many times in one cell, each time filtered on a key:
``SELECT ... FROM "posts" WHERE "posts"."author_id" = ?1`` once per user. The ledger reads the
selected table and the filtered column from the SQL and finds, in the model registry, the
relation whose join step is that column; the fix is ``prefetch_related('<relation>')`` (reverse
and many-to-many relations) or ``select_related('<relation>')`` (forward foreign keys) on the
model the loop iterated.
"""

from __future__ import annotations

import re
import sys
import weakref
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from covet.database.adapters.base import Adapter, QueryEvent

__all__ = [
    "CellQueries",
    "NPlusOne",
    "QueryLedger",
    "detect_n_plus_one",
    "format_event",
    "short_sql",
    "sql_tables",
]

_TABLE = re.compile(r'\b(FROM|JOIN)\s+"([^"]+)"(?:\s+AS\s+"([^"]+)")?', re.IGNORECASE)
_KEY_FILTER = re.compile(r'"([^"]+)"\."([^"]+)"\s*=\s*(?:\?\d*|\$\d+)')
_CLAUSE_END = re.compile(r"\b(GROUP BY|ORDER BY|LIMIT|OFFSET|HAVING)\b", re.IGNORECASE)


def short_sql(sql: str, width: int = 90) -> str:
    """One line of at most ``width`` characters."""
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_event(event: QueryEvent) -> str:
    """The ``%covet_log`` line for one statement."""
    status = f"ERROR {event.error}" if event.error else f"{event.rows} row{'s' * (event.rows != 1)}"
    params = f"  params {list(event.params)!r}" if event.params else ""
    return f"[covet] {event.duration * 1000:.1f} ms  {status}  {event.sql}{params}"


@dataclass
class CellQueries:
    """The statements one cell ran.

    Attributes:
        number: the cell's execution count.
        source: the cell's first line, for ``%covet_history``.
        events: the statements in the order they ran.
    """

    number: int
    source: str
    events: list[QueryEvent] = field(default_factory=list)

    @property
    def total(self) -> float:
        """Seconds spent in the database."""
        return sum(e.duration for e in self.events)

    @property
    def slowest(self) -> QueryEvent | None:
        return max(self.events, key=lambda e: e.duration, default=None)

    def summary(self) -> str:
        """``[covet] 3 queries, 4.2 ms total; slowest 2.9 ms: SELECT ...``."""
        slowest = self.slowest
        count = len(self.events)
        text = f"[covet] {count} quer{'ies' if count != 1 else 'y'}, "
        text += f"{self.total * 1000:.1f} ms total"
        if slowest is not None and count > 1:
            text += f"; slowest {slowest.duration * 1000:.1f} ms: {short_sql(slowest.sql, 70)}"
        errors = sum(1 for e in self.events if e.error)
        if errors:
            text += f"; {errors} failed"
        return text


@dataclass(frozen=True)
class NPlusOne:
    """One query shape repeated in a cell, and the loading that would have saved it."""

    sql: str
    count: int
    suggestions: tuple[str, ...]

    def message(self) -> str:
        head = (f"[covet] N+1: the same query ran {self.count} times in this cell: "
                f"{short_sql(self.sql, 80)}")
        if not self.suggestions:
            return head + "\n        load the rows in one query instead (filter(<field>__in=[...]))"
        return head + "\n        load them up front with " + " or ".join(self.suggestions)


def sql_tables(sql: str) -> tuple[str | None, dict[str, str]]:
    """The table selected from and a map alias-or-table -> table, read from compiled SQL."""
    main: str | None = None
    aliases: dict[str, str] = {}
    for match in _TABLE.finditer(sql):
        table = match.group(2)
        if main is None and match.group(1).upper() == "FROM":
            main = table
        aliases[match.group(3) or table] = table
    return main, aliases


def _key_filters(sql: str, aliases: dict[str, str]) -> set[tuple[str, str]]:
    where = sql.upper().find(" WHERE ")
    if where < 0:
        return set()
    clause = sql[where:]
    end = _CLAUSE_END.search(clause)
    clause = clause[: end.start()] if end else clause
    return {(aliases.get(a, a), col) for a, col in _KEY_FILTER.findall(clause)}


def _relation_fixes(table: str, filters: set[tuple[str, str]]) -> list[tuple[Any, str]]:
    """``(model, 'select_related(...)')`` for each relation whose join step is a filter."""
    from covet.database.orm.options import registry

    fixes = []
    for model in registry:
        meta = model._meta
        if getattr(meta, "auto_created", False):
            continue
        for name, rel in meta.relations.items():
            if rel.target._meta.db_table != table or not rel.steps:
                continue
            src_col, step_table, step_col = rel.steps[0]
            if (step_table, step_col) in filters or (meta.db_table, src_col) in filters:
                how = "select_related" if rel.kind in ("fk", "o2o") else "prefetch_related"
                fixes.append((model, f"{model.__name__}.objects.{how}({name!r})"))
    return fixes


def detect_n_plus_one(cell: CellQueries, threshold: int) -> list[NPlusOne]:
    """The query shapes run at least ``threshold`` times in ``cell``, with their fixes."""
    reads = [e for e in cell.events if e.kind in ("fetch", "iterate") and not e.error]
    counts = Counter(e.sql for e in reads)
    found = []
    for sql, count in counts.items():
        if count < threshold or threshold < 2:
            continue
        table, aliases = sql_tables(sql)
        fixes = _relation_fixes(table, _key_filters(sql, aliases)) if table else []
        first = next(i for i, e in enumerate(reads) if e.sql == sql)
        earlier = {sql_tables(e.sql)[0] for e in reads[:first]}
        near = [(m, s) for m, s in fixes if m._meta.db_table in earlier]
        fixes_text = list(dict.fromkeys(s for _, s in (near or fixes)))
        found.append(NPlusOne(sql, count, tuple(fixes_text[:3])))
    return found


class QueryLedger:
    """Records the statements of every cell through the adapters' listener hook.

    Attributes:
        current: the cell running now (None between cells).
        history: the last cells that ran queries, oldest first.
        echo: print each statement as it runs (``%covet_log on``).
    """

    def __init__(self, history: int = 50, out: Callable[[str], None] | None = None) -> None:
        self.current: CellQueries | None = None
        self.history: deque[CellQueries] = deque(maxlen=history)
        self.echo = False
        self._out = out
        self._attached: weakref.WeakSet[Adapter] = weakref.WeakSet()
        self._unhook: Callable[[], None] | None = None

    # the listener -------------------------------------------------------------------------
    def __call__(self, event: QueryEvent) -> None:
        """The adapter listener: record (and maybe echo) one statement."""
        if self.current is None:  # a query outside any cell (e.g. while loading)
            self.current = CellQueries(0, "")
        self.current.events.append(event)
        if self.echo:
            (self._out or _print)(format_event(event))

    def attach(self) -> None:
        """Listen to the adapter of every configured alias (created without I/O if needed)."""
        from covet.database import connections
        from covet.database.exceptions import CovetError

        if self._unhook is None:  # adapters created later (configure() in a cell) too
            self._unhook = connections.on_adapter_created(self._adopt)
        for alias in connections.aliases():
            try:
                adapter = connections.adapter_for(alias)
            except CovetError:
                continue
            self._adopt(adapter)

    def _adopt(self, adapter: Adapter) -> None:
        if adapter not in self._attached:
            adapter.add_listener(self)
            self._attached.add(adapter)

    def detach(self) -> None:
        """Stop listening to every adapter this ledger attached to, and to new ones."""
        if self._unhook is not None:
            self._unhook()
            self._unhook = None
        for adapter in list(self._attached):
            adapter.remove_listener(self)
        self._attached = weakref.WeakSet()

    # cells ---------------------------------------------------------------------------------
    def start_cell(self, number: int, source: str) -> None:
        lines = source.strip().splitlines()
        self.current = CellQueries(number, lines[0] if lines else "")
        self.attach()

    def mark(self) -> int:
        """A position in the current cell's events (see :meth:`since`)."""
        return len(self.current.events) if self.current is not None else 0

    def since(self, mark: int) -> list[QueryEvent]:
        """The events recorded in the current cell after ``mark``."""
        return list(self.current.events[mark:]) if self.current is not None else []

    def finish_cell(self) -> CellQueries | None:
        """Close the current cell; it goes to the history when it ran any query."""
        cell, self.current = self.current, None
        if cell is not None and cell.events:
            self.history.append(cell)
            return cell
        return None


def _print(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
