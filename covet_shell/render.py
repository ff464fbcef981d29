"""How the shell shows query results: HTML in notebooks, rich tables in the terminal.

Barrier: pure presentation. The result classes here are small wrappers filled by the resolve step
and the magics; :class:`Renderer` turns them into text or HTML and is registered with IPython's
display formatters (``for_type``), so ``covet/`` itself never imports IPython or rich.

Text is rendered by rich into a string, on a console told explicitly that it is not in Jupyter
(``force_jupyter=False``): inside a kernel rich would otherwise publish its own display outputs.
"""

from __future__ import annotations

import html
import io
import shutil
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from covet.database.exceptions import ConfigurationError
from covet_shell.explain import Plan, PlanNode
from covet_shell.ledger import CellQueries, short_sql

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = [
    "HistoryReport",
    "ModelsReport",
    "QueryResult",
    "Renderer",
    "describe_models",
    "tabulate",
]

_COVET_DIR = str(Path(__file__).resolve().parent.parent / "covet")
_CELL_WIDTH = 200


class Settings(Protocol):
    displaylimit: int
    show_sql: bool


# results ------------------------------------------------------------------------------------
def tabulate(
    value: Any, fields: Sequence[str] = ()
) -> tuple[list[str], list[tuple[Any, ...]]] | None:
    """Columns and rows of a query result, or None when ``value`` is not tabular.

    Instances give their fields (then annotations); dicts their keys; tuples ``fields`` (or
    ``col1``...); scalars one column. An aggregate dict is one row; ``in_bulk()`` is its objects.
    """
    from covet.database.orm.models import Model

    if isinstance(value, Model):
        value = [value]
    elif isinstance(value, dict):
        if value and all(isinstance(v, Model) for v in value.values()):
            value = list(value.values())
        else:
            return [str(k) for k in value], [tuple(value.values())]
    if not isinstance(value, list):
        return None
    if not value:
        return list(fields), []
    first = value[0]
    if isinstance(first, Model):
        columns = [f.attname for f in first._meta.fields]
        columns += [k for k in first.__dict__ if not k.startswith("_") and k not in columns]
        return columns, [tuple(obj.__dict__.get(c) for c in columns) for obj in value]
    if isinstance(first, dict):
        columns = list(dict.fromkeys(k for row in value if isinstance(row, dict) for k in row))
        return columns, [tuple(row.get(c) for c in columns) for row in value]
    if isinstance(first, tuple):
        width = max(len(r) for r in value)
        columns = list(fields) if len(fields) == width else [f"col{i + 1}" for i in range(width)]
        return columns, [tuple(r) for r in value]
    return [fields[0] if fields else "value"], [(v,) for v in value]


class QueryResult:
    """What a query cell shows: rows with their SQL, parameters, count and time.

    ``result.value`` is what the query returned (a list of instances, dicts, one instance, an
    aggregate dict); indexing, iteration and ``len()`` go to it.

    Attributes:
        value: the fetched value.
        columns, rows: the table to show.
        sql, params: the statement that produced it (None when unknown).
        elapsed: seconds, wall clock, for the whole step.
        queries: how many statements the step ran.
        affected: rows affected, for a statement that returns no rows.
    """

    __slots__ = ("affected", "columns", "elapsed", "params", "queries", "rows", "sql", "value")

    def __init__(self, value: Any, columns: list[str], rows: list[tuple[Any, ...]],
                 sql: str | None, params: Sequence[Any], elapsed: float, queries: int = 1,
                 affected: int | None = None) -> None:
        self.value = value
        self.columns = columns
        self.rows = rows
        self.sql = sql
        self.params = list(params)
        self.elapsed = elapsed
        self.queries = queries
        self.affected = affected

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.value if isinstance(self.value, (list, dict)) else self.rows)

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __repr__(self) -> str:
        what = f"{len(self)} rows" if self.affected is None else f"{self.affected} rows affected"
        return f"<QueryResult {what}: {short_sql(self.sql or '?', 60)}>"


@dataclass
class ModelsReport:
    """``%covet_models``: each model's table, fields (type and column type) and relations."""

    dialect: str
    models: list[dict[str, Any]]


@dataclass
class HistoryReport:
    """``%covet_history``: the queries of the last cells."""

    cells: list[CellQueries]


def describe_models(models: Sequence[Any], dialect: str) -> ModelsReport:
    """Read the metadata of ``models`` for :class:`ModelsReport`."""
    out = []
    for model in models:
        meta = model._meta
        fields = []
        for f in meta.fields:
            try:
                db_type = f.db_type(dialect)
            except NotImplementedError:
                db_type = "?"
            except ConfigurationError:  # e.g. an ArrayField on SQLite, or an unresolved target
                db_type = f"(not on {dialect})"
            fields.append((f.name, f.column, f.type_label, db_type, _options(f.deconstruct())))
        relations = [(name, rel.kind, rel.target.__name__) for name, rel in meta.relations.items()]
        out.append({"name": model.__name__, "table": meta.db_table, "module": model.__module__,
                    "fields": fields, "relations": relations})
    return ModelsReport(dialect, out)


_SHOWN_IN_TYPE = {"max_length", "max_digits", "decimal_places", "to", "related_name"}


def _options(options: dict[str, Any]) -> str:
    """``primary key, nullable, default='draft', on_delete=CASCADE`` for ``%covet_models``."""
    if options.get("primary_key"):
        options = {k: v for k, v in options.items() if k != "unique"}
    out = []
    for key, value in options.items():
        if key in _SHOWN_IN_TYPE:
            continue
        label = {"db_index": "indexed"}.get(key, key.replace("_", " "))
        out.append(label if value is True else f"{key}={value!r}")
    return ", ".join(out)


# rendering helpers --------------------------------------------------------------------------
def _cell_text(value: Any) -> str:
    if value is None:
        return "NULL"
    text = value.hex() if isinstance(value, bytes) else str(value)
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


def _meta_line(result: QueryResult) -> str:
    if result.affected is not None:
        text = f"{result.affected} row{'s' * (result.affected != 1)} affected"
    else:
        text = f"{len(result.rows)} row{'s' * (len(result.rows) != 1)}"
    if not result.queries:
        return text + " (already loaded: no query ran)"
    text += f" in {result.elapsed * 1000:.1f} ms"
    if result.queries > 1:
        text += f" ({result.queries} queries; see %covet_history)"
    return text


def _highlight_html(sql: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import SqlLexer

    return highlight(sql, SqlLexer(), HtmlFormatter(noclasses=True, nowrap=True)).rstrip()


def _covet_coroutine(obj: Any) -> bool:
    code = getattr(obj, "cr_code", None)
    return code is not None and code.co_filename.startswith(_COVET_DIR)


def _instances(obj: Any) -> QueryResult | None:
    """A model instance or a non-empty list of instances of one model, as a result to show."""
    from covet.database.orm.models import Model

    items = obj if isinstance(obj, list) else [obj]
    if not items or not all(isinstance(i, Model) for i in items):
        return None
    if len({type(i) for i in items}) != 1:
        return None
    table = tabulate(items)
    assert table is not None
    return QueryResult(obj, table[0], table[1], None, (), 0.0, queries=0)


def _formatters(shell: InteractiveShell) -> Any:
    assert shell.display_formatter is not None
    return shell.display_formatter.formatters


_HTML_STYLE = ("<style>.covet-result table{border-collapse:collapse;font-size:12px}"
               ".covet-result th,.covet-result td{padding:2px 8px;text-align:left}"
               ".covet-result .null{color:#999;font-style:italic}"
               ".covet-meta{color:#666;font-size:12px;margin:2px 0}"
               ".covet-warn{color:#b35900}</style>")


class Renderer:
    """Text and HTML for the shell's result objects, registered with IPython's formatters.

    Args:
        settings: where ``displaylimit`` and ``show_sql`` are read at render time.
        terminal: render text with colours, at the terminal's width.
    """

    def __init__(self, settings: Settings, terminal: bool = False) -> None:
        self.settings = settings
        self.terminal = terminal
        self._previous: dict[tuple[str, type], Any] = {}

    # registration -----------------------------------------------------------------------
    def register(self, shell: InteractiveShell) -> None:
        from covet.database.orm.models import Model
        from covet.database.orm.query import QuerySet

        printers: list[tuple[str, type, Any]] = [(mime, cls, fn) for cls in (
            QueryResult, Plan, ModelsReport, HistoryReport, QuerySet,
        ) for mime, fn in (("text/plain", self._pretty), ("text/html", self.html))]
        printers.append(("text/plain", types.CoroutineType, self._pretty_coroutine))
        # a model instance, or a list of them kept in a variable, shows as a table too
        printers += [("text/plain", Model, self._pretty_instances),
                     ("text/html", Model, self._html_instances),
                     ("text/plain", list, self._pretty_instances),
                     ("text/html", list, self._html_instances)]
        formatters = _formatters(shell)
        for mime, cls, fn in printers:
            self._previous[(mime, cls)] = formatters[mime].for_type(cls, fn)

    def unregister(self, shell: InteractiveShell) -> None:
        """Remove the printers, restoring any that were registered before ours."""
        formatters = _formatters(shell)
        for (mime, cls), previous in self._previous.items():
            formatters[mime].type_printers.pop(cls, None)
            if previous is not None:
                formatters[mime].for_type(cls, previous)
        self._previous.clear()

    def _pretty(self, obj: Any, p: Any, cycle: bool) -> None:
        p.text(self.text(obj))

    def _pretty_instances(self, obj: Any, p: Any, cycle: bool) -> None:
        top_level = len(getattr(p, "stack", ())) <= 1  # not inside another container's repr
        result = _instances(obj) if top_level and not cycle else None
        if result is not None:
            p.text(self.text(result))
            return
        previous = self._previous.get(("text/plain", list)) if isinstance(obj, list) else None
        if previous is not None:
            previous(obj, p, cycle)
        else:
            p.text(repr(obj))

    def _html_instances(self, obj: Any) -> str | None:
        result = _instances(obj)
        if result is not None:
            return self.html(result)
        previous = self._previous.get(("text/html", list)) if isinstance(obj, list) else None
        return previous(obj) if previous is not None else None

    def _pretty_coroutine(self, obj: Any, p: Any, cycle: bool) -> None:
        if _covet_coroutine(obj):
            name = obj.cr_code.co_qualname
            p.text(f"<coroutine {name}(): not run yet. Await it (await <expression>), or leave the "
                   f"query as the last line of a cell and the shell awaits it for you>")
        else:
            p.text(repr(obj))

    # text ---------------------------------------------------------------------------------
    def text(self, obj: Any) -> str:
        """``obj`` as text (ANSI colours in the terminal)."""
        from rich.console import Console

        buffer = io.StringIO()
        width = shutil.get_terminal_size((100, 24)).columns if self.terminal else 120
        console = Console(file=buffer, force_jupyter=False, force_terminal=self.terminal,
                          color_system="auto" if self.terminal else None, width=width,
                          no_color=not self.terminal, highlight=False, emoji=False)
        console.print(self.rich(obj))
        return buffer.getvalue().rstrip("\n")

    def _sql(self, sql: str) -> Any:
        from rich.syntax import Syntax
        from rich.text import Text

        if not self.terminal:
            return Text(sql)
        return Syntax(sql, "sql", theme="ansi_dark", background_color="default", word_wrap=True)

    def rich(self, obj: Any) -> Any:
        """A rich renderable for ``obj``."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        from covet.database.orm.query import QuerySet

        parts: list[Any] = []
        if isinstance(obj, QueryResult):
            if obj.sql and self.settings.show_sql:
                parts.append(self._sql(obj.sql))
                if obj.params:
                    parts.append(Text(f"params: {obj.params!r}", style="dim"))
            if obj.affected is None:
                limit = max(self.settings.displaylimit, 0)
                shown = [[_cell_text(v) for v in row] for row in obj.rows[:limit]]
                table = Table(header_style="bold")
                for i, column in enumerate(obj.columns):
                    # short columns never wrap; long ones give way when the table is too wide
                    longest = max([len(column), *(len(r[i]) for r in shown)])
                    table.add_column(column, no_wrap=longest <= 12, overflow="ellipsis")
                for row, texts in zip(obj.rows, shown):
                    table.add_row(*(Text("NULL", style="dim italic") if v is None else Text(t)
                                    for v, t in zip(row, texts)))
                if obj.columns:
                    parts.append(table)
                hidden = len(obj.rows) - min(limit, len(obj.rows))
                if hidden:
                    parts.append(Text(f"… {hidden} more row{'s' * (hidden != 1)} "
                                      f"(%config CovetMagics.displaylimit)", style="dim"))
            parts.append(Text(_meta_line(obj), style="dim"))
        elif isinstance(obj, Plan):
            parts += self._rich_plan(obj)
        elif isinstance(obj, ModelsReport):
            for m in obj.models:
                table = Table("field", "column", "type", f"{obj.dialect} type", "options",
                              title=f"{m['name']}  (table {m['table']})", title_justify="left",
                              header_style="bold")
                for row in m["fields"]:
                    table.add_row(*row)
                parts.append(table)
                if m["relations"]:
                    parts.append(Text("relations: " + ", ".join(
                        f"{n} → {t} ({k})" for n, k, t in m["relations"])))
            if not obj.models:
                parts.append(Text("no models loaded (set $COVET_MODELS or [tool.covet] models)"))
        elif isinstance(obj, HistoryReport):
            table = Table("cell", "ms", "rows", "sql", "params", header_style="bold")
            for cell in obj.cells:
                for i, e in enumerate(cell.events):
                    table.add_row(str(cell.number) if i == 0 else "", f"{e.duration * 1000:.1f}",
                                  "error" if e.error else str(e.rows), short_sql(e.sql, 80),
                                  repr(list(e.params)) if e.params else "")
            parts.append(table if obj.cells else Text("no queries yet"))
        elif isinstance(obj, QuerySet):
            parts += self._pending_parts(obj)
        else:
            parts.append(Text(repr(obj)))
        return Group(*parts)

    def _pending_parts(self, qs: Any) -> list[Any]:
        from rich.text import Text

        head = Text(f"<QuerySet {qs.model.__name__}: not run yet>", style="bold")
        try:
            compiled = qs.sql()
        except Exception as exc:  # noqa: BLE001 - show why it cannot be built
            return [head, Text(f"cannot build its SQL: {exc}")]
        return [head, self._sql(compiled.sql), Text(f"params: {compiled.params!r}", style="dim"),
                Text("Run it with `await qs` (or `rows = await qs`), or leave it as the last "
                     "line of a cell: the shell awaits it for you.", style="dim")]

    def _rich_plan(self, plan: Plan) -> list[Any]:
        from rich.text import Text
        from rich.tree import Tree

        parts: list[Any] = [self._sql(plan.sql)]
        if plan.params:
            parts.append(Text(f"params: {plan.params!r}", style="dim"))
        title = "plan" + (" (EXPLAIN ANALYZE: the statement ran and was rolled back)"
                          if plan.analyze and plan.dialect == "postgresql" else "")
        tree = Tree(Text(title, style="bold"))

        def add(branch: Any, node: PlanNode) -> None:
            label = Text(node.label, style="bold red" if node.warning else "")
            for detail in node.details:
                label.append(f"\n{detail}", style="dim")
            if node.warning:
                label.append(f"\n⚠ {node.warning}", style="yellow")
            sub = branch.add(label)
            for child in node.children:
                add(sub, child)

        for root in plan.roots:
            add(tree, root)
        parts.append(tree)
        for line in plan.suggestions:
            parts.append(Text(f"suggestion: {line}", style="yellow"))
        return parts

    # HTML ---------------------------------------------------------------------------------
    def html(self, obj: Any) -> str:
        """``obj`` as an HTML fragment for notebooks."""
        from covet.database.orm.query import QuerySet

        body: list[str] = []
        if isinstance(obj, QueryResult):
            if obj.sql and self.settings.show_sql:
                body.append(self._html_sql(obj.sql, obj.params))
            if obj.affected is None and obj.columns:
                limit = max(self.settings.displaylimit, 0)
                body.append(self._html_table(obj.columns, obj.rows[:limit]))
                hidden = len(obj.rows) - min(limit, len(obj.rows))
                if hidden:
                    body.append(f'<div class="covet-meta">… {hidden} more row'
                                f'{"s" * (hidden != 1)}</div>')
            body.append(f'<div class="covet-meta">{html.escape(_meta_line(obj))}</div>')
        elif isinstance(obj, Plan):
            body.append(self._html_sql(obj.sql, obj.params))
            body.append("<ul>" + "".join(self._html_node(n) for n in obj.roots) + "</ul>")
            body += [f'<div class="covet-warn">suggestion: {html.escape(s)}</div>'
                     for s in obj.suggestions]
        elif isinstance(obj, ModelsReport):
            for m in obj.models:
                body.append(f"<h4>{html.escape(m['name'])} <small>table "
                            f"<code>{html.escape(m['table'])}</code></small></h4>")
                body.append(self._html_table(
                    ["field", "column", "type", f"{obj.dialect} type", "options"], m["fields"]))
                if m["relations"]:
                    body.append("<div>relations: " + ", ".join(
                        html.escape(f"{n} → {t} ({k})") for n, k, t in m["relations"]) + "</div>")
        elif isinstance(obj, HistoryReport):
            rows = [(c.number if i == 0 else "", f"{e.duration * 1000:.1f}",
                     "error" if e.error else e.rows, e.sql, list(e.params) if e.params else "")
                    for c in obj.cells for i, e in enumerate(c.events)]
            body.append(self._html_table(["cell", "ms", "rows", "sql", "params"], rows))
        elif isinstance(obj, QuerySet):
            body.append(f"<b>&lt;QuerySet {html.escape(obj.model.__name__)}: not run yet&gt;</b>")
            try:
                compiled = obj.sql()
                body.append(self._html_sql(compiled.sql, compiled.params))
            except Exception as exc:  # noqa: BLE001
                body.append(f"<div>cannot build its SQL: {html.escape(str(exc))}</div>")
            body.append('<div class="covet-meta">Run it with <code>await qs</code>, or leave it '
                        "as the last line of a cell: the shell awaits it for you.</div>")
        else:
            return html.escape(repr(obj))
        return f'{_HTML_STYLE}<div class="covet-result">{"".join(body)}</div>'

    def _html_sql(self, sql: str, params: Sequence[Any]) -> str:
        out = f'<pre class="covet-sql" style="white-space:pre-wrap">{_highlight_html(sql)}</pre>'
        if params:
            out += f'<div class="covet-meta">params: {html.escape(repr(list(params)))}</div>'
        return out

    @staticmethod
    def _html_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = []
        for row in rows:
            cells = "".join('<td class="null">NULL</td>' if v is None
                            else f"<td>{html.escape(_cell_text(v))}</td>" for v in row)
            body.append(f"<tr>{cells}</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def _html_node(self, node: PlanNode) -> str:
        label = f"<b>{html.escape(node.label)}</b>"
        if node.details:
            label += f' <span class="covet-meta">{html.escape("; ".join(node.details))}</span>'
        if node.warning:
            label += f'<div class="covet-warn">⚠ {html.escape(node.warning)}</div>'
        children = "".join(self._html_node(c) for c in node.children)
        return f"<li>{label}{'<ul>' + children + '</ul>' if children else ''}</li>"
