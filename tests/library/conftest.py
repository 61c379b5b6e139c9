from __future__ import annotations

from .fixtures import clean_test_redis, client_for, fresh_limits, other_user, queue, user, user_client
