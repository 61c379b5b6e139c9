"""Who may see and act on other users' tasks: Django's permissions on Task, granted to staff.

A user always sees and controls their own tasks. Every user's tasks (the admin's list, the staff
live feed, /api/tasks/?scope=all) need `view_task`; the admin's actions need their own permission
each, so watching never implies acting. Superusers have all three.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, PermissionsMixin

VIEW_EVERY_TASK = "live_tasks.view_task"
CANCEL_ANY_TASK = "live_tasks.cancel_task"
RETRY_ANY_TASK = "live_tasks.retry_task"


def may(user: AbstractBaseUser | AnonymousUser, permission: str) -> bool:
    """Staff with `permission` (has_perm is False for inactive users)."""
    # Any user model Django's admin accepts has has_perm (PermissionsMixin's, or its own).
    return bool(getattr(user, "is_staff", False)) and cast("PermissionsMixin", user).has_perm(permission)
