"""STORAGE_URL, read by project/settings.py: the tasks' result files in an S3 bucket. Imports
nothing of Django's but an exception, so that the settings module can use it."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_FALSE = {"0", "false", "no", "off"}


def object_storage_from_url(url: str) -> dict[str, Any]:
    """STORAGES["default"] for STORAGE_URL (live_tasks.s3.S3Storage, django-storages' S3 backend):

    s3://ACCESS_KEY:SECRET_KEY@HOST[:PORT]/BUCKET?region=us-east-1&secure=1&public_url=https://...

    HOST is the address the web processes and workers use; `public_url`, if given, the one browsers
    reach, which presigned download URLs are signed for. Without a key in the URL, django-storages
    reads AWS_S3_ACCESS_KEY_ID (or AWS_ACCESS_KEY_ID) and AWS_S3_SECRET_ACCESS_KEY (or
    AWS_SECRET_ACCESS_KEY) from the environment, else boto3's own chain (an instance role, ~/.aws).
    Percent-encode a "/", "+", ":" or "@" in a key.
    """
    parts = urlsplit(url)
    bucket = parts.path.strip("/")
    if parts.scheme != "s3" or not parts.hostname or not bucket or "/" in bucket:
        raise ImproperlyConfigured(
            "STORAGE_URL must read s3://ACCESS_KEY:SECRET_KEY@HOST[:PORT]/BUCKET"
            "[?region=...&secure=0|1&public_url=...]."
        )
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    secure = query.get("secure", "1").lower() not in _FALSE
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "endpoint_url": f"{'https' if secure else 'http'}://{host}",
        "region_name": query.get("region", "us-east-1"),
        "use_ssl": secure,
        # The rest (presigned URLs for a minute, no overwrite, no ACL, path-style SigV4): the
        # defaults of live_tasks.s3.S3Storage.
        "public_endpoint_url": query.get("public_url") or None,
    }
    if parts.username:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password or "")
    return {"BACKEND": "live_tasks.s3.S3Storage", "OPTIONS": options}
