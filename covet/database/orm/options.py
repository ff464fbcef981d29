"""Model metadata (``Model._meta``), ``Index`` and the model registry.

Barrier: describes tables, columns and relations of models; runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from covet.database.exceptions import ConfigurationError, FieldError, close_matches

if TYPE_CHECKING:
    from covet.database.orm.fields.base import Field
    from covet.database.orm.models import Model

__all__ = ["Options", "Index", "registry", "ModelRegistry"]

_META_KEYS = {"db_table", "abstract", "ordering", "indexes", "unique_together", "verbose_name"}


class Index:
    """An index over one or more columns: ``Index(fields=['last_name', 'first_name'])``.

    ``Index('a', 'b')`` is the same; ``-field`` makes that column descending; ``unique=True`` makes
    a unique index; ``name`` defaults to ``<table>_<columns>_idx``.
    """

    def __init__(self, *field_names: str, fields: Sequence[str] = (), name: str | None = None,
                 unique: bool = False) -> None:
        self.fields = list(field_names) + list(fields)
        if not self.fields:
            raise ValueError("Index needs at least one field")
        self.name = name
        self.unique = unique

    def __repr__(self) -> str:
        return f"Index(fields={self.fields!r}, name={self.name!r}, unique={self.unique})"


class InitPlan:
    """The fast path of ``Model.__init__``: every field's static default in field order, the
    fields whose default is a callable, and the keyword names it can take as they are (plain
    fields by name, relations by ``attname``; a relation given as an instance, an unknown name
    or a many-to-many name takes the general path, which also reports errors)."""

    __slots__ = ("static", "callables", "names")

    def __init__(self, meta: Options) -> None:
        self.static: dict[str, Any] = {}
        self.callables: list[tuple[str, Any]] = []
        names: set[str] = set()
        for field in meta.fields:
            default = field.default
            if field.has_default() and callable(default):
                self.callables.append((field.attname, default))
                self.static[field.attname] = None
            else:
                self.static[field.attname] = field.get_default()
            if field.is_relation or field.name == field.attname:
                names.add(field.attname)
        #: None for an abstract model: its instantiation error comes from the general path.
        self.names: frozenset[str] | None = None if meta.abstract else frozenset(names)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class Options:
    """Everything CovetPy knows about one model's table."""

    def __init__(self, model: type[Model], meta: Any, parent_meta: Any = None) -> None:
        def opt(key: str, default: Any) -> Any:
            if meta is not None and hasattr(meta, key):
                return getattr(meta, key)
            if parent_meta is not None and key != "db_table" and hasattr(parent_meta, key):
                return getattr(parent_meta, key)
            return default

        if meta is not None:
            unknown = [k for k in vars(meta) if not k.startswith("_") and k not in _META_KEYS]
            if unknown:
                hint = close_matches(unknown[0], _META_KEYS)
                raise ConfigurationError(
                    f"{model.__name__}.Meta has unknown option {unknown[0]!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" Known options: {', '.join(sorted(_META_KEYS))}"
                )
        self.model = model
        self.object_name = model.__name__
        self.abstract: bool = bool(meta is not None and getattr(meta, "abstract", False))
        self.db_table: str = opt("db_table", _snake(model.__name__))
        self.ordering: list[str] = list(opt("ordering", []))
        self.indexes: list[Index] = list(opt("indexes", []))
        ut = opt("unique_together", [])
        if ut and isinstance(ut[0], str):
            ut = [ut]
        self.unique_together: list[tuple[str, ...]] = [tuple(x) for x in ut]
        self.verbose_name: str = opt("verbose_name", model.__name__)
        self.fields: list[Field[Any]] = []
        self.fields_map: dict[str, Field[Any]] = {}
        self.pk: Field[Any]
        #: name -> relation descriptor (forward, reverse and many-to-many), filled by relations.
        self.relations: dict[str, Any] = {}
        self.many_to_many: list[Any] = []
        self.meta_class = meta
        self._init_plan: InitPlan | None = None

    @property
    def init_plan(self) -> InitPlan:
        """How ``Model.__init__`` fills a new instance (built once, rebuilt when fields change)."""
        plan = self._init_plan
        if plan is None:
            plan = self._init_plan = InitPlan(self)
        return plan

    def add_field(self, field: Field[Any]) -> None:
        self._init_plan = None
        self.fields.append(field)
        self.fields_map[field.name] = field
        if field.attname != field.name:
            self.fields_map[field.attname] = field
        if field.primary_key:
            self.pk = field

    @property
    def concrete_fields(self) -> list[Field[Any]]:
        return self.fields

    @property
    def columns(self) -> list[str]:
        return [f.column for f in self.fields]

    def get_field(self, name: str) -> Field[Any]:
        if name == "pk":
            return self.pk
        try:
            return self.fields_map[name]
        except KeyError:
            raise FieldError(self.unknown_field_message(name)) from None

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields] + [r for r in self.relations if r[0] != "_"]

    def unknown_field_message(self, name: str, path: str | None = None) -> str:
        names = sorted(set(self.field_names()))
        hints = close_matches(name, names)
        where = f" (in {path!r})" if path and path != name else ""
        msg = f"{self.object_name} has no field {name!r}{where}."
        if hints:
            msg += " Did you mean " + " or ".join(repr(h) for h in hints) + "?"
        return msg + f" Fields: {', '.join(names)}."

    def __repr__(self) -> str:
        return f"<Options for {self.object_name}>"


class ModelRegistry:
    """Every concrete model defined so far, for string references and ``create_tables()``."""

    def __init__(self) -> None:
        self._models: list[type[Model]] = []

    def register(self, model: type[Model]) -> None:
        # A model redefined under the same module and name (a re-run notebook cell) replaces
        # the old one instead of piling up.
        key = (model.__module__, model.__qualname__)
        self._models = [m for m in self._models if (m.__module__, m.__qualname__) != key]
        self._models.append(model)

    def unregister(self, model: type[Model]) -> None:
        self._models = [m for m in self._models if m is not model]

    def __iter__(self) -> Iterator[type[Model]]:
        return iter(list(self._models))

    def lookup(self, name: str, near: type[Model] | None = None) -> type[Model] | None:
        """Resolve ``'Tag'`` or ``'app.Tag'`` (module suffix); prefer ``near``'s module."""
        if "." in name:
            mod, _, cls = name.rpartition(".")
            found = [m for m in self._models if m.__name__ == cls
                     and (m.__module__ == mod or m.__module__.endswith("." + mod)
                          or m.__module__.split(".")[-2:-1] == [mod])]
        else:
            found = [m for m in self._models if m.__name__ == name]
        if not found:
            return None
        if near is not None:
            same = [m for m in found if m.__module__ == near.__module__]
            if same:
                return same[-1]
        return found[-1]


registry = ModelRegistry()
