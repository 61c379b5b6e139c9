"""Channel-layer group names: the one place that decides who hears about what.

Task feeds listen to a user's group (or the staff group); every live socket also listens to the
control groups of its session and of its user, which is how a socket is told that its authority
ended (live_tasks/push/revocation.py).
"""

from __future__ import annotations

import hashlib

# Every staff socket that asked for all tasks (the admin's live list) listens here.
STAFF_GROUP = "staff.tasks"


def user_group_name(user_id: int) -> str:
    return f"user.{user_id}.tasks"


def user_sockets_group_name(user_id: int) -> str:
    """Every live socket of the user, whatever its feed: told to re-check itself."""
    return f"user.{user_id}.sockets"


def session_group_name(session_key: str) -> str:
    """Every live socket opened on one session. The key is hashed: group names travel through
    Redis as pub/sub channel names, and a session key is a credential."""
    return f"session.{hashlib.sha256(session_key.encode()).hexdigest()[:40]}"
