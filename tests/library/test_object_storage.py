"""Result files in an S3 bucket (live_tasks.s3.S3Storage) on a real S3 server, SeaweedFS, which checks
signatures and refuses anonymous reads: the file lands in the bucket, the owner's download is a
redirect to a short-lived presigned URL (or, with DOWNLOAD_REDIRECT off, streamed by the web process,
byte ranges included), every way a file goes leaves nothing behind in the bucket, and a bucket that
is down or refuses gives an honest answer."""

from __future__ import annotations

import json
import time
import tracemalloc
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from asgiref.sync import async_to_sync
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import RequestFactory
from django.utils import timezone

from live_tasks.cleanup import task_cleanup
from live_tasks.files import RESULT_PART_BYTES, input_open, result_writer
from live_tasks.health import healthz
from live_tasks.models import Task
from live_tasks.services import StorageUnavailable, task_delete, task_start, tasks_delete_for_user, tasks_expire

from .helpers import TaskFactory, run_queued_jobs

# The library's tests also run against the installed wheel alone (tests/test_package.py), without
# the [s3] extra: there, this file is skipped.
pytest.importorskip("storages")
pytest.importorskip("boto3")

from .s3server import _free_ports  # noqa: E402  # needs boto3
from .testapp.kinds import STORING_FAILED, TEST_STEPS, file_pattern

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def download_url(task: Task) -> str:
    return f"/tasks/{task.id}/download/"


def run_task(user, queue, capture, **params) -> Task:
    with capture(execute=True):
        params = {"steps": 1, "with_file": True, "store_retried": True, **params}
        task = task_start(user=user, kind=TEST_STEPS, params=params)
    run_queued_jobs()
    task.refresh_from_db()
    return task


@pytest.fixture
def finished_task(bucket, user, queue, django_capture_on_commit_callbacks) -> Task:
    task = run_task(user, queue, django_capture_on_commit_callbacks)
    assert task.status == Task.Status.SUCCEEDED, task.error
    return task


def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None):
    """What a browser gets from the bucket: a plain HTTP request, no key."""
    assert url.startswith("http://127.0.0.1:")  # the test's own server, nothing else
    request = urllib.request.Request(url, method=method, headers=headers or {})  # noqa: S310  # checked above
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, dict(response.headers), response.read()


def read_body(response) -> bytes:
    return b"".join(response.streaming_content)


def unreachable_storage(s3_server, bucket: str) -> dict:
    """The bucket's settings, but at a port where no server listens: the bucket is down."""
    (port,) = _free_ports(1)
    return s3_server.storage_options(bucket, endpoint_url=f"http://127.0.0.1:{port}")


# --- Where the file goes ---------------------------------------------------------------------


def test_the_result_file_lands_in_the_bucket(s3_server, bucket, finished_task):
    assert s3_server.keys(bucket) == [f"tasks/{finished_task.id}/result.txt"]
    stored = s3_server.client().get_object(Bucket=bucket, Key=finished_task.file.name)
    assert stored["Body"].read() == f"the result of {finished_task.id}".encode()
    assert stored["ContentType"] == "text/plain"
    # Its size is the bucket's (the quota counts it).
    assert finished_task.file_size == stored["ContentLength"]


def test_a_large_result_is_streamed_into_the_bucket_in_bounded_memory(s3_server, bucket, user):
    size = 6 * RESULT_PART_BYTES + 12345  # seven parts, the last a short one
    block = file_pattern(64 * 1024)
    task = TaskFactory(user=user, status=Task.Status.RUNNING)
    tracemalloc.start()
    try:
        with result_writer(task.id, name="big.bin") as out:
            for start in range(0, size, len(block)):
                out.write(block[: min(len(block), size - start)])
                if start == 3 * RESULT_PART_BYTES:
                    # Mid-write: parts are in the bucket, but no object under the name yet.
                    assert s3_server.keys(bucket) == [f"tasks/{task.id}/big.bin (incomplete)"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.stored_name == f"tasks/{task.id}/big.bin"
    assert s3_server.keys(bucket) == [out.stored_name]
    stored = s3_server.client().get_object(Bucket=bucket, Key=out.stored_name)["Body"].read()
    assert stored == file_pattern(size)
    # The part being written and the one being sent, each copied once: not the 48 MiB file.
    assert peak < 4.5 * RESULT_PART_BYTES, peak


def test_a_result_whose_writing_fails_leaves_nothing_in_the_bucket(s3_server, bucket, user):
    task = TaskFactory(user=user, status=Task.Status.RUNNING)
    with pytest.raises(ZeroDivisionError), result_writer(task.id, name="big.bin") as out:
        out.write(b"x" * (2 * RESULT_PART_BYTES + 1))  # two parts sent
        raise ZeroDivisionError
    assert s3_server.keys(bucket) == []


def test_the_cleanup_aborts_the_upload_of_a_writer_that_was_killed(s3_server, bucket, user):
    task = TaskFactory(user=user, status=Task.Status.FAILED, error="Its worker was lost.", finished_at=timezone.now())
    client = s3_server.client()
    # What a killed work horse leaves: an upload begun, a part sent, never completed.
    key = f"tasks/{task.id}/posts.json"
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * RESULT_PART_BYTES)
    assert s3_server.keys(bucket) == [f"{key} (incomplete)"]
    assert task_cleanup(task.id)
    assert s3_server.keys(bucket) == []


# --- A task's input in the bucket -------------------------------------------------------------


def test_an_input_goes_to_the_bucket_and_the_job_reads_it_as_a_stream(
    s3_server, bucket, user, queue, tmp_path, django_capture_on_commit_callbacks
):
    upload = tmp_path / "upload.part"
    upload.write_bytes(file_pattern(3 * 1024 * 1024 + 7))
    with django_capture_on_commit_callbacks(execute=True):
        task = task_start(
            user=user, kind=TEST_STEPS, params={"steps": 1, "with_file": True, "echo_input": True}, input_file=upload
        )
    # The web host keeps no copy: the file is in the bucket, under the task's folder.
    assert not upload.exists()
    assert s3_server.keys(bucket) == [f"tasks/{task.id}/input"]
    reader, size = input_open(task.id)
    with reader:
        assert size == 3 * 1024 * 1024 + 7
        assert reader.read(10) == file_pattern(10)

    run_queued_jobs()
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, task.error
    # The job read it whole; once the task ended, the input was deleted.
    assert s3_server.keys(bucket) == [task.file.name]
    stored = s3_server.client().get_object(Bucket=bucket, Key=task.file.name)["Body"].read()
    assert stored == file_pattern(3 * 1024 * 1024 + 7)


def test_a_cancelled_tasks_input_is_deleted_from_the_bucket(
    s3_server, bucket, user, tmp_path, django_capture_on_commit_callbacks
):
    upload = tmp_path / "upload.part"
    upload.write_bytes(b"[]")
    with django_capture_on_commit_callbacks(execute=True):
        task = task_start(user=user, kind=TEST_STEPS, params={"steps": 1}, input_file=upload)
    assert s3_server.keys(bucket) == [f"tasks/{task.id}/input"]
    Task.objects.filter(pk=task.pk).update(status=Task.Status.CANCELLED, finished_at=timezone.now(), needs_cleanup=True)
    assert task_cleanup(task.id)
    assert s3_server.keys(bucket) == []


@pytest.mark.parametrize("fault", ["down", "wrong key"])
def test_a_launch_whose_input_the_bucket_cannot_take_says_so_and_records_nothing(
    s3_server, bucket, settings, user, tmp_path, django_capture_on_commit_callbacks, fault
):
    options = (
        unreachable_storage(s3_server, bucket)
        if fault == "down"
        else s3_server.storage_options(bucket, secret_key="wrong")
    )
    settings.STORAGES = {**settings.STORAGES, "default": options}
    upload = tmp_path / "upload.part"
    upload.write_bytes(b"[]")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(StorageUnavailable) as refused:
        task_start(user=user, kind=TEST_STEPS, params={"steps": 1}, input_file=upload)
    assert refused.value.status == 503
    assert "could not be stored" in refused.value.message
    assert not Task.objects.exists()
    assert upload.exists()  # still the caller's, who deletes it (a view's upload handler)
    assert s3_server.keys(bucket) == []


# --- Downloads: a redirect to a presigned URL -----------------------------------------------


def test_the_owners_download_redirects_to_a_presigned_url_of_the_exact_file(s3_server, user_client, finished_task):
    response = user_client.get(download_url(finished_task))

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    assert url.startswith(f"{s3_server.endpoint_url}/")
    status, headers, body = fetch(url)
    assert status == 200
    assert body == f"the result of {finished_task.id}".encode()
    assert headers["Content-Disposition"] == f'attachment; filename="steps-{finished_task.id}.txt"'
    assert headers["Content-Type"] == "text/plain"
    # The URL carries a signature that expires within a minute; without it the bucket refuses.
    query = parse_qs(urlsplit(url).query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 60
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(url.split("?", 1)[0])
    assert refused.value.code == 403


def test_byte_ranges_work_against_the_bucket(user_client, finished_task):
    url = user_client.get(download_url(finished_task))["Location"]
    status, headers, body = fetch(url, headers={"Range": "bytes=4-9"})
    assert status == 206
    assert body == f"the result of {finished_task.id}".encode()[4:10]


def test_head_redirects_to_a_url_that_answers_head(user_client, finished_task):
    response = user_client.head(download_url(finished_task))
    assert response.status_code == 302
    status, headers, body = fetch(response["Location"], method="HEAD")
    assert status == 200
    assert int(headers["Content-Length"]) == len(f"the result of {finished_task.id}")
    assert body == b""


def test_another_user_gets_404_and_no_url(client_for, other_user, finished_task):
    response = client_for(other_user).get(download_url(finished_task))
    assert response.status_code == 404
    assert "Location" not in response
    assert b"X-Amz" not in response.content


def test_the_presigned_url_expires(s3_server, bucket, settings, user_client, finished_task):
    # The bucket itself enforces the expiry: a URL made to last 1 s is refused after it.
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(bucket, querystring_expire=1)}
    url = user_client.get(download_url(finished_task))["Location"]
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["1"]
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as expired:
        fetch(url)
    assert expired.value.code == 403


def test_a_file_the_bucket_lost_gets_the_missing_page_not_a_redirect(s3_server, bucket, user_client, finished_task):
    s3_server.client().delete_object(Bucket=bucket, Key=finished_task.file.name)
    response = user_client.get(download_url(finished_task))
    assert response.status_code == 404
    assert "is missing" in response.content.decode()


# --- Downloads streamed by the web process (DOWNLOAD_REDIRECT False) -------------------------


@pytest.fixture
def streamed(settings):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "DOWNLOAD_REDIRECT": False}


def test_without_redirects_the_web_process_streams_the_file(streamed, user_client, finished_task):
    expected = f"the result of {finished_task.id}".encode()
    response = user_client.get(download_url(finished_task))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="steps-{finished_task.id}.txt"'
    assert response["Content-Length"] == str(len(expected))
    assert read_body(response) == expected

    head = user_client.head(download_url(finished_task))
    assert head.status_code == 200 and head["Content-Length"] == str(len(expected)) and head.content == b""

    ranged = user_client.get(download_url(finished_task), HTTP_RANGE="bytes=4-9")
    assert ranged.status_code == 206
    assert ranged["Content-Range"] == f"bytes 4-9/{len(expected)}"
    assert read_body(ranged) == expected[4:10]
    suffix = user_client.get(download_url(finished_task), HTTP_RANGE="bytes=-5")
    assert suffix.status_code == 206 and read_body(suffix) == expected[-5:]


def test_a_streamed_download_holds_one_chunk_not_the_file(streamed, bucket, user, user_client):
    # 16 MiB stored as the task's result; reading the whole of it, and a range of it, allocates far less.
    size = 16 * 1024 * 1024
    task = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100)
    name = default_storage.save(f"tasks/{task.id}/big.txt", ContentFile(b"x" * size))
    Task.objects.filter(pk=task.pk).update(file=name)

    tracemalloc.start()
    try:
        response = user_client.get(download_url(task))
        received = sum(len(chunk) for chunk in response.streaming_content)
        _, whole_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        ranged = user_client.get(download_url(task), HTTP_RANGE=f"bytes={size - 100}-")
        tail = read_body(ranged)
        _, range_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert tail == b"x" * 100
    assert whole_peak < 4 * 1024 * 1024, whole_peak
    assert range_peak < 1024 * 1024, range_peak


# --- Nothing left behind ---------------------------------------------------------------------


def test_deleting_the_task_empties_the_bucket(s3_server, bucket, finished_task, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        task_delete(task=finished_task)
    assert s3_server.keys(bucket) == []


def test_expiry_empties_the_bucket(s3_server, bucket, finished_task):
    Task.objects.filter(pk=finished_task.pk).update(finished_at=timezone.now() - timedelta(days=8))
    assert tasks_expire() == 1
    assert s3_server.keys(bucket) == []
    finished_task.refresh_from_db()
    assert finished_task.expired_at is not None


def test_deleting_the_account_empties_the_bucket(
    s3_server, bucket, user, finished_task, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tasks_delete_for_user(user=user)
        user.delete()
    assert s3_server.keys(bucket) == []


def test_a_failed_tasks_cleanup_empties_the_bucket(s3_server, bucket, user):
    # What a job stored before it failed (a kind that stores in steps, a retried store).
    task = TaskFactory(user=user, status=Task.Status.FAILED, error="It failed.", finished_at=timezone.now())
    default_storage.save(f"tasks/{task.id}/partial.txt", ContentFile(b"half"))
    default_storage.save(f"tasks/{task.id}/other.txt", ContentFile(b"more"))
    assert len(s3_server.keys(bucket)) == 2
    assert task_cleanup(task.id)
    assert s3_server.keys(bucket) == []


# --- The bucket down or refusing -------------------------------------------------------------


@pytest.mark.parametrize("redirect", [True, False], ids=["redirect", "streamed"])
def test_a_download_from_a_bucket_that_is_down_says_so(
    s3_server, bucket, settings, user_client, finished_task, redirect
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "DOWNLOAD_REDIRECT": redirect}
    settings.STORAGES = {**settings.STORAGES, "default": unreachable_storage(s3_server, bucket)}
    response = user_client.get(download_url(finished_task))
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "its storage is not answering" in response.content.decode()


def test_a_download_with_a_wrong_key_says_so(s3_server, bucket, settings, user_client, finished_task):
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(bucket, secret_key="wrong")}
    response = user_client.get(download_url(finished_task))
    assert response.status_code == 503
    assert "its storage is not answering" in response.content.decode()


def test_storing_into_a_bucket_that_is_down_is_retried_then_fails_the_task(
    s3_server, bucket, settings, user, queue, django_capture_on_commit_callbacks, caplog
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_ATTEMPTS": 2, "RETRY_BACKOFF": 0.01}
    settings.STORAGES = {**settings.STORAGES, "default": unreachable_storage(s3_server, bucket)}
    task = run_task(user, queue, django_capture_on_commit_callbacks)
    assert task.status == Task.Status.FAILED
    assert task.error == STORING_FAILED
    assert "storing the file failed" in caplog.text  # the first attempt's fault was retried
    assert s3_server.keys(bucket) == []


def test_storing_with_a_wrong_key_fails_the_task_at_once(
    s3_server, bucket, settings, user, queue, django_capture_on_commit_callbacks, caplog
):
    settings.LIVE_TASKS = {**settings.LIVE_TASKS, "RETRY_ATTEMPTS": 2, "RETRY_BACKOFF": 0.01}
    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(bucket, secret_key="wrong")}
    task = run_task(user, queue, django_capture_on_commit_callbacks)
    assert task.status == Task.Status.FAILED
    assert task.error == STORING_FAILED
    assert "storing the file failed" not in caplog.text  # a refusal is not retried
    assert s3_server.keys(bucket) == []


def healthz_storage() -> tuple[int, dict]:
    response = async_to_sync(healthz)(RequestFactory().get("/healthz"))
    return response.status_code, json.loads(response.content)["storage"]


def test_healthz_says_whether_the_bucket_answers(s3_server, bucket, settings):
    status, storage = healthz_storage()
    assert storage == {"ok": True, "bucket": bucket}

    settings.STORAGES = {**settings.STORAGES, "default": s3_server.storage_options(bucket, secret_key="wrong")}
    status, storage = healthz_storage()
    assert status == 503 and storage == {"ok": False, "error": "ClientError"}

    settings.STORAGES = {**settings.STORAGES, "default": unreachable_storage(s3_server, bucket)}
    status, storage = healthz_storage()
    assert status == 503 and storage["ok"] is False


def test_the_librarys_bucket_storage_defaults_to_private_short_lived_urls_and_no_overwrite(settings):
    """What a site that names only its connection gets (project/storage_url.py gives no more)."""
    from live_tasks.s3 import S3Storage

    storage = S3Storage(bucket_name="results", endpoint_url="http://127.0.0.1:1")  # no request made
    assert (storage.querystring_auth, storage.querystring_expire) == (True, 60)
    assert (storage.file_overwrite, storage.default_acl) == (False, None)
    assert (storage.addressing_style, storage.signature_version) == ("path", "s3v4")
    settings.AWS_QUERYSTRING_EXPIRE = 30  # a site's own AWS_* settings still win
    assert S3Storage(bucket_name="results").querystring_expire == 30


def test_a_sites_own_transfer_config_setting_is_kept(settings):
    from boto3.s3.transfer import TransferConfig

    from live_tasks.s3 import UPLOAD_PART_BYTES, S3Storage

    assert S3Storage(bucket_name="results").transfer_config.multipart_chunksize == UPLOAD_PART_BYTES
    settings.AWS_S3_TRANSFER_CONFIG = TransferConfig(multipart_chunksize=5 * 1024 * 1024)
    assert S3Storage(bucket_name="results").transfer_config.multipart_chunksize == 5 * 1024 * 1024
