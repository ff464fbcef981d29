"""Write bench/RESULTS.md from bench/results.json, the profiles and bench/analysis.md.

    python bench/report.py [bench/results.json]

RESULTS.md = the command, the machine, the method, the tables (from run.py), the plots, the
targets met and missed (by how much), a summary of each CovetPy profile in ``bench/profiles/``
and the hand-written analysis of the misses in ``bench/analysis.md`` (kept separate so that
regenerating the report never loses it).
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import LABELS, WORKLOADS  # noqa: E402
from run import markdown_tables  # noqa: E402


def _machine(m: dict[str, Any]) -> list[str]:
    pk = m.get("packages", {})
    return [
        f"- CPUs (`nproc`): {m['nproc']}; CPU: {m['cpu']}; memory: {m['memory_gib']} GiB; "
        f"kernel {m['kernel']}",
        f"- Python {m['python']}; SQLite {m['sqlite']}; PostgreSQL "
        f"{m.get('postgresql') or 'not run'} ({m.get('pg_source', '—')})",
        "- drivers and ORMs: " + ", ".join(f"{k} {v}" for k, v in pk.items()),
        f"- CovetPy: git {m['git_commit']}"
        + (f" with {m['git_dirty_files']} tracked files modified in the working tree (other "
           f"engineers were editing it); " if m["git_dirty_files"] else
           " with no uncommitted change to tracked files; ")
        + (f"benchmarked from a snapshot copy of `covet/` taken at {m['covet_snapshot']} "
           f"(`--snapshot`), " if m.get("covet_snapshot") else
           f"imported from {m.get('covet_root', 'this repository')}, ")
        + f"Rust module {m['covet_native_module']} built {m['covet_native_built']}",
        "- the Rust module " + (
            f"was REBUILT during the run by another engineer (modified "
            f"{m.get('covet_native_built_at_end')}): some contender processes may have loaded "
            f"the newer build" if m.get("covet_native_built_at_end") not in
            (None, m["covet_native_built"]) else "was not rebuilt during the run")
        + (f" (the working tree's own build was replaced meanwhile, at "
           f"{m.get('repo_native_built_at_end')}; the snapshot was not affected)"
           if m.get("covet_snapshot") and m.get("repo_native_built_at_end")
           not in (None, m.get("repo_native_built")) else ""),
        f"- load average (1, 5, 15 min) at start {_load(m['load_start'])}, at end "
        f"{_load(m.get('load_end', []))}; started {m['started']}",
    ]


def _load(v: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in v)


def _profile_summary(path: str, top: int = 6) -> list[str]:
    with open(path) as f:
        text = f.read()
    head = text.splitlines()[0].lstrip("# ").split(" (main thread")[0].strip()
    section = text.split("## time per file", 1)[1].split("## top functions", 1)[0]
    rows = [r.strip() for r in section.splitlines() if re.match(r"\s*[\d.]+ ms", r)][:top]
    funcs = text.split("## top functions by tottime", 1)[1].split("## top functions by cumtime")[0]
    frows = []
    for line in funcs.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[0].replace("/", "").isdigit() \
                and parts[1].replace(".", "").isdigit():
            frows.append(f"{float(parts[1]) * 1000:7.1f} ms  {parts[5]}")
        if len(frows) >= top:
            break
    rel = "profiles/" + os.path.basename(path)
    return ([f"`{rel}` — {head}", "", "```", "by file (tottime, main thread):"]
            + [f"  {r}" for r in rows] + ["top functions (tottime):"]
            + [f"  {r}" for r in frows] + ["```", ""])


def build(results: dict[str, Any], out_dir: str = HERE) -> str:
    m = results["machine"]
    sizes = results["sizes"]
    out: list[str] = ["# CovetPy benchmark results", ""]
    mode = "quick (small sizes; a sanity check, not a measurement)" if results["quick"] else "full"
    out += [
        f"A {mode} run: {results['rounds']} round(s) x {results['repeat']} timed run(s) of every "
        f"workload per contender ({results['rounds'] * results['repeat']} samples, medians), "
        f"{results['seconds_total'] / 60:.1f} minutes of measurement"
        + (" plus the `--profile-misses` pass" if "--profile-misses" in results["command"]
           else "") + ". `python bench/run.py --quick` (both databases, every contender, small "
        "sizes) takes 35–55 s on this machine and is the sanity check.", "",
        "## Command", "", "```bash",
        "pip install -r bench/requirements.txt   # SQLAlchemy 2 [asyncio], tortoise-orm, "
        "matplotlib, psutil",
        results["command"].replace("python bench/run.py", "python bench/run.py").strip()
        + "   # then: python bench/report.py", "```", "",
        "Options: `--db sqlite|postgresql|both`, `--pg-url URL` (else a throwaway cluster with "
        "default settings), `--repeat N`, `--rounds N`, `--quick`, `--only W1,W4`, "
        "`--contenders a,b`, `--profile-misses`, `--covet-root PATH`.", "",
        "## Machine", "",
    ]
    out += _machine(m)
    loads = []
    for db, d in results["databases"].items():
        for name, c in d["contenders"].items():
            for i, r in enumerate(c.get("rounds", [])):
                if r.get("load_1min") is not None:
                    loads.append(r["load_1min"])
    if loads:
        out.append(f"- 1-minute load average when each contender process started: "
                   f"{min(loads):.2f} to {max(loads):.2f} (median "
                   f"{sorted(loads)[len(loads) // 2]:.2f}) on {m['nproc']} CPUs")
    out += [
        "", "**Noise.** This machine has 2 cores and is shared: other engineers run test suites "
        "and compile Rust on it, so the load average above is partly theirs. "
        "Contenders are interleaved across rounds and medians are reported, but ratios between "
        "two fast numbers (W3, W4, W9: a few milliseconds per run) and between fsync-bound "
        "numbers (W1, W8: one fsync per commit on a shared disk) move by 10–30% between runs. "
        "The CPU-time ratios (all threads of the contender's process) are less sensitive to the "
        "other processes and are shown next to the wall-time ones.", "",
    ]
    out += ["## Method", "",
            f"Data: {sizes['users']:,} users, {sizes['users'] * sizes['posts_per_user']:,} posts, "
            f"{sizes['users'] * sizes['posts_per_user'] * sizes['comments_per_post']:,} comments "
            "(deterministic; `common.py`), schema = the DDL CovetPy generates for the bench models "
            "(`users(id, username, email, city, age, is_active, created_at)`, "
            "`posts(id, user_id FK, title, views, status)`, `comments(id, post_id FK, body, "
            "likes)`, indexes on the foreign keys). The template database is built once; every "
            "contender process gets a fresh copy (SQLite: a file copy; PostgreSQL: "
            "`CREATE DATABASE … TEMPLATE`).", "",
            "Each contender runs in its own subprocess (`worker.py`): one untimed warm-up run per "
            "workload, then the timed runs, `gc.collect()` before each. W1/W2 delete what they "
            "inserted after each run (untimed; the deleted count is checked). Every workload "
            "returns a check value (rows, counts, sums of ids) and run.py verifies that all "
            "contenders agree, so no contender does less work.", "",
            "| workload | one timed run |", "|---|---|"]
    out += [f"| {w.key} {w.title} | {w.what} |" for w in WORKLOADS]
    out += ["",
            "Equal durability: SQLite in WAL mode with `synchronous=FULL` (SQLite's default, what "
            "CovetPy's adapter leaves it at), `foreign_keys=ON`, `busy_timeout=5000` for every "
            "contender; each contender reads its pragmas back through its own connection and "
            "run.py rejects a mismatch. PostgreSQL: server defaults (`fsync=on`, "
            "`synchronous_commit=on`), read back the same way.", "",
            "Contenders:", "",
            "- **raw sqlite3**: synchronous, one connection in autocommit, called from the event "
            "loop thread (the floor; no thread hop).",
            "- **raw aiosqlite** (SQLite reference for ratios): one connection, "
            "`execute_fetchall` (one hop to the worker thread per statement), `executemany` in "
            "`BEGIN IMMEDIATE`.",
            "- **raw asyncpg** (PostgreSQL reference for ratios): one connection (a pool would "
            "add a reset round trip on every release), `fetch`/`fetchval`/`executemany` in a "
            "transaction, a cursor in a transaction for W10.",
            "- **CovetPy (Rust)**: the Rust core, `sqlite:///` (the native SQLite engine when it "
            "is importable, else the aiosqlite engine; the engine actually used is listed "
            "below); CovetPy's asyncpg pool on PostgreSQL.",
            "- **CovetPy (pure Python)**: `COVET_PURE_PYTHON=1`, `sqlite+aiosqlite:///` when that "
            "scheme exists.",
            "- **SQLAlchemy 2 async ORM**: `AsyncSession` per unit of work (per query for reads, "
            "so the identity map does not turn repeated reads into no-ops), `session.get` for W4/"
            "W11, `selectinload` chain for W6, `stream_scalars` with `yield_per=1000` for W10, and "
            "for W2 its documented bulk path, ORM bulk INSERT (`session.execute(insert(User), "
            "list_of_dicts)`: no objects, no keys back). `add_all()` of objects needs their keys "
            "back, which SQLAlchemy does on SQLite with one INSERT per row (\"ordered; batch not "
            "supported\"), about 14x slower.",
            "- **Tortoise ORM**: its own clients (one aiosqlite connection; an asyncpg pool), "
            "`bulk_create` of objects for W2; W10 is keyset pagination in pages of 1,000 "
            "(Tortoise has no streaming iterator).", "",
            "CovetPy's `bulk_create` builds and validates 10,000 model objects and sets their "
            "primary keys (multi-row `INSERT … RETURNING`); the raw drivers run `executemany` "
            "of tuples in one transaction and get no keys back.", "",
            "Raw drivers return tuples (asyncpg: `Record`s) where the ORMs build model objects "
            "(W3, W4, W9, W10, W11) — that is the point of the comparison: the ratio is the "
            "price of getting objects. W6 raw = 3 queries (users; posts `WHERE user_id IN`; "
            "comments `WHERE post_id IN`) assembled into nested dicts.", "",
            "Memory: W10 peak = peak of `tracemalloc` (Python allocations) during one extra "
            "streaming pass; W11 = 10,000 `get(id=pk)` after a warm-up of 1,000: RSS (psutil) "
            "before/after a first loop, and the traced memory still allocated after a second "
            "loop run under tracemalloc (growth; ≤ 64 kB counts as no growth).", ""]
    engines = []
    for db, d in results["databases"].items():
        for name, c in d["contenders"].items():
            info = c.get("info") or {}
            extra = "; ".join(info.get("notes", []))
            engines.append(f"- {db} / {LABELS.get(name, name)}: {info.get('driver', '?')}, "
                           f"engine `{info.get('engine', '?')}`"
                           + (f", implementation `{info['implementation']}`"
                              if "implementation" in info else "")
                           + (f", native engine on SQLite {sqlite}"
                              if (sqlite := info.get("native_sqlite")
                                  or info.get("bundled_sqlite")) else "")
                           + (f", pragmas {info['pragmas']}" if "pragmas" in info else "")
                           + (f", settings {info['settings']}" if "settings" in info else "")
                           + (f" — {extra}" if extra else ""))
    out += ["Engines and durability as reported by each contender:", ""] + engines + [""]
    out += ["## Results", "", markdown_tables(results), ""]
    for db in results["analysis"]:
        name = "SQLite" if db == "sqlite" else "PostgreSQL"
        out += [f"![{name} ratios](results-{db}.png)", ""]
    # met / missed
    out += ["## Targets: met and missed", ""]
    for db, a in results["analysis"].items():
        met = [t for t in a["targets"] if t["met"]]
        missed = [t for t in a["targets"] if not t["met"]]
        name = "SQLite" if db == "sqlite" else "PostgreSQL"
        out.append(f"**{name}**: {len(met)} of {len(a['targets'])} met.")
        out.append("")
        for t in met:
            out.append(f"- met: {t['workload']} {t['kind']}: {_val(t)} (target {t['target']})")
        for t in missed:
            out.append(f"- **missed**: {t['workload']} {t['kind']}: {_val(t)} (target "
                       f"{t['target']}; {_by(t)})")
        out.append("")
    # profiles
    profiles = sorted(glob.glob(os.path.join(out_dir, "profiles", "*.txt")))
    if profiles:
        out += ["## Where the time goes (profiles)", "",
                "`python bench/run.py --profile-misses` (or `worker.py --profile W4`) runs each "
                "missed workload once more under cProfile, for CovetPy (Rust) and for the raw "
                "async driver, after a warm-up. cProfile sees the main thread only: time spent "
                "waiting for aiosqlite's worker thread (or the server) shows up as the event "
                "loop's `select.epoll.poll`; everything else in the main thread is "
                "Python-level overhead. Summaries of CovetPy (Rust):", ""]
        others = []
        for p in profiles:
            if "-covet-rust-" in os.path.basename(p):
                out += _profile_summary(p)
            else:
                others.append(f"`{os.path.relpath(p, out_dir)}`")
        if others:
            out += ["For comparison, profiled the same way (not summarized here): "
                    + ", ".join(others) + ".", ""]
    analysis = os.path.join(out_dir, "analysis.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            out += [f.read().strip(), ""]
    return "\n".join(out).rstrip() + "\n"


def _val(t: dict[str, Any]) -> str:
    v = t["value"]
    if v is None:
        return "no value"
    return f"{v:,.0f} bytes" if t["workload"] == "W11" else f"{v:.2f}"


def _by(t: dict[str, Any]) -> str:
    by = t.get("by")
    if by is None:
        return "no value"
    if t["kind"] == "rust-vs-python":
        return f"Rust mode is only {t['value']:.2f}x the pure-Python speed"
    return f"{(by - 1) * 100:.0f}% over the target"


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.json")
    with open(src) as f:
        data = json.load(f)
    dest = os.path.join(os.path.dirname(os.path.abspath(src)), "RESULTS.md")
    with open(dest, "w") as f:
        f.write(build(data, os.path.dirname(dest)))
    print(dest)
