"""Rows to results: the row plan and the decoders.

Barrier: a row plan is built once per query from the selected columns (which converter each
column needs, which attribute it fills); decoding then turns a batch of driver rows into model
instances, dicts or tuples. It knows column types and attribute names, not SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from covet.database.orm.fields.base import Converter

__all__ = ["RowPlan", "model_columns"]

_MODEL_CACHE: dict[tuple[Any, str], tuple[tuple[str, ...], tuple[tuple[int, Converter], ...]]] = {}


def model_columns(model: Any, dialect: str) -> tuple[tuple[str, ...], tuple[tuple[int, Converter], ...]]:
    """Attribute names and (index, converter) pairs for a model's columns, cached per dialect."""
    key = (model, dialect)
    found = _MODEL_CACHE.get(key)
    if found is None:
        fields = model._meta.fields
        convs = []
        for i, f in enumerate(fields):
            c = f.from_db_converter(dialect)
            if c is not None:
                convs.append((i, c))
        found = (tuple(f.attname for f in fields), tuple(convs))
        _MODEL_CACHE[key] = found
    return found


class RowPlan:
    """How to decode the rows of one query.

    Args:
        mode: ``'model'``, ``'dict'``, ``'tuple'`` or ``'flat'``.
        names: the key of each column (attribute names for models, keys for dicts).
        converters: ``(column index, converter)`` for the columns that need one.
        model: the model class (mode ``'model'``).
        width: how many leading columns belong to the model (the rest are annotations, set as
            extra attributes).
        related: ``(attribute cache name, start, RowPlan)`` for ``select_related`` models that
            follow in the same row.
    """

    __slots__ = ("mode", "names", "converters", "model", "width", "related", "post")

    def __init__(self, mode: str, names: Sequence[str], converters: Sequence[tuple[int, Converter]],
                 model: Any = None, width: int | None = None,
                 related: Sequence[tuple[str, int, RowPlan]] = ()) -> None:
        self.mode = mode
        self.names = tuple(names)
        self.converters = tuple(converters)
        self.model = model
        self.width = len(self.names) if width is None else width
        self.related = tuple(related)
        self.post: list[Callable[[list[Any]], None]] = []

    def decode(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        convs = self.converters
        if convs:
            rows = [_convert(row, convs) for row in rows]
        mode = self.mode
        if mode == "flat":
            return [row[0] for row in rows]
        if mode == "tuple":
            return [tuple(row) for row in rows]
        names = self.names
        if mode == "dict":
            return [dict(zip(names, row)) for row in rows]
        return self._models(rows)

    def _models(self, rows: Sequence[Sequence[Any]], offset: int = 0) -> list[Any]:
        from_db = self.model._from_db
        names = self.names
        if offset == 0 and not self.related:
            return [from_db(dict(zip(names, row))) for row in rows]
        width = len(names)
        out = []
        for row in rows:
            values = row[offset:offset + width] if offset else row
            out.append(from_db(dict(zip(names, values))))
        for cache_name, start, plan in self.related:
            for obj, row in zip(out, rows):
                pk_index = plan.model._meta.fields.index(plan.model._meta.pk)
                if row[start + pk_index] is None:
                    obj.__dict__[cache_name] = None
                else:
                    obj.__dict__[cache_name] = plan._models([row], start)[0]
        return out


def _convert(row: Sequence[Any], convs: Sequence[tuple[int, Converter]]) -> list[Any]:
    values = list(row)
    for i, conv in convs:
        v = values[i]
        if v is not None:
            values[i] = conv(v)
    return values
