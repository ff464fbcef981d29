"""``Model.objects``: the entry point to QuerySets for a model.

Barrier: a manager only creates QuerySets (and forwards ``create``); it holds no state of a query.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from covet.database.orm.query import Prefetch, QuerySet, RawQuerySet

if TYPE_CHECKING:
    from covet.database.orm.aggregates import Aggregate
    from covet.database.orm.expressions import Q
    from covet.database.orm.models import Model

__all__ = ["Manager", "ManagerDescriptor"]

M = TypeVar("M", bound="Model")


class Manager(Generic[M]):
    """``User.objects``: every QuerySet method starts here (``User.objects.filter(...)``).

    The terminal methods hand back the QuerySet's coroutine itself (no wrapping coroutine, one
    frame less per query); awaiting it is the same as awaiting the QuerySet method.
    """

    def __init__(self, model: type[M]) -> None:
        self.model = model

    def get_queryset(self) -> QuerySet[M]:
        return QuerySet(self.model)

    def __repr__(self) -> str:
        return f"<Manager for {self.model.__name__}>"

    # chainable ---------------------------------------------------------------------------
    def all(self) -> QuerySet[M]:
        return self.get_queryset()

    def filter(self, *args: Q, **kwargs: Any) -> QuerySet[M]:
        return self.get_queryset().filter(*args, **kwargs)

    def exclude(self, *args: Q, **kwargs: Any) -> QuerySet[M]:
        return self.get_queryset().exclude(*args, **kwargs)

    def order_by(self, *fields: str) -> QuerySet[M]:
        return self.get_queryset().order_by(*fields)

    def limit(self, n: int) -> QuerySet[M]:
        return self.get_queryset().limit(n)

    def offset(self, n: int) -> QuerySet[M]:
        return self.get_queryset().offset(n)

    def distinct(self) -> QuerySet[M]:
        return self.get_queryset().distinct()

    def using(self, alias: str) -> QuerySet[M]:
        return self.get_queryset().using(alias)

    def values(self, *fields: str) -> QuerySet[dict[str, Any]]:
        return self.get_queryset().values(*fields)

    def values_list(self, *fields: str, flat: bool = False) -> QuerySet[Any]:
        return self.get_queryset().values_list(*fields, flat=flat)

    def annotate(self, *args: Aggregate, **kwargs: Any) -> QuerySet[M]:
        return self.get_queryset().annotate(*args, **kwargs)

    def select_related(self, *fields: str) -> QuerySet[M]:
        return self.get_queryset().select_related(*fields)

    def prefetch_related(self, *lookups: str | Prefetch) -> QuerySet[M]:
        return self.get_queryset().prefetch_related(*lookups)

    def raw(self, sql: str, params: Sequence[Any] | None = None) -> RawQuerySet[M]:
        return self.get_queryset().raw(sql, params)

    def __getitem__(self, key: Any) -> QuerySet[M]:
        return self.get_queryset()[key]

    # terminal ----------------------------------------------------------------------------
    def get(self, *args: Q, **kwargs: Any) -> Coroutine[Any, Any, M]:
        return self.get_queryset().get(*args, **kwargs)

    def first(self) -> Coroutine[Any, Any, M | None]:
        return self.get_queryset().first()

    def last(self) -> Coroutine[Any, Any, M | None]:
        return self.get_queryset().last()

    def count(self) -> Coroutine[Any, Any, int]:
        return self.get_queryset().count()

    def exists(self) -> Coroutine[Any, Any, bool]:
        return self.get_queryset().exists()

    def aggregate(self, *args: Aggregate,
                  **kwargs: Aggregate) -> Coroutine[Any, Any, dict[str, Any]]:
        return self.get_queryset().aggregate(*args, **kwargs)

    def create(self, **kwargs: Any) -> Coroutine[Any, Any, M]:
        return self.model.create(**kwargs)

    def update(self, **kwargs: Any) -> Coroutine[Any, Any, int]:
        return self.get_queryset().update(**kwargs)

    def delete(self) -> Coroutine[Any, Any, int]:
        return self.get_queryset().delete()

    def in_bulk(self, id_list: Iterable[Any] | None = None, *,
                field_name: str = "pk") -> Coroutine[Any, Any, dict[Any, M]]:
        return self.get_queryset().in_bulk(id_list, field_name=field_name)

    def get_or_create(self, defaults: dict[str, Any] | None = None,
                      **kwargs: Any) -> Coroutine[Any, Any, tuple[M, bool]]:
        return self.get_queryset().get_or_create(defaults, **kwargs)

    def update_or_create(self, defaults: dict[str, Any] | None = None,
                         **kwargs: Any) -> Coroutine[Any, Any, tuple[M, bool]]:
        return self.get_queryset().update_or_create(defaults, **kwargs)

    def bulk_create(
        self, objs: Iterable[M], batch_size: int | None = None, *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Coroutine[Any, Any, list[M]]:
        return self.get_queryset().bulk_create(objs, batch_size, progress=progress)

    def bulk_update(self, objs: Iterable[M], fields: Sequence[str],
                    batch_size: int | None = None) -> Coroutine[Any, Any, int]:
        return self.get_queryset().bulk_update(objs, fields, batch_size)

    def iterator(self, chunk_size: int = 2000) -> Any:
        return self.get_queryset().iterator(chunk_size)

    def __aiter__(self) -> Any:
        return self.get_queryset().__aiter__()

    def sql(self) -> Any:
        return self.get_queryset().sql()

    def explain(self, analyze: bool = False) -> Coroutine[Any, Any, Any]:
        return self.get_queryset().explain(analyze)


class ManagerDescriptor:
    """Gives each model class its own ``Manager`` (typed as ``Manager[ThatModel]``)."""

    def __init__(self) -> None:
        self._managers: dict[type, Manager[Any]] = {}

    @overload
    def __get__(self, instance: None, owner: type[M]) -> Manager[M]: ...

    @overload
    def __get__(self, instance: M, owner: type[M]) -> Manager[M]: ...

    def __get__(self, instance: Any, owner: type[M]) -> Manager[M]:
        if instance is not None:
            raise AttributeError(
                f"'objects' is reached through the class: {owner.__name__}.objects, "
                f"not through an instance"
            )
        manager = self._managers.get(owner)
        if manager is None:
            if owner._meta.abstract:
                raise AttributeError(f"{owner.__name__} is abstract and has no manager")
            manager = self._managers[owner] = Manager(owner)
        return manager
