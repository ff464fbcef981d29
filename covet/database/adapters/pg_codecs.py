"""CovetPy's asyncpg codecs: ``date``, ``timestamp``, ``timestamptz`` and ``uuid``.

Used by the PostgreSQL adapter (:func:`install_codecs` on every new connection). ``date``,
``timestamp`` and ``timestamptz`` use asyncpg's ``tuple`` exchange format with small Python
functions (about as fast as asyncpg's own C codecs, measured: the time goes into building the
datetime), because asyncpg's own codecs turn ``date.max``/``datetime.max`` (and the minima) into
``'infinity'``; here they are stored as the dates they are, and ``'infinity'`` written by other
clients reads back as those maxima/minima (aware UTC for ``timestamptz``). ``uuid`` values come
back as exact ``uuid.UUID`` (asyncpg returns a subclass of its own). The three date and time
decoders run in the Rust core (``pg_date``/``pg_timestamp``/``pg_timestamptz`` of
``covet._covet_rs``) unless ``COVET_PURE_PYTHON=1``; the functions here are their reference.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["install_codecs"]


# asyncpg's 'tuple' exchange format: a date is (days since 2000-01-01,), a timestamp (microseconds
# since 2000-01-01 00:00,); the C side reads/writes those integers, these functions only convert.
# PostgreSQL's infinities are the int32/int64 extremes; no Python date lies there, so decoding
# reaches the overflow branch only for them (or for dates Python cannot represent: re-raised).
_UTC = _dt.timezone.utc
_EPOCH_ORDINAL = _dt.date(2000, 1, 1).toordinal()
_EPOCH = _dt.datetime(2000, 1, 1)
_EPOCH_UTC = _dt.datetime(2000, 1, 1, tzinfo=_UTC)
_MICROSECOND = _dt.timedelta(microseconds=1)
_DATE_INFINITY, _TIME_INFINITY = 2**31 - 1, 2**63 - 1
_from_ordinal = _dt.date.fromordinal
_delta = _dt.timedelta


def _encode_date(value: _dt.date) -> tuple[int]:
    return (value.toordinal() - _EPOCH_ORDINAL,)  # a datetime counts by its date


def _decode_date(data: tuple[int]) -> _dt.date:
    days = data[0]
    try:
        return _from_ordinal(days + _EPOCH_ORDINAL)
    except (OverflowError, ValueError):
        if days == _DATE_INFINITY:  # 'infinity' written by other clients
            return _dt.date.max
        if days == -_DATE_INFINITY - 1:
            return _dt.date.min
        raise


def _encode_timestamp(value: _dt.datetime) -> tuple[int]:
    if value.tzinfo is not None:
        value = value.astimezone(_UTC).replace(tzinfo=None)
    return ((value - _EPOCH) // _MICROSECOND,)


def _decode_timestamp(data: tuple[int]) -> _dt.datetime:
    micros = data[0]
    try:
        return _EPOCH + _delta(0, 0, micros)
    except OverflowError:
        if micros == _TIME_INFINITY:
            return _dt.datetime.max
        if micros == -_TIME_INFINITY - 1:
            return _dt.datetime.min
        raise


def _encode_timestamptz(value: _dt.datetime) -> tuple[int]:
    try:
        return ((value - _EPOCH_UTC) // _MICROSECOND,)
    except TypeError:  # naive: taken as local time, as asyncpg does
        return ((value.astimezone(_UTC) - _EPOCH_UTC) // _MICROSECOND,)


_MAX_UTC = _dt.datetime.max.replace(tzinfo=_UTC)
_MIN_UTC = _dt.datetime.min.replace(tzinfo=_UTC)


def _decode_timestamptz(data: tuple[int]) -> _dt.datetime:
    micros = data[0]
    try:
        return _EPOCH_UTC + _delta(0, 0, micros)
    except OverflowError:
        if micros == _TIME_INFINITY:
            return _MAX_UTC
        if micros == -_TIME_INFINITY - 1:
            return _MIN_UTC
        raise


def _encode_uuid(value: Any) -> bytes:
    if isinstance(value, uuid.UUID):
        return value.bytes
    if isinstance(value, bytes) and len(value) == 16:
        return value
    return uuid.UUID(str(value)).bytes


def _decode_uuid_plain(data: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=data)


_new_object, _set_slot, _UUID = object.__new__, object.__setattr__, uuid.UUID
_UUID_UNKNOWN = uuid.SafeUUID.unknown


def _decode_uuid_fast(data: bytes) -> uuid.UUID:
    # What uuid.UUID.__init__ does for bytes=, without its argument checks (2.5x faster).
    value: uuid.UUID = _new_object(_UUID)
    _set_slot(value, "int", int.from_bytes(data, "big"))
    _set_slot(value, "is_safe", _UUID_UNKNOWN)
    return value


def _pick_uuid_decoder() -> Callable[[bytes], uuid.UUID]:
    sample = uuid.UUID("12345678-9abc-4def-8123-456789abcdef")
    try:
        fast = _decode_uuid_fast(sample.bytes)
        if fast == sample and str(fast) == str(sample) and hash(fast) == hash(sample):
            return _decode_uuid_fast
    except Exception:  # another uuid implementation: use the public constructor
        pass
    return _decode_uuid_plain


_decode_uuid = _pick_uuid_decoder()

def _decoders() -> tuple[Callable[[Any], Any], Callable[[Any], Any], Callable[[Any], Any]]:
    """The date, timestamp and timestamptz decoders: the Rust core's (the same results, about a
    quarter of the time: ``tests/test_pg_pool.py`` compares them) unless ``COVET_PURE_PYTHON``."""
    from covet import _native

    rs = _native.native if _native.USE_NATIVE else None
    if rs is not None and hasattr(rs, "pg_timestamptz"):
        return rs.pg_date, rs.pg_timestamp, rs.pg_timestamptz
    return _decode_date, _decode_timestamp, _decode_timestamptz


_dec_date, _dec_timestamp, _dec_timestamptz = _decoders()

_CODECS: tuple[tuple[str, Callable[[Any], Any], Callable[[Any], Any], str], ...] = (
    ("date", _encode_date, _dec_date, "tuple"),
    ("timestamp", _encode_timestamp, _dec_timestamp, "tuple"),
    ("timestamptz", _encode_timestamptz, _dec_timestamptz, "tuple"),
    ("uuid", _encode_uuid, _decode_uuid, "binary"),
)


async def install_codecs(connection: Any) -> None:
    """Make ``connection`` return exact ``uuid.UUID`` and keep ``date.max`` a date."""
    for name, encoder, decoder, fmt in _CODECS:
        await connection.set_type_codec(
            name, schema="pg_catalog", encoder=encoder, decoder=decoder, format=fmt
        )
