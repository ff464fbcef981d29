"""``CovetMagics``: the shell's magics, its options, and what loading the extension sets up.

Barrier: the IPython side of the shell. It wires the pieces into one ``InteractiveShell`` (the
cell rewrite of :mod:`covet_shell.transform`, the formatters of :mod:`covet_shell.render`, the
ledger of :mod:`covet_shell.ledger` on IPython's ``pre_run_cell``/``post_run_cell`` events) and
defines the magics. The database work of a magic is handed back to the cell as an awaitable
(:class:`~covet_shell.transform.Pending`) that the rewritten cell awaits on IPython's own
top-level await; only when no loop is running (a synchronous terminal cell) does it run at once,
through IPython's own loop runner.

Options (``%config CovetMagics.<name> = ...`` or ``c.CovetMagics.<name>`` in a profile):
``displaylimit`` (rows shown per result, default 50), ``n_plus_one_threshold`` (default 5),
``show_sql`` (default True) and ``banner`` (default True).

Magics::

    %covet_connect URL [--alias A]        switch the database
    %covet_explain [--analyze] EXPR       the plan of a QuerySet, with index advice
    %%covet_sql [--alias A] [--out VAR]   raw SQL; :name binds a variable as a parameter
    %covet_models [Model ...]             tables, fields, column types and relations
    %covet_log on|off                     echo every statement as it runs
    %covet_history [-n N] [--clear]       the queries of the last cells
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, Int, TraitError, validate
from traitlets.config.configurable import Configurable

from covet_shell import params as sqlparams
from covet_shell.autoload import ModelImport, ShellNamespace, import_models, shell_namespace
from covet_shell.explain import explain
from covet_shell.ledger import QueryLedger, detect_n_plus_one
from covet_shell.render import HistoryReport, ModelsReport, QueryResult, Renderer, describe_models
from covet_shell.transform import (
    RESOLVE_NAME,
    CellTransformer,
    Pending,
    Resolver,
    is_covet_object,
)

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["CovetMagics"]

_ROW_KEYWORDS = {"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "PRAGMA", "TABLE"}


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _split_options(line: str) -> tuple[str, str]:
    """Leading ``--flags`` and the raw rest (a Python expression keeps its quotes)."""
    rest = line.strip()
    options = []
    while rest.startswith("-"):
        token, _, rest = rest.partition(" ")
        options.append(token)
        rest = rest.strip()
    return " ".join(options), rest


@magics_class
class CovetMagics(Magics, Configurable):
    """The ``%covet_*`` magics and the state of one loaded extension."""

    shell: InteractiveShell  # type: ignore[assignment]  # IPython declares it None
    displaylimit = Int(50, config=True, help="Rows shown per result; the rest are counted.")
    n_plus_one_threshold = Int(
        5, config=True,
        help="Warn when one query shape runs this many times in a cell (below 2: never).",
    )
    show_sql = Bool(True, config=True, help="Show each result's SQL and parameters above it.")
    banner = Bool(True, config=True, help="Print the banner when the extension loads.")

    def __init__(self, shell: Any) -> None:
        super().__init__(shell=shell)
        from IPython.terminal.interactiveshell import TerminalInteractiveShell

        terminal = isinstance(shell, TerminalInteractiveShell) and sys.stdout.isatty()
        self.ledger = QueryLedger()
        self.renderer = Renderer(self, terminal=terminal)
        self.transformer = CellTransformer(shell)
        self.resolver = Resolver(self.ledger)
        self._pushed: dict[str, Any] = {}

    @validate("displaylimit")
    def _check_limit(self, proposal: Any) -> int:
        if proposal["value"] < 0:
            raise TraitError("CovetMagics.displaylimit must be 0 or more")
        return int(proposal["value"])

    # loading and unloading ------------------------------------------------------------------
    def install(self) -> None:
        """Configure the database, push the models and helpers, register everything."""
        from covet.database import connections
        from covet.database.exceptions import ConfigurationError

        shell = self.shell
        try:
            connections.get_config("default")
        except ConfigurationError as exc:
            shell.configurables.remove(self)  # Magics.__init__ added it
            raise UsageError(f"covet_shell: {exc}") from None
        imported = import_models()
        namespace = shell_namespace(imported.models)
        shell.push(namespace.names)
        shell.push({RESOLVE_NAME: self.resolver}, interactive=False)
        self._pushed = {**namespace.names, RESOLVE_NAME: self.resolver}
        shell.input_transformers_post.append(self.transformer)
        self.renderer.register(shell)
        shell.events.register("pre_run_cell", self._pre_run_cell)
        shell.events.register("post_run_cell", self._post_run_cell)
        shell.register_magics(self)
        self.ledger.attach()
        if self.banner:
            print(self.banner_text(imported, namespace))

    def uninstall(self) -> None:
        """Undo :meth:`install`: names, transformer, formatters, events, listeners, magics."""
        shell = self.shell
        for name, value in self._pushed.items():
            if shell.user_ns.get(name) is value:
                del shell.user_ns[name]
            shell.user_ns_hidden.pop(name, None)
        self._pushed = {}
        if self.transformer in shell.input_transformers_post:
            shell.input_transformers_post.remove(self.transformer)
        self.renderer.unregister(shell)
        for event, fn in (("pre_run_cell", self._pre_run_cell),
                          ("post_run_cell", self._post_run_cell)):
            try:
                shell.events.unregister(event, fn)
            except ValueError:
                pass
        self.ledger.detach()
        manager = shell.magics_manager
        assert manager is not None
        mine: dict[str, dict[str, Any]] = self.magics  # type: ignore[assignment]
        for kind, names in mine.items():
            for name in names:
                manager.magics[kind].pop(name, None)
        if manager.registry.get(type(self).__name__) is self:
            del manager.registry[type(self).__name__]
        if self in shell.configurables:
            shell.configurables.remove(self)

    def banner_text(self, imported: ModelImport, namespace: ShellNamespace) -> str:
        from covet.database import describe_database

        lines = [f"CovetPy shell · database: {describe_database('default')}"]
        models = [n for n, v in namespace.names.items() if v in imported.models]
        if models:
            lines.append(f"models ({', '.join(imported.modules)}, {imported.origin}): "
                         + ", ".join(models))
        elif not imported.errors:
            lines.append("models: none found (set $COVET_MODELS=pkg.models, [tool.covet] models "
                         "= [...] in pyproject.toml, or add models.py here)")
        for new, model in namespace.renamed.items():
            lines.append(f"name clash: {model.__module__}.{model.__name__} is {new}")
        lines += [f"models: {error}" for error in imported.errors]
        lines.append("helpers: Q, F, Count, Sum, Avg, Min, Max, transaction, get_adapter")
        example = f"{models[0]}.objects.all()" if models else "Model.objects.all()"
        lines.append(f"A query as a cell's last line runs without await ({example}). "
                     "Magics: %covet_models %covet_explain %%covet_sql %covet_history %covet_log "
                     "%covet_connect")
        return "\n".join(lines)

    # IPython events -------------------------------------------------------------------------
    def _pre_run_cell(self, info: Any) -> None:
        self.ledger.start_cell(self.shell.execution_count, getattr(info, "raw_cell", "") or "")

    def _post_run_cell(self, result: Any) -> None:
        cell = self.ledger.finish_cell()
        if cell is None:
            return
        sys.stdout.write(cell.summary() + "\n")  # one write: one stream message in a kernel
        sys.stdout.flush()
        for found in detect_n_plus_one(cell, self.n_plus_one_threshold):
            sys.stderr.write(found.message() + "\n")
            sys.stderr.flush()

    # running database work --------------------------------------------------------------------
    def _defer(self, factory: Callable[[], Awaitable[Any]], label: str) -> Any:
        """Hand the work to the cell's await, or run it now when no loop is running."""
        from IPython.core.async_helpers import _asyncio_runner

        if _loop_running() or self.shell.loop_runner is not _asyncio_runner:
            return Pending(factory, label)
        return self.shell.loop_runner(factory())

    # magics ---------------------------------------------------------------------------------
    @no_var_expand
    @magic_arguments()
    @argument("--alias", default="default", help="the alias to (re)configure")
    @argument("url", help="a database URL (sqlite:///app.db, postgresql://user:pass@host/db)")
    @line_magic
    def covet_connect(self, line: str) -> Any:
        """Switch the database: ``%covet_connect postgresql://user:pass@host/db``."""
        from covet.database import close_all, configure, connections, describe_database, get_adapter
        from covet.database.exceptions import ConfigurationError

        args = parse_argstring(self.covet_connect, line)
        previous = connections.registered_config(args.alias)
        try:
            config = configure(args.url, alias=args.alias)
        except ConfigurationError as exc:
            raise UsageError(f"%covet_connect: {exc}") from None

        async def connect() -> None:
            try:
                await close_all()  # the previous database's pools
                await get_adapter(args.alias)
            except Exception as exc:  # noqa: BLE001 - any failure: restore, then report it
                if previous is not None:
                    configure(previous, alias=args.alias)
                else:
                    connections.unregister(args.alias)
                raise UsageError(f"%covet_connect: cannot connect to {config.url}: "
                                 f"{config.scrub(str(exc))}") from None
            self.ledger.attach()
            print(f"connected: {describe_database(args.alias)}")

        return self._defer(connect, "%covet_connect")

    @no_var_expand
    @magic_arguments()
    @argument("--analyze", action="store_true",
              help="run the query too (EXPLAIN ANALYZE on PostgreSQL, rolled back)")
    @argument("expression", nargs="*", help="a QuerySet, e.g. User.objects.filter(city='Berlin')")
    @line_magic
    def covet_explain(self, line: str) -> Any:
        """The query plan of a QuerySet as a tree, with the full scans an index would avoid."""
        from covet.database import get_adapter
        from covet.database.exceptions import DatabaseError
        from covet.database.orm.manager import Manager
        from covet.database.orm.query import QuerySet, RawQuerySet
        from covet.database.orm.related import RelatedManager

        options, expression = _split_options(line)
        args = parse_argstring(self.covet_explain, options)
        if not expression:
            raise UsageError("%covet_explain needs a QuerySet, e.g. "
                             "%covet_explain User.objects.filter(city='Berlin')")
        try:
            value = eval(compile(expression, "<covet_explain>", "eval"), self.shell.user_ns)
        except SyntaxError as exc:
            raise UsageError(f"%covet_explain: not a Python expression: {exc.msg}") from None
        if isinstance(value, (Manager, RelatedManager)):
            value = value.get_queryset()
        if isinstance(value, QuerySet):
            (sql, values), alias = value.sql(), value._using
        elif isinstance(value, RawQuerySet):
            sql, values, alias = value.raw_sql, value.params, value._using
        else:
            raise UsageError(f"%covet_explain takes a QuerySet such as User.objects.filter(...), "
                             f"not {type(value).__name__}")

        async def plan() -> Any:
            adapter = await get_adapter(alias)
            try:
                return await explain(adapter, sql, list(values), args.analyze)
            except DatabaseError as exc:
                raise UsageError(f"%covet_explain: {exc}") from None

        return self._defer(plan, "%covet_explain")

    @no_var_expand
    @magic_arguments()
    @argument("--alias", default="default", help="the database alias to run on")
    @argument("--out", default=None, help="keep the rows (a list of dicts) in this variable")
    @cell_magic
    def covet_sql(self, line: str, cell: str) -> Any:
        """Raw SQL on the shell's database; ``:name`` sends the variable ``name`` as a bound
        parameter (never pasted into the text). SELECT shows a table, other statements the
        number of rows affected."""
        from covet.database import get_adapter
        from covet.database.exceptions import DatabaseError

        args = parse_argstring(self.covet_sql, line)
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"%%covet_sql --out {args.out!r}: not a valid variable name")
        try:
            statements = [sqlparams.bind(s, self.shell.user_ns)
                          for s in sqlparams.split_statements(cell)]
        except sqlparams.ParameterError as exc:
            raise UsageError(f"%%covet_sql: {exc}") from None
        if not statements:
            raise UsageError("%%covet_sql: the cell holds no SQL statement")

        async def run() -> Any:
            import time

            from IPython.display import display

            adapter = await get_adapter(args.alias)
            result: QueryResult | None = None
            for bound in statements:
                if result is not None:
                    display(result)
                sql, values = adapter.prepare_raw(bound.sql, bound.values)
                started = time.perf_counter()
                try:
                    if (sqlparams.first_keyword(bound.sql) in _ROW_KEYWORDS
                            or "RETURNING" in bound.sql.upper()):
                        columns, rows = await adapter.run_fetch_columns(sql, values)
                        result = QueryResult([dict(zip(columns, r)) for r in rows], columns,
                                             rows, bound.sql, bound.values,
                                             time.perf_counter() - started)
                    else:
                        count = await adapter.run_execute(sql, values)
                        result = QueryResult(count, [], [], bound.sql, bound.values,
                                             time.perf_counter() - started, affected=count)
                except DatabaseError as exc:
                    raise UsageError(f"%%covet_sql: {exc}") from None
            if args.out is not None and result is not None:
                self.shell.user_ns[args.out] = result.value
            return result

        return self._defer(run, "%%covet_sql")

    @no_var_expand
    @magic_arguments()
    @argument("models", nargs="*", help="model names (all loaded models when none)")
    @line_magic
    def covet_models(self, line: str) -> ModelsReport:
        """Each model's table, fields (type and column type) and relations."""
        import difflib

        from covet.database import connections
        from covet.database.orm.options import registry

        args = parse_argstring(self.covet_models, line)
        models = [m for m in registry if not getattr(m._meta, "auto_created", False)]
        if args.models:
            chosen = []
            for name in args.models:
                # the namespace first (the models the shell pushed), then the registry
                model = self.shell.user_ns.get(name)
                if not is_covet_object(model) or not isinstance(model, type):
                    model = registry.lookup(name)
                if model is None:
                    hint = difflib.get_close_matches(name, {m.__name__ for m in models}, n=3)
                    extra = f"; did you mean {', '.join(hint)}?" if hint else ""
                    raise UsageError(f"%covet_models: no model named {name!r}{extra}")
                chosen.append(model)
            models = chosen
        return describe_models(models, connections.adapter_for("default").dialect)

    @magic_arguments()
    @argument("state", nargs="?", choices=["on", "off"], help="echo every statement or stop")
    @line_magic
    def covet_log(self, line: str) -> None:
        """``%covet_log on``: print every statement as it runs (SQL, parameters, rows, time)."""
        args = parse_argstring(self.covet_log, line)
        if args.state is not None:
            self.ledger.echo = args.state == "on"
        print(f"query log {'on' if self.ledger.echo else 'off'}")

    @magic_arguments()
    @argument("-n", type=int, default=10, help="how many cells to show (default 10)")
    @argument("--clear", action="store_true", help="forget the recorded queries")
    @line_magic
    def covet_history(self, line: str) -> HistoryReport | None:
        """The queries the last cells ran (cell, time, rows, SQL, parameters)."""
        args = parse_argstring(self.covet_history, line)
        if args.clear:
            self.ledger.history.clear()
            return None
        if args.n < 1:
            raise UsageError("%covet_history -n takes a positive number")
        return HistoryReport(list(self.ledger.history)[-args.n:])
