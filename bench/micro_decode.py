"""Micro-benchmark: decoding rows into model instances, Rust against the pure-Python reference.

Not a test. Decodes 10,000 rows of a six-column model (with a datetime and a boolean) as the
SQLite driver returns them, and the same rows as PostgreSQL would (values already typed, so no
conversions), and prints the best time of several runs for each decoder::

    python bench/micro_decode.py [--rows N] [--repeat R]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from covet import _native
from covet.database.orm import Model
from covet.database.orm.fields import (
    BooleanField,
    CharField,
    DateTimeField,
    IntegerField,
    TextField,
)
from covet.database.orm.hydrate import (
    RowPlan,
    decode_native,
    decode_reference,
    model_columns,
)


class BenchEvent(Model):
    name = CharField(max_length=50)
    active = BooleanField()
    created = DateTimeField()
    score = IntegerField()
    note = TextField(nullable=True)

    class Meta:
        db_table = "bench_events"


def sqlite_rows(n: int) -> list[tuple[object, ...]]:
    return [
        (i, f"event {i}", i % 2,
         f"2024-01-{i % 28 + 1:02d} 12:{i % 60:02d}:05.{i * 37 % 1_000_000:06d}+00:00",
         i * 7, None if i % 3 else f"note {i}")
        for i in range(n)
    ]


def postgresql_rows(n: int) -> list[tuple[object, ...]]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return [(i, f"event {i}", bool(i % 2), base + dt.timedelta(seconds=i), i * 7, None)
            for i in range(n)]


def best(fn: object, repeat: int) -> float:
    return min(timeit.repeat(fn, number=1, repeat=repeat))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if _native.native is None:
        sys.exit(f"the Rust extension is not built: {_native.IMPORT_ERROR}")
    for dialect, rows in (("sqlite", sqlite_rows(args.rows)),
                          ("postgresql", postgresql_rows(args.rows))):
        names, convs = model_columns(BenchEvent, dialect)
        plan = RowPlan("model", names, convs, model=BenchEvent)
        assert [o.__dict__ for o in decode_native(plan, rows)] == [
            o.__dict__ for o in decode_reference(plan, rows)]
        rust = best(lambda p=plan, r=rows: decode_native(p, r), args.repeat)
        ref = best(lambda p=plan, r=rows: decode_reference(p, r), args.repeat)
        print(f"{dialect:<10} {args.rows} rows, {len(convs)} converted columns: "
              f"rust {rust * 1e3:7.2f} ms   reference {ref * 1e3:7.2f} ms   "
              f"speed-up {ref / rust:4.1f}x")


if __name__ == "__main__":
    main()
