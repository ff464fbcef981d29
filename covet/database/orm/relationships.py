"""Relations: ``ForeignKey``, ``OneToOneField``, ``ManyToManyField`` and their descriptors.

Barrier: describes how models are linked (join steps of table/column names) and gives instances
their relation attributes. No hidden I/O: a forward relation is the instance once loaded
(``select_related``, assignment, ``await post.fetch_related('author')``) and ``await post.author``
loads it; reverse and many-to-many relations are managers whose queries you await.

Each relation (forward or reverse) is registered in ``Model._meta.relations[name]`` as a
:class:`Relation`, which the query builder walks through ``join_steps()``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from covet.database.exceptions import ConfigurationError
from covet.database.orm.fields.base import Converter, Field
from covet.database.orm.fields.scalar import AutoField
from covet.database.orm.options import registry
from covet.database.orm.related import (
    ForwardDescriptor,
    ManyDescriptor,
    ReverseManyDescriptor,
    ReverseOneDescriptor,
)

if TYPE_CHECKING:
    from covet.database.orm.models import Model

__all__ = [
    "ForeignKey", "OneToOneField", "ManyToManyField", "Relation",
    "CASCADE", "SET_NULL", "SET_DEFAULT", "PROTECT", "RESTRICT", "DO_NOTHING",
]

M = TypeVar("M", bound="Model")

CASCADE = "CASCADE"
SET_NULL = "SET_NULL"
SET_DEFAULT = "SET_DEFAULT"
PROTECT = "PROTECT"
RESTRICT = "RESTRICT"
DO_NOTHING = "DO_NOTHING"
#: on_delete -> the SQL action of the foreign key constraint (enforced by the database, so the
#: behaviour is the same for ``obj.delete()``, ``qs.delete()`` and raw SQL, on both databases).
ON_DELETE_SQL = {
    CASCADE: "CASCADE", SET_NULL: "SET NULL", SET_DEFAULT: "SET DEFAULT",
    PROTECT: "RESTRICT", RESTRICT: "RESTRICT", DO_NOTHING: "NO ACTION",
}

# (reference, model that made it, callback) waiting for the referenced model to be defined.
_pending: list[tuple[str, Any, Callable[[Any], None]]] = []


def _lookup(ref: Any, near: Any) -> Any:
    if not isinstance(ref, str):
        return ref
    if ref == "self":
        return near
    return registry.lookup(ref, near)


def _lookup_local(ref: Any, near: Any) -> Any:
    """Resolve now only what cannot be ambiguous: a class, 'self', 'module.Name', or a model of
    the referring module (a bare name may still be defined later in that module)."""
    if not isinstance(ref, str) or ref == "self" or "." in ref:
        return _lookup(ref, near)
    found = registry.lookup(ref, near)
    return found if found is not None and found.__module__ == near.__module__ else None


def lazy_target(ref: Any, near: Any, callback: Callable[[Any], None]) -> None:
    """Call ``callback(model)`` as soon as the model ``ref`` names exists (maybe now)."""
    target = _lookup_local(ref, near)
    if target is not None:
        callback(target)
    else:
        _pending.append((ref, near, callback))


def resolve_pending(new_model: Any = None, *, final: bool = False) -> None:
    """Resolve the string references that were waiting (for ``new_model``).

    Bare names resolve within their own module first; ``final=True`` (done before the first
    query or DDL) also accepts a model of that name from another module.
    """
    for item in list(_pending):
        ref, near, callback = item
        target = _lookup(ref, near) if final else _lookup_local(ref, near)
        if target is not None and item in _pending:
            _pending.remove(item)
            callback(target)


def finalize_pending() -> None:
    """Before a query: settle references to models defined in other modules."""
    if _pending:
        resolve_pending(final=True)


def unresolved_message(ref: str, owner: str) -> str:
    known = ", ".join(sorted({m.__name__ for m in registry})) or "none"
    return (f"{owner} refers to the model {ref!r}, which was never defined (known models: "
            f"{known}). Define it, import the module that does, or fix the name.")


class Relation:
    """One way to walk from a model to related rows."""

    __slots__ = ("name", "kind", "model", "target", "steps", "multi_valued", "field",
                 "cache_name", "prefetch_name", "is_m2m")

    def __init__(self, name: str, kind: str, model: Any, target: Any,
                 steps: list[tuple[str, str, str]], multi_valued: bool, field: Any) -> None:
        self.name = name
        self.kind = kind  # fk, o2o, reverse_fk, reverse_o2o, m2m, reverse_m2m
        self.model = model
        self.target = target
        self.steps = steps
        self.multi_valued = multi_valued
        self.field = field
        self.cache_name = f"_cache_{name}"
        #: where prefetch_related leaves the loaded rows in the instance ``__dict__``
        self.prefetch_name = f"_prefetched_{name}"
        self.is_m2m = kind in ("m2m", "reverse_m2m")

    def join_steps(self) -> list[tuple[str, str, str]]:
        return self.steps

    def __repr__(self) -> str:
        return f"<Relation {self.model.__name__}.{self.name} ({self.kind}) -> {self.target.__name__}>"


def check_accessor(target: Any, rname: str, source: Any, label: str) -> None:
    """Refuse a reverse accessor that would hide a field or another relation (Django E302-4)."""
    clash = target._meta.fields_map.get(rname)
    existing = target._meta.relations.get(rname)
    if existing is not None and existing.target is not source:
        # Another class of the same name (a model defined again, as a re-run notebook cell
        # does): the new definition replaces the old one.
        existing = None
    if clash is not None or existing is not None:
        other = f"the field {clash.label}" if clash is not None else repr(existing)
        raise ConfigurationError(
            f"the reverse accessor {target.__name__}.{rname} for {label} clashes with {other}; "
            f"give {label} a distinct related_name=, e.g. related_name="
            f"'{label.rsplit('.', 1)[-1]}_{target.__name__.lower()}s' (or '+' for none)")


# ---------------------------------------------------------------------------------------------
# forward relations
# ---------------------------------------------------------------------------------------------
class ForeignKey(Field[M], Generic[M]):
    """A many-to-one link: ``author = ForeignKey(User, on_delete='CASCADE', related_name='posts')``.

    The column is ``<name>_id`` (``post.author_id`` is always available). ``to`` is a model class,
    a name (``'User'``, ``'app.User'``) or ``'self'``. ``on_delete`` is one of CASCADE, SET_NULL,
    SET_DEFAULT, PROTECT, RESTRICT, DO_NOTHING (strings or the constants of this module).
    """

    is_relation = True
    type_label = "foreign key"
    relation_kind = "fk"

    def __init__(self, to: type[M] | str, on_delete: str = CASCADE, *,
                 related_name: str | None = None, db_index: bool = True, **kwargs: Any) -> None:
        on_delete = getattr(on_delete, "__name__", on_delete)
        if on_delete not in ON_DELETE_SQL:
            raise ConfigurationError(
                f"on_delete={on_delete!r} is not one of {', '.join(ON_DELETE_SQL)}")
        super().__init__(db_index=db_index, **kwargs)
        self.to = to
        self.on_delete = on_delete
        self.related_name = related_name
        self.target: Any = None
        if on_delete == SET_NULL and not self.nullable:
            raise ConfigurationError("on_delete=SET_NULL needs nullable=True")
        if on_delete == SET_DEFAULT and not self.has_default():
            raise ConfigurationError("on_delete=SET_DEFAULT needs a default")

    def contribute_to_class(self, model: Any, name: str) -> None:
        self.name = name
        self.attname = f"{name}_id"
        self.column = self.db_column or self.attname
        self.model = model
        setattr(model, name, ForwardDescriptor(self))
        lazy_target(self.to, model, self._resolved)

    def _resolved(self, target: Any) -> None:
        self.target = target
        meta = self.model._meta
        tpk = target._meta.pk
        rel = Relation(self.name, self.relation_kind, self.model, target,
                       [(self.column, target._meta.db_table, tpk.column)], False, self)
        meta.relations[self.name] = rel
        if self.related_name == "+" or self.related_name and self.related_name.endswith("+"):
            return
        rname = self.reverse_name()
        check_accessor(target, rname, self.model, self.label)
        rev = Relation(rname, "reverse_o2o" if self.relation_kind == "o2o" else "reverse_fk",
                       target, self.model, [(tpk.column, meta.db_table, self.column)],
                       self.relation_kind != "o2o", self)
        target._meta.relations[rname] = rev
        desc = ReverseOneDescriptor(rev) if self.relation_kind == "o2o" else ReverseManyDescriptor(rev)
        setattr(target, rname, desc)

    def reverse_name(self) -> str:
        if self.related_name:
            return self.related_name % {"class": self.model.__name__.lower(),
                                        "model_name": self.model.__name__.lower()}
        suffix = "" if self.relation_kind == "o2o" else "_set"
        return self.model.__name__.lower() + suffix

    def require_target(self) -> Any:
        if self.target is None:
            finalize_pending()
        if self.target is None:
            raise ConfigurationError(unresolved_message(str(self.to), self.label))
        return self.target

    def _target_pk(self) -> Field[Any]:
        return self.require_target()._meta.pk

    def db_type(self, dialect: str) -> str:
        pk = self._target_pk()
        if isinstance(pk, AutoField):
            return "BIGINT" if pk.max_value > 2**31 else "INTEGER"
        return pk.db_type(dialect)

    def to_python(self, value: Any) -> Any:
        if hasattr(value, "_meta"):
            value = value.pk
        return self._target_pk().to_python(value)

    def clean_lookup_value(self, value: Any) -> Any:
        return self.to_python(value)

    def clean_column(self, values: list[Any]) -> list[Any] | None:
        present = self._column_values(values, ForeignKey)
        if present is None or any(hasattr(v, "_meta") for v in present):
            return None
        return values if self._target_pk().clean_column(present) is present else None

    def clean_lookup_column(self, values: list[Any]) -> list[Any]:
        if type(self).clean_lookup_value is ForeignKey.clean_lookup_value \
                and not any(hasattr(v, "_meta") for v in values):
            return self._target_pk().clean_lookup_column(values)
        return super().clean_lookup_column(values)

    def to_db(self, value: Any, dialect: str) -> Any:
        return None if value is None else self._target_pk().to_db(value, dialect)

    def to_db_column(self, values: list[Any], dialect: str) -> list[Any]:
        if type(self).to_db is ForeignKey.to_db:
            pk = self._target_pk()
            if None not in values or type(pk).to_db is Field.to_db:
                return pk.to_db_column(values, dialect)
        return super().to_db_column(values, dialect)

    def from_db_converter(self, dialect: str) -> Converter | None:
        return self._target_pk().from_db_converter(dialect)

    def set_instance(self, instance: Any, value: Any) -> None:
        ForwardDescriptor(self).__set__(instance, value)

    def deconstruct(self) -> dict[str, Any]:
        out = super().deconstruct()
        out.update(to=getattr(self.target, "__name__", self.to), on_delete=self.on_delete)
        if self.related_name:
            out["related_name"] = self.related_name
        return out


class OneToOneField(ForeignKey[M]):
    """A one-to-one link: a unique ForeignKey whose reverse side is a single object."""

    relation_kind = "o2o"
    type_label = "one-to-one"

    def __init__(self, to: type[M] | str, on_delete: str = CASCADE, **kwargs: Any) -> None:
        kwargs["unique"] = True
        super().__init__(to, on_delete, **kwargs)


class ManyToManyField:
    """A many-to-many link: ``tags = ManyToManyField('Tag', related_name='posts')``.

    Without ``through``, the join table ``<table>_<name>`` is created automatically (also by
    ``create_tables``), with a unique pair of foreign keys that cascade on delete.
    """

    is_m2m = True
    is_relation = True

    def __init__(self, to: Any, *, related_name: str | None = None, through: Any = None,
                 db_table: str | None = None, symmetrical: bool | None = None) -> None:
        self.to = to
        #: a self-referential relation is symmetrical by default (Django): adding b to a's
        #: friends also makes a one of b's friends, and there is no separate reverse accessor.
        self.symmetrical = symmetrical
        self.related_name = related_name
        self.through = through
        self.db_table = db_table
        self.through_model: Any = None
        self.source_fk: Any = None
        self.target_fk: Any = None
        self.target: Any = None

    def clone(self) -> ManyToManyField:
        return ManyToManyField(self.to, related_name=self.related_name, through=self.through,
                               db_table=self.db_table, symmetrical=self.symmetrical)

    def contribute_to_class(self, model: Any, name: str) -> None:
        self.name = name
        self.model = model
        self.label = f"{model.__name__}.{name}"
        model._meta.many_to_many.append(self)
        lazy_target(self.to, model, self._target_resolved)

    def _target_resolved(self, target: Any) -> None:
        self.target = target
        if self.symmetrical is None:
            # An explicit related_name asks for a reverse accessor: a directional relation.
            self.symmetrical = (target is self.model and self.through is None
                                and not self.related_name)
        if self.through is None:
            self._make_through(target)
        else:
            lazy_target(self.through, self.model, self._through_resolved)

    def _make_through(self, target: Any) -> None:
        from covet.database.orm.models import Model, ModelBase

        src_name = self.model.__name__.lower()
        dst_name = target.__name__.lower()
        if src_name == dst_name:
            src_name, dst_name = f"from_{src_name}", f"to_{dst_name}"
        table = self.db_table or f"{self.model._meta.db_table}_{self.name}"
        meta = type("Meta", (), {"db_table": table, "unique_together": [(src_name, dst_name)]})
        attrs = {
            "__module__": self.model.__module__,
            "__qualname__": f"{self.model.__qualname__}_{self.name}",
            "Meta": meta,
            src_name: ForeignKey(self.model, CASCADE, related_name="+"),
            dst_name: ForeignKey(target, CASCADE, related_name="+"),
        }
        through = ModelBase(f"{self.model.__name__}_{self.name}", (Model,), attrs)
        through._meta.auto_created = True
        self._through_resolved(through)

    def _through_resolved(self, through: Any) -> None:
        fks = [f for f in through._meta.fields if isinstance(f, ForeignKey)]
        to_src = [f for f in fks if f.to is self.model or _lookup(f.to, through) is self.model]
        to_dst = [f for f in fks if f.to is self.target or _lookup(f.to, through) is self.target]
        if self.model is self.target:
            if len(to_src) < 2:
                raise ConfigurationError(f"{self.label}: the through model needs two foreign keys "
                                         f"to {self.model.__name__}")
            src, dst = to_src[0], to_src[1]
        else:
            if not to_src or not to_dst:
                raise ConfigurationError(
                    f"{self.label}: the through model {through.__name__} needs a ForeignKey to "
                    f"{self.model.__name__} and one to {self.target.__name__}")
            src, dst = to_src[0], to_dst[0]
        self.through_model, self.source_fk, self.target_fk = through, src, dst
        model, target = self.model, self.target
        tt = through._meta.db_table
        fwd = Relation(self.name, "m2m", model, target,
                       [(model._meta.pk.column, tt, src.column),
                        (dst.column, target._meta.db_table, target._meta.pk.column)], True, self)
        model._meta.relations[self.name] = fwd
        setattr(model, self.name, ManyDescriptor(fwd, self))
        hidden = bool(self.related_name and self.related_name.endswith("+") or self.symmetrical)
        rname = f"_reverse_{self.name}" if hidden else self.reverse_name()
        if not hidden:
            check_accessor(target, rname, model, self.label)
        rev = Relation(rname, "reverse_m2m", target, model,
                       [(target._meta.pk.column, tt, dst.column),
                        (src.column, model._meta.db_table, model._meta.pk.column)], True, self)
        target._meta.relations[rname] = rev  # hidden ones serve queries, not attributes
        if not hidden:
            setattr(target, rname, ManyDescriptor(rev, self))

    def reverse_name(self) -> str:
        if self.related_name and self.related_name.endswith("+") or self.symmetrical:
            return f"_reverse_{self.name}"
        if self.related_name:
            return self.related_name % {"class": self.model.__name__.lower(),
                                        "model_name": self.model.__name__.lower()}
        return f"{self.model.__name__.lower()}_set"

    def reverse_name_for(self, rel: Relation) -> str:
        """The relation name leading back from ``rel``'s target to its source."""
        return self.reverse_name() if rel.kind == "m2m" else self.name

    def __repr__(self) -> str:
        return f"<ManyToManyField {getattr(self, 'label', '?')}>"
