"""Rows to results: the row plan and the decoders.

Barrier: a row plan is built once per query from the selected columns (which converter each
column needs, which attribute it fills); decoding then turns a batch of driver rows into model
instances, dicts or tuples. It knows column types and attribute names, not SQL.

Two decoders give the same results: the Rust one (``covet._covet_rs.decode_rows``, one call per
batch, with the common conversions done natively) and the pure-Python reference below, used under
``COVET_PURE_PYTHON=1`` or without the extension. ``covet._native`` picks between them. The Rust
plan is made from this one the first time a plan decodes, out of plain data: names, each
converter's description (``fields.base.native_converter``; the converter itself is the fallback),
the model class and, for ``select_related``, the nested plans; the Rust side prepares what it
can once per plan (interned names, a template dict per model), so a plan is cheap per batch.

For streaming, ``RowPlan.decode_slices`` decodes a chunk a few rows at a time and releases each
driver row once decoded, so a chunk's rows and objects never all exist at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from covet import _native
from covet.database.orm.fields.base import NATIVE_SPEC, Converter

__all__ = ["RowPlan", "model_columns", "decode_reference", "decode_native"]

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
        converters: ``(column index, converter)`` for the columns that need one, over the whole
            row (the columns of ``select_related`` models included).
        model: the model class (mode ``'model'``).
        width: how many leading columns belong to the model (the rest are annotations, set as
            extra attributes).
        related: ``(attribute cache name, start, RowPlan)`` for ``select_related`` models that
            follow in the same row; ``start`` counts from the start of the row, and the nested
            plans' own converters are not used (the outer plan converts the whole row).
    """

    __slots__ = ("mode", "names", "converters", "model", "width", "related", "_native")

    def __init__(self, mode: str, names: Sequence[str], converters: Sequence[tuple[int, Converter]],
                 model: Any = None, width: int | None = None,
                 related: Sequence[tuple[str, int, RowPlan]] = ()) -> None:
        self.mode = mode
        self.names = tuple(names)
        self.converters = tuple(converters)
        self.model = model
        self.width = len(self.names) if width is None else width
        self.related = tuple(related)
        self._native: Any = None  # the Rust plan, made on first use; False: not expressible

    def decode(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
        """Decode one batch of rows, in Rust when ``covet._native`` says so."""
        if _native.USE_NATIVE:
            return decode_native(self, rows)
        return self._decode_reference(rows)

    def decode_slices(self, rows: Sequence[Sequence[Any]], size: int = 64) -> Iterator[list[Any]]:
        """Decode a chunk ``size`` rows at a time, for streaming: yields each slice's results.

        A ``list`` chunk is released as it goes: once a slice is decoded, its entries in ``rows``
        are replaced by ``None`` (the list keeps its length, which the adapters may still read),
        so each driver row can be freed as soon as its result exists, and a consumer that drops
        the results it has used never holds a whole chunk twice over. Give it a list you own.
        Other sequences are only read.

        Raises:
            ValueError: ``size`` is less than 1.
        """
        if size < 1:
            raise ValueError("size must be at least 1")
        n = len(rows)
        for start in range(0, n, size):
            stop = min(start + size, n)
            batch: Sequence[Sequence[Any]]
            if type(rows) is list:
                batch = rows[start:stop]
                rows[start:stop] = [None] * (stop - start)
            else:
                batch = rows[start:stop] if start or stop < n else rows
            results = self.decode(batch)
            del batch
            yield results
            del results

    def _decode_reference(self, rows: Sequence[Sequence[Any]]) -> list[Any]:
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
                if row[start + _pk_index(plan.model)] is None:
                    obj.__dict__[cache_name] = None
                else:
                    obj.__dict__[cache_name] = plan._models([row], start)[0]
        return out


def decode_reference(plan: RowPlan, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Decode with the pure-Python reference, whatever ``covet._native`` says."""
    return plan._decode_reference(rows)


def decode_native(plan: RowPlan, rows: Sequence[Sequence[Any]]) -> list[Any]:
    """Decode with the Rust core in one call for the batch.

    A plan the Rust decoder cannot express (a model that overrides ``_from_db``) is decoded by the
    reference instead.

    Raises:
        RuntimeError: the Rust extension is not available.
    """
    native = _native.native
    if native is None:
        raise RuntimeError(f"the Rust extension is not available: {_native.IMPORT_ERROR}")
    compiled = plan._native
    if compiled is None:
        compiled = plan._native = _compile(plan, native, top=True) or False
    if compiled is False:
        return plan._decode_reference(rows)
    result: list[Any] = native.decode_rows(compiled, rows)
    return result


def _compile(plan: RowPlan, native: Any, top: bool) -> Any:
    """The Rust twin of ``plan``, or None when only the reference can decode it."""
    model = plan.model
    if plan.mode == "model" and (model is None or _overrides_from_db(model)):
        return None
    related = []
    for cache_name, start, sub in plan.related:
        sub_native = _compile(sub, native, top=False)
        if sub_native is None or sub.mode != "model":
            return None
        related.append((cache_name, start, _pk_index(sub.model), sub_native))
    # Only the outermost plan converts (see ``RowPlan``), in both decoders.
    converters = [(i, *_describe(c), c) for i, c in plan.converters] if top else []
    return native.RowPlan(plan.mode, plan.names, converters,
                          model if plan.mode == "model" else None, related)


def _describe(convert: Converter) -> tuple[str, Any]:
    """A converter's ``(kind, extra)`` for the Rust decoder; ``('py', None)`` calls it as is."""
    spec = getattr(convert, NATIVE_SPEC, None)
    return spec if spec is not None else ("py", None)


def _overrides_from_db(model: Any) -> bool:
    from covet.database.orm.models import Model

    return getattr(model._from_db, "__func__", None) is not Model.__dict__["_from_db"].__func__


def _pk_index(model: Any) -> int:
    meta = model._meta
    return int(meta.fields.index(meta.pk))


def _convert(row: Sequence[Any], convs: Sequence[tuple[int, Converter]]) -> list[Any]:
    values = list(row)
    for i, conv in convs:
        v = values[i]
        if v is not None:
            values[i] = conv(v)
    return values
