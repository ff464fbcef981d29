"""Database configuration: ``DatabaseConfig``, ``configure()`` and the default resolution.

Barrier: this module turns what the user wrote (keywords, a URL, an environment variable, a
``[tool.covet]`` table) into one validated, immutable-by-convention ``DatabaseConfig`` per alias.
It never opens a connection; ``covet.database.connections`` holds the registry and the adapters.

Resolution of the ``default`` alias when nothing registered it:

1. the environment variable ``COVET_DATABASE_URL``;
2. ``database = "..."`` under ``[tool.covet]`` in ``pyproject.toml`` of the working directory;
3. the SQLite file ``covet.db`` in the working directory.

Passwords never appear in a ``repr``, ``str``, banner or error message: they are shown as ``***``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from covet.database.adapters import canonical_engine, engine_dialect
from covet.database.exceptions import ConfigurationError, close_matches

__all__ = [
    "DatabaseConfig",
    "configure",
    "describe_database",
    "mask_secret",
    "mask_url",
    "resolve_default_config",
    "ENV_VAR",
    "DEFAULT_SQLITE_FILE",
]

ENV_VAR = "COVET_DATABASE_URL"
DEFAULT_SQLITE_FILE = "covet.db"
MASK = "***"

# Options understood by every engine, then per engine. PostgreSQL passes any other option through
# to asyncpg (``command_timeout``, ``ssl``, ``server_settings``, ``statement_cache_size``...).
_COMMON_OPTIONS = {"acquire_timeout"}
_SQLITE_OPTIONS = {"busy_timeout", "synchronous", "journal_mode"}
_POOL_KEYS = {"pool_min", "pool_max"}
_DEFAULT_POOL = {"sqlite": (1, 4), "postgresql": (1, 10)}
_MEMORY = ":memory:"


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***`` (``postgresql://u:***@h/db``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    userinfo, at, hostinfo = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:{MASK}@{hostinfo}{slash}{tail}"


def mask_secret(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret`` (and its URL-quoted form) in ``text`` by ``***``."""
    if not secret:
        return text
    for form in {secret, quote(secret, safe="")}:
        text = text.replace(form, MASK)
    return text


def _split_hostport(hostinfo: str) -> tuple[str | None, int | None]:
    if not hostinfo:
        return None, None
    if "," in hostinfo:  # several hosts: leave them to the driver
        return hostinfo, None
    if hostinfo.startswith("["):  # [ipv6]:port
        host, _, port = hostinfo[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostinfo.rpartition(":") if ":" in hostinfo else (hostinfo, "", "")
    if port and not port.isdigit():
        raise ConfigurationError(f"invalid port {port!r} in database URL")
    return unquote(host) or None, int(port) if port else None


def _coerce_option(key: str, value: Any) -> Any:
    """URL query values arrive as text; turn the numeric ones we own into numbers."""
    if isinstance(value, str) and key in {"pool_min", "pool_max", "busy_timeout"}:
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"option {key} must be an integer, not {value!r}") from None
    if isinstance(value, str) and key == "acquire_timeout":
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"option {key} must be a number, not {value!r}") from None
    return value


class DatabaseConfig:
    """How to reach one database, registered under an alias as soon as it is created.

    Examples::

        DatabaseConfig(host='localhost', database='db', user='user', password='pass')  # PostgreSQL
        DatabaseConfig(url='postgresql://user:pass@localhost:5432/db')
        DatabaseConfig(url='sqlite:///app.db')            # relative to the working directory
        DatabaseConfig(path='app.db')                     # the same
        DatabaseConfig(engine='sqlite', database=':memory:', alias='scratch')

    Args:
        url: a database URL; may be given positionally. Query parameters become options
            (``pool_min``/``pool_max`` set the pool; PostgreSQL passes the rest to asyncpg).
        host, port, database, user, password: PostgreSQL connection parts. For SQLite,
            ``database`` is the file path.
        path: a SQLite file path (or ``':memory:'``); implies ``engine='sqlite'``.
        alias: the name the configuration is registered under (``'default'``).
        pool_min, pool_max: pool sizes; engine defaults when None (SQLite 1..4, a memory
            database always 1..1; PostgreSQL 1..10).
        engine: ``'sqlite'`` or ``'postgresql'`` (or a registered scheme such as ``'postgres'``);
            inferred from the other arguments when None. SQLite engines: ``'sqlite'`` (the
            native Rust executor, the default), ``'sqlite+aiosqlite'`` or ``'aiosqlite'`` (the
            reference engine), ``'sqlite+native'`` (the Rust executor, no fallback). With a plain
            ``sqlite:///`` URL, ``engine=`` picks the driver (``url='sqlite:///a.db',
            engine='aiosqlite'``); the same scheme in the URL (``sqlite+aiosqlite:///a.db``) does too.
        register: register under ``alias`` now (the default). ``False`` builds a detached value.
        **options: engine options. Common: ``acquire_timeout`` (seconds to wait for a pooled
            connection, default 30). SQLite: ``busy_timeout`` (ms, default 5000), ``synchronous``,
            ``journal_mode`` (default WAL for files). PostgreSQL: any asyncpg connect keyword.

    Raises:
        ConfigurationError: the arguments are contradictory, incomplete or unknown.
    """

    __slots__ = (
        "engine", "host", "port", "database", "user", "password", "path", "alias",
        "pool_min", "pool_max", "options", "source", "_abs_path", "_query",
    )

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | str | None = None,
        database: str | None = None,
        user: str | None = None,
        password: str | None = None,
        path: str | os.PathLike[str] | None = None,
        alias: str = "default",
        pool_min: int | None = None,
        pool_max: int | None = None,
        engine: str | None = None,
        register: bool = True,
        source: str = "explicit",
        **options: Any,
    ) -> None:
        self.alias = alias
        self.source = source
        self._query: dict[str, str] = {}
        options = {k: _coerce_option(k, v) for k, v in options.items()}
        if url is not None:
            if any(v is not None for v in (host, port, database, user, password, path)):
                raise ConfigurationError(
                    "give either url= or the parts (host=, database=, path=, ...), not both"
                )
            parsed = self._parse_url(str(url))
            engine = _merge_engines(engine, parsed["engine"], url)
            host, port = parsed["host"], parsed["port"]
            database, user, password = parsed["database"], parsed["user"], parsed["password"]
            path = parsed["path"]
            for key, value in parsed["query"].items():
                if key in _POOL_KEYS or key in _COMMON_OPTIONS or (
                    engine_dialect(parsed["engine"]) == "sqlite"
                ):
                    options.setdefault(key, _coerce_option(key, value))
                else:
                    self._query[key] = value
        pool_min = options.pop("pool_min", None) if pool_min is None else pool_min
        pool_max = options.pop("pool_max", None) if pool_max is None else pool_max
        options.pop("pool_min", None)
        options.pop("pool_max", None)

        if engine is None:
            if path is not None:
                engine = "sqlite"
            elif host is not None or user is not None or password is not None:
                engine = "postgresql"
            elif database is not None:
                looks_sqlite = database == _MEMORY or database.endswith(
                    (".db", ".sqlite", ".sqlite3")
                )
                engine = "sqlite" if looks_sqlite else "postgresql"
            else:
                raise ConfigurationError(
                    "DatabaseConfig needs url=, path= (SQLite) or host=/database= (PostgreSQL)"
                )
        self.engine = canonical_engine(engine)

        if self.dialect == "sqlite":
            if host is not None or port is not None or user is not None or password is not None:
                raise ConfigurationError("SQLite takes a path, not host/port/user/password")
            if path is not None and database is not None and os.fspath(path) != database:
                raise ConfigurationError(
                    f"path={os.fspath(path)!r} and database={database!r} disagree"
                )
            raw = os.fspath(path) if path is not None else database
            if not raw:
                raise ConfigurationError("a SQLite configuration needs a file path or ':memory:'")
            self.path: str | None = raw
            self.database: str | None = raw
            self._abs_path = raw if raw == _MEMORY else os.path.abspath(raw)
            unknown = set(options) - _SQLITE_OPTIONS - _COMMON_OPTIONS
            if unknown:
                name = sorted(unknown)[0]
                hint = close_matches(name, _SQLITE_OPTIONS | _COMMON_OPTIONS)
                extra = f"; did you mean {hint[0]!r}?" if hint else ""
                raise ConfigurationError(f"unknown SQLite option {name!r}{extra}")
        else:
            self.path = None
            self.database = database
            self._abs_path = ""
        self.host = host
        self.port = int(port) if port is not None else None
        self.user = user
        self.password = password
        self.options: dict[str, Any] = options

        default_min, default_max = _DEFAULT_POOL.get(self.dialect, (1, 10))
        if self.is_memory:
            default_min, default_max = 1, 1
        self.pool_min = default_min if pool_min is None else int(pool_min)
        self.pool_max = default_max if pool_max is None else int(pool_max)
        if self.pool_max < 1 or self.pool_min < 0 or self.pool_min > self.pool_max:
            raise ConfigurationError(
                f"invalid pool sizes pool_min={self.pool_min}, pool_max={self.pool_max}"
            )
        if self.is_memory and self.pool_max != 1:
            # Every connection to ':memory:' is a different database: share one connection.
            self.pool_min, self.pool_max = min(self.pool_min, 1), 1
        if register:
            from covet.database import connections

            connections.register(self)

    # parsing ------------------------------------------------------------------------------
    @staticmethod
    def _parse_url(url: str) -> dict[str, Any]:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise ConfigurationError(
                f"not a database URL: {mask_url(url)!r} (expected e.g. sqlite:///app.db "
                "or postgresql://user:pass@host/db)"
            )
        engine = canonical_engine(scheme)
        rest, _, query_text = rest.partition("?")
        query = dict(parse_qsl(query_text, keep_blank_values=True))
        out: dict[str, Any] = {
            "engine": engine, "host": None, "port": None, "database": None,
            "user": None, "password": None, "path": None, "query": query,
        }
        if engine_dialect(engine) == "sqlite":
            # sqlite:///relative.db, sqlite:////absolute.db, sqlite:///:memory:, sqlite://
            netloc, _, path = rest.partition("/")
            if netloc and netloc != "localhost":
                raise ConfigurationError(
                    f"a SQLite URL has no host: write sqlite:///{netloc}/{path} or "
                    f"sqlite:////absolute/{path}"
                )
            out["path"] = unquote(path) or _MEMORY
            return out
        netloc, _, dbname = rest.partition("/")
        userinfo, at, hostinfo = netloc.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            out["user"] = unquote(user) or None
            out["password"] = unquote(password) if colon else None
        out["host"], out["port"] = _split_hostport(hostinfo)
        out["database"] = unquote(dbname) or None
        return out

    # views ---------------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """``'sqlite'`` or ``'postgresql'``: the engine without its driver."""
        return engine_dialect(self.engine)

    @property
    def is_memory(self) -> bool:
        """True for a SQLite ``:memory:`` database (one shared connection)."""
        return self.dialect == "sqlite" and self.path == _MEMORY

    @property
    def sqlite_path(self) -> str:
        """The absolute SQLite file path (``':memory:'`` for a memory database)."""
        return self._abs_path

    @property
    def url(self) -> str:
        """The URL with the password masked; safe to print."""
        return self._build_url(reveal=False)

    def dsn(self) -> str:
        """The URL *with* the password, for the driver only. Never print or log it."""
        return self._build_url(reveal=True)

    def _build_url(self, reveal: bool) -> str:
        if self.dialect == "sqlite":
            return f"{self.engine}:///{self.path}"
        userinfo = ""
        if self.user is not None:
            userinfo = quote(self.user, safe="")
            if self.password is not None:
                userinfo += ":" + (quote(self.password, safe="") if reveal else MASK)
            userinfo += "@"
        host = self.host or ""
        if ":" in host and "," not in host and not host.startswith("["):
            host = f"[{host}]"
        port = f":{self.port}" if self.port is not None else ""
        db = quote(self.database, safe="") if self.database else ""
        query = f"?{urlencode(self._query)}" if self._query else ""
        return f"{self.engine}://{userinfo}{host}{port}/{db}{query}"

    def scrub(self, text: str) -> str:
        """Mask this configuration's password wherever it appears in ``text``."""
        return mask_secret(text, self.password)

    def replace(self, **changes: Any) -> DatabaseConfig:
        """A copy with some arguments changed (registered unless ``register=False``)."""
        args: dict[str, Any] = {
            "engine": self.engine, "alias": self.alias, "pool_min": self.pool_min,
            "pool_max": self.pool_max, "source": self.source, **self.options,
        }
        if self.dialect == "sqlite":
            args["path"] = self.path
        else:
            args.update(
                host=self.host, port=self.port, database=self.database, user=self.user,
                password=self.password,
            )
        args.update(changes)
        register = args.pop("register", True)
        copy = DatabaseConfig(**args, register=False)
        copy._query = dict(self._query)
        if register:
            from covet.database import connections

            connections.register(copy)
        return copy

    def describe(self) -> str:
        """One line for banners: the masked URL and where the configuration came from."""
        where = self.sqlite_path if self.dialect == "sqlite" else self.url
        if self.dialect == "sqlite" and not self.is_memory:
            where = f"{self.engine}:///{where}"
        origin = {
            "explicit": "configured in code",
            "env": f"from ${ENV_VAR}",
            "pyproject": "from [tool.covet] in pyproject.toml",
            "default": "default: nothing configured",
        }.get(self.source, self.source)
        return f"{where} (alias {self.alias!r}, {origin})"

    def __repr__(self) -> str:
        return (
            f"DatabaseConfig({self.url!r}, alias={self.alias!r}, "
            f"pool_min={self.pool_min}, pool_max={self.pool_max})"
        )

    def __str__(self) -> str:
        return self.url

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatabaseConfig):
            return NotImplemented
        return (self.dsn(), self.alias, self.pool_min, self.pool_max, self.options) == (
            other.dsn(), other.alias, other.pool_min, other.pool_max, other.options,
        )

    __hash__ = None  # type: ignore[assignment]


def _merge_engines(given: str | None, from_url: str, url: str) -> str:
    """The engine when both ``engine=`` and a URL name one.

    Equal engines agree. Within one dialect, the plain dialect name (``sqlite``) defers to a
    driver-specific one (``sqlite+aiosqlite``), so ``engine=`` can pick the driver for a plain URL.
    """
    if given is None:
        return from_url
    wanted = canonical_engine(given)
    if wanted == from_url:
        return wanted
    if engine_dialect(wanted) == engine_dialect(from_url):
        if from_url == engine_dialect(from_url):
            return wanted
        if wanted == engine_dialect(wanted):
            return from_url
    raise ConfigurationError(f"engine={given!r} contradicts the URL scheme of {mask_url(url)}")


def _from_text(
    text: str, alias: str, register: bool, source: str, **kwargs: Any
) -> DatabaseConfig:
    """A URL, or a bare SQLite path (no ``://``), as a configuration."""
    text = text.strip()
    if "://" in text:
        return DatabaseConfig(text, alias=alias, register=register, source=source, **kwargs)
    return DatabaseConfig(path=text, alias=alias, register=register, source=source, **kwargs)


def configure(
    url_or_config: str | os.PathLike[str] | DatabaseConfig | Mapping[str, Any],
    alias: str = "default",
    pool_min: int | None = None,
    pool_max: int | None = None,
) -> DatabaseConfig:
    """Configure (or reconfigure) the database behind ``alias``; the one programmatic entry point.

    Args:
        url_or_config: a URL (``postgresql://...``, ``sqlite:///app.db``), a SQLite path, a
            :class:`DatabaseConfig`, or a mapping of ``DatabaseConfig`` keywords.
        alias: the alias to register under.
        pool_min, pool_max: override the pool sizes.

    Returns:
        The registered configuration. An adapter already open for the alias is retired and
        closed by the next ``close_all()``.
    """
    sizes = {k: v for k, v in (("pool_min", pool_min), ("pool_max", pool_max)) if v is not None}
    if isinstance(url_or_config, DatabaseConfig):
        return url_or_config.replace(alias=alias, **sizes)
    if isinstance(url_or_config, Mapping):
        return DatabaseConfig(**{**url_or_config, "alias": alias, **sizes})
    return _from_text(os.fspath(url_or_config), alias, True, "explicit", **sizes)


def _pyproject_database(directory: Path) -> str | None:
    pyproject = directory / "pyproject.toml"
    if not pyproject.is_file():
        return None
    try:
        with pyproject.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"cannot read {pyproject}: {exc}") from exc
    value = data.get("tool", {}).get("covet", {}).get("database")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"[tool.covet] database in {pyproject} must be a URL string")
    return value


def resolve_default_config(alias: str = "default", register: bool = False) -> DatabaseConfig:
    """Build the configuration used when nothing registered ``alias``.

    Order: ``$COVET_DATABASE_URL``, then ``[tool.covet] database`` in ``./pyproject.toml``,
    then the SQLite file ``./covet.db``. The working directory is read at call time.
    """
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _from_text(env, alias, register, "env")
    cwd = Path.cwd()
    from_pyproject = _pyproject_database(cwd)
    if from_pyproject is not None:
        if "://" not in from_pyproject and not os.path.isabs(from_pyproject):
            from_pyproject = str(cwd / from_pyproject)
        return _from_text(from_pyproject, alias, register, "pyproject")
    return DatabaseConfig(
        path=str(cwd / DEFAULT_SQLITE_FILE), alias=alias, register=register, source="default"
    )


def describe_database(alias: str = "default") -> str:
    """Describe the database ``alias`` uses (or would use), password masked, for banners."""
    from covet.database import connections

    config = connections.registered_config(alias)
    if config is None:
        if alias != "default":
            return f"alias {alias!r}: not configured"
        config = resolve_default_config(alias)
    return config.describe()
