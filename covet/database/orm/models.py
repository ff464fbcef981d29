"""``Model``: the Active Record base class, and the metaclass that reads field declarations.

Barrier: a model instance holds values and knows how to persist itself (``save``, ``delete``,
``refresh_from_db``) by building statement trees and handing them to its adapter; querying lives
in the QuerySet (``orm/query.py``), SQL text in the compiler.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from covet.database.exceptions import (
    FieldError,
    MultipleObjectsReturned,
    ObjectDoesNotExist,
    ValidationError,
    close_matches,
)
from covet.database.orm.fields.base import Field
from covet.database.orm.fields.scalar import AutoField
from covet.database.orm.fields.temporal import DateTimeField, now
from covet.database.orm.manager import ManagerDescriptor
from covet.database.orm.options import Options, registry

__all__ = ["Model", "ModelBase"]

M = TypeVar("M", bound="Model")


class ModelBase(type):
    """Collects fields, builds ``_meta``, adds ``id``, ``objects`` and the per-model errors."""

    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, Any], **kw: Any) -> Any:
        if not any(isinstance(b, ModelBase) for b in bases):
            return super().__new__(mcls, name, bases, ns, **kw)
        meta = ns.pop("Meta", None)
        own = [(k, v) for k, v in ns.items() if isinstance(v, Field) or getattr(v, "is_m2m", False)]
        for k, _ in own:
            del ns[k]
        cls = super().__new__(mcls, name, bases, ns, **kw)

        parent_meta = None
        inherited: list[tuple[str, Any]] = []
        for base in reversed(cls.__mro__[1:]):
            bmeta = base.__dict__.get("_meta")
            if bmeta is None:
                continue
            if not bmeta.abstract:
                raise TypeError(
                    f"{name} inherits from the concrete model {base.__name__}; table inheritance "
                    f"is not supported. Make {base.__name__} abstract (class Meta: abstract = "
                    f"True) to share its fields."
                )
            parent_meta = bmeta.meta_class or parent_meta
            inherited.extend((f.name, f.clone()) for f in bmeta.declared)
        opts = Options(cls, meta, parent_meta)  # type: ignore[arg-type]
        cls._meta = opts  # type: ignore[attr-defined]
        own_names = {k for k, _ in own}
        declared = [(k, v) for k, v in inherited if k not in own_names] + own
        opts.declared = [f for _, f in declared]  # type: ignore[attr-defined]
        for fname, f in declared:
            f.name = fname
        if opts.abstract:
            return cls

        for fname, _ in declared:
            if fname.startswith("_") or fname in ("pk", "objects"):
                raise FieldError(f"{name}.{fname}: field names cannot start with '_' or be "
                                 f"'pk'/'objects'")
        if not any(isinstance(f, Field) and f.primary_key for _, f in declared):
            auto = AutoField()
            auto.contribute_to_class(cls, "id")  # type: ignore[arg-type]
            setattr(cls, "id", auto)
            opts.add_field(auto)
        for fname, f in declared:
            f.contribute_to_class(cls, fname)
            if isinstance(f, Field):
                if not f.is_relation:  # relations install their own descriptor
                    setattr(cls, fname, f)
                opts.add_field(f)
        cls.DoesNotExist = type(  # type: ignore[attr-defined]
            "DoesNotExist", (ObjectDoesNotExist,),
            {"__module__": cls.__module__, "__qualname__": f"{cls.__qualname__}.DoesNotExist"},
        )
        cls.MultipleObjectsReturned = type(  # type: ignore[attr-defined]
            "MultipleObjectsReturned", (MultipleObjectsReturned,),
            {"__module__": cls.__module__,
             "__qualname__": f"{cls.__qualname__}.MultipleObjectsReturned"},
        )
        opts.attnames = tuple(f.attname for f in opts.fields)  # type: ignore[attr-defined]
        registry.register(cls)  # type: ignore[arg-type]
        from covet.database.orm import relationships

        relationships.resolve_pending(cls)
        return cls


class Model(metaclass=ModelBase):
    """Base class of every CovetPy model.

    Declare fields as class attributes; an ``id`` primary key is added unless a field has
    ``primary_key=True``. ``class Meta`` takes ``db_table``, ``abstract``, ``ordering``,
    ``indexes`` and ``unique_together``.
    """

    _meta: ClassVar[Options]
    DoesNotExist: ClassVar[type[ObjectDoesNotExist]]
    MultipleObjectsReturned: ClassVar[type[MultipleObjectsReturned]]
    objects: ClassVar[ManagerDescriptor] = ManagerDescriptor()

    if TYPE_CHECKING:
        id: int

    def __init__(self, **kwargs: Any) -> None:
        meta = self._meta
        plan = meta.init_plan
        names = plan.names
        if names is not None and kwargs.keys() <= names:  # the common case: plain values for known fields
            d = self.__dict__
            d.update(plan.static)
            d.update(kwargs)
            for attname, default in plan.callables:
                if attname not in kwargs:
                    d[attname] = default()
            return
        if meta.abstract:
            raise TypeError(f"{type(self).__name__} is abstract and cannot be instantiated")
        d = self.__dict__
        for field in meta.fields:
            if field.name in kwargs:
                value = kwargs.pop(field.name)
                if field.is_relation:
                    field.set_instance(self, value)  # type: ignore[attr-defined]
                    continue
            elif field.attname in kwargs:
                value = kwargs.pop(field.attname)
            else:
                value = field.get_default()
            d[field.attname] = value
        if kwargs:
            for key in list(kwargs):
                rel = meta.relations.get(key)
                if rel is not None and getattr(rel, "is_m2m", False):
                    raise TypeError(
                        f"{type(self).__name__}({key}=...) is a many-to-many relation; save the "
                        f"object first, then use 'await obj.{key}.add(...)'"
                    )
            key = next(iter(kwargs))
            hints = close_matches(key, [f.name for f in meta.fields])
            raise FieldError(
                f"{type(self).__name__}() got an unknown field {key!r}."
                + (f" Did you mean {' or '.join(repr(h) for h in hints)}?" if hints else "")
                + f" Fields: {', '.join(f.name for f in meta.fields)}."
            )

    # construction from the database -----------------------------------------------------
    @classmethod
    def _from_db(cls: type[M], values: dict[str, Any]) -> M:
        obj = cls.__new__(cls)
        values["_persisted"] = True
        obj.__dict__ = values
        return obj

    def __await__(self: M) -> Generator[Any, None, M]:
        """``await obj`` is ``obj``: so ``await post.author`` works whether the relation was
        already loaded (an instance) or not (an awaitable reference)."""
        async def itself() -> M:
            return self

        return itself().__await__()

    # identity ---------------------------------------------------------------------------
    @property
    def pk(self) -> Any:
        return self.__dict__.get(self._meta.pk.attname)

    @pk.setter
    def pk(self, value: Any) -> None:
        self.__dict__[self._meta.pk.attname] = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Model) or type(other)._meta is not type(self)._meta:
            return NotImplemented
        if self.pk is None:
            return self is other
        return bool(self.pk == other.pk)

    def __hash__(self) -> int:
        if self.pk is None:
            raise TypeError("a model instance without a primary key value is unhashable")
        return hash((type(self).__qualname__, self.pk))

    def __repr__(self) -> str:
        parts = []
        for f in self._meta.fields[:4]:
            if f.attname in self.__dict__:
                parts.append(f"{f.attname}={self.__dict__[f.attname]!r}")
        more = " ..." if len(self._meta.fields) > 4 else ""
        return f"<{type(self).__name__} {' '.join(parts)}{more}>"

    # validation -------------------------------------------------------------------------
    def full_clean(self, exclude: Iterable[str] = ()) -> None:
        """Validate every field value; raises ``ValidationError`` listing every bad field."""
        errors: dict[str, list[str]] = {}
        skip = set(exclude)
        for field in self._meta.fields:
            if field.name in skip:
                continue
            try:
                self.__dict__[field.attname] = field.clean(self.__dict__.get(field.attname))
            except ValidationError as exc:
                for msgs in exc.errors.values():
                    errors.setdefault(field.label, []).extend(msgs)
        if errors:
            raise ValidationError(errors)

    # persistence ------------------------------------------------------------------------
    @classmethod
    async def create(cls: type[M], **kwargs: Any) -> M:
        """Build an instance, save it (INSERT) and return it."""
        obj = cls(**kwargs)
        await obj.save(force_insert=True)
        return obj

    async def save(self, *, update_fields: Iterable[str] | None = None, force_insert: bool = False,
                   using: str | None = None) -> None:
        """INSERT a new row or UPDATE this one (only ``update_fields`` when given).

        Every value is validated by its field first; nothing reaches the database when one is bad.
        """
        from covet.database.orm import persistence

        using = using or self.__dict__.get("_db")
        meta = self._meta
        adding = force_insert or not self.__dict__.get("_persisted", False)
        stamp = None
        for field in meta.fields:
            if isinstance(field, DateTimeField) and (
                field.auto_now or (field.auto_now_add and adding
                                   and self.__dict__.get(field.attname) is None)
            ):
                stamp = stamp or now()
                self.__dict__[field.attname] = stamp
        if update_fields is not None:
            names = list(update_fields)
            fields = [meta.get_field(n) for n in names]
            fields += [f for f in meta.fields if isinstance(f, DateTimeField) and f.auto_now
                       and f not in fields]
            self.full_clean(exclude=[f.name for f in meta.fields if f not in fields])
        else:
            fields = meta.fields
            self.full_clean()
        if adding:
            await persistence.insert(self, using)
            self.__dict__["_persisted"] = True
        else:
            await persistence.update(self, [f for f in fields if not f.primary_key], using)

    async def delete(self, using: str | None = None) -> int:
        """DELETE this row; returns the number of rows deleted (0 or 1)."""
        from covet.database.orm import persistence

        if self.pk is None:
            raise ValueError(f"{type(self).__name__} cannot be deleted: it has no primary key")
        count = await persistence.delete(self, using or self.__dict__.get("_db"))
        self.__dict__["_persisted"] = False
        return count

    async def refresh_from_db(self, fields: Iterable[str] | None = None) -> None:
        """Reload field values from the database (all, or only ``fields``)."""
        manager = type(self).objects
        fresh = await manager.using(self.__dict__.get("_db", "default")).get(pk=self.pk)
        names = {self._meta.get_field(n).attname for n in fields} if fields else None
        for field in self._meta.fields:
            if names is None or field.attname in names:
                self.__dict__[field.attname] = fresh.__dict__[field.attname]
        for key in [k for k in self.__dict__ if k.startswith("_cache_")]:
            if names is None:
                del self.__dict__[key]

    async def fetch_related(self, *names: str) -> None:
        """Load relations of this instance (``await post.fetch_related('author', 'tags')``)."""
        from covet.database.orm.prefetch import prefetch_objects

        await prefetch_objects([self], names)

