"""The documented Task JSON (docs/protocol.md), written out here rather than imported from the
code under test, so that a change to the shape has to change this contract on purpose."""

from __future__ import annotations

TASK_KEYS = frozenset(
    {
        "id",
        "kind",
        "label",
        "status_display",
        "url",
        "cancel_url",
        "status",
        "progress",
        "seq",
        "detail",
        "error",
        "download_url",
        "file_size",
        "delete_url",
        "user",
        "created_at",
        "started_at",
        "finished_at",
        "expired_at",
    }
)
