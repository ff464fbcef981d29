"""CovetPy benchmark suite: every contender, every workload, SQLite and PostgreSQL, one command.

    python bench/run.py                      # full run, SQLite and PostgreSQL (~15 min, 2 cores)
    python bench/run.py --quick              # small sizes, 1 repeat: a sanity check (< 2 min)
    python bench/run.py --db sqlite --only W3,W4 --contenders aiosqlite,covet-rust
    python bench/run.py --db postgresql --pg-url postgresql://user@host/db

Each contender runs in its own subprocess (``worker.py``) against a fresh copy of the same seeded
database (``seed.py``); ``--rounds`` runs every contender that many times, in a rotated order, so
that load from other processes spreads over all of them. The parent takes medians over all timed
runs, ratios to the raw async driver of the same database (aiosqlite, asyncpg), checks that all
contenders returned the same rows and ran at the same durability, evaluates the targets, and
writes ``bench/results.json``, ``bench/results.md`` and the plots (``plot.py``). With
``--profile-misses`` it then profiles CovetPy on every missed time target (``bench/profiles/``).
``report.py`` turns results.json into RESULTS.md.

Without ``--pg-url`` a throwaway PostgreSQL cluster is started (``tests/pgcluster.py``, with
PostgreSQL's default settings). With ``--pg-url`` the URL's database is only used to CREATE/DROP
the ``bench_*`` databases (the role needs CREATEDB).

Requirements (not CovetPy's dependencies): ``pip install -r bench/requirements.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import seed  # noqa: E402
from common import (  # noqa: E402
    BY_KEY,
    CONTENDERS,
    EXPECTED_SQLITE_PRAGMAS,
    FULL,
    LABELS,
    OPTIONAL_CONTENDERS,
    QUICK,
    RAW_ASYNC,
    W10_MEMORY_TARGET,
    W11_GROWTH_LIMIT,
    WORKLOAD_KEYS,
)

COVET = "covet-rust"  # the contender the targets are about
COVET_ROOT = ROOT  # where CovetPy is imported from (--covet-root)
COVET_PY = "covet-py"


# --------------------------------------------------------------------------------------------
# machine
def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _pkg_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _mtime(package_dir: str) -> str | None:
    so = [f for f in os.listdir(package_dir) if f.startswith("_covet_rs")]
    if not so:
        return None
    stamp = os.path.getmtime(os.path.join(package_dir, so[0]))
    return dt.datetime.fromtimestamp(stamp).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
                   if line.startswith("MemTotal:")), 0)
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    so = [f for f in os.listdir(os.path.join(COVET_ROOT, "covet")) if f.startswith("_covet_rs")]
    so_mtime = (dt.datetime.fromtimestamp(
        os.path.getmtime(os.path.join(COVET_ROOT, "covet", so[0]))).isoformat(timespec="seconds")
        if so else None)
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "packages": {p: _pkg_version(p) for p in ("aiosqlite", "asyncpg", "SQLAlchemy",
                                                  "tortoise-orm", "psutil", "matplotlib")},
        "git_commit": git("rev-parse", "--short", "HEAD"),
        # tracked files with uncommitted changes (untracked files, such as bench/ itself before
        # it is committed, are not counted)
        "git_dirty_files": len([x for x in git("status", "--porcelain").splitlines()
                                if x and not x.startswith("??")]),
        "covet_root": COVET_ROOT if COVET_ROOT != ROOT else "this repository",
        "repo_native_built": _mtime(os.path.join(ROOT, "covet")),
        "covet_native_module": so[0] if so else None,
        "covet_native_built": so_mtime,
        "load_start": list(os.getloadavg()),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# databases
@contextlib.contextmanager
def postgres(pg_url: str | None) -> Iterator[str]:
    if pg_url:
        yield pg_url
        return
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tests import pgcluster  # the suite's throwaway cluster, here with default settings

    with pgcluster.cluster(prefix="covet-bench-pg-") as url:
        yield url


def run_worker(contender: str, db: str, target: str, workloads: list[str], repeat: int,
               quick: bool, tag: str, out: str, profile: str = "",
               profile_dir: str = "") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "COVET_PURE_PYTHON"}
    if contender == COVET_PY:
        env["COVET_PURE_PYTHON"] = "1"
    if contender == "covet-rust-aiosqlite" and "COVET_BENCH_SQLITE_SCHEME" not in env:
        env["COVET_BENCH_SQLITE_SCHEME"] = "sqlite+aiosqlite"
    env["PYTHONHASHSEED"] = "0"
    if COVET_ROOT != ROOT:
        env["COVET_BENCH_ROOT"] = COVET_ROOT
    cmd = [sys.executable, os.path.join(HERE, "worker.py"), "--contender", contender,
           "--db", db, "--target", target, "--workloads", ",".join(workloads),
           "--repeat", str(repeat), "--tag", tag, "--out", out]
    if quick:
        cmd.append("--quick")
    if profile:
        cmd += ["--profile", profile, "--profile-dir", profile_dir]
    if os.path.exists(out):
        os.remove(out)
    tail: list[str] = []
    with subprocess.Popen(cmd, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:  # progress lines, echoed live; the tail is kept for errors
            sys.stderr.write(line)
            tail = (tail + [line])[-40:]
        code = proc.wait(timeout=1800)
    if not os.path.exists(out):
        return {"contender": contender, "db": db, "workloads": {},
                "errors": {"process": f"worker exited with {code}: {''.join(tail)}"}}
    with open(out) as f:
        result: dict[str, Any] = json.load(f)
    if code != 0:  # results were written, then the process died (e.g. at interpreter exit)
        result["exit"] = {"code": code, "stderr_tail": "".join(tail[-12:])}
    return result


def run_db(db: str, contenders: list[str], workloads: list[str], args: argparse.Namespace,
           workdir: str, pg_admin: str | None) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    if db == "sqlite":
        template = os.path.join(workdir, "template.db")
        seed.build_sqlite_template(template, sizes)
    else:
        assert pg_admin is not None
        seed.build_pg_template(pg_admin, sizes)
    seeded = time.perf_counter() - t0
    print(f"[{db}] seeded {sizes.users:,} users, {sizes.posts:,} posts, {sizes.comments:,} "
          f"comments in {seeded:.1f}s", flush=True)
    merged: dict[str, dict[str, Any]] = {}
    for rnd in range(args.rounds):
        shift = rnd % len(contenders)
        order = contenders[shift:] + contenders[:shift]
        # W11 (a long loop measuring memory, not speed) runs in the first round only
        wl = [w for w in workloads if w != "W11" or rnd == 0]
        for name in order:
            if db == "sqlite":
                target = os.path.join(workdir, f"{name}.db")
                seed.copy_sqlite(template, target)
            else:
                assert pg_admin is not None
                target = seed.copy_pg(pg_admin, name)
            load = os.getloadavg()[0]
            print(f"[{db}] round {rnd + 1}/{args.rounds}: {name} (load {load:.2f})", flush=True)
            t1 = time.perf_counter()
            res = run_worker(name, db, target, wl, args.repeat, args.quick, f"r{rnd}",
                             os.path.join(workdir, f"{db}-{name}-r{rnd}.json"))
            res["elapsed"] = time.perf_counter() - t1
            res["load_1min"] = load
            _merge(merged.setdefault(name, {"contender": name, "db": db, "workloads": {},
                                            "errors": {}, "rounds": []}), res)
            if db == "sqlite":
                seed.remove_sqlite(target)
            else:
                assert pg_admin is not None
                seed.drop_pg(pg_admin, seed.db_name(name))
    if db == "postgresql":
        assert pg_admin is not None
        seed.drop_pg(pg_admin, seed.TEMPLATE_DB)
    return {"seconds_seeding": seeded, "contenders": merged}


def _merge(into: dict[str, Any], res: dict[str, Any]) -> None:
    into["rounds"].append({"elapsed": res.get("elapsed"), "load_1min": res.get("load_1min"),
                           "exit": res.get("exit")})
    into.setdefault("info", res.get("info"))
    into["errors"].update(res.get("errors", {}))
    for key, w in res.get("workloads", {}).items():
        dst = into["workloads"].setdefault(key, {"times": [], "cpu": [], "checks": []})
        dst["times"] += w.get("times", [])
        dst["cpu"] += w.get("cpu", [])
        dst["checks"].append(w.get("check"))
        for extra in ("peak_traced_bytes", "rss_before", "rss_after", "rss_growth",
                      "traced_growth", "traced_peak", "top_growth", "deleted_after_runs"):
            if extra in w:
                values = dst.setdefault(extra + "_all", [])
                values.append(w[extra])
                numeric = isinstance(w[extra], (int, float))
                dst[extra] = statistics.median(values) if numeric else w[extra]


# --------------------------------------------------------------------------------------------
# analysis
def analyse(db: str, data: dict[str, Any], workloads: list[str], quick: bool) -> dict[str, Any]:
    sizes = QUICK if quick else FULL
    cons = data["contenders"]
    raw = RAW_ASYNC[db]
    out: dict[str, Any] = {"raw": raw, "table": {}, "targets": [], "problems": []}
    for key in workloads:
        row: dict[str, Any] = {}
        base = cons.get(raw, {}).get("workloads", {}).get(key)
        base_med = statistics.median(base["times"]) if base and base["times"] else None
        base_cpu = statistics.median(base["cpu"]) if base and base.get("cpu") else None
        checks = {}
        for name, c in cons.items():
            w = c["workloads"].get(key)
            if not w or not w["times"]:
                row[name] = {"error": c["errors"].get(key, "no result")}
                continue
            med = statistics.median(w["times"])
            cpu = statistics.median(w["cpu"]) if w.get("cpu") else None
            cell: dict[str, Any] = {
                "median_s": med, "min_s": min(w["times"]), "max_s": max(w["times"]),
                "n": len(w["times"]), "cpu_median_s": cpu,
                "ratio": med / base_med if base_med else None,
                "cpu_ratio": cpu / base_cpu if cpu and base_cpu else None,
            }
            for extra in ("peak_traced_bytes", "rss_growth", "traced_growth", "top_growth"):
                if extra in w:
                    cell[extra] = w[extra]
            if key == "W10" and "peak_traced_bytes" in w:
                bw = base.get("peak_traced_bytes") if base else None
                cell["peak_ratio"] = w["peak_traced_bytes"] / bw if bw else None
            row[name] = cell
            checks[name] = w["checks"]
        out["table"][key] = row
        # every contender must have returned the same rows (W1/W2: the same inserted count)
        flat = {n: json.dumps(v[0]) for n, v in checks.items()}
        if len(set(flat.values())) > 1:
            out["problems"].append(f"{key}: contenders disagree on the result: {flat}")
        for n, v in checks.items():
            if len({json.dumps(x) for x in v}) > 1:
                out["problems"].append(f"{key}: {n} returned different results across rounds")
        if key in ("W1", "W2"):
            expected = sizes.w1_creates if key == "W1" else sizes.w2_rows
            for n, c in cons.items():
                for d in c["workloads"].get(key, {}).get("deleted_after_runs_all", []):
                    if any(x != expected for x in d):
                        out["problems"].append(f"{key}: {n} inserted {d} rows, not {expected}")
    # equal durability
    for n, c in cons.items():
        info = c.get("info") or {}
        if db == "sqlite":
            got = info.get("pragmas", {})
            norm = {"journal_mode": str(got.get("journal_mode", "")).lower(),
                    "synchronous": got.get("synchronous"), "foreign_keys": got.get("foreign_keys")}
            if norm != EXPECTED_SQLITE_PRAGMAS:
                out["problems"].append(f"{n}: SQLite pragmas {got} differ from "
                                       f"{EXPECTED_SQLITE_PRAGMAS}")
        else:
            s = info.get("settings", {})
            if s.get("fsync") != "on" or s.get("synchronous_commit") != "on":
                out["problems"].append(f"{n}: PostgreSQL settings {s} are not the defaults")
        if c["errors"]:
            out["problems"].append(f"{n}: errors in {sorted(c['errors'])}")
        for i, r in enumerate(c.get("rounds", [])):
            if r.get("exit"):
                lines = r["exit"]["stderr_tail"].strip().splitlines()
                first = [x for x in lines if "Fatal" in x or "Error" in x][:1] or lines[-1:]
                out["problems"].append(
                    f"{n}: round {i + 1}: the process exited with code {r['exit']['code']} after "
                    f"writing its results ({first[0] if first else 'no message'})")
    # targets
    table = out["table"]
    for key in workloads:
        w = BY_KEY[key]
        target = w.target(db)
        cell = table.get(key, {}).get(COVET, {})
        if target is not None:
            ratio = cell.get("ratio")
            out["targets"].append({
                "workload": key, "kind": "time", "what": f"{LABELS[COVET]} / {LABELS[raw]}",
                "target": f"<= {target}", "value": ratio,
                "met": ratio is not None and ratio <= target,
                "by": (ratio / target) if ratio else None})
        if w.rust_2x:
            py = table.get(key, {}).get(COVET_PY, {}).get("median_s")
            rs = cell.get("median_s")
            speedup = py / rs if py and rs else None
            out["targets"].append({
                "workload": key, "kind": "rust-vs-python",
                "what": f"{LABELS[COVET_PY]} / {LABELS[COVET]} time", "target": ">= 2.0",
                "value": speedup, "met": speedup is not None and speedup >= 2.0,
                "by": (2.0 / speedup) if speedup else None})
        if key == "W10":
            pr = cell.get("peak_ratio")
            out["targets"].append({
                "workload": key, "kind": "memory",
                "what": f"peak traced memory, {LABELS[COVET]} / {LABELS[raw]}",
                "target": f"<= {W10_MEMORY_TARGET}", "value": pr,
                "met": pr is not None and pr <= W10_MEMORY_TARGET,
                "by": (pr / W10_MEMORY_TARGET) if pr else None})
        if key == "W11":
            g = cell.get("traced_growth")
            out["targets"].append({
                "workload": key, "kind": "memory",
                "what": f"{LABELS[COVET]}: traced memory left after {sizes.w11_queries:,} "
                        f"queries (bytes)",
                "target": f"<= {W11_GROWTH_LIMIT:,}", "value": g,
                "met": g is not None and g <= W11_GROWTH_LIMIT,
                "by": (g / W11_GROWTH_LIMIT) if g else None})
    return out


# --------------------------------------------------------------------------------------------
# markdown
def _fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _fmt_time(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s * 1000:.1f} ms" if s < 10 else f"{s:.2f} s"


def markdown_tables(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for db, a in results["analysis"].items():
        cons = list(results["databases"][db]["contenders"])
        raw = a["raw"]
        title = "SQLite (file, WAL, synchronous=FULL)" if db == "sqlite" else \
            "PostgreSQL (default settings)"
        lines += [f"### {title}", "",
                  f"Median wall time of a run, and in brackets the ratio to {LABELS[raw]} "
                  f"(lower is better). Target = CovetPy (Rust) ratio target.", ""]
        head = ["workload"] + [LABELS[c] for c in cons] + ["target", "met"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        tmap = {(t["workload"], t["kind"]): t for t in a["targets"]}
        for key, row in a["table"].items():
            w = BY_KEY[key]
            cells = [f"{key} {w.title}"]
            for c in cons:
                cell = row.get(c, {})
                if "median_s" not in cell:
                    cells.append("error")
                    continue
                cells.append(f"{_fmt_time(cell['median_s'])} ({_fmt_ratio(cell['ratio'])})")
            t = tmap.get((key, "time"))
            cells.append(t["target"].replace("<= ", "≤ ") if t else "—")
            cells.append(("yes" if t["met"] else "**no**") if t else "—")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        lines.append(f"CPU time (all threads of the contender's process) as a ratio to "
                     f"{LABELS[raw]}; less sensitive to other processes' load than wall time:")
        lines.append("")
        head = ["workload"] + [LABELS[c] for c in cons]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for key, row in a["table"].items():
            cells = [key] + [_fmt_ratio(row.get(c, {}).get("cpu_ratio")) for c in cons]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        if "W10" in a["table"] or "W11" in a["table"]:
            lines.append("Memory: W10 peak of traced Python allocations while streaming (ratio to "
                         f"{LABELS[raw]}); W11 traced memory still allocated and RSS growth "
                         "after the query loop.")
            lines.append("")
            head = ["measure"] + [LABELS[c] for c in cons]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            if "W10" in a["table"]:
                row = a["table"]["W10"]
                lines.append("| W10 peak | " + " | ".join(
                    f"{row.get(c, {}).get('peak_traced_bytes', 0) / 1e6:.2f} MB "
                    f"({_fmt_ratio(row.get(c, {}).get('peak_ratio'))})"
                    if "peak_traced_bytes" in row.get(c, {}) else "—" for c in cons) + " |")
            if "W11" in a["table"]:
                row = a["table"]["W11"]
                lines.append("| W11 traced left | " + " | ".join(
                    f"{row.get(c, {}).get('traced_growth', 0) / 1e3:.1f} kB"
                    if "traced_growth" in row.get(c, {}) else "—" for c in cons) + " |")
                lines.append("| W11 RSS growth | " + " | ".join(
                    f"{row.get(c, {}).get('rss_growth', 0) / 1e6:.2f} MB"
                    if "rss_growth" in row.get(c, {}) else "—" for c in cons) + " |")
            lines.append("")
        lines.append("Targets (CovetPy):")
        lines.append("")
        lines.append("| workload | measure | target | value | met |")
        lines.append("|---|---|---|---|---|")
        for t in a["targets"]:
            v = t["value"]
            val = "—" if v is None else (f"{v:,.0f}" if t["workload"] == "W11" else f"{v:.2f}")
            lines.append(f"| {t['workload']} | {t['what']} | {t['target']} | {val} | "
                         f"{'yes' if t['met'] else '**no**'} |")
        lines.append("")
        if a["problems"]:
            lines.append("Problems found by the checks:")
            lines.append("")
            lines += [f"- {p}" for p in a["problems"]]
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--pg-url", default=os.environ.get("COVET_BENCH_PG_URL"),
                    help="PostgreSQL server to use (default: start a throwaway cluster)")
    ap.add_argument("--repeat", type=int, default=None,
                    help="timed runs per workload per round (default 2; --quick: 1)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="subprocess rounds per contender, order rotated (default 3; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (sanity check)")
    ap.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W4")
    ap.add_argument("--contenders", default="",
                    help="comma-separated subset; known: " + ", ".join(
                        sorted(set(CONTENDERS["sqlite"]) | set(CONTENDERS["postgresql"])
                               | set(OPTIONAL_CONTENDERS))))
    ap.add_argument("--out", default=HERE, help="directory for results.json/.md and plots")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--profile-misses", action="store_true",
                    help="afterwards, cProfile CovetPy on each missed time target")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--covet-root", default=ROOT,
                    help="import CovetPy from this checkout instead of this repository")
    ap.add_argument("--snapshot", action="store_true",
                    help="copy covet/ (with its built Rust module) to a temp dir first and "
                         "benchmark that copy, so edits or rebuilds made meanwhile in the "
                         "working tree cannot change CovetPy in the middle of the run")
    args = ap.parse_args()
    global COVET_ROOT
    COVET_ROOT = os.path.abspath(args.covet_root)
    snapshot_dir = None
    if args.snapshot:
        snapshot_dir = tempfile.mkdtemp(prefix="covet-bench-snapshot-")
        shutil.copytree(os.path.join(COVET_ROOT, "covet"), os.path.join(snapshot_dir, "covet"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        COVET_ROOT = snapshot_dir
    args.repeat = args.repeat or (1 if args.quick else 2)
    args.rounds = args.rounds or (1 if args.quick else 3)
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()] or WORKLOAD_KEYS
    unknown = [w for w in workloads if w not in BY_KEY]
    if unknown:
        ap.error(f"unknown workloads {unknown}; known: {WORKLOAD_KEYS}")
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    wanted = [c.strip() for c in args.contenders.split(",") if c.strip()]

    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:]),
        "quick": args.quick, "repeat": args.repeat, "rounds": args.rounds,
        "sizes": (QUICK if args.quick else FULL).__dict__, "workloads": workloads,
        "machine": machine_info(), "databases": {}, "analysis": {},
    }
    if snapshot_dir:
        results["machine"]["covet_snapshot"] = dt.datetime.now().isoformat(timespec="seconds")
    print(f"machine: {results['machine']['nproc']} CPUs, {results['machine']['cpu']}, load "
          f"{results['machine']['load_start']}", flush=True)
    workdir = tempfile.mkdtemp(prefix="covet-bench-")
    try:
        for db in dbs:
            contenders = [c for c in (wanted or CONTENDERS[db])
                          if c in CONTENDERS[db] or c in OPTIONAL_CONTENDERS]
            if db == "postgresql":
                contenders = [c for c in contenders if c not in ("sqlite3", "aiosqlite")]
                if "covet-rust-aiosqlite" in contenders:
                    contenders.remove("covet-rust-aiosqlite")
            else:
                contenders = [c for c in contenders if c != "asyncpg"]
            if RAW_ASYNC[db] not in contenders:
                contenders.insert(0, RAW_ASYNC[db])  # ratios need the reference
            if db == "postgresql":
                with postgres(args.pg_url) as admin:
                    results["databases"][db] = run_db(db, contenders, workloads, args, workdir,
                                                      admin)
                    pg_info = results["databases"][db]["contenders"].get("asyncpg", {}).get(
                        "info", {})
                    results["machine"]["postgresql"] = pg_info.get("settings", {}).get(
                        "server_version")
                    results["machine"]["pg_source"] = "--pg-url" if args.pg_url else \
                        "throwaway cluster (tests/pgcluster.py), default settings"
            else:
                results["databases"][db] = run_db(db, contenders, workloads, args, workdir, None)
            results["analysis"][db] = analyse(db, results["databases"][db], workloads,
                                              args.quick)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["machine"]["load_end"] = list(os.getloadavg())
    end = machine_info()
    results["machine"]["covet_native_built_at_end"] = end["covet_native_built"]
    results["machine"]["repo_native_built_at_end"] = end["repo_native_built"]
    results["seconds_total"] = time.perf_counter() - started
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, default=str)
    md = markdown_tables(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(md + "\n")
    print(md)
    if not args.no_plot:
        import plot

        for path in plot.plot_all(results, args.out):
            print(f"plot: {path}")
    if args.profile_misses:
        profile_misses(results, args)
    if snapshot_dir:
        shutil.rmtree(snapshot_dir, ignore_errors=True)
    print(f"total {results['seconds_total']:.0f}s; load at end {results['machine']['load_end']}")
    return 0


def profile_misses(results: dict[str, Any], args: argparse.Namespace) -> None:
    """cProfile CovetPy (Rust) on each missed time target (and pure Python on missed 2x)."""
    workdir = tempfile.mkdtemp(prefix="covet-bench-prof-")
    sizes = QUICK if args.quick else FULL
    profile_dir = os.path.join(args.out, "profiles")
    shutil.rmtree(profile_dir, ignore_errors=True)  # no stale profiles from an earlier run
    os.makedirs(profile_dir)
    try:
        for db, a in results["analysis"].items():
            missed = sorted({t["workload"] for t in a["targets"]
                             if not t["met"] and t["kind"] in ("time", "rust-vs-python")},
                            key=WORKLOAD_KEYS.index)
            if not missed:
                continue
            py_missed = [t["workload"] for t in a["targets"]
                         if not t["met"] and t["kind"] == "rust-vs-python"]
            jobs = [(COVET, missed), (RAW_ASYNC[db], missed)]
            if py_missed:
                jobs.append((COVET_PY, py_missed))
            ctx = postgres(args.pg_url) if db == "postgresql" else contextlib.nullcontext(None)
            with ctx as admin:
                if db == "sqlite":
                    template = os.path.join(workdir, "template.db")
                    seed.build_sqlite_template(template, sizes)
                else:
                    seed.build_pg_template(admin, sizes)
                for name, keys in jobs:
                    if db == "sqlite":
                        target = os.path.join(workdir, f"{name}.db")
                        seed.copy_sqlite(template, target)
                    else:
                        target = seed.copy_pg(admin, name)
                    print(f"[{db}] profiling {name}: {','.join(keys)}", flush=True)
                    run_worker(name, db, target, [], 0, args.quick, "p",
                               os.path.join(workdir, f"prof-{db}-{name}.json"),
                               profile=",".join(keys), profile_dir=profile_dir)
                    if db == "postgresql":
                        seed.drop_pg(admin, seed.db_name(name))
                if db == "postgresql":
                    seed.drop_pg(admin, seed.TEMPLATE_DB)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
