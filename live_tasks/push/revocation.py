"""A socket's authority ends with its session: the auth events that end it, as signal handlers.

Connected in NotificationsConfig.ready(). Driven by model signals, so the admin, the site's own
views and any `user.save()` all revoke the same way:

- a logout closes the sockets of that session at once (the session is being flushed);
- a password change, a deactivation, a deleted account or a lost `is_staff` make every socket of
  the user re-check its session (live_tasks/push/sessions.py): those no longer valid close with
  4401, the others (another still-valid session, a re-keyed one on its retry) carry on.

Changes made behind Django's back (SQL, an expired session) are caught by each socket's periodic
re-check instead (LIVE_TASKS["SESSION_RECHECK_SECONDS"]).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction

from .publish import publish_session_ended, publish_user_sockets_recheck

# The user fields whose change can end a socket's authority.
WATCHED_FIELDS = ("password", "is_active", "is_staff")
_BEFORE = "_notifications_before_save"


def on_user_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        publish_session_ended(session_key=session_key)


def on_user_pre_save(sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any) -> None:
    if raw or instance.pk is None:
        return
    if update_fields is not None and not set(update_fields) & set(WATCHED_FIELDS):
        return  # e.g. last_login at each login: no extra query
    before = sender._default_manager.filter(pk=instance.pk).values(*WATCHED_FIELDS).first()
    setattr(instance, _BEFORE, before)


def on_user_post_save(sender: Any, instance: Any, created: bool = False, raw: bool = False, **kwargs: Any) -> None:
    before = instance.__dict__.pop(_BEFORE, None)
    if raw or created or before is None:
        return
    if (
        before["password"] != instance.password
        or (before["is_active"] and not instance.is_active)
        or (before["is_staff"] and not instance.is_staff)
    ):
        _recheck_after_commit(instance.pk)


def on_user_post_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    _recheck_after_commit(instance.pk)


def _recheck_after_commit(user_id: int) -> None:
    # After the commit, so that the sockets' re-check reads the new state of the row.
    transaction.on_commit(partial(publish_user_sockets_recheck, user_id=user_id))
