"""Is a live socket's session still good? The same test Django applies to each HTTP request.

A socket is authenticated once, at its handshake, but lives for hours. Its consumer asks this
again when told to (a logout, a password change...) and every LIVE_TASKS["SESSION_RECHECK_SECONDS"].
Unlike django.contrib.auth.get_user it only reads: it never flushes or re-keys a session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.utils.crypto import constant_time_compare


@dataclass(frozen=True)
class SessionCheck:
    valid: bool
    # When the session row expires (database-backed sessions), to close the socket right then.
    expires_at: datetime | None = None


INVALID = SessionCheck(valid=False)


def staff_feed_allowed(user: Any, permission: str | None) -> bool:
    """May `user` have a staff feed: staff, with `permission` if the feed names one."""
    return bool(user.is_staff) and (permission is None or user.has_perm(permission))


def session_check(
    *, session_key: str, user_id: int, staff_feed: bool, staff_permission: str | None = None
) -> SessionCheck:
    """Valid while the session exists and is unexpired, belongs to `user_id`, its password hash
    still matches, the user is active (the backend's get_user refuses inactive users), and, for
    the staff feed, the user is still staff with the feed's permission."""
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    data = store.load()  # {} when the session is gone or expired
    if not data or str(data.get(SESSION_KEY)) != str(user_id):
        return INVALID
    backend_path = data.get(BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return INVALID
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not getattr(user, "is_active", False):
        return INVALID
    session_hash = data.get(HASH_SESSION_KEY) or ""
    if not session_hash or not (
        constant_time_compare(session_hash, user.get_session_auth_hash())
        or any(constant_time_compare(session_hash, h) for h in user.get_session_auth_fallback_hash())
    ):
        return INVALID
    if staff_feed and not staff_feed_allowed(user, staff_permission):
        return INVALID
    return SessionCheck(valid=True, expires_at=_expiry(store, session_key))


def _expiry(store: object, session_key: str) -> datetime | None:
    get_model_class = getattr(store, "get_model_class", None)  # database-backed engines only
    if get_model_class is None:
        return None
    expires_at: datetime | None = (
        get_model_class().objects.filter(session_key=session_key).values_list("expire_date", flat=True).first()
    )
    return expires_at
