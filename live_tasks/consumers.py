"""The live task feed at LIVE_TASKS["WEBSOCKET_PATH"] (protocol: docs/protocol.md). Kept dumb on purpose:
join the user's (or staff's) group, send a snapshot, forward task changes. Authentication, the
session's authority, the socket cap and rate-limited replies are the push layer's
(live_tasks.push.consumers.SessionFeedConsumer)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from live_tasks.push.consumers import SessionFeedConsumer
from live_tasks.push.groups import STAFF_GROUP, user_group_name

from .permissions import VIEW_EVERY_TASK
from .selectors import task_snapshot_for


class TaskFeedConsumer(SessionFeedConsumer):
    staff_permission = VIEW_EVERY_TASK

    def feed_groups(self) -> tuple[str, ...]:
        return (STAFF_GROUP,) if self.staff_feed else (user_group_name(self.user_id),)

    async def send_snapshot(self) -> None:
        user = self.scope["user"]
        assert user is not None  # AuthMiddlewareStack puts a user in every scope
        tasks = await database_sync_to_async(task_snapshot_for)(user=user, all_users=self.staff_feed)
        await self.send_json({"type": "snapshot", "tasks": tasks})

    async def task_update(self, event: dict[str, Any]) -> None:
        """A task changed (sent by live_tasks.push.publish as type "task.update")."""
        await self.send_json({"type": "task", "task": event["task"]})

    async def task_deleted(self, event: dict[str, Any]) -> None:
        """A task was deleted (live_tasks.push.publish.publish_task_deleted, type "task.deleted")."""
        await self.send_json({"type": "task_deleted", "id": event["id"]})
