"""The import kind: posts read back from a file in the export's format, all or nothing."""

from __future__ import annotations

from django.conf import settings

from live_tasks import TaskKind, register

from .services import IMPORT_POSTS, import_cleanup, import_run

import_posts = register(
    TaskKind(
        name=IMPORT_POSTS,
        label="Posts import",
        run=import_run,
        timeout=lambda: settings.IMPORT_JOB_TIMEOUT,
        url_name="imports:detail",
        list_url_name="posts:list",
        cleanup=import_cleanup,
        cancelled_detail="Cancelled. No posts were added.",
        retryable=False,  # the uploaded file is deleted when the task ends
    )
)
