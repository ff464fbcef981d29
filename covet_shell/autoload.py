"""What ``%load_ext covet_shell`` puts in the namespace: the project's models and the helpers.

Barrier: finds and imports model modules, and names what the shell pushes; it never touches
IPython (the extension pushes the names) and never connects (configuration is resolved by
``covet.database.connections.get_config``).

Where the models come from, first match wins:

1. ``$COVET_MODELS``: comma-separated module names (``blog.models,shop.models``);
2. ``models = [...]`` (or one string) under ``[tool.covet]`` in ``./pyproject.toml``;
3. ``models.py`` or a ``models/`` package in the working directory.

Every concrete model defined in those modules (or their submodules) is pushed under its class
name; when two share a name, or a name clashes with a helper, each gets a module prefix
(``blog_User``, ``shop_User``) and the banner says so.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MODELS_ENV",
    "ModelImport",
    "ShellNamespace",
    "helpers",
    "import_models",
    "model_modules",
    "shell_namespace",
]

MODELS_ENV = "COVET_MODELS"


@dataclass
class ModelImport:
    """The outcome of importing the model modules.

    Attributes:
        origin: where the module names came from (for the banner), or ``''`` when none.
        modules: the module names imported.
        models: the concrete models found, in definition order.
        errors: one readable line per module that failed to import.
    """

    origin: str = ""
    modules: list[str] = field(default_factory=list)
    models: list[type[Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class ShellNamespace:
    """The names to push, and the models renamed because of a clash (``new name -> model``)."""

    names: dict[str, Any]
    renamed: dict[str, type[Any]]


def helpers() -> dict[str, Any]:
    """``Q``, ``F``, the aggregates, ``transaction`` and ``get_adapter``."""
    from covet.database import get_adapter
    from covet.database.orm.aggregates import Avg, Count, Max, Min, Sum
    from covet.database.orm.expressions import F, Q
    from covet.database.transaction import transaction

    return {"Q": Q, "F": F, "Count": Count, "Sum": Sum, "Avg": Avg, "Min": Min, "Max": Max,
            "transaction": transaction, "get_adapter": get_adapter}


def _pyproject_models(directory: Path) -> list[str] | None:
    path = directory / "pyproject.toml"
    if not path.is_file():
        return None
    try:
        with path.open("rb") as fh:
            value = tomllib.load(fh).get("tool", {}).get("covet", {}).get("models")
    except (OSError, tomllib.TOMLDecodeError):
        return None  # the database resolution reports an unreadable pyproject.toml
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def model_modules(cwd: str | os.PathLike[str] | None = None) -> tuple[list[str], str]:
    """The model module names to import and where that list came from.

    Args:
        cwd: the project directory (the working directory when None).

    Returns:
        ``(names, origin)``; ``([], '')`` when no source names any module.
    """
    directory = Path(cwd or os.getcwd())
    env = os.environ.get(MODELS_ENV, "").strip()
    if env:
        return [m.strip() for m in env.split(",") if m.strip()], f"${MODELS_ENV}"
    configured = _pyproject_models(directory)
    if configured:
        return configured, "[tool.covet] models"
    if (directory / "models.py").is_file() or (directory / "models" / "__init__.py").is_file():
        return ["models"], f"models in {directory}"
    return [], ""


def _import_tree(name: str) -> list[str]:
    """Import ``name`` and, for a package, its submodules; the module names imported."""
    module = importlib.import_module(name)
    names = [name]
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=name + "."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names


def import_models(names: list[str] | None = None, origin: str = "",
                  cwd: str | os.PathLike[str] | None = None) -> ModelImport:
    """Import the model modules (found with :func:`model_modules` when ``names`` is None).

    The project directory is put on ``sys.path`` first, as ``python -m`` would.
    """
    from covet.database.orm.options import registry

    if names is None:
        names, origin = model_modules(cwd)
    result = ModelImport(origin=origin, modules=list(names))
    directory = str(Path(cwd or os.getcwd()).resolve())
    if directory not in sys.path and "" not in sys.path:
        sys.path.insert(0, directory)
    imported: list[str] = []
    for name in names:
        try:
            imported.extend(_import_tree(name))
        except Exception as exc:  # noqa: BLE001 - any error in user code is reported, not raised
            result.errors.append(f"cannot import {name!r} ({origin}): "
                                 f"{type(exc).__name__}: {exc}")
    wanted = set(imported)
    exported = {id(v) for m in imported for v in vars(sys.modules[m]).values()}
    for model in registry:  # defined in those modules, or imported into them
        if (model.__module__ in wanted or id(model) in exported) and not getattr(
            model._meta, "auto_created", False
        ):
            result.models.append(model)
    return result


def _prefix(module: str) -> str:
    parts = [p for p in module.split(".") if p != "models"]
    return parts[-1] if parts else "models"


def shell_namespace(models: list[type[Any]]) -> ShellNamespace:
    """The names to push: the helpers, and each model under its name or a prefixed one."""
    names = helpers()
    by_name: dict[str, list[type[Any]]] = {}
    for model in models:
        by_name.setdefault(model.__name__, []).append(model)
    renamed: dict[str, type[Any]] = {}
    for name, group in by_name.items():
        if len(group) == 1 and name not in names:
            names[name] = group[0]
            continue
        prefixes = [_prefix(m.__module__) for m in group]
        if len(set(prefixes)) < len(prefixes):
            prefixes = [m.__module__.replace(".", "_") for m in group]
        for prefix, model in zip(prefixes, group):
            names[f"{prefix}_{name}"] = model
            renamed[f"{prefix}_{name}"] = model
    return ShellNamespace(names, renamed)
