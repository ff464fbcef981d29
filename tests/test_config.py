"""DatabaseConfig, configure(), default resolution, registry and password masking."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from covet.database import connections
from covet.database.config import (
    DatabaseConfig,
    configure,
    describe_database,
    mask_secret,
    mask_url,
    resolve_default_config,
)
from covet.database.exceptions import ConfigurationError, OperationalError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COVET_DATABASE_URL", raising=False)
    connections.unregister("default")


# construction ----------------------------------------------------------------------------------
def test_guide_form_is_postgresql_and_registers_default() -> None:
    config = DatabaseConfig(host="localhost", database="db", user="user", password="pass")
    assert config.engine == "postgresql"
    assert (config.host, config.database, config.user, config.password) == (
        "localhost", "db", "user", "pass"
    )
    assert connections.registered_config("default") is config
    assert connections.get_config() is config


def test_alias_registers_only_that_alias() -> None:
    config = DatabaseConfig(url="sqlite:///other.db", alias="other")
    assert connections.registered_config("other") is config
    assert connections.registered_config("default") is None


def test_register_false_builds_a_detached_config() -> None:
    DatabaseConfig(url="sqlite:///x.db", register=False)
    assert connections.registered_config("default") is None


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"url": "sqlite:///app.db"}, ("sqlite", "app.db")),
        ({"url": "sqlite:////var/data/app.db"}, ("sqlite", "/var/data/app.db")),
        ({"url": "sqlite:///:memory:"}, ("sqlite", ":memory:")),
        ({"url": "sqlite://"}, ("sqlite", ":memory:")),
        ({"url": "sqlite3:///app.db"}, ("sqlite", "app.db")),
        ({"path": "app.db"}, ("sqlite", "app.db")),
        ({"engine": "sqlite", "database": "app.db"}, ("sqlite", "app.db")),
        ({"database": "app.sqlite3"}, ("sqlite", "app.sqlite3")),
        ({"database": ":memory:"}, ("sqlite", ":memory:")),
    ],
)
def test_sqlite_forms(kwargs: dict[str, str], expected: tuple[str, str]) -> None:
    config = DatabaseConfig(**kwargs, register=False)  # type: ignore[arg-type]
    assert (config.engine, config.path) == expected


def test_relative_sqlite_path_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = DatabaseConfig(url="sqlite:///app.db", register=False)
    assert config.sqlite_path == str(tmp_path / "app.db")
    assert config.url == "sqlite:///app.db"


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("postgresql://u:p@h:5432/db", ("u", "p", "h", 5432, "db")),
        ("postgres://u@h/db", ("u", None, "h", None, "db")),
        ("postgresql+asyncpg://u:p@h/db", ("u", "p", "h", None, "db")),
        ("postgresql://u:p%40ss%2Fw@h/my%20db", ("u", "p@ss/w", "h", None, "my db")),
        ("postgresql://u:p@[::1]:6543/db", ("u", "p", "::1", 6543, "db")),
        ("postgresql:///db", (None, None, None, None, "db")),
    ],
)
def test_postgresql_urls(url: str, parts: tuple[object, ...]) -> None:
    config = DatabaseConfig(url, register=False)
    assert config.engine == "postgresql"
    assert (config.user, config.password, config.host, config.port, config.database) == parts


def test_url_query_sets_pool_and_keeps_driver_parameters() -> None:
    config = DatabaseConfig(
        url="postgresql://u:p@h/db?pool_min=2&pool_max=7&sslmode=disable", register=False
    )
    assert (config.pool_min, config.pool_max) == (2, 7)
    assert config.dsn() == "postgresql://u:p@h/db?sslmode=disable"
    assert config.url == "postgresql://u:***@h/db?sslmode=disable"


def test_pool_defaults_and_overrides() -> None:
    assert (DatabaseConfig(path="a.db", register=False).pool_max) == 4
    assert DatabaseConfig(host="h", database="d", register=False).pool_max == 10
    assert DatabaseConfig(path="a.db", pool_max=2, register=False).pool_max == 2
    memory = DatabaseConfig(url="sqlite:///:memory:", pool_max=8, register=False)
    assert memory.is_memory and memory.pool_max == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs url="),
        ({"url": "sqlite:///a.db", "host": "h"}, "not both"),
        ({"url": "postgress://u@h/db"}, "did you mean 'postgres'"),
        ({"url": "mysql://u@h/db"}, "unknown database engine"),
        ({"url": "app.db"}, "not a database URL"),
        ({"engine": "sqlite", "host": "h", "database": "a.db"}, "SQLite takes a path"),
        ({"path": "a.db", "pool_min": 5, "pool_max": 2}, "invalid pool sizes"),
        ({"path": "a.db", "busy_timout": 10}, "did you mean 'busy_timeout'"),
        ({"url": "postgresql://u@h:port/db"}, "invalid port"),
        ({"url": "sqlite://host/app.db"}, "a SQLite URL has no host"),
        ({"url": "sqlite:///a.db", "engine": "postgresql"}, "contradicts"),
        ({"path": "a.db", "database": "b.db"}, "disagree"),
    ],
)
def test_configuration_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        DatabaseConfig(**kwargs, register=False)  # type: ignore[arg-type]


def test_journal_mode_off_is_refused() -> None:
    from covet.database.adapters.sqlite import SQLiteAdapter

    config = DatabaseConfig(path="a.db", journal_mode="OFF", register=False)
    with pytest.raises(ConfigurationError, match="journal_mode"):
        SQLiteAdapter(config)


# masking -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://user:pass@localhost/db", "postgresql://user:***@localhost/db"),
        ("postgresql://user:p:a@ss@h:5432/db", "postgresql://user:***@h:5432/db"),
        ("postgresql://user@localhost/db", "postgresql://user@localhost/db"),
        ("sqlite:///app.db", "sqlite:///app.db"),
        ("not a url", "not a url"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_secret_masks_plain_and_quoted_forms() -> None:
    assert mask_secret("pw is s3cr@t or s3cr%40t", "s3cr@t") == "pw is *** or ***"
    assert mask_secret("nothing", None) == "nothing"


def test_password_never_in_repr_str_describe() -> None:
    config = DatabaseConfig(host="localhost", database="db", user="user", password="s3cret!")
    for text in (repr(config), str(config), config.url, config.describe(), describe_database()):
        assert "s3cret" not in text
    assert str(config) == "postgresql://user:***@localhost/db"
    assert "s3cret" in config.dsn()
    adapter = connections.adapter_for("default")
    assert "s3cret" not in repr(adapter)


def test_password_not_in_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        DatabaseConfig(url="postgress://user:hunter2@h/db", register=False)
    assert "hunter2" not in str(info.value)


async def test_password_not_in_connection_errors() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configure(f"postgresql://user:hunter2@127.0.0.1:{port}/db", alias="down")
    adapter = connections.adapter_for("down")
    with pytest.raises(OperationalError) as info:
        await adapter.connect()
    assert "hunter2" not in str(info.value)
    assert "user:***@127.0.0.1" in str(info.value)
    assert info.value.__cause__ is not None
    await connections.close_all()


# configure() -------------------------------------------------------------------------------------
def test_configure_url_path_mapping_and_config(tmp_path: Path) -> None:
    first = configure("sqlite:///one.db")
    assert connections.get_config() is first
    second = configure(str(tmp_path / "two.db"), pool_max=2)
    assert second.path == str(tmp_path / "two.db") and second.pool_max == 2
    third = configure({"host": "h", "database": "d", "password": "pw"}, alias="pg")
    assert third.engine == "postgresql" and connections.get_config("pg") is third
    base = DatabaseConfig(url="sqlite:///base.db", alias="base", register=False)
    fourth = configure(base, alias="copy", pool_min=0, pool_max=3)
    assert (fourth.alias, fourth.pool_min, fourth.pool_max, fourth.path) == (
        "copy", 0, 3, "base.db"
    )
    assert connections.registered_config("base") is None


def test_replace_keeps_url_query() -> None:
    config = DatabaseConfig(url="postgresql://u:p@h/db?sslmode=disable", register=False)
    copy = config.replace(alias="x", register=False)
    assert copy.dsn() == config.dsn() and copy.alias == "x"
    assert copy == config.replace(alias="x", register=False)


async def test_reconfiguring_retires_the_open_adapter(tmp_path: Path) -> None:
    configure(f"sqlite:///{tmp_path / 'a.db'}")
    first = await connections.get_adapter()
    assert first.pool_stats().size == 1
    configure(f"sqlite:///{tmp_path / 'b.db'}")
    second = await connections.get_adapter()
    assert second is not first and second.config.path == str(tmp_path / "b.db")
    await connections.close_all()
    assert first.pool_stats().size == 0 and second.pool_stats().size == 0


def test_unknown_alias_suggests_close_matches() -> None:
    configure("sqlite:///x.db", alias="analytics")
    with pytest.raises(ConfigurationError, match="did you mean 'analytics'"):
        connections.get_config("analytic")
    assert "analytics" in connections.aliases()


# resolution order --------------------------------------------------------------------------------
def _pyproject(path: Path, database: str) -> None:
    (path / "pyproject.toml").write_text(f'[tool.covet]\ndatabase = "{database}"\n')


def test_env_var_wins_over_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _pyproject(tmp_path, "sqlite:///from_pyproject.db")
    monkeypatch.setenv("COVET_DATABASE_URL", "postgresql://u:pw@envhost/envdb")
    config = resolve_default_config()
    assert (config.engine, config.host, config.source) == ("postgresql", "envhost", "env")
    assert "COVET_DATABASE_URL" in config.describe() and "pw" not in config.describe()


def test_pyproject_when_no_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _pyproject(tmp_path, "sqlite:///from_pyproject.db")
    config = resolve_default_config()
    assert config.source == "pyproject"
    assert config.sqlite_path == str(tmp_path / "from_pyproject.db")


def test_pyproject_bare_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _pyproject(tmp_path, "data/app.db")
    assert resolve_default_config().sqlite_path == str(tmp_path / "data" / "app.db")


def test_default_sqlite_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.covet]
    config = resolve_default_config()
    assert (config.engine, config.sqlite_path, config.source) == (
        "sqlite", str(tmp_path / "covet.db"), "default"
    )
    assert "covet.db" in describe_database() and "nothing configured" in describe_database()
    assert connections.registered_config("default") is None  # describing registers nothing


def test_invalid_pyproject_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.covet\n")
    with pytest.raises(ConfigurationError, match="pyproject.toml"):
        resolve_default_config()


def test_explicit_registration_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COVET_DATABASE_URL", "postgresql://u@envhost/envdb")
    config = configure("sqlite:///explicit.db")
    assert connections.get_config() is config


async def test_get_adapter_without_configuration_uses_covet_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    adapter = await connections.get_adapter()
    try:
        assert adapter.dialect == "sqlite"
        assert await adapter.fetch_value("SELECT 41 + 1") == 42
        assert (tmp_path / "covet.db").exists()
        assert connections.registered_config("default") is adapter.config
    finally:
        await connections.close_all()


def test_close_all_without_a_loop_of_its_own(tmp_path: Path) -> None:
    configure(f"sqlite:///{tmp_path / 'a.db'}", alias="a")

    async def use() -> int:
        adapter = await connections.get_adapter("a")
        return int(await adapter.fetch_value("SELECT 1"))

    assert asyncio.run(use()) == 1
    asyncio.run(connections.close_all())
    assert connections.adapter_for("a").pool_stats().size == 0
