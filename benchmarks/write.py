"""Writes BENCHMARKS.md from the benchmarks' JSON files, with charts drawn by matplotlib as SVG.

`python -m benchmarks.write [--smoke]`: results/*.json → BENCHMARKS.md and docs/images/bench-*.svg
(with --smoke: the smoke run's results → benchmarks-output/BENCHMARKS-smoke.md, no charts).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.common import OUT, ROOT

ORDER = [
    "export-sqlite",
    "export-postgres",
    "import-sqlite",
    "import-postgres",
    "live",
    "publish",
    "launch-sqlite",
    "launch-postgres",
    "sockets",
    "burst",
    "sharded",
    "overhead",
    "export-email",
    "longposts",
    "storage",
]
HEADER = """# Benchmarks

Written by `make bench` from `benchmarks/results/*.json` (`python -m benchmarks.write`); do not edit
by hand. Each table sets the project's figures beside a floor or a baseline measured in the same run,
on the real stack (daphne, RQ workers, Redis, SQLite, PostgreSQL; Celery workers on RabbitMQ where a
table sets RQ and Celery side by side) with load from processes on loopback. The machine's two cores
are shared with other work: compare figures within one run, not absolute times across runs. What
limits each figure, and what was changed in the product because of it:
[docs/performance.md](docs/performance.md). Sources: `benchmarks/`.
"""


def results_dir(smoke: bool) -> Path:
    return OUT / "results" if smoke else ROOT / "benchmarks" / "results"


def cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        size = abs(value)
        return f"{value:,.{0 if size >= 100 else 1 if size >= 10 else 2 if size >= 1 else 3}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def markdown_table(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows])


def load(smoke: bool) -> list[dict]:
    records = [json.loads(path.read_text()) for path in results_dir(smoke).glob("*.json")]
    return sorted(records, key=lambda r: (ORDER.index(r["name"]) if r["name"] in ORDER else len(ORDER), r["name"]))


def document(records: list[dict], charts: dict[str, str], smoke: bool) -> str:
    machine = records[0]["machine"]
    out = [HEADER, "## Machine", ""]
    out += [f"- CPU: {machine['cpu']}; {machine['kernel']}", f"- Python {machine['python']}, Redis {machine['redis']}"]
    out += [f"- Packages: {machine['packages']}", "", "## Runs", ""]
    if smoke:
        out += ["**Smoke run**: tiny sizes, to check that every benchmark runs; the figures mean nothing.", ""]
    runs = [{"benchmark": r["name"], "database": r["machine"]["database"], **r["run"]} for r in records]
    out += [markdown_table(runs), "", "## Targets", ""]
    out += [markdown_table([{"benchmark": r["name"], **t} for r in records for t in r["targets"]]), ""]
    sections: dict[str, list[dict]] = {}
    for record in records:
        sections.setdefault(record["title"], []).append(record)
    for title, group in sections.items():
        name = group[0]["name"].removesuffix("-sqlite").removesuffix("-postgres")
        out += [f"## {title}", "", f"`{group[0]['script']}`: {group[0]['about']}", ""]
        if name in charts:
            out += [f"![{title}]({charts[name]})", ""]
        for caption in dict.fromkeys(caption for record in group for caption in record["tables"]):
            rows = [row for record in group for row in record["tables"].get(caption, [])]
            out += ([caption, ""] if caption else []) + [markdown_table(rows), ""]
    return "\n".join(out)


def draw_charts(records: list[dict], directory: Path, relative_to: Path) -> dict[str, str]:
    """Export and import time against posts (project, floor, naive); the push-latency distribution."""
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "benchmarks", "svg.fonttype": "none", "font.size": 9})
    directory.mkdir(parents=True, exist_ok=True)
    made = {}

    def keep(fig, name: str) -> None:
        fig.tight_layout()
        fig.savefig(directory / f"bench-{name}.svg", metadata={"Date": None})
        plt.close(fig)
        made[name] = os.path.relpath(directory / f"bench-{name}.svg", relative_to)

    for kind, verb in (("export", "exported"), ("import", "imported")):
        group = [r for r in records if r["name"] in (f"{kind}-sqlite", f"{kind}-postgres")]
        if not group:
            continue
        fig, axes = plt.subplots(1, len(group), figsize=(4 * len(group), 3.2), sharey=True, squeeze=False)
        for ax, record in zip(axes[0], group, strict=True):
            rows = record["tables"][""]
            for method in ("project", "floor", "naive"):
                if f"{method} posts/s" in rows[0]:
                    seconds = [row["posts"] / row[f"{method} posts/s"] for row in rows]
                    ax.loglog([row["posts"] for row in rows], seconds, marker="o", label=method)
            ax.set(title=rows[0]["database"], xlabel=f"posts {verb}", ylabel=f"{kind} time (s)")
            ax.grid(alpha=0.3)
        axes[0][0].legend()
        keep(fig, kind)
    live = next((r for r in records if r["name"] == "live"), None)
    if live:
        fig, ax = plt.subplots(figsize=(8, 3.4))
        for label, quantiles in live["series"]["latency quantiles ms"].items():  # "<layer>, <n> sockets"
            color = "tab:blue" if label.startswith("project") else "tab:orange"
            style = "-" if label.endswith("1,000 sockets") else ":"
            ax.plot(quantiles, [i / 2 for i in range(len(quantiles))], style, color=color, label=label)
        stale = [10 * 1000 ** (i / 60) for i in range(61)]  # uniform over 0-10 s
        ax.plot(stale, [ms / 100 for ms in stale], "--", color="grey", label="polling every 10 s (staleness)")
        ax.set(xscale="log", xlabel="push latency (ms)", ylabel="% of delivered messages within")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        keep(fig, "live")
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    smoke = parser.parse_args().smoke
    output = OUT / "BENCHMARKS-smoke.md" if smoke else ROOT / "BENCHMARKS.md"
    records = load(smoke)
    charts = {} if smoke else draw_charts(records, ROOT / "docs" / "images", output.parent)
    output.write_text(document(records, charts, smoke))
    print(f"Written: {os.path.relpath(output, ROOT)}" + "".join(f", {path}" for path in charts.values()))


if __name__ == "__main__":
    main()
