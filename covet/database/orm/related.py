"""Relation descriptors and related managers: what ``post.author``, ``user.posts`` and
``post.tags`` are on an instance.

Barrier: gives instances their relation attributes and runs the relation's queries through
QuerySets; no hidden I/O — a forward relation is the instance once loaded and awaitable
otherwise, reverse and many-to-many relations are managers whose queries you await.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from covet.database.exceptions import RelationNotLoaded

if TYPE_CHECKING:
    from covet.database.orm.relationships import ForeignKey, ManyToManyField, Relation

__all__ = ["ForwardDescriptor", "UnloadedRelation", "RelatedManager", "ManyRelatedManager",
           "ReverseManyDescriptor", "ReverseOneDescriptor", "ManyDescriptor"]


class UnloadedRelation:
    """What ``post.author`` is before the author is loaded: await it, or load it first."""

    __slots__ = ("_instance", "_field")

    def __init__(self, instance: Any, field: ForeignKey[Any]) -> None:
        self._instance = instance
        self._field = field

    def __await__(self) -> Any:
        return self._load().__await__()

    async def _load(self) -> Any:
        field = self._field
        target = field.require_target()
        db = self._instance.__dict__.get("_db", "default")
        obj = await target.objects.using(db).get(pk=self._instance.__dict__[field.attname])
        self._instance.__dict__[f"_cache_{field.name}"] = obj
        return obj

    def __getattr__(self, name: str) -> Any:
        f = self._field
        model = type(self._instance).__name__
        raise RelationNotLoaded(
            f"{model}.{f.name} is not loaded, so .{name} is not available. Load it with "
            f"'await obj.{f.name}', 'await obj.fetch_related({f.name!r})', or "
            f"{model}.objects.select_related({f.name!r}) in the query. "
            f"The id is obj.{f.attname} = {self._instance.__dict__.get(f.attname)!r}."
        )

    def __repr__(self) -> str:
        f = self._field
        return (f"<unloaded {f.require_target().__name__} id={self._instance.__dict__.get(f.attname)!r}"
                f": await it to load>")


class ForwardDescriptor:
    """``post.author``: the related instance once loaded; awaitable to load it."""

    def __init__(self, field: ForeignKey[Any]) -> None:
        self.field = field
        self.cache_name = f"_cache_{field.name}"

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self.field
        d = instance.__dict__
        key = d.get(self.field.attname)
        if self.cache_name in d:
            cached = d[self.cache_name]
            # A cache is only good for the id it was loaded for (``post.author_id = 7``).
            if (cached.pk if cached is not None else None) == key:
                return cached
        if key is None:
            return None
        return UnloadedRelation(instance, self.field)

    def __set__(self, instance: Any, value: Any) -> None:
        f = self.field
        d = instance.__dict__
        if value is None:
            d[f.attname] = None
            d[self.cache_name] = None
        elif hasattr(value, "_meta"):
            target = f.require_target()
            if not isinstance(value, target):
                raise TypeError(f"{f.label} takes a {target.__name__}, not a "
                                f"{type(value).__name__}")
            if value.pk is None:
                raise ValueError(f"{f.label}: save the {target.__name__} before assigning it")
            d[f.attname] = value.pk
            d[self.cache_name] = value
        else:
            d[f.attname] = value
            d.pop(self.cache_name, None)


# ---------------------------------------------------------------------------------------------
# reverse and many-to-many managers
# ---------------------------------------------------------------------------------------------
class RelatedManager:
    """``user.posts``: a manager of the related rows (await its QuerySets).

    After ``prefetch_related``/``select_related`` of this relation it holds the loaded list:
    ``await user.posts.all()`` runs no query and iteration, ``len()`` and ``repr()`` work.
    """

    def __init__(self, instance: Any, rel: Relation) -> None:
        self.instance = instance
        self.rel = rel
        self.model = rel.target

    @property
    def _cache(self) -> list[Any] | None:
        return self.instance.__dict__.get(self.rel.prefetch_name)

    def _base_filter(self) -> dict[str, Any]:
        if self.instance.pk is None:
            raise ValueError(f"save the {type(self.instance).__name__} before using its "
                             f"{self.rel.name} relation")
        field = self.rel.field
        return {field.attname: self.instance.pk}

    @property
    def db(self) -> str:
        return self.instance.__dict__.get("_db", "default")

    def get_queryset(self) -> Any:
        return self.model.objects.using(self.db).filter(**self._base_filter())

    def all(self) -> Any:
        cache = self._cache
        if cache is not None:
            return _Loaded(cache, self.get_queryset)
        return self.get_queryset()

    def filter(self, *args: Any, **kwargs: Any) -> Any:
        return self.get_queryset().filter(*args, **kwargs)

    def exclude(self, *args: Any, **kwargs: Any) -> Any:
        return self.get_queryset().exclude(*args, **kwargs)

    def order_by(self, *fields: str) -> Any:
        return self.get_queryset().order_by(*fields)

    async def count(self) -> int:
        cache = self._cache
        return len(cache) if cache is not None else await self.get_queryset().count()

    async def exists(self) -> bool:
        cache = self._cache
        return bool(cache) if cache is not None else await self.get_queryset().exists()

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return await self.get_queryset().get(*args, **kwargs)

    async def first(self) -> Any:
        return await self.get_queryset().first()

    async def create(self, **kwargs: Any) -> Any:
        kwargs[self.rel.field.name] = self.instance
        obj = self.model(**kwargs)
        await obj.save(force_insert=True, using=self.db)
        self.instance.__dict__.pop(self.rel.prefetch_name, None)
        return obj

    def __iter__(self) -> Any:
        return iter(self._require_cache())

    def __len__(self) -> int:
        return len(self._require_cache())

    def __bool__(self) -> bool:
        return True

    def _require_cache(self) -> list[Any]:
        cache = self._cache
        if cache is None:
            owner = type(self.instance).__name__
            raise RelationNotLoaded(
                f"{owner}.{self.rel.name} is not loaded: use 'await obj.{self.rel.name}.all()', "
                f"or load it with {owner}.objects.prefetch_related({self.rel.name!r})")
        return cache

    def __repr__(self) -> str:
        cache = self._cache
        owner = type(self.instance).__name__
        if cache is not None:
            return repr(cache)
        return (f"<RelatedManager {owner}.{self.rel.name} -> {self.model.__name__}: "
                f"not loaded; await .all()>")


class ManyRelatedManager(RelatedManager):
    """``post.tags`` / ``tag.posts``: adds ``add``, ``remove``, ``clear``, ``set``, ``create``."""

    def __init__(self, instance: Any, rel: Relation, m2m: ManyToManyField) -> None:
        super().__init__(instance, rel)
        self.m2m = m2m
        forward = rel.kind == "m2m"
        self.through = m2m.through_model
        self.src = m2m.source_fk if forward else m2m.target_fk
        self.dst = m2m.target_fk if forward else m2m.source_fk

    def get_queryset(self) -> Any:
        if self.instance.pk is None:
            raise ValueError(f"save the {type(self.instance).__name__} before using "
                             f"{self.rel.name}")
        reverse = self.m2m.reverse_name_for(self.rel)
        return self.model.objects.using(self.db).filter(**{f"{reverse}__pk": self.instance.pk})

    def _ids(self, objs: tuple[Any, ...]) -> list[Any]:
        ids = []
        for obj in objs:
            if hasattr(obj, "_meta"):
                if not isinstance(obj, self.model):
                    raise TypeError(f"{self.rel.name} takes {self.model.__name__} objects, not "
                                    f"{type(obj).__name__}")
                if obj.pk is None:
                    raise ValueError(f"save the {self.model.__name__} before adding it")
                ids.append(obj.pk)
            else:
                ids.append(self.dst.to_python(obj))
        return ids

    async def add(self, *objs: Any) -> None:
        from covet.database.transaction import transaction

        ids = list(dict.fromkeys(self._ids(objs)))
        if not ids:
            return
        async with transaction(using=self.db):
            existing = set(await self.through.objects.using(self.db).filter(
                **{self.src.attname: self.instance.pk, f"{self.dst.attname}__in": ids}
            ).values_list(self.dst.attname, flat=True))
            new = [self.through(**{self.src.attname: self.instance.pk, self.dst.attname: i})
                   for i in ids if i not in existing]
            if self.m2m.symmetrical:
                mirrored = set(await self.through.objects.using(self.db).filter(
                    **{self.dst.attname: self.instance.pk, f"{self.src.attname}__in": ids}
                ).values_list(self.src.attname, flat=True))
                new += [self.through(**{self.src.attname: i, self.dst.attname: self.instance.pk})
                        for i in ids if i not in mirrored and i != self.instance.pk]
            if new:
                await self.through.objects.using(self.db).bulk_create(new)
        self._forget()

    def _links(self, ids: list[Any] | None) -> Any:
        """The through rows linking this instance to ``ids`` (all when None), both ways when
        the relation is symmetrical."""
        from covet.database.orm.expressions import Q

        mine = Q(**{self.src.attname: self.instance.pk})
        if ids is not None:
            mine &= Q(**{f"{self.dst.attname}__in": ids})
        if self.m2m.symmetrical:
            theirs = Q(**{self.dst.attname: self.instance.pk})
            if ids is not None:
                theirs &= Q(**{f"{self.src.attname}__in": ids})
            mine |= theirs
        return self.through.objects.using(self.db).filter(mine)

    async def remove(self, *objs: Any) -> None:
        ids = self._ids(objs)
        if ids:
            await self._links(ids).delete()
        self._forget()

    async def clear(self) -> None:
        await self._links(None).delete()
        self._forget()

    async def set(self, objs: Any) -> None:
        from covet.database.transaction import transaction

        ids = set(self._ids(tuple(objs)))
        async with transaction(using=self.db):
            current = set(await self.through.objects.using(self.db).filter(
                **{self.src.attname: self.instance.pk}).values_list(self.dst.attname, flat=True))
            if current - ids:
                await self._links(list(current - ids)).delete()
            await self.add(*[i for i in ids if i not in current])
        self._forget()

    async def create(self, **kwargs: Any) -> Any:
        from covet.database.transaction import transaction

        async with transaction(using=self.db):
            obj = self.model(**kwargs)
            await obj.save(force_insert=True, using=self.db)
            await self.add(obj)
        return obj

    def _forget(self) -> None:
        self.instance.__dict__.pop(self.rel.prefetch_name, None)


class _Loaded:
    """An already-loaded relation list that can still be awaited like a QuerySet; chaining
    (``.filter(...)``, ``.order_by(...)``) goes back to the database."""

    __slots__ = ("items", "_queryset")

    def __init__(self, items: list[Any], queryset: Callable[[], Any]) -> None:
        self.items = items
        self._queryset = queryset

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queryset(), name)

    def __await__(self) -> Any:
        async def done() -> list[Any]:
            return list(self.items)

        return done().__await__()

    def __iter__(self) -> Any:
        return iter(self.items)

    async def __aiter__(self) -> Any:
        for item in self.items:
            yield item

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return repr(self.items)


class ReverseManyDescriptor:
    def __init__(self, rel: Relation) -> None:
        self.rel = rel

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        return RelatedManager(instance, self.rel)

    def __set__(self, instance: Any, value: Any) -> None:
        raise AttributeError(f"{self.rel.name} is a reverse relation; use "
                             f"'await obj.{self.rel.name}.create(...)' or set the ForeignKey on "
                             f"the {self.rel.target.__name__} side")


class ReverseOneDescriptor:
    """``user.profile`` for a OneToOneField on Profile."""

    def __init__(self, rel: Relation) -> None:
        self.rel = rel

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        d = instance.__dict__
        key = self.rel.prefetch_name
        if key in d:
            return d[key]
        return _UnloadedReverseOne(instance, self.rel)


class _UnloadedReverseOne:
    def __init__(self, instance: Any, rel: Relation) -> None:
        self.instance = instance
        self.rel = rel

    def __await__(self) -> Any:
        async def load() -> Any:
            db = self.instance.__dict__.get("_db", "default")
            obj = await self.rel.target.objects.using(db).filter(
                **{self.rel.field.attname: self.instance.pk}).first()
            self.instance.__dict__[self.rel.prefetch_name] = obj
            return obj

        return load().__await__()

    def __getattr__(self, name: str) -> Any:
        owner = type(self.instance).__name__
        raise RelationNotLoaded(
            f"{owner}.{self.rel.name} is not loaded, so .{name} is not available: use "
            f"'await obj.{self.rel.name}' or {owner}.objects.select_related({self.rel.name!r})")


class ManyDescriptor:
    def __init__(self, rel: Relation, m2m: ManyToManyField) -> None:
        self.rel = rel
        self.m2m = m2m

    def __get__(self, instance: Any, owner: Any) -> Any:
        if instance is None:
            return self
        return ManyRelatedManager(instance, self.rel, self.m2m)

    def __set__(self, instance: Any, value: Any) -> None:
        raise AttributeError(f"use 'await obj.{self.rel.name}.set([...])' to replace a "
                             f"many-to-many relation")
