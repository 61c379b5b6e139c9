"""Peak memory of sending an export email with a file near the attachment limit, before and after.

Baseline: what the export did before (exports/emails.py at a3a6195): the stored file read whole and
attached as it is, so the worker held it, its base64 encoding and the encoded message at once, for
an email a third larger than the file. Project: exports.emails.export_email_send, which gzips the
file from storage in chunks and attaches it only if the email, once encoded, fits
EXPORT_EMAIL_MAX_BYTES. Each variant runs in a fresh process (peak RSS is a high-water mark), and
sends to a real SMTP server on loopback.

    python benchmarks/email_rss.py        # prints a table, writes benchmarks/results/email_rss.json

Setup: a temporary SQLite database and media folder, one user, one ~9.9 MiB export file in the
export's own format. Teardown: the temporary folder is deleted. Needs no Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024
FILE_BYTES = int(9.9 * MIB)  # just under the 10 MiB that the old code still attached


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(variant: str, work: str, smtp_port: int) -> None:
    """One measurement, in this (fresh) process: set up, send once, print the figures as JSON."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="project.settings",
        SECRET_KEY="bench",
        DEBUG="0",
        DATABASE_URL=f"sqlite:///{work}/db.sqlite3",
        MEDIA_ROOT=f"{work}/media",
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.core.files.storage import default_storage
    from django.core.mail import EmailMessage

    from exports.emails import export_email_send
    from tasks.models import Task

    user = get_user_model().objects.create_user("bench", "bench@example.com", "x")
    task = Task.objects.create(user=user, kind="export_posts")
    stored = default_storage.save(f"tasks/{task.id}/posts.json", open(f"{work}/posts.json", "rb"))  # noqa: SIM115
    before = peak_rss_mib()
    started = time.perf_counter()
    if variant == "baseline":
        message = EmailMessage("Your posts export is ready", "…", to=[user.email])
        with default_storage.open(stored, "rb") as fh:
            message.attach("posts.json", fh.read(), "application/json")
        message.send()
        attached = "posts.json"
    else:
        export_email_send(task=task, stored_name=stored, post_count=0, file_name="posts.json")
        attached = "posts.json.gz"
    elapsed = time.perf_counter() - started
    print(json.dumps({"peak_rss_delta_mib": peak_rss_mib() - before, "seconds": elapsed, "attachment": attached}))


def write_export_file(path: Path) -> int:
    """An export's JSON (exports/writer.py's format), FILE_BYTES long, of posts in made-up words:
    they compress about as much as people's writing does (three to four times), not like a
    repeated demo sentence would."""
    rng = random.Random(6)
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"] + ["th", "ch", "sh", "qu"]
    vocabulary = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
    with open(path, "w") as out:
        out.write('{"user":"bench","exported_at":"2026-11-24T10:26:03+00:00","count":0,"posts":[')
        i = 0
        while out.tell() < FILE_BYTES - 2000:
            body = " ".join(rng.choices(vocabulary, k=rng.randint(5, 120))).capitalize() + "."
            created = f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}.{i:06d}+00:00"
            out.write(("," if i else "") + json.dumps({"id": i + 1, "body": body, "created_at": created}))
            i += 1
        out.write("]}\n")
    return path.stat().st_size


def main() -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        sizes: list[int] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook
            self.sizes.append(len(envelope.content))
            return "250 OK"

    work = tempfile.mkdtemp(prefix="bench-email-rss-")
    sink = Sink()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    assert isinstance(controller.server, asyncio.Server)
    try:
        file_size = write_export_file(Path(work) / "posts.json")
        rows = {}
        for variant in ("baseline", "project"):
            shutil.rmtree(Path(work) / "media", ignore_errors=True)
            Path(work, "db.sqlite3").unlink(missing_ok=True)
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    variant,
                    work,
                    str(controller.server.sockets[0].getsockname()[1]),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=300,
            )
            rows[variant] = json.loads(out.stdout.strip().splitlines()[-1]) | {"email_bytes": sink.sizes[-1]}
    finally:
        controller.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"Export email with a {file_size / MIB:.1f} MiB file (limit 10 MiB)\n")
    print("| variant | attachment | email as sent | peak RSS while sending | time |")
    print("| --- | --- | --- | --- | --- |")
    labels = {
        "baseline": "baseline: read whole, attached raw",
        "project": "**project: gzip streamed, sized after encoding**",
    }
    for variant, row in rows.items():
        print(
            f"| {labels[variant]} | {row['attachment']} | {row['email_bytes'] / MIB:.1f} MiB "
            f"| +{row['peak_rss_delta_mib']:.1f} MiB | {row['seconds']:.2f} s |"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"file_bytes": file_size, "limit_bytes": 10 * MIB, **rows}
    (RESULTS / "email_rss.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
