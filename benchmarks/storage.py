"""Object storage: exports and imports through an S3 bucket, and downloads from it.

The bucket: SeaweedFS (`weed mini`, tests/library/s3server.py), started by the benchmark on loopback
in a temporary folder and named by STORAGE_URL, as a site names its bucket. Export: `export_start()`,
then a fresh `manage.py rqworker default --burst` runs the real job, as in benchmarks/export.py;
seconds = finished_at − started_at, peak RSS of the worker's process tree. Import: `import_start()`
of benchmarks/imports.py's export file (launch s: that call, which takes the input file over), then
the same burst worker, each import on a freshly vacuumed database. Floor: the same export and the
same import with STORAGE_URL unset (the local disk), run right after each. Downloads: the export
file of the largest size, fetched N times in a row from one daphne process of the project with its
owner's session (after one HEAD): from the bucket redirected to a presigned URL (the default) or
streamed by daphne (STORAGE_DOWNLOAD_REDIRECT=0), and from the local disk; floor: the presigned URL
fetched from the bucket directly. Time to first byte and total time, from the request to the web
process to the file's last byte; daphne's CPU per download and its peak RSS over the N (VmHWM,
reset before them) from /proc.
"""

from __future__ import annotations

import http.client
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.common import MIB, OUT, cpu_seconds, percentile, run_peak_rss, save, start, target
from benchmarks.write import markdown_table

SIZES, SMOKE_SIZES = [1_000, 1_000_000], [100, 500]
DOWNLOADS, SMOKE_DOWNLOADS = 10, 3
BUCKET = "bench-results"
BUCKET_LABEL, DISK_LABEL = "bucket", "disk"
DOWNLOADS_CAPTION = "Downloads of the largest export's file, one at a time:"
WORKER = [sys.executable, "manage.py", "rqworker", "default", "--burst"]


@contextmanager
def storage(url: str | None) -> Iterator[None]:
    """Results (and whatever else the site keeps there) in the bucket at `url`, or on the local disk:
    for this process (the launches, the checks) and for the workers and daphne it starts."""
    from django.conf import settings
    from django.test import override_settings

    from project.storage_url import object_storage_from_url

    default = object_storage_from_url(url) if url else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    if url:
        os.environ["STORAGE_URL"] = url
    try:
        with override_settings(STORAGES={**settings.STORAGES, "default": default}):
            yield
    finally:
        os.environ.pop("STORAGE_URL", None)


def export(size: int, keep=None):
    """The real export of author(size)'s posts by a fresh burst worker: seconds, peak RSS MiB, the task.
    The author's other tasks (but `keep`) are deleted first: what an interrupted run left."""
    from benchmarks.export import author
    from exports.services import export_start
    from live_tasks.models import Task

    user = author(size)
    Task.objects.filter(user=user).exclude(pk__in=[keep.pk] if keep else []).delete()
    task = export_start(user=user)  # autocommit: enqueued on return
    _, peak = run_peak_rss(WORKER)
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, (task.status, task.error)
    assert task.finished_at is not None and task.started_at is not None
    return (task.finished_at - task.started_at).total_seconds(), peak, task


def task_delete(task) -> None:
    task.file.delete()
    task.delete()


def import_(size: int, where: str) -> tuple[float, float, float]:
    """The real import of an export file of `size` posts by a fresh burst worker: launch s, seconds, peak RSS MiB."""
    from django.db import connection

    from benchmarks.imports import export_file, fresh_user
    from imports.services import import_start
    from live_tasks.models import Task

    upload = OUT / f"storage-upload-{size}.json"
    shutil.copyfile(export_file(size), upload)
    user = fresh_user(f"bench-storage-import-{where}-{size}")  # and the posts of an earlier run
    with connection.cursor() as cursor:  # every import starts from the same database, without free pages
        cursor.execute("VACUUM")
    began = time.perf_counter()
    task = import_start(user=user, upload=upload, file_name=upload.name)
    launch = time.perf_counter() - began
    _, peak = run_peak_rss(WORKER, timeout=3600)
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, (task.status, task.error)
    assert task.detail == f"Imported {size:,} posts.", task.detail
    assert task.finished_at and task.started_at
    seconds = (task.finished_at - task.started_at).total_seconds()
    user.delete()  # its posts too: the next import of this size starts from the same database
    return launch, seconds, peak


def session_key(user) -> str:
    """A session of `user`, as django.contrib.auth.login() would store it."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    session.create()
    return str(session.session_key)


def download(url: str, cookie: str = "") -> tuple[float, float, int]:
    """GET `url`, following one redirect, reading the body in 1 MiB pieces: first byte s, total s, bytes."""
    buffer, received, first = bytearray(MIB), 0, None
    began = time.perf_counter()
    for hop in range(2):
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
        headers = {"Cookie": cookie} if cookie and hop == 0 else {}  # the session is the web process's
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        response = conn.getresponse()
        if response.status not in (301, 302, 303, 307):
            break
        url = response.getheader("Location") or ""
        response.read()
        conn.close()
    assert response.status == 200, (response.status, response.read()[:500])
    while n := response.readinto(buffer):
        if first is None:
            first = time.perf_counter() - began
        received += n
    total = time.perf_counter() - began
    conn.close()
    assert first is not None
    return first, total, received


def rss_peak_reset(pid: int) -> float:
    """Reset the process's peak RSS (VmHWM) to its RSS now, and return that, in MiB."""
    import psutil

    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return psutil.Process(pid).memory_info().rss / MIB


def rss_peak(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def downloads(label: str, url: str, count: int, size: int, cookie: str = "", pid: int | None = None) -> dict:
    """`count` downloads of `url` in a row. Before them a HEAD (from daphne: what a first request
    imports and connects, without a body), or a download (from the bucket)."""
    if pid:
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=120)
        conn.request("HEAD", urlsplit(url).path, headers={"Cookie": cookie})
        assert conn.getresponse().status in (200, 302)
        conn.close()
        rss = rss_peak_reset(pid)
    else:
        assert download(url, cookie)[2] == size
    cpu = cpu_seconds(pid) if pid else 0.0
    firsts, totals = [], []
    for _ in range(count):
        first, total, received = download(url, cookie)
        assert received == size, (received, size)
        firsts.append(1000 * first)
        totals.append(total)
    return {
        "download": label,
        "downloads": count,
        "file MiB": size / MIB,
        "first byte p50 ms": percentile(firsts, 50),
        "first byte max ms": max(firsts),
        "total p50 s": percentile(totals, 50),
        "total max s": max(totals),
        "MiB/s (p50)": size / MIB / (percentile(totals, 50) or 1),
        "daphne CPU s per download": (cpu_seconds(pid) - cpu) / count if pid else None,
        "daphne peak RSS growth MiB": rss_peak(pid) - rss if pid else None,
    }


def main() -> None:
    for key in ("STORAGE_URL", "STORAGE_DOWNLOAD_REDIRECT"):  # the disk or this benchmark's bucket, nothing else
        os.environ.pop(key, None)
    args = start(__doc__, database="sqlite")
    from django.db import connection

    from benchmarks.imports import export_file
    from tests.library.s3server import start_s3_server
    from tests.processes import CapturedSMTP, daphne

    sizes, count = (SMOKE_SIZES, SMOKE_DOWNLOADS) if args.smoke else (SIZES, DOWNLOADS)
    server = start_s3_server()
    try:
        server.client().create_bucket(Bucket=BUCKET)
        host = urlsplit(server.endpoint_url).netloc
        bucket = f"s3://{server.access_key}:{server.secret_key}@{host}/{BUCKET}?secure=0"
        rows: list[dict[str, Any]] = []
        with CapturedSMTP() as smtp:
            os.environ["EMAIL_URL"] = smtp.url  # the worker sends real email over loopback
            kept = kept_disk = None  # the exports of the largest size, for the downloads
            for size in sizes:
                # The bucket first: a cold cache costs the product, not the floor.
                with storage(bucket):
                    seconds, peak, task = export(size)
                    file_mib = task.file.size / MIB
                    if size == sizes[-1]:
                        kept = task
                    else:
                        task_delete(task)
                with storage(None):
                    disk_s, disk_peak, task = export(size, keep=kept)
                    if size == sizes[-1]:
                        kept_disk = task
                    else:
                        task_delete(task)
                rows.append(
                    {
                        "database": connection.display_name,
                        "task": "export",
                        "posts": size,
                        "file MiB": file_mib,
                        "bucket s": seconds,
                        "disk s (floor)": disk_s,
                        "bucket ÷ disk time": seconds / disk_s,
                        "bucket peak RSS MiB": peak,
                        "disk peak RSS MiB": disk_peak,
                    }
                )
        os.environ["EMAIL_URL"] = "dummymail://"  # that server has stopped; imports send no email
        for size in sizes:
            export_file(size)
            with storage(bucket):
                launch, seconds, peak = import_(size, BUCKET_LABEL)
            with storage(None):
                disk_launch, disk_s, disk_peak = import_(size, DISK_LABEL)
            rows.append(
                {
                    "database": connection.display_name,
                    "task": "import",
                    "posts": size,
                    "file MiB": export_file(size).stat().st_size / MIB,
                    "bucket s": seconds,
                    "disk s (floor)": disk_s,
                    "bucket ÷ disk time": seconds / disk_s,
                    "bucket peak RSS MiB": peak,
                    "disk peak RSS MiB": disk_peak,
                    "bucket launch s": launch,
                    "disk launch s": disk_launch,
                }
            )
        assert kept is not None and kept_disk is not None
        cookie = f"sessionid={session_key(kept.user)}"
        download_rows = []
        for label, where, task, redirect in (
            ("redirect to a presigned URL (default)", bucket, kept, "1"),
            ("streamed by daphne from the bucket (STORAGE_DOWNLOAD_REDIRECT=0)", bucket, kept, "0"),
            ("streamed by daphne from the local disk (no STORAGE_URL)", None, kept_disk, "1"),
        ):
            with storage(where), daphne({**os.environ, "STORAGE_DOWNLOAD_REDIRECT": redirect}) as (port, proc):
                url = f"http://127.0.0.1:{port}/tasks/{task.id}/download/"
                download_rows.append(downloads(label, url, count, task.file.size, cookie, proc.pid))
        with storage(None):
            task_delete(kept_disk)
        with storage(bucket):
            name, size = kept.file.name, kept.file.size
            presigned = server.client().generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=3600
            )
            download_rows.append(downloads("presigned URL, from the bucket directly (floor)", presigned, count, size))
            task_delete(kept)
    finally:
        server.stop()
    floor = download_rows[-1]["total p50 s"]
    for row in download_rows:
        row["total p50 ÷ floor"] = row["total p50 s"] / floor

    at = f"{connection.display_name}, {sizes[-1]:,} posts"
    targets = []
    for task_name in ("export", "import"):
        first, last = (row for row in rows if row["task"] == task_name and row["posts"] in (sizes[0], sizes[-1]))
        targets += [
            target(f"{task_name}: bucket ÷ disk time ({at})", last["bucket ÷ disk time"], "≤", 1.3),
            target(
                f"{task_name}: bucket peak RSS growth from {first['posts']:,} posts, MiB ({at})",
                last["bucket peak RSS MiB"] - first["bucket peak RSS MiB"],
                "≤",
                30,
            ),
        ]
    save(args, "storage", __doc__, {"": rows, DOWNLOADS_CAPTION: download_rows}, targets)
    print(f"\nTargets:\n\n{markdown_table(targets)}", flush=True)


if __name__ == "__main__":
    main()
