"""``prefetch_related`` and ``fetch_related``: one query per relation level, whatever the row count.

Barrier: given loaded instances and relation paths, runs one QuerySet per level and stores the
results in the instances' relation caches; it builds no SQL itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from covet.database.exceptions import FieldError
from covet.database.orm.expressions import F, Q

__all__ = ["prefetch_objects"]


async def prefetch_objects(instances: Sequence[Any], lookups: Sequence[Any]) -> None:
    """Load each relation path in ``lookups`` (str or ``Prefetch``) for all ``instances``."""
    from covet.database.orm.query import Prefetch

    instances = [obj for obj in instances if obj is not None]
    if not instances:
        return
    for lookup in lookups:
        if isinstance(lookup, Prefetch):
            path, qs, to_attr = lookup.lookup, lookup.queryset, lookup.to_attr
        else:
            path, qs, to_attr = lookup, None, None
        level: list[Any] = list(instances)
        parts = path.split("__")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            level = await _load_level(level, part, path, qs if last else None,
                                      to_attr if last else None)
            if not level:
                break


def _relation(model: Any, part: str, path: str) -> Any:
    rel = model._meta.relations.get(part)
    if rel is None:
        msg = model._meta.unknown_field_message(part, path)
        raise FieldError(f"cannot prefetch {path!r}: {msg}")
    return rel


def _base_qs(rel: Any, qs: Any, objs: list[Any]) -> Any:
    db = objs[0].__dict__.get("_db", "default")
    base = qs if qs is not None else rel.target.objects.using(db)
    if base._using == "default" and db != "default":  # follow the instances' database
        base = base.using(db)
    if base._order is None and not rel.target._meta.ordering:
        base = base.order_by("pk")
    return base


async def _load_level(objs: list[Any], part: str, path: str, qs: Any,
                      to_attr: str | None) -> list[Any]:
    meta = type(objs[0])._meta
    if part not in meta.relations and part not in meta.fields_map \
            and all(part in o.__dict__ for o in objs):
        # An earlier Prefetch(..., to_attr=part): continue from the objects it loaded.
        return _flatten(o.__dict__[part] for o in objs)
    rel = _relation(type(objs[0]), part, path)
    if rel.kind in ("fk", "o2o"):
        return await _load_forward(objs, rel, qs, to_attr)
    cache_key = rel.prefetch_name
    if qs is None and to_attr is None and all(cache_key in o.__dict__ for o in objs):
        return _flatten(o.__dict__[cache_key] for o in objs)
    if rel.kind in ("reverse_fk", "reverse_o2o"):
        return await _load_reverse(objs, rel, qs, to_attr)
    return await _load_many(objs, rel, qs, to_attr)


def _flatten(values: Any) -> list[Any]:
    out: list[Any] = []
    seen: set[int] = set()
    for v in values:
        items = v if isinstance(v, list) else ([] if v is None else [v])
        for item in items:
            if id(item) not in seen:
                seen.add(id(item))
                out.append(item)
    return out


async def _load_forward(objs: list[Any], rel: Any, qs: Any, to_attr: str | None) -> list[Any]:
    field = rel.field

    def cached(o: Any) -> bool:  # a cache is only good for the id it was loaded for
        if rel.cache_name not in o.__dict__:
            return False
        value = o.__dict__[rel.cache_name]
        return (value.pk if value is not None else None) == o.__dict__.get(field.attname)

    if qs is None and to_attr is None and all(cached(o) for o in objs):
        return _flatten(o.__dict__[rel.cache_name] for o in objs)
    ids = list({o.__dict__.get(field.attname) for o in objs} - {None})
    found = {}
    if ids:
        found = {t.pk: t for t in await _base_qs(rel, qs, objs).filter(pk__in=ids)}
    for o in objs:
        target = found.get(o.__dict__.get(field.attname))
        o.__dict__[to_attr or rel.cache_name] = target
    return list(found.values())


async def _load_reverse(objs: list[Any], rel: Any, qs: Any, to_attr: str | None) -> list[Any]:
    field = rel.field
    pk_name = type(objs[0])._meta.pk.attname
    by_pk = {o.__dict__.get(pk_name): o for o in objs}
    children = await _base_qs(rel, qs, objs).filter(**{f"{field.attname}__in": list(by_pk)})
    groups: dict[Any, list[Any]] = {}
    attname, back = field.attname, f"_cache_{field.name}"
    for child in children:
        d = child.__dict__
        key = d[attname]
        group = groups.get(key)
        if group is None:
            groups[key] = [child]
        else:
            group.append(child)
        d[back] = by_pk.get(key)
    single = rel.kind == "reverse_o2o"
    name = to_attr or rel.prefetch_name
    for o in objs:
        items = groups.get(o.__dict__.get(pk_name), [])
        o.__dict__[name] = (items[0] if items else None) if single else items
    return children


async def _load_many(objs: list[Any], rel: Any, qs: Any, to_attr: str | None) -> list[Any]:
    back = rel.field.reverse_name_for(rel)
    pks = [o.pk for o in objs]
    base = _base_qs(rel, qs, objs)
    # The source filter and the source-key annotation come first so they share one join.
    base = base._chain(
        _filters=(Q((f"{back}__pk__in", pks)),) + base._filters,
        _annotations=(("_prefetch_src", F(f"{back}__pk"), 0),) + base._annotations,
    )
    groups: dict[Any, list[Any]] = {}
    targets = await base
    for t in targets:
        groups.setdefault(t.__dict__.pop("_prefetch_src"), []).append(t)
    for o in objs:
        o.__dict__[to_attr or rel.prefetch_name] = groups.get(o.pk, [])
    return targets
