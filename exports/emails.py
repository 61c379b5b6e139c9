"""The email that delivers a finished export: the file gzip-compressed and attached, or a link.

The attachment is sized honestly: what counts is the email as sent, after base64 (a third larger),
and it must stay under EXPORT_EMAIL_MAX_BYTES, a limit many mail servers have (10 MiB by default).
The file is compressed from storage in chunks into a temporary file, never read whole; only the
compressed bytes, a fraction of the file, are ever in memory, and only when they fit.
"""

from __future__ import annotations

import gzip
import shutil
import smtplib
import tempfile
from datetime import timedelta
from typing import BinaryIO

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from live_tasks import Task
from live_tasks.conf import live_settings
from live_tasks.files import result_open, work_dir

CHUNK_SIZE = 1024 * 1024
# Headers, the text part and the MIME boundaries of this email: a generous bound (it is ~2 KiB).
EMAIL_OVERHEAD_BYTES = 32 * 1024
# Posts of real words compress about 4 times (gzip -6 on 40 MiB of them; the export benchmark's
# numbered posts over 12 times): a file more than this many times the attachment budget gets a
# link without being compressed first. At 1,000,000 posts (88 MiB) trying cost the export seconds.
MAX_COMPRESSION_RATIO = 10
# zlib's default: level 9 took 1.3 times as long there for an attachment 2% smaller.
COMPRESS_LEVEL = 6


def email_fault_is_transient(exc: BaseException) -> bool:
    """A mail server's 4xx replies and dropped connections are worth another try; its 5xx
    replies and a refused address are not (smtplib's errors are OSErrors, so the library's
    default test would retry them all)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    return isinstance(exc, OSError)


class _TooLarge(Exception):
    pass


class _CappedWriter:
    """A file that refuses to grow past `limit` bytes, so compression stops as soon as it cannot fit."""

    def __init__(self, out: BinaryIO, limit: int) -> None:
        self.out, self.limit, self.size = out, limit, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise _TooLarge
        return self.out.write(data)

    def flush(self) -> None:
        self.out.flush()


def base64_size(size: int) -> int:
    """Bytes that `size` bytes take in an email: base64, in lines of 76 characters ending CRLF."""
    chars = 4 * ((size + 2) // 3)
    return chars + 2 * ((chars + 75) // 76)


def attachment_budget(max_email_bytes: int) -> int:
    """The largest attachment (before encoding) that keeps the whole email under `max_email_bytes`."""
    budget = (max_email_bytes - EMAIL_OVERHEAD_BYTES) * 57 // 78  # 57 bytes per 78-byte line
    while budget > 0 and base64_size(budget) + EMAIL_OVERHEAD_BYTES > max_email_bytes:
        budget -= 1
    return max(budget, 0)


def compress_within(stored_name: str, out: BinaryIO, *, limit: int) -> int | None:
    """Gzip the stored file into `out`, streamed in chunks; its size, or None past `limit` bytes."""
    try:
        # mtime=0: the same export compresses to the same bytes; no file name inside either.
        capped = _CappedWriter(out, limit)
        with (
            result_open(stored_name) as source,  # from a bucket: streamed, not downloaded whole first
            gzip.GzipFile("", "wb", COMPRESS_LEVEL, fileobj=capped, mtime=0) as gz,
        ):
            shutil.copyfileobj(source, gz, CHUNK_SIZE)
    except _TooLarge:
        return None
    return out.tell()


def export_email_send(*, task: Task, stored_name: str, post_count: int, file_name: str) -> bool:
    """Send the export to its owner. Returns False when the user has no address to send to."""
    user = task.owner
    if not user.email:
        return False
    size = default_storage.size(stored_name)
    budget = attachment_budget(settings.EXPORT_EMAIL_MAX_BYTES)
    now = timezone.now()
    context = {
        "user": user,
        "post_count": post_count,
        "file_name": f"{file_name}.gz",
        "size": size,
        "max_email_bytes": settings.EXPORT_EMAIL_MAX_BYTES,
        "exported_at": now,
        "kept_until": now + timedelta(days=live_settings.RESULT_RETENTION_DAYS),
        "retention_days": live_settings.RESULT_RETENTION_DAYS,
        "download_url": settings.SITE_URL + reverse("live_tasks:download", args=[task.id]),
        "task_url": settings.SITE_URL + reverse("exports:detail", args=[task.id]),
    }
    with tempfile.TemporaryFile(dir=work_dir()) as compressed:
        fits = size <= budget * MAX_COMPRESSION_RATIO
        compressed_size = compress_within(stored_name, compressed, limit=budget) if fits else None
        context["attached"] = compressed_size is not None
        message = EmailMessage(
            subject="Your posts export is ready",
            body=render_to_string("exports/email/export_ready.txt", context),
            to=[user.email],
        )
        if compressed_size is not None:
            compressed.seek(0)
            message.attach(f"{file_name}.gz", compressed.read(), "application/gzip")
        message.send()
    return True
