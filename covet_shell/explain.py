"""``%covet_explain``: a query's plan as a tree, with the full scans an index would avoid.

Barrier: turns the adapter's plan rows (``Adapter.explain``: SQLite ``EXPLAIN QUERY PLAN`` rows,
PostgreSQL ``EXPLAIN (FORMAT JSON)``) into a :class:`Plan` of :class:`PlanNode` and reads the
model metadata to say which index would help. It renders nothing (``render.py`` does).

A node is flagged when the database reads a whole table while the query filters or orders on one
of its columns that no index covers (the primary key, ``unique``, ``db_index=True``, a foreign
key, or the first column of a ``Meta.indexes`` entry or of ``unique_together``):

* SQLite: ``SCAN <table>`` (without ``USING ... INDEX``) and ``USE TEMP B-TREE FOR ORDER BY``;
* PostgreSQL: a ``Seq Scan`` whose ``Filter`` names a column, and a ``Sort`` over one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from covet_shell.ledger import sql_tables

if TYPE_CHECKING:
    from covet.database.adapters.base import Adapter

__all__ = ["Plan", "PlanNode", "explain", "indexed", "model_for_table"]

_SCAN = re.compile(r"^SCAN (?:TABLE )?(\S+)(?: AS (\S+))?(.*)$")
_COLUMN_REF = re.compile(r'"([^"]+)"\."([^"]+)"')
_IDENT = re.compile(r'"([^"]+)"|\b([A-Za-z_][A-Za-z0-9_]*)\b')
_CLAUSES = re.compile(r"\b(WHERE|GROUP BY|HAVING|ORDER BY|LIMIT|OFFSET)\b")


@dataclass
class PlanNode:
    """One step of a plan.

    Attributes:
        label: what the database does (``SCAN users``, ``Seq Scan on users``).
        details: extra facts (cost, rows, filter, timing).
        children: the steps feeding this one.
        warning: why the step is slow and the index that would help, when flagged.
    """

    label: str
    details: list[str] = field(default_factory=list)
    children: list[PlanNode] = field(default_factory=list)
    warning: str | None = None

    def walk(self) -> list[PlanNode]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class Plan:
    """A query's plan: the SQL, its parameters, the tree and the index suggestions."""

    sql: str
    params: list[Any]
    dialect: str
    analyze: bool
    roots: list[PlanNode]
    suggestions: list[str]
    elapsed: float
    raw: Any = None

    @property
    def flagged(self) -> list[PlanNode]:
        return [n for root in self.roots for n in root.walk() if n.warning]


# model metadata -----------------------------------------------------------------------------
def model_for_table(table: str, columns: Sequence[str] = ()) -> Any:
    """The registered model whose table is ``table`` (and has ``columns``), or None.

    When several models share a table, the one defined last that has every column wins.
    """
    from covet.database.orm.options import registry

    found = [m for m in registry if m._meta.db_table == table]
    for model in reversed(found):
        known = {f.column for f in model._meta.fields}
        if all(c in known for c in columns):
            return model
    return found[-1] if found else None


def indexed(model: Any, column: str) -> bool:
    """True when an index (or key) starts with ``column``."""
    meta = model._meta
    fields = [f for f in meta.fields if f.column == column]
    if not fields:
        return True  # not a column we know: say nothing
    f = fields[0]
    if f.primary_key or f.unique or f.db_index:
        return True
    for index in meta.indexes:
        if index.fields and meta.get_field(index.fields[0].lstrip("-")).column == column:
            return True
    return any(group and meta.get_field(group[0]).column == column
               for group in meta.unique_together)


def _advice(model: Any, columns: list[str], headline: str) -> tuple[str, list[str]]:
    """The warning text for a node and the suggestion lines, for unindexed ``columns``.

    ``headline`` says what the database does, with ``{cols}`` for the column names.
    """
    meta = model._meta
    names = [next(f.name for f in meta.fields if f.column == c) for c in columns]
    warning = (headline.format(cols=", ".join(names)) + "; an index would help: "
               + ", ".join(f"Index(fields=[{n!r}])" for n in names))
    lines = []
    for name in names:
        lines.append(f"{model.__name__}.{name} is not indexed: add Index(fields=[{name!r}]) to "
                     f"{model.__name__}.Meta.indexes, or db_index=True on {model.__name__}.{name}")
    if len(names) > 1:
        lines.append(f"or one index for both: Index(fields={names!r})")
    return warning, lines


# reading the SQL ---------------------------------------------------------------------------
def _clause(sql: str, name: str) -> str:
    """The text of one clause (``WHERE``, ``ORDER BY``) of the outermost query, roughly."""
    for match in _CLAUSES.finditer(sql):
        if match.group(1) == name:
            rest = sql[match.end():]
            end = _CLAUSES.search(rest)
            return rest[: end.start()] if end else rest
    return ""


def _columns_of(clause: str, alias: str) -> list[str]:
    """The columns of ``alias`` (a table name or a join alias) that ``clause`` names."""
    return list(dict.fromkeys(col for a, col in _COLUMN_REF.findall(clause) if a == alias))


def _model_of(alias: str, aliases: dict[str, str], sql: str) -> Any:
    """The model behind a table name or join alias of ``sql``."""
    return model_for_table(aliases.get(alias, alias), _columns_of(sql, alias))


def _unindexed(model: Any, columns: list[str]) -> list[str]:
    return [c for c in columns if not indexed(model, c)]


# SQLite ------------------------------------------------------------------------------------
def sqlite_plan(rows: list[dict[str, Any]], sql: str) -> tuple[list[PlanNode], list[str]]:
    """The tree of ``EXPLAIN QUERY PLAN`` rows (``id``, ``parent``, ``detail``) and advice."""
    _, aliases = sql_tables(sql)
    where, order = _clause(sql, "WHERE"), _clause(sql, "ORDER BY")
    nodes: dict[int, PlanNode] = {}
    roots: list[PlanNode] = []
    suggestions: list[str] = []
    for row in rows:
        detail = str(row.get("detail", ""))
        node = PlanNode(detail)
        scan = _SCAN.match(detail)
        if scan and "USING" not in scan.group(3):
            alias = scan.group(2) or scan.group(1)
            model = _model_of(alias, aliases, sql)
            if model is not None:
                table = aliases.get(alias, alias)
                cols = _unindexed(model, _columns_of(where, alias))
                why = f"full scan of {table} filtering on {{cols}}"
                if not cols:
                    cols = _unindexed(model, _columns_of(order, alias))
                    why = f"full scan of {table} ordered by {{cols}}"
                if cols:
                    node.warning, lines = _advice(model, cols, why)
                    suggestions.extend(lines)
        elif detail.startswith("USE TEMP B-TREE FOR ORDER BY"):
            for alias in dict.fromkeys(a for a, _ in _COLUMN_REF.findall(order)):
                model = _model_of(alias, aliases, sql)
                cols = _unindexed(model, _columns_of(order, alias)) if model else []
                if model is not None and cols:
                    node.warning, lines = _advice(
                        model, cols, f"a sort of {aliases.get(alias, alias)} by {{cols}}")
                    suggestions.extend(lines)
        nodes[int(row.get("id", len(nodes)))] = node
        parent = nodes.get(int(row.get("parent", 0) or 0))
        (parent.children if parent is not None else roots).append(node)
    return roots, list(dict.fromkeys(suggestions))


# PostgreSQL --------------------------------------------------------------------------------
def _pg_label(plan: dict[str, Any]) -> str:
    label = str(plan.get("Node Type", "?"))
    if plan.get("Index Name"):
        label += f" using {plan['Index Name']}"
    if plan.get("Relation Name"):
        label += f" on {plan['Relation Name']}"
        if plan.get("Alias") and plan["Alias"] != plan["Relation Name"]:
            label += f" {plan['Alias']}"
    return label


def _pg_details(plan: dict[str, Any]) -> list[str]:
    details = []
    if "Total Cost" in plan:
        details.append(f"cost={plan.get('Startup Cost', 0)}..{plan['Total Cost']} "
                       f"rows={plan.get('Plan Rows', '?')}")
    if "Actual Total Time" in plan:
        details.append(f"actual {plan['Actual Total Time']} ms, rows={plan.get('Actual Rows')}, "
                       f"loops={plan.get('Actual Loops')}")
    for key in ("Index Cond", "Hash Cond", "Join Filter", "Filter", "Sort Key", "Group Key"):
        if plan.get(key):
            value = plan[key]
            details.append(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    if plan.get("Rows Removed by Filter"):
        details.append(f"rows removed by filter: {plan['Rows Removed by Filter']}")
    return details


def _mentioned(text: str, model: Any) -> list[str]:
    columns = {f.column for f in model._meta.fields}
    out: list[str] = []
    for quoted, bare in _IDENT.findall(text):
        name = quoted or bare
        if name in columns and name not in out:
            out.append(name)
    return out


def pg_plan(result: list[dict[str, Any]]) -> tuple[list[PlanNode], list[str]]:
    """The tree of an ``EXPLAIN (FORMAT JSON)`` result and advice."""
    suggestions: list[str] = []

    def build(plan: dict[str, Any]) -> PlanNode:
        node = PlanNode(_pg_label(plan), _pg_details(plan))
        node.children = [build(child) for child in plan.get("Plans", [])]
        table = plan.get("Relation Name")
        model = model_for_table(table) if table else None
        if plan.get("Node Type") == "Seq Scan" and model is not None and plan.get("Filter"):
            cols = _unindexed(model, _mentioned(str(plan["Filter"]), model))
            if cols:
                node.warning, lines = _advice(model, cols, f"a Seq Scan of {table} filtering "
                                                                 "on {cols}")
                suggestions.extend(lines)
        if plan.get("Node Type") == "Sort" and plan.get("Sort Key"):
            for child in plan.get("Plans", []):
                ctable = child.get("Relation Name")
                cmodel = model_for_table(ctable) if ctable else None
                if child.get("Node Type") == "Seq Scan" and cmodel is not None:
                    keys = " ".join(plan["Sort Key"])
                    cols = _unindexed(cmodel, _mentioned(keys, cmodel))
                    if cols:
                        headline = f"a sort of {ctable} by {{cols}}"
                        node.warning, lines = _advice(cmodel, cols, headline)
                        suggestions.extend(lines)
        return node

    roots = [build(e["Plan"]) for e in result if isinstance(e, dict) and "Plan" in e]
    return roots, list(dict.fromkeys(suggestions))


async def explain(adapter: Adapter, sql: str, params: list[Any], analyze: bool = False) -> Plan:
    """Run the adapter's plan command for ``sql`` and build the :class:`Plan`."""
    started = time.perf_counter()
    raw = await adapter.explain(sql, params, analyze=analyze)
    elapsed = time.perf_counter() - started
    if adapter.dialect == "postgresql":
        roots, suggestions = pg_plan(raw)
    else:
        roots, suggestions = sqlite_plan(raw, sql)
    return Plan(sql, list(params), adapter.dialect, analyze, roots, suggestions, elapsed, raw)
