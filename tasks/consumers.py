"""The live task feed at /ws/notifications/ (protocol: docs/protocol.md). Kept dumb on purpose:
join the user's (or staff's) group, send a snapshot, forward task changes. Authentication, the
session's authority, the socket cap and rate-limited replies are the push layer's
(notifications.consumers.SessionFeedConsumer)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from notifications.consumers import SessionFeedConsumer
from notifications.groups import STAFF_GROUP, user_group_name

from .permissions import VIEW_EVERY_TASK
from .selectors import task_snapshot_for


class TaskNotificationsConsumer(SessionFeedConsumer):
    staff_permission = VIEW_EVERY_TASK

    def feed_groups(self) -> tuple[str, ...]:
        return (STAFF_GROUP,) if self.staff_feed else (user_group_name(self.user_id),)

    async def send_snapshot(self) -> None:
        user = self.scope["user"]
        assert user is not None  # AuthMiddlewareStack puts a user in every scope
        tasks = await database_sync_to_async(task_snapshot_for)(user=user, all_users=self.staff_feed)
        await self.send_json({"type": "snapshot", "tasks": tasks})

    async def task_update(self, event: dict[str, Any]) -> None:
        """A task changed (sent by notifications.publish as type "task.update")."""
        await self.send_json({"type": "task", "task": event["task"]})

    async def task_removed(self, event: dict[str, Any]) -> None:
        """A task was deleted (notifications.publish.publish_task_removed, type "task.removed")."""
        await self.send_json({"type": "task_removed", "id": event["id"]})
