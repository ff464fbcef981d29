"""Run the workloads for ONE contender in this process and write the results as JSON.

Started by run.py, one subprocess per contender (and per round), so memory numbers and import
side effects (``COVET_PURE_PYTHON``) never leak between contenders. Not meant to be run by hand,
but it can be::

    python bench/worker.py --contender covet-rust --db sqlite --target /tmp/x.db --out r.json

Per workload: one untimed warm-up run, then ``--repeat`` timed runs (``gc.collect()`` before
each). W1/W2 delete the users they inserted after every run (untimed) and check the count.
W10 adds one extra pass under ``tracemalloc`` for the peak of Python allocations; W11 measures
RSS and traced memory around a loop of queries after a warm-up. ``--profile W4,W9`` additionally
runs those workloads once under cProfile and writes the top functions to ``--profile-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import os
import pstats
import re
import sys
import time
import traceback
import tracemalloc
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
# COVET_BENCH_ROOT: benchmark CovetPy from another checkout (run.py --covet-root)
ROOT = os.path.abspath(os.environ.get("COVET_BENCH_ROOT") or os.path.dirname(HERE))
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

from common import FULL, QUICK, Sizes, get_pks  # noqa: E402
from contenders import make  # noqa: E402


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class Runner:
    def __init__(self, contender: Any, sizes: Sizes, repeat: int, tag: str) -> None:
        self.c = contender
        self.sizes = sizes
        self.repeat = repeat
        self.tag = tag
        self.pks4 = get_pks(sizes, sizes.w4_gets, seed=4)
        self.pks11 = get_pks(sizes, sizes.w11_queries, seed=5)

    def _call(self, key: str, run_tag: str) -> Any:
        c = self.c
        if key in ("W1", "W2"):
            return getattr(c, key.lower())(run_tag)
        if key == "W4":
            return c.w4(self.pks4)
        if key == "W11":
            return c.w11(self.pks11)
        return getattr(c, key.lower())()

    async def _cleanup(self, key: str) -> int | None:
        if key not in ("W1", "W2"):
            return None
        return await self.c.execute(f'DELETE FROM "users" WHERE "id" > {self.sizes.users}')

    async def once(self, key: str, run_tag: str) -> tuple[float, float, Any, int | None]:
        gc.collect()
        c0 = time.process_time()  # CPU of every thread of this process (driver threads too)
        t0 = time.perf_counter()
        check = await self._call(key, run_tag)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        cleaned = await self._cleanup(key)
        return elapsed, cpu, check, cleaned

    async def workload(self, key: str) -> dict[str, Any]:
        if key == "W11":
            return await self.w11()
        out: dict[str, Any] = {}
        if key != "W10":  # W10 reads the table W9 just read; a warm-up would double its cost
            _, _, out["warmup_check"], _ = await self.once(key, f"{self.tag}w")
        times, cpus, checks, cleaned = [], [], [], []
        for r in range(self.repeat):
            t, cpu, check, n = await self.once(key, f"{self.tag}r{r}")
            times.append(t)
            cpus.append(cpu)
            checks.append(check)
            cleaned.append(n)
        out.update(times=times, cpu=cpus, check=checks[0] if checks else out.get("warmup_check"),
                   checks_agree=all(c == checks[0] for c in checks))
        if key in ("W1", "W2"):
            out["deleted_after_runs"] = cleaned
        if key == "W10":
            gc.collect()
            tracemalloc.start()
            tracemalloc.reset_peak()
            await self.c.w10()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            out["peak_traced_bytes"] = peak
        return out

    async def w11(self) -> dict[str, Any]:
        c, pks = self.c, self.pks11
        await c.w11(pks[: max(1, len(pks) // 10)])  # warm-up: caches, pools, statements
        gc.collect()
        rss0 = _rss()
        c0 = time.process_time()
        t0 = time.perf_counter()
        check = await c.w11(pks)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - c0
        gc.collect()
        rss1 = _rss()
        # a second loop under tracemalloc: what is still allocated afterwards is growth
        tracemalloc.start()
        gc.collect()
        before = tracemalloc.take_snapshot()
        cur0, _ = tracemalloc.get_traced_memory()
        await c.w11(pks)
        gc.collect()
        cur1, peak = tracemalloc.get_traced_memory()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        top = [str(s) for s in after.compare_to(before, "lineno")[:5]]
        return {"times": [elapsed], "cpu": [cpu], "check": check, "rss_before": rss0, "rss_after": rss1,
                "rss_growth": rss1 - rss0, "traced_growth": cur1 - cur0, "traced_peak": peak,
                "top_growth": top}

    async def profile(self, key: str, out_dir: str, label: str) -> str:
        await self.once(key, f"{self.tag}pw")  # warm
        prof = cProfile.Profile()
        gc.collect()
        prof.enable()
        t0 = time.perf_counter()
        await self._call(key, f"{self.tag}p")
        wall = time.perf_counter() - t0
        prof.disable()
        await self._cleanup(key)
        path = os.path.join(out_dir, f"{label}-{key}.txt")
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        buf.write(f"# {label} {key}: wall {wall * 1000:.1f} ms under cProfile "
                  f"(main thread only; time waiting for a driver thread shows in the event "
                  f"loop's select/poll)\n\n")
        buf.write("## time per file (tottime, main thread)\n\n")
        per_file: dict[str, float] = {}
        total = 0.0
        for (filename, _line, fn), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            short = fn if filename == "~" else _short(filename)  # built-ins by name
            per_file[short] = per_file.get(short, 0.0) + tt
            total += tt
        for name, tt in sorted(per_file.items(), key=lambda kv: -kv[1])[:20]:
            buf.write(f"{tt * 1000:9.1f} ms  {100 * tt / max(total, 1e-9):5.1f}%  {name}\n")
        buf.write("\n## top functions by tottime\n\n")
        stats.sort_stats("tottime").print_stats(25)
        buf.write("\n## top functions by cumtime\n\n")
        stats.sort_stats("cumulative").print_stats(30)
        text = buf.getvalue().replace(ROOT + "/", "").replace(os.path.dirname(HERE) + "/", "")
        for marker in ("site-packages/", "lib/python3.11/"):
            text = re.sub(r"/\S*?" + re.escape(marker), "", text)
        with open(path, "w") as f:
            f.write(text)
        return path


def _short(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return filename  # built-ins: {method 'poll' of 'select.epoll' objects} etc.
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename.replace(ROOT + "/", "").replace(os.path.dirname(HERE) + "/", "")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    contender = make(args.contender, args.db, args.target, sizes)
    result: dict[str, Any] = {"contender": args.contender, "db": args.db, "workloads": {},
                              "errors": {}, "pid": os.getpid()}
    await contender.open()
    try:
        result["info"] = await contender.info()
        runner = Runner(contender, sizes, args.repeat, args.tag)
        for key in [k for k in args.workloads.split(",") if k]:
            try:
                t0 = time.perf_counter()
                result["workloads"][key] = await runner.workload(key)
                print(f"  {args.db:10} {args.contender:12} {key:4} done in "
                      f"{time.perf_counter() - t0:6.2f}s", file=sys.stderr, flush=True)
            except Exception:
                result["errors"][key] = traceback.format_exc()
                print(f"  {args.db:10} {args.contender:12} {key:4} FAILED:\n"
                      f"{result['errors'][key]}", file=sys.stderr, flush=True)
        if args.profile:
            os.makedirs(args.profile_dir, exist_ok=True)
            result["profiles"] = {}
            for key in args.profile.split(","):
                label = f"{args.db}-{args.contender}"
                result["profiles"][key] = await runner.profile(key, args.profile_dir, label)
    finally:
        await contender.close()
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--contender", required=True)
    ap.add_argument("--db", required=True, choices=["sqlite", "postgresql"])
    ap.add_argument("--target", required=True, help="SQLite file or PostgreSQL URL")
    ap.add_argument("--workloads", default="W1,W2,W3,W4,W5,W6,W7,W8,W9,W10,W11")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tag", default="b", help="prefix of usernames inserted by W1/W2")
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", default="")
    ap.add_argument("--profile-dir", default=os.path.join(HERE, "profiles"))
    a = ap.parse_args()
    res = asyncio.run(main(a))
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1, default=str)
