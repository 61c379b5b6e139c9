"""Result files in an S3 bucket: django-storages' S3Storage, with what the library's downloads need.

Only imported when a site names it in STORAGES (`"BACKEND": "live_tasks.s3.S3Storage"`), so a site
on the local disk needs neither django-storages nor boto3 (`pip install 'django-live-tasks[s3]'`).
Any other S3Storage works too; this one adds:

- `public_endpoint_url`: the bucket's address as browsers reach it, when it is not the one the web
  processes and workers use (`endpoint_url`, e.g. a host name inside a private network). Presigned
  download URLs are signed for that host. django-storages' own `custom_domain` cannot do this: its
  URLs are not signed (unless through CloudFront).
- timeouts: a bucket that does not answer fails a request within seconds, not botocore's 60 s per
  attempt, so a download answers and an export's storing step is retried (`with_retries`) instead of
  hanging. A site that passes its own `client_config` keeps it as given.
- an upload of bounded memory: `transfer_config` (unless the site gives its own) sends 4 parts of
  8 MiB at a time.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from storages.backends.s3 import S3Storage as _S3Storage
from storages.utils import clean_name, setting

CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
# A result is uploaded in parts of 8 MiB, 4 at a time. s3transfer reads each part of an open file
# into memory before sending it; it holds at most (in-memory chunks + submission threads) parts:
# (4 + 1) x 8 MiB here, whatever the file's size (boto3's defaults: (10 + 5) x 8 MiB). Measured on
# SeaweedFS: a peak of 61 MB of Python allocations for a 100 MB and a 400 MB file alike (110 MB
# with boto3's defaults).
UPLOAD_PART_BYTES = 8 * 1024 * 1024
UPLOAD_CONCURRENCY = 4


def upload_transfer_config() -> TransferConfig:
    config = TransferConfig(
        multipart_threshold=UPLOAD_PART_BYTES, multipart_chunksize=UPLOAD_PART_BYTES, max_concurrency=UPLOAD_CONCURRENCY
    )
    # s3transfer's own knobs, which boto3's TransferConfig does not take as arguments.
    config.max_in_memory_upload_chunks = UPLOAD_CONCURRENCY
    config.max_submission_concurrency = 1
    return config


# botocore's "standard" mode: a refused or reset connection, a timeout or a 5xx is tried 3 times in all.
MAX_ATTEMPTS = 3


class S3Storage(_S3Storage):  # type: ignore[misc]  # django-storages ships no types
    client_config: Any

    def __init__(self, **settings: Any) -> None:
        own_config = settings.get("client_config") is not None or setting("AWS_S3_CLIENT_CONFIG") is not None
        if settings.get("transfer_config") is None and setting("AWS_S3_TRANSFER_CONFIG") is None:
            settings["transfer_config"] = upload_transfer_config()
        super().__init__(**settings)
        if not own_config:
            self.client_config = self.client_config.merge(
                Config(
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    read_timeout=READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                )
            )

    def get_default_settings(self) -> dict[str, Any]:
        # Defaults for a private bucket of results (a site's AWS_* settings or OPTIONS still win):
        # presigned URLs that last a minute, a second file of one name gets a new name as on the
        # local disk, no ACL (only the key and its presigned URLs read), path-style SigV4 requests
        # that S3-compatible servers (MinIO, SeaweedFS) answer too.
        return {
            **super().get_default_settings(),
            "public_endpoint_url": None,
            "querystring_auth": setting("AWS_QUERYSTRING_AUTH", True),
            "querystring_expire": setting("AWS_QUERYSTRING_EXPIRE", 60),
            "file_overwrite": setting("AWS_S3_FILE_OVERWRITE", False),
            "default_acl": setting("AWS_DEFAULT_ACL", None),
            "addressing_style": setting("AWS_S3_ADDRESSING_STYLE", "path"),
            "signature_version": setting("AWS_S3_SIGNATURE_VERSION", "s3v4"),
        }

    @cached_property
    def _public_client(self) -> Any:
        # Signing makes no request: one client serves every thread.
        return self._create_session().client(
            "s3",
            region_name=self.region_name,
            use_ssl=self.use_ssl,
            endpoint_url=self.public_endpoint_url,
            config=self.client_config,
            verify=self.verify,
        )

    def url(
        self, name: str, parameters: dict[str, Any] | None = None, expire: int | None = None, http_method: Any = None
    ) -> str:
        if not self.public_endpoint_url or self.custom_domain:
            return str(super().url(name, parameters=parameters, expire=expire, http_method=http_method))
        params = {**(parameters or {}), "Bucket": self.bucket_name, "Key": self._normalize_name(clean_name(name))}
        return str(
            self._public_client.generate_presigned_url(
                "get_object",
                Params=params,
                ExpiresIn=self.querystring_expire if expire is None else expire,
                HttpMethod=http_method,
            )
        )
