from __future__ import annotations

from .fixtures import (
    bucket,
    clean_test_redis,
    client_for,
    fresh_limits,
    other_user,
    queue,
    s3_server,
    user,
    user_client,
)
