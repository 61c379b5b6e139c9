"""The export email's memory.

Peak RSS of the process while sending an export email of a file near the attachment limit (a
9.9 MiB export of made-up words, which compress about as people's writing does), to a real SMTP
server on loopback; each variant in a fresh process. Baseline: what the export did before (the
stored file read whole and attached as it is: the worker held it, its base64 and the encoded
message at once, for an email a third larger than the file). Project:
`exports.emails.export_email_send`, which gzips the file from storage in chunks and attaches it
only if the email, once encoded, fits EXPORT_EMAIL_MAX_BYTES.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from typing import Any

from benchmarks.common import MIB, OUT, run_peak_rss, save, start, target

FILE_MIB, SMOKE_FILE_MIB = 9.9, 0.5


def write_export_file(path, size: int) -> None:
    rng = random.Random(6)
    syllables = [a + b for a in "bcdfghjklmnprstvwz" for b in "aeiou"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(5000)]
    with open(path, "w") as out:
        out.write('{"user":"bench","count":0,"posts":[')
        i = 0
        while out.tell() < size - 2000:
            body = " ".join(rng.choices(words, k=rng.randint(5, 120))).capitalize() + "."
            out.write(
                ("," if i else "")
                + json.dumps({"id": i, "body": body, "created_at": f"2026-01-01T00:00:{i % 60:02d}Z"})
            )
            i += 1
        out.write("]}\n")


def send(variant: str) -> None:
    """In a fresh process: send the email once; print the growth of peak RSS (MiB) and seconds."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage
    from django.core.mail import EmailMessage

    from exports.emails import export_email_send
    from live_tasks.models import Task

    user, _ = get_user_model().objects.get_or_create(username="bench-email", defaults={"email": "b@example.com"})
    task = Task.objects.create(user=user, kind="export_posts", status="succeeded")
    with open(OUT / "email-export.json", "rb") as source:
        stored = default_storage.save(f"tasks/{task.id}/posts.json", source)
    before, began = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter()
    if variant == "baseline":
        message = EmailMessage("Your posts export is ready", "…", to=[user.email])
        with default_storage.open(stored, "rb") as handle:
            message.attach("posts.json", handle.read(), "application/json")
        message.send()
    else:
        export_email_send(task=task, stored_name=stored, post_count=0, file_name="posts.json")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before, time.perf_counter() - began)
    default_storage.delete(stored)


def main() -> None:
    args = start(__doc__, database="sqlite")
    import os

    from tests.processes import CapturedSMTP

    write_export_file(OUT / "email-export.json", int((SMOKE_FILE_MIB if args.smoke else FILE_MIB) * MIB))
    rows: list[dict[str, Any]] = []
    with CapturedSMTP() as smtp:
        os.environ["EMAIL_URL"] = smtp.url
        for variant, label in (("baseline", "baseline: read whole, attached raw"), ("project", "project")):
            lines, _ = run_peak_rss([sys.executable, "-m", "benchmarks.export_email", "send", variant])
            growth, seconds = map(float, lines[-1].split())
            message = smtp.messages[-1]
            attached = [str(part.get_filename()) for part in message.walk() if part.get_filename()]
            rows.append(
                {
                    "variant": label,
                    "file MiB": (OUT / "email-export.json").stat().st_size / MIB,
                    "attachment": ", ".join(attached) or "none (a link)",
                    "email as sent MiB": len(message.as_bytes()) / MIB,
                    "peak RSS growth while sending MiB": growth,
                    "seconds": seconds,
                }
            )
    (OUT / "email-export.json").unlink()
    baseline, project = rows
    targets = [
        target("project email as sent, MiB", project["email as sent MiB"], "≤", 10),
        target(
            "project peak RSS growth ÷ baseline's",
            project["peak RSS growth while sending MiB"] / max(baseline["peak RSS growth while sending MiB"], 0.1),
            "<",
            1,
        ),
    ]
    save(args, "export-email", __doc__, {"": rows}, targets)


if __name__ == "__main__" and sys.argv[1:2] == ["send"]:
    send(sys.argv[2])
elif __name__ == "__main__":
    main()
