"""Turns the drivers' results into the tables printed during the run and into BENCHMARKS.md."""

from __future__ import annotations

import datetime

KIB = 1024
MIB = 1024 * 1024

# The targets of issue #6.
EXPORT_MIN_RATE = {"sqlite": 150_000, "postgresql": 80_000}
EXPORT_MAX_FLOOR_RATIO = 1.3
EXPORT_MAX_RSS_GROWTH = 30 * MIB
LIVE_MAX_P50_MS = 5.0
LIVE_MAX_P99_MS = 25.0
PUBLISH_MAX_MS = 0.5
LAUNCH_MAX_P99_MS = 25.0
LAUNCH_MIN_NOOP_SHARE = 0.5
SOCKET_MAX_BYTES = 60 * KIB
POLL_INTERVAL_S = 10.0


def _n(value, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def _mib(value) -> str:
    return "—" if value is None else f"{value / MIB:,.1f} MiB"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _db_name(vendor: str) -> str:
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(vendor, vendor)


def machine_section(info: dict, command: str, started_at: datetime.datetime) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    return "\n".join(
        [
            "## Machine and versions",
            "",
            f"- Date: {started_at:%Y-%m-%d %H:%M} UTC",
            f"- Command: `{command}`" + (f" at commit {info['commit']}" if info.get("commit") else ""),
            f"- CPU: {info['cores']} cores, {info['cpu_model']}; memory {info['memory_gib']:.1f} GiB;"
            f" Linux {info['kernel']}",
            f"- Python {info['python']}, Django {info['django']}, Redis {info['redis']},"
            f" PostgreSQL {info['postgresql'] or 'not reachable'}, SQLite {info['sqlite']}",
            f"- Packages: {packages}",
            "",
        ]
    )


# --- Sections --------------------------------------------------------------------------------------


def section(number: int, results: dict) -> str:
    return {1: export_section, 2: live_section, 3: publish_section, 4: launch_section, 5: socket_section}[number](
        results
    )


def export_section(results: dict) -> str:
    rows = []
    notes = []
    for data in results["export"].values():
        vendor = data["vendor"]
        reference = next(r for r in data["rows"] if r["reference"])
        for row in data["rows"]:
            size = row["size"]
            project, floor, naive = row["project"], row["floor"], row["naive"]
            rows.append(
                [
                    _db_name(vendor),
                    _n(size) + (" (RSS reference)" if row["reference"] else ""),
                    f"**{_n(size / project['seconds'])}**",
                    _n(size / floor["seconds"]),
                    _n(size / naive["seconds"]),
                    f"{project['seconds'] / floor['seconds']:.2f}×",
                    f"**{_mib(project['peak_rss'])}**",
                    _mib(floor["peak_rss"]),
                    _mib(naive["peak_rss"]),
                ]
            )
        largest = data["rows"][-1]
        notes.append(
            f"- {_db_name(vendor)}: the work horse's peak RSS grows by"
            f" {_mib(largest['project']['peak_rss'] - reference['project']['peak_rss'])} from"
            f" {_n(reference['size'])} to {_n(largest['size'])} posts; files of"
            f" {_mib(largest['project']['bytes'])} at {_n(largest['size'])} posts."
            + (f" Seeding took {_seeding(data['seeding_seconds'])}." if data["seeding_seconds"] else "")
        )
    table = _table(
        [
            "database",
            "posts",
            "project posts/s",
            "floor posts/s",
            "naive posts/s",
            "project ÷ floor time",
            "project peak RSS",
            "floor peak RSS",
            "naive peak RSS",
        ],
        rows,
    )
    return "\n".join(
        [
            "## 1. Export throughput and memory",
            "",
            "Project: `export_start()` then a fresh `manage.py rqworker default --burst` runs the real job in RQ's"
            " work horse (progress published live, file moved into MEDIA_ROOT, email sent to an SMTP server on"
            " loopback); posts/s = posts ÷ (task.finished_at − task.started_at). Floor: the same rows read with"
            " `values_list().iterator()` and written as the same JSON objects by orjson, nothing else. Naive:"
            " `list(Post.objects…)` of model instances, then `json.dumps`. Each in a fresh process; peak RSS is"
            " the largest resident set of that process tree (for the project: the work horse).",
            "",
            table,
            "",
            *notes,
            "",
        ]
    )


def _seeding(seeding: dict) -> str:
    return ", ".join(f"{_n(int(size))} posts in {seconds:.1f} s" for size, seconds in seeding.items())


def live_section(results: dict) -> str:
    runs = results["live"]["runs"]
    rows = []
    for run in runs:
        layer = "**project (RedisPubSubChannelLayer)**" if run["layer"] == "project" else "default RedisChannelLayer"
        rows.append(
            [
                layer,
                _n(run["sockets"]),
                _n(run["p50_ms"], 1),
                _n(run["p99_ms"], 1),
                _n(run["max_ms"], 1),
                f"{_n(run['lost'])} of {_n(run['expected'])}",
                f"{run['final_live']} / {run['final_recovered']} / {run['final_missed']}",
                _n(run["connect_errors"]),
                f"{run['daphne_cpu_seconds']:.1f} / {run['publisher_cpu_seconds']:.1f} / {run['load_cpu_seconds']:.1f}",
            ]
        )
    polling_p99 = POLL_INTERVAL_S * 0.99 * 1000
    rows.append(
        [
            f"polling /api/tasks/ every {POLL_INTERVAL_S:.0f} s (computed)",
            "any",
            _n(POLL_INTERVAL_S / 2 * 1000, 0),
            _n(polling_p99, 0),
            _n(POLL_INTERVAL_S * 1000, 0),
            "none (reads state)",
            "— / — / 0",
            "—",
            "—",
        ]
    )
    seconds = runs[0]["seconds"] if runs else 0
    return "\n".join(
        [
            "## 2. Live progress latency and loss",
            "",
            f"One daphne process; each socket is its own user (real session cookie) with one running task, held by"
            f" a separate load process (`websockets`) on loopback. A publisher process calls"
            f" `notifications.publish.publish_task_update` once per second per task for {seconds} s (updates spread"
            f" evenly over each second), then finishes every task through `task_mark_succeeded`. Latency = receipt"
            f" − the publisher's clock just before the publish call (one monotonic clock on one machine). A final"
            f" state not received live is looked for in the snapshot of a fresh socket; messages for sockets that"
            f" failed to connect (50 connect at a time) are not counted as lost. CPU: seconds used during the"
            f" publishing by daphne, the publisher and the load generator (2 cores in all). Baselines: the same load on"
            f" channels_redis' default `RedisChannelLayer`, and polling every {POLL_INTERVAL_S:.0f} s (staleness"
            f" uniform over the interval: {POLL_INTERVAL_S / 2:.0f} s on average).",
            "",
            _table(
                [
                    "delivery",
                    "sockets",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "progress messages lost",
                    "final states live / recovered by snapshot / missed",
                    "connect errors",
                    "CPU s: daphne / publisher / load",
                ],
                rows,
            ),
            "",
        ]
    )


def publish_section(results: dict) -> str:
    data = results["publish"]
    project, naive, raw, job = data["project"], data["async_to_sync"], data["raw"], data["job"]
    rows = [
        [
            "**project: `publish_task_update`**",
            f"**{project['per_update_ms']:.3f}**",
            f"{project['caller_p50_ms']:.3f} / {project['caller_p99_ms']:.3f}",
            f"{project['cpu_per_update_ms']:.3f}",
            f"{project['connections_opened']} for {_n(project['updates'])} updates",
        ],
        [
            "`async_to_sync(layer.group_send)` per group",
            f"{naive['per_update_ms']:.3f}",
            "(same: blocking)",
            f"{naive['cpu_per_update_ms']:.3f}",
            f"{naive['connections_opened']} for {_n(naive['updates'])} updates",
        ],
        [
            "raw redis-py `PUBLISH` (floor)",
            f"{raw['per_update_ms']:.3f}",
            "(same: blocking)",
            f"{raw['cpu_per_update_ms']:.3f}",
            f"{raw['connections_opened']} for {_n(raw['updates'])} updates",
        ],
    ]
    clients = ", ".join(
        f"id {c['id']} (open {c['age_s']} s, last command `{c['last_cmd']}`)" for c in job["redis_clients_at_end"]
    )
    return "\n".join(
        [
            "## 3. Publishing cost in the worker",
            "",
            "Per task update (sent to the owner's group and the staff group, as the project does), each method in a"
            " fresh process that counts the TCP connections redis-py opens. Per update = wall time of N updates"
            " until Redis has taken them all (the project's last update waits for delivery); caller = time the"
            " calling thread is blocked per update.",
            "",
            _table(
                ["method", "per update ms", "caller p50 / p99 ms", "CPU per update ms", "Redis connections opened"],
                rows,
            ),
            "",
            f"A real export job (`export_posts_job`, {_n(job['posts'])} posts, {job['publishes']} task updates"
            f" published, {job['seconds']:.2f} s, in a fresh process as RQ's work horse runs it) opened"
            f" **{job['connections_opened']}** Redis connection(s); at its end Redis' `CLIENT LIST` shows this"
            f" process holding: {clients or 'none'}.",
            "",
        ]
    )


def launch_section(results: dict) -> str:
    rows = []
    for data in results["launch"].values():
        name = _db_name(data["vendor"])
        for key, label in (("project", "**POST /exports/**"), ("noop", "no-op view (same middleware)")):
            c1, cn = data[f"{key}_c1"], data[f"{key}_cN"]
            statuses = ", ".join(f"{k}: {v}" for k, v in sorted({**_prefix(c1, "c1"), **_prefix(cn, "cN")}.items()))
            rows.append(
                [
                    name,
                    label,
                    _n(c1["p50_ms"], 1),
                    _n(c1["p99_ms"], 1),
                    _n(cn["rps"], 0),
                    _n(cn["p50_ms"], 1),
                    _n(cn["p99_ms"], 1),
                    _n(cn.get("daphne_cpu_ms"), 1),
                    statuses,
                ]
            )
    concurrency = next(iter(results["launch"].values()))["concurrency"]
    return "\n".join(
        [
            "## 4. Launch endpoint",
            "",
            f"POST through one daphne process; every request is a different, freshly created user with their own"
            f" session (JSON client: 202 and the task). Concurrency 1 for latency, {concurrency} keep-alive"
            f" connections for throughput; the no-op view is on the same server, sent the same cookies.",
            "",
            _table(
                [
                    "database",
                    "endpoint",
                    "c1 p50 ms",
                    "c1 p99 ms",
                    f"c{concurrency} req/s",
                    f"c{concurrency} p50 ms",
                    f"c{concurrency} p99 ms",
                    f"daphne CPU ms per request (c{concurrency})",
                    "statuses",
                ],
                rows,
            ),
            "",
        ]
    )


def _prefix(run: dict, tag: str) -> dict:
    return {f"{tag} {status}": count for status, count in run["statuses"].items()}


def socket_section(results: dict) -> str:
    rows = []
    for variant in results["sockets"]["variants"]:
        label = "**project consumer**" if variant["variant"] == "project" else "no-op consumer (accept only)"
        burst = variant["burst"]
        for stage in variant["stages"]:
            rows.append(
                [
                    label,
                    _n(stage["sockets"]),
                    _n(stage["connected"]),
                    _mib(stage["rss"] - variant["base_rss"]),
                    _n(stage["per_socket"] / KIB, 1) if stage["per_socket"] is not None else "—",
                    f"{stage['connect_seconds']:.1f} s",
                ]
            )
        rows.append(
            [
                label,
                f"{_n(burst['sockets'])} at once (fresh daphne)",
                _n(burst["connected"]),
                "",
                "",
                f"{burst['seconds']:.1f} s; **{burst['errors']} errors**"
                + (f" ({', '.join(f'{k}: {v}' for k, v in burst['error_kinds'].items())})" if burst["errors"] else ""),
            ]
        )
    return "\n".join(
        [
            "## 5. Socket capacity",
            "",
            "Idle authenticated sockets (each its own user and session) on one daphne process, connecting 50 at a"
            " time; daphne's RSS growth over its RSS after 10 warm-up sockets, read once the sockets are idle. Then,"
            " on a fresh daphne, the first stage's number of sockets connecting all at once. Baseline: a consumer"
            " that only accepts, behind the same origin check and session auth.",
            "",
            _table(["consumer", "sockets", "connected", "daphne RSS growth", "KiB per socket", "connect time"], rows),
            "",
        ]
    )


# --- Targets -----------------------------------------------------------------------------------------


def targets(results: dict) -> list[list[str]]:
    """[target, measured, status] rows; status is met / MISSED / not run."""
    smoke = results.get("smoke")
    rows = []

    def add(target: str, measured: str, ok: bool | None) -> None:
        status = "not run" if ok is None else ("met" if ok else "**MISSED**")
        if smoke and ok is not None:
            status += " (smoke sizes)"
        rows.append([target, measured, status])

    export = results.get("export")
    if export:
        for data in export.values():
            vendor = data["vendor"]
            largest = data["rows"][-1]
            reference = next(r for r in data["rows"] if r["reference"])
            rate = largest["size"] / largest["project"]["seconds"]
            ratio = largest["project"]["seconds"] / largest["floor"]["seconds"]
            growth = largest["project"]["peak_rss"] - reference["project"]["peak_rss"]
            name, size = _db_name(vendor), _n(largest["size"])
            add(
                f"1. {name} export ≥ {_n(EXPORT_MIN_RATE[vendor])} posts/s at {size}",
                f"{_n(rate)} posts/s",
                rate >= EXPORT_MIN_RATE[vendor],
            )
            add(
                f"1. {name} export within {EXPORT_MAX_FLOOR_RATIO}× of the floor at {size}",
                f"{ratio:.3f}×",
                ratio <= EXPORT_MAX_FLOOR_RATIO,
            )
            ref = _n(reference["size"])
            add(f"1. {name} peak RSS at {size} ≤ 30 MiB above {ref}", _mib(growth), growth <= EXPORT_MAX_RSS_GROWTH)
    live = results.get("live")
    if live:
        project_runs = [r for r in live["runs"] if r["layer"] == "project"]
        top = max(project_runs, key=lambda r: r["sockets"])
        add(
            f"2. live p50 ≤ {LIVE_MAX_P50_MS:g} ms at {_n(top['sockets'])} sockets",
            f"{top['p50_ms']:.1f} ms",
            top["p50_ms"] <= LIVE_MAX_P50_MS,
        )
        add(
            f"2. live p99 ≤ {LIVE_MAX_P99_MS:g} ms at {_n(top['sockets'])} sockets",
            f"{top['p99_ms']:.1f} ms",
            top["p99_ms"] <= LIVE_MAX_P99_MS,
        )
        missed = sum(r["final_missed"] for r in project_runs)
        add("2. zero final states missed (after the reconnect snapshot)", f"{missed} missed", missed == 0)  # fmt: skip
    publish = results.get("publish")
    if publish:
        cost = publish["project"]["per_update_ms"]
        add(f"3. ≤ {PUBLISH_MAX_MS} ms per update", f"{cost:.3f} ms", cost <= PUBLISH_MAX_MS)
        opened = publish["job"]["connections_opened"]
        add("3. one Redis connection for the life of a job", f"{opened} opened", opened == 1)
    launch = results.get("launch")
    if launch:
        for data in launch.values():
            name = _db_name(data["vendor"])
            p99 = data["project_c1"]["p99_ms"]
            share = data["project_cN"]["rps"] / data["noop_cN"]["rps"]
            c = data["concurrency"]
            add(
                f"4. {name} launch p99 ≤ {LAUNCH_MAX_P99_MS:g} ms at concurrency 1",
                f"{p99:.1f} ms",
                p99 <= LAUNCH_MAX_P99_MS,
            )
            add(
                f"4. {name} launch req/s ≥ half the no-op's at concurrency {c}",
                f"{share:.0%} of the no-op's",
                share >= LAUNCH_MIN_NOOP_SHARE,
            )
    sockets = results.get("sockets")
    if sockets:
        project = next(v for v in sockets["variants"] if v["variant"] == "project")
        for stage in project["stages"]:
            per = stage["per_socket"]
            add(
                f"5. < 60 KiB per idle socket at {_n(stage['sockets'])}",
                "—" if per is None else f"{per / KIB:.1f} KiB",
                per is not None and per < SOCKET_MAX_BYTES,
            )
        burst = project["burst"]
        rows.append(
            [
                f"5. errors while {_n(burst['sockets'])} sockets connect at once (figure, no target)",
                f"{burst['errors']} of {_n(burst['sockets'])}",
                "reported",
            ]
        )
    return rows


def summary(results: dict) -> str:
    return "\n".join(["## Targets", "", _table(["target", "measured", "status"], targets(results)), ""])


def document(info: dict, command: str, results: dict, run: dict) -> str:
    from benchmarks.findings import findings

    started = datetime.datetime.fromisoformat(run["started_at"])
    timings = ", ".join(f"{key} {seconds:.0f} s" for key, seconds in run["timings"].items())
    busy_share = run["other_cpu_seconds"] / (run["elapsed"] * run["cores"]) if run["elapsed"] else 0
    shared = (
        f"other processes (other engineers' test runs, and the Redis and PostgreSQL servers working for this"
        f" run) used {run['other_cpu_seconds']:.0f} CPU-seconds, {busy_share:.0%} of the"
        f" machine's {run['cores']} cores; load average {run['load_before'][0]:.2f} before and"
        f" {run['load_after'][0]:.2f} after."
    )
    shared = "The machine is shared with other engineers running tests: during this run " + shared
    if busy_share > 0.05:
        shared += " Tail latencies in particular move with that load."
    parts = [
        "# Benchmarks (issue #6)",
        "",
        "Written by `make bench` (`python -m benchmarks`); do not edit by hand. Each benchmark prints the"
        " project's figure (in bold) beside a baseline measured in the same run, on the real stack: daphne,"
        " an RQ worker, Redis, SQLite and PostgreSQL, with load from separate processes on loopback."
        " Sources: `benchmarks/`.",
        "",
        machine_section(info, command, started),
        f"- Run: {run['elapsed'] / 60:.1f} min ({timings}); Redis database {run['redis_url'].rsplit('/', 1)[1]} only.",
        f"- {shared}",
        "",
        summary(results),
    ]
    for number, key in ((1, "export"), (2, "live"), (3, "publish"), (4, "launch"), (5, "sockets")):
        if key in results:
            parts.append(section(number, results))
    parts.append(findings(results))
    return "\n".join(parts)
