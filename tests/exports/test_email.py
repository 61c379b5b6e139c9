"""The export email: the file gzip-compressed, and the whole email, once encoded, under
EXPORT_EMAIL_MAX_BYTES; otherwise a link. It says how long the file is kept, in UTC."""

from __future__ import annotations

import gzip
import io
import os
import re

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from exports import emails
from exports.emails import EMAIL_OVERHEAD_BYTES, attachment_budget, base64_size, export_email_send
from tests.factories import TaskFactory

LIMIT = 200_000  # small, so that the tests are quick; the logic is the same at 10 MiB


def stored(content: bytes) -> str:
    return default_storage.save("tasks/test-email/posts.json", ContentFile(content))


@pytest.mark.parametrize("limit", [64 * 1024, 200_000, 10 * 1024 * 1024, 25 * 1000 * 1000])
def test_the_budget_is_the_largest_attachment_whose_email_fits(limit):
    budget = attachment_budget(limit)
    assert base64_size(budget) + EMAIL_OVERHEAD_BYTES <= limit
    assert base64_size(budget + 3) + EMAIL_OVERHEAD_BYTES > limit
    assert base64_size(57) == 78 and base64_size(58) == 78 + 6  # 76 characters a line, then CRLF


def test_a_compressible_export_near_the_limit_is_attached_compressed_and_the_email_fits(user, settings):
    settings.EXPORT_EMAIL_MAX_BYTES = LIMIT
    raw = b'{"posts":[' + b",".join(b'{"body":"Post %d"}' % i for i in range(20_000)) + b"]}"
    assert len(raw) > LIMIT  # the plain file alone would not fit
    task = TaskFactory(user=user)

    assert export_email_send(task=task, stored_name=stored(raw), post_count=20_000, file_name="posts-u-d.json")

    (message,) = mail.outbox
    (attachment,) = message.attachments
    assert attachment.filename == "posts-u-d.json.gz" and attachment.mimetype == "application/gzip"
    assert gzip.decompress(attachment.content) == raw
    assert len(message.message().as_bytes()) <= LIMIT, "the email as sent, after base64"
    assert "20,000 posts" in message.body and "attached, compressed, as posts-u-d.json.gz" in message.body


def test_an_export_that_does_not_fit_once_compressed_is_sent_as_a_link(user, settings):
    settings.EXPORT_EMAIL_MAX_BYTES = LIMIT
    # Incompressible and under the limit uncompressed, but over it once base64-encoded (4/3).
    raw = os.urandom(160_000)
    assert len(raw) < LIMIT < base64_size(len(raw))
    task = TaskFactory(user=user)

    export_email_send(task=task, stored_name=stored(raw), post_count=3, file_name="posts-u-d.json")

    (message,) = mail.outbox
    assert message.attachments == []
    assert f"/tasks/{task.id}/download/" in message.body and "too large to attach" in message.body
    assert len(message.message().as_bytes()) < 10_000


def test_the_file_is_compressed_from_storage_in_chunks_never_read_whole(user, settings, monkeypatch):
    settings.EXPORT_EMAIL_MAX_BYTES = 10 * 1024 * 1024
    raw = b"[" + b'"abcdefgh",' * 400_000 + b"0]"  # 4.4 MB
    name = stored(raw)
    reads: list[int] = []
    real_open = default_storage.open

    class Recording(io.BufferedReader):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    monkeypatch.setattr(default_storage, "open", lambda n, mode="rb": Recording(real_open(n, mode)))
    export_email_send(task=TaskFactory(user=user), stored_name=name, post_count=1, file_name="p.json")

    assert reads and all(0 < size <= emails.CHUNK_SIZE for size in reads), reads[:5]
    (message,) = mail.outbox
    assert gzip.decompress(message.attachments[0].content) == raw


def test_the_email_gives_times_in_utc_and_says_how_long_the_file_is_kept(user, settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RESULT_RETENTION_DAYS": 7}
    export_email_send(task=TaskFactory(user=user), stored_name=stored(b"{}"), post_count=1, file_name="p.json")
    body = str(mail.outbox[0].body)
    utc = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"
    assert re.search(rf"Your export of 1 post is ready \({utc}; times in this email are UTC\)", body), body
    assert re.search(rf"The file is kept for 7 days, until {utc}, then deleted", body), body


def test_large_counts_have_thousands_separators_in_the_email(user):
    body = render_to_string(
        "exports/email/export_ready.txt",
        {"user": user, "post_count": 1_500_000, "exported_at": timezone.now(), "kept_until": timezone.now()},
    )
    assert "Your export of 1,500,000 posts is ready" in body
