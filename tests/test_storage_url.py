"""STORAGE_URL (project/storage_url.py): the result files' bucket, as project/settings.py reads it."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from project.storage_url import object_storage_from_url


def test_a_full_url_gives_every_option():
    storage = object_storage_from_url(
        "s3://AKIA%2Fkey:se%2Bcret%40x@minio.internal:9000/exports?region=eu-west-1&secure=0"
        "&public_url=https://files.example.com"
    )
    assert storage == {
        "BACKEND": "live_tasks.s3.S3Storage",
        "OPTIONS": {
            "access_key": "AKIA/key",
            "secret_key": "se+cret@x",
            "bucket_name": "exports",
            "endpoint_url": "http://minio.internal:9000",
            "region_name": "eu-west-1",
            "use_ssl": False,
            "public_endpoint_url": "https://files.example.com",
        },
    }


def test_without_keys_django_storages_reads_them_from_the_environment():
    options = object_storage_from_url("s3://s3.eu-west-1.amazonaws.com/exports?region=eu-west-1")["OPTIONS"]
    assert "access_key" not in options and "secret_key" not in options
    assert options["endpoint_url"] == "https://s3.eu-west-1.amazonaws.com"
    assert options["use_ssl"] is True and options["public_endpoint_url"] is None


@pytest.mark.parametrize("url", ["s3://host", "s3://host/a/b", "http://host/bucket", "s3:///bucket"])
def test_a_url_without_host_and_one_bucket_is_refused(url):
    with pytest.raises(ImproperlyConfigured, match="STORAGE_URL"):
        object_storage_from_url(url)
