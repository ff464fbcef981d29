"""Grouped bar charts of the time ratios (log scale), one PNG per database.

    python bench/plot.py [bench/results.json]    # rewrites bench/results-<db>.png

For each workload, one bar per contender: its median time divided by the raw async driver's
(aiosqlite on SQLite, asyncpg on PostgreSQL); a red tick marks CovetPy's target for that
workload. W10 also gets a bar group for peak memory (``W10 mem``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from common import BY_KEY, LABELS, W10_MEMORY_TARGET  # noqa: E402

COLORS = {
    "sqlite3": "#9e9e9e", "aiosqlite": "#616161", "asyncpg": "#616161",
    "covet-rust": "#d84315", "covet-py": "#ffab91", "covet-rust-aiosqlite": "#ff7043",
    "sqlalchemy": "#1565c0", "tortoise": "#2e7d32",
}


def plot_db(results: dict[str, Any], db: str, out_dir: str) -> str:
    analysis = results["analysis"][db]
    table = analysis["table"]
    contenders = list(results["databases"][db]["contenders"])
    groups: list[tuple[str, dict[str, float | None], float | None]] = []
    for key, row in table.items():
        if key == "W11":
            continue
        groups.append((key, {c: row.get(c, {}).get("ratio") for c in contenders},
                       BY_KEY[key].target(db)))
        if key == "W10":
            groups.append(("W10 mem", {c: row.get(c, {}).get("peak_ratio") for c in contenders},
                           W10_MEMORY_TARGET))
    n = len(contenders)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(10, 1.25 * len(groups) + 3), 6), dpi=110)
    for i, c in enumerate(contenders):
        xs, ys = [], []
        for g, (_, ratios, _) in enumerate(groups):
            v = ratios.get(c)
            if v:
                xs.append(g - 0.4 + width * (i + 0.5))
                ys.append(v)
        ax.bar(xs, ys, width=width * 0.95, label=LABELS.get(c, c), color=COLORS.get(c, None),
               edgecolor="black", linewidth=0.3)
    for g, (_, _, target) in enumerate(groups):
        if target is not None:
            ax.hlines(target, g - 0.45, g + 0.45, colors="red", linewidth=2,
                      label="CovetPy target" if g == 0 else None)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g[0] for g in groups])
    ax.set_ylabel(f"median time / {LABELS[analysis['raw']]} (log; lower is better)")
    mode = "quick" if results.get("quick") else "full"
    name = "SQLite" if db == "sqlite" else "PostgreSQL"
    ax.set_title(f"CovetPy benchmarks on {name} ({mode} run, {results['machine']['nproc']} CPUs)")
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    ax.legend(seen.values(), seen.keys(), fontsize=8, ncol=2, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    path = os.path.join(out_dir, f"results-{db}.png")
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_all(results: dict[str, Any], out_dir: str) -> list[str]:
    return [plot_db(results, db, out_dir) for db in results["analysis"]]


if __name__ == "__main__":
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "results.json")
    with open(src) as f:
        data = json.load(f)
    for p in plot_all(data, os.path.dirname(os.path.abspath(src))):
        print(p)
