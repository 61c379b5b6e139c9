"""The "what limits it" part of BENCHMARKS.md: each paragraph is printed only when its figure calls for it.

The figures come from this run. The causes come from profiling done while the benchmarks were
written (py-spy on daphne, cProfile and in-process timings of the export job and of the launch,
gc callbacks in daphne); each paragraph says how, so that it can be repeated. Where a
recommendation depends on the product's code, the code is read first, so that nothing already done
is recommended again.
"""

from __future__ import annotations

from benchmarks import report
from benchmarks.common import ROOT

MIB = report.MIB


def _source(path: str) -> str:
    try:
        return (ROOT / path).read_text()
    except OSError:
        return ""


def _gc_frozen() -> bool:
    return "gc.freeze(" in _source("project/asgi.py")


def _pg_pooled() -> bool:
    return '["pool"]' in _source("project/settings.py") or "'pool'" in _source("project/settings.py")


def findings(results: dict) -> str:
    parts = ["## What limits the figures, and recommended product changes", ""]
    for check in (_export, _export_memory, _live, _default_layer, _launch, _sockets):
        text = check(results)
        if text:
            parts += [text, ""]
    if len(parts) == 2:
        parts += ["Every target was met in this run.", ""]
    return "\n".join(parts)


def _export(results: dict) -> str | None:
    export = results.get("export")
    if not export:
        return None
    slow = []
    vendors = set()
    for data in export.values():
        largest = data["rows"][-1]
        ratio = largest["project"]["seconds"] / largest["floor"]["seconds"]
        rate = largest["size"] / largest["project"]["seconds"]
        if ratio > report.EXPORT_MAX_FLOOR_RATIO or rate < report.EXPORT_MIN_RATE[data["vendor"]]:
            slow.append(f"{report._db_name(data['vendor'])} {ratio:.3f}× the floor ({rate:,.0f} posts/s)")
            vendors.add(data["vendor"])
    if not slow:
        return None
    noise = (
        " On PostgreSQL the product reads through one server-side cursor, as the floor does: in-process, at a"
        " quiet moment, the writer took 4.19 s against the floor's 4.16 s and the whole job 4.44 s (1.07×),"
        " and the full runs made while the benchmarks were written gave 1.38×, 0.93× and 1.30× at 1M posts:"
        " on this shared two-core machine the ratio moves by some ±20% from run to run, so a reading near"
        " 1.3× is within noise of the target."
        if "postgresql" in vendors
        else ""
    )
    return (
        f"**Export speed** ({'; '.join(slow)}). Both the product and the floor spend most of their time in"
        " Django turning each row's `created_at` back into an aware datetime (on SQLite a string parsed by"
        " `convert_datetimefield_value` and `make_aware`: about half of all the time under cProfile) and in"
        " orjson turning it into a string again. What the product adds to the floor: the `Count`/`Max`"
        " aggregate over the author's posts before the first row (0.07–0.18 s at 1M); on SQLite, one ORM"
        " query per chunk of 2,000 rows (keyset pagination: 500 queries at 1M, each compiled by the ORM and"
        " planned by SQLite) instead of one cursor, which made the writer alone 7–15% slower than the floor;"
        " some 25 task transitions (row update, re-read, publish), 0.05–0.17 s in all; and the fixed cost of"
        " the file move and the email. (In-process timings of each part at 1M posts, taken on this shared"
        " machine while the benchmarks were written, hence ranges.) Recommended: select `created_at` already"
        " formatted by the database (`strftime`/`to_char` in an annotation, or a cursor without Django's"
        " converters) so that rows never become datetimes, which speeds up product and floor alike; and build"
        " the keyset chunk query once (`raw()` or one SQL string) instead of through the ORM 500 times." + noise
    )


def _export_memory(results: dict) -> str | None:
    export = results.get("export")
    if not export:
        return None
    notes = []
    for data in export.values():
        reference = next(r for r in data["rows"] if r["reference"])
        for row in data["rows"]:
            growth = row["project"]["peak_rss"] - reference["project"]["peak_rss"]
            if growth > report.EXPORT_MAX_RSS_GROWTH:
                notes.append(
                    f"{report._db_name(data['vendor'])} at {row['size']:,} posts: +{growth / MIB:.0f} MiB"
                    f" for a {row['project']['bytes'] / MIB:.1f} MiB file"
                )
    if not notes:
        return None
    return (
        f"**Export memory when the file is emailed as an attachment** ({'; '.join(notes)}). The writer's"
        " memory is flat at any size (the 1M-post rows above), but files up to"
        " EXPORT_EMAIL_ATTACHMENT_MAX_BYTES (10 MiB) are attached to the email, and an attachment lives in"
        " memory: the file read whole, then again base64-encoded in Django's MIME message, then the message"
        " as bytes for SMTP. Larger files are sent as a link, which is why 100,000 posts (a 9 MiB file) peak"
        " higher than 1,000,000. Not a target of issue #6, but a worker with several such jobs at once needs"
        " the memory. Recommended: a lower attachment limit (2–5 MiB), or a gzip-compressed attachment (the"
        " JSON compresses about tenfold)."
    )


def _live(results: dict) -> str | None:
    live = results.get("live")
    if not live:
        return None
    runs = [r for r in live["runs"] if r["layer"] == "project"]
    top = max(runs, key=lambda r: r["sockets"])
    if top["p50_ms"] <= report.LIVE_MAX_P50_MS and top["p99_ms"] <= report.LIVE_MAX_P99_MS:
        return None
    cpu = top["daphne_cpu_seconds"] + top["publisher_cpu_seconds"] + top["load_cpu_seconds"]
    busy = cpu / (top["seconds"] * 2)
    daphne_ms = 1000 * top["daphne_cpu_seconds"] / max(1, top["received"])
    publisher_ms = 1000 * top["publisher_cpu_seconds"] / max(1, top["published"])
    text = (
        f"**Live latency at {top['sockets']:,} sockets** (p50 {top['p50_ms']:.1f} ms, p99"
        f" {top['p99_ms']:.0f} ms, max {top['max_ms']:.0f} ms). The path itself is short: on a quiet machine"
        " the median at 1,000 sockets was 1.2–1.5 ms in every run while the benchmarks were written. What"
        f" stretches the tail: (1) CPU. During the {top['seconds']} s of publishing, daphne, the publisher"
        f" and the load generator alone used {cpu:.0f} CPU-seconds, {busy:.0%} of the machine's two cores,"
        f" before Redis, PostgreSQL and other engineers' runs; daphne spends about {daphne_ms:.2f} ms of CPU"
        f" per delivered message and the publisher {publisher_ms:.2f} ms per update, so at 1,000 updates/s on"
        " two shared cores any stall queues messages. In production the publishing is spread over many"
        " workers, on other cores. (2) Garbage collection in daphne: with a thousand consumers the process"
        " tracks some 250,000 objects, and a full collection stopped its event loop for 200–400 ms (measured"
        " with `gc.callbacks` in a daphne started through a wrapper); the latency series showed spikes every"
        " two seconds."
    )
    if _gc_frozen():
        text += (
            " project/asgi.py now freezes start-up objects and raises the first collection threshold, which"
            " took p99 from 34–42 ms to 11–16 ms in runs at 1,000 sockets while the benchmarks were written; the"
            " rest of this run's tail is (1). Recommended for production: daphne on cores of its own, and one"
            " daphne process per core behind the proxy."
        )
    else:
        text += (
            " Recommended: in `project/asgi.py`, once the application is built, `gc.freeze()` (start-up"
            " objects out of the collector's reach) and `gc.set_threshold(50_000, 20, 20)`: in runs at 1,000"
            " sockets this took p99 from 34–42 ms to 11–16 ms."
        )
    return text


def _default_layer(results: dict) -> str | None:
    live = results.get("live")
    if not live:
        return None
    lossy = [r for r in live["runs"] if r["layer"] == "default_layer" and r["lost"]]
    if not lossy:
        return None
    worst = max(lossy, key=lambda r: r["lost"])
    return (
        f"**The baseline layer loses messages** ({worst['lost']:,} of {worst['expected']:,} at"
        f" {worst['sockets']:,} sockets): channels_redis' default `RedisChannelLayer` delivers to a daphne"
        " process through one list per process with a capacity of 100 messages, and `group_send` silently"
        " drops what does not fit while daphne is busy. This confirms the project's choice of the pub/sub layer"
        " (project/settings.py), which has no such cap."
    )


def _launch(results: dict) -> str | None:
    launch = results.get("launch")
    if not launch:
        return None
    notes = []
    for data in launch.values():
        share = data["project_cN"]["rps"] / data["noop_cN"]["rps"]
        p99 = data["project_c1"]["p99_ms"]
        if share < report.LAUNCH_MIN_NOOP_SHARE or p99 > report.LAUNCH_MAX_P99_MS:
            cpu = data["project_cN"].get("daphne_cpu_ms")
            noop_cpu = data["noop_cN"].get("daphne_cpu_ms")
            notes.append(
                f"{report._db_name(data['vendor'])}: c1 p99 {p99:.1f} ms, {share:.0%} of the no-op's req/s"
                + (f", {cpu:.1f} ms of daphne CPU per launch against {noop_cpu:.1f} ms" if cpu and noop_cpu else "")
            )
    if not notes:
        return None
    text = (
        f"**Launch endpoint** ({'; '.join(notes)}). One daphne process is one CPU-bound Python process, so"
        " requests/s at concurrency 20 is about the inverse of daphne's CPU per request: the share of the"
        " no-op's req/s follows the ratio of the two CPU costs. py-spy (non-blocking, with idle frames) on"
        " daphne during launches at concurrency 1 on PostgreSQL, at commit 457bb1f: under half of each"
        " request's time is in the thread that runs the view; the rest is daphne's HTTP handling and"
        " Django's ASGI handler, which start a thread per request and which the no-op pays as well. In the"
        " view thread: about a third loading the session and the user (two queries), a third `export_start`"
        " (the INSERT and its commit, the RQ enqueue, the new task's announcement; e48cf22 has since cut the"
        " enqueue to one Redis round trip and stopped waiting on the announcement), the rest middleware and"
        " the JSON answer."
    )
    if not _pg_pooled():
        text += (
            " On PostgreSQL every request also opens a new database connection (`env.db()` returns"
            " `CONN_MAX_AGE: 0`, and persistent connections are not reused under ASGI): about 40% of daphne's"
            " samples during socket connects. Recommended: Django's psycopg pool for daphne."
        )
    text += (
        " Recommended: a session engine that does not query the database per request (`cached_db` on the"
        " Redis cache, or signed cookies), which removes one of the two look-ups from every launch and every"
        " socket connect; and, for throughput, one daphne process per core behind the proxy (the figure is"
        " per process)."
    )
    return text


def _sockets(results: dict) -> str | None:
    sockets = results.get("sockets")
    if not sockets:
        return None
    project = next(v for v in sockets["variants"] if v["variant"] == "project")
    burst = project["burst"]
    big = [s for s in project["stages"] if s["per_socket"] and s["per_socket"] >= report.SOCKET_MAX_BYTES]
    if not burst["errors"] and not big:
        return None
    first = project["stages"][0]
    per_connect_ms = 1000 * first["connect_seconds"] / max(1, first["connected"])
    text = ""
    if burst["errors"]:
        cpu_ms = 1000 * (first.get("connect_cpu_per_socket") or 0)
        noop = next((v for v in sockets["variants"] if v["variant"] == "noop"), None)
        noop_errors = noop["burst"]["errors"] if noop else 0
        text += (
            f"**Connection bursts fail** ({burst['errors']:,} of {burst['sockets']:,} sockets connecting at once"
            f" got no handshake answer; connecting 50 at a time, {first['connected']:,} of {first['sockets']:,}"
            f" got in). Each connect costs daphne {cpu_ms:.0f} ms of CPU ({per_connect_ms:.0f} ms of wall time"
            " per socket at 50 at a time): the session and user look-ups and the snapshot query, each through"
            " `database_sync_to_async`, and subscribing the socket's channel and group in Redis. A thousand at"
            " once queue up for longer than daphne's `--websocket_connect_timeout` (5 s by default), and daphne"
            " closes every socket that its application has not accepted by then."
            + (
                f" The no-op baseline fails the same way ({noop_errors:,} errors), so the cost is in what every"
                " socket pays before `accept()` (session auth, the channel layer), not in the project's consumer"
                " alone."
                if noop_errors
                else ""
            )
            + " Recommended: `--websocket_connect_timeout 30` in the Procfile (a deploy or a Redis blip"
            " reconnects every open page at once; live.js spreads reconnects with jitter, which helps only"
            " once the server can take them), and a session engine without a query per connect (see above)."
        )
    if big:
        text += (" " if text else "") + (
            "**Memory per socket** is above the target: "
            + ", ".join(f"{s['per_socket'] / 1024:.0f} KiB at {s['sockets']:,}" for s in big)
            + "."
        )
    return text
