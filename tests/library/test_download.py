"""Downloading a task's result file: the owner gets the exact file (HEAD and byte ranges too),
everyone and everything else a 404 (the site's export download: tests/exports/test_download.py)."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat

from live_tasks.models import Task
from live_tasks.services import task_start

from .helpers import TaskFactory, run_queued_jobs
from .testapp.kinds import TEST_STEPS


def download_url(task: Task) -> str:
    return f"/tasks/{task.id}/download/"


@pytest.fixture
def finished_task(user, queue, django_capture_on_commit_callbacks) -> Task:
    """A real task with a result file, produced by the real job in an in-process RQ worker."""
    with django_capture_on_commit_callbacks(execute=True):
        task = task_start(user=user, kind=TEST_STEPS, params={"steps": 1, "with_file": True})
    run_queued_jobs()
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, task.error
    return task


def read_body(response) -> bytes:
    # The test client closes a streaming response once its content is consumed; closing it again
    # would send request_finished and close the test's database connection.
    return b"".join(response.streaming_content)


def test_owner_downloads_the_exact_file_as_an_attachment(user_client, finished_task):
    with default_storage.open(finished_task.file.name, "rb") as fh:
        stored = fh.read()

    response = user_client.get(download_url(finished_task))

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="steps-{finished_task.id}.txt"'
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Length"] == str(len(stored))
    assert read_body(response) == stored == f"the result of {finished_task.id}".encode()


def test_the_api_download_url_is_the_one_that_works(user_client, finished_task):
    url = user_client.get(f"/tasks/api/{finished_task.id}/").json()["download_url"]
    assert url == download_url(finished_task)
    assert user_client.get(url).status_code == 200


def test_another_user_cannot_download_it(client_for, other_user, finished_task):
    response = client_for(other_user).get(download_url(finished_task))
    assert response.status_code == 404
    assert b"the result of" not in response.content


@pytest.mark.parametrize("status", [Task.Status.QUEUED, Task.Status.RUNNING])
def test_an_unfinished_task_has_nothing_to_download(user_client, user, status):
    task = TaskFactory(user=user, status=status, progress=60)
    assert user_client.get(download_url(task)).status_code == 404


@pytest.mark.parametrize("status", [Task.Status.FAILED, Task.Status.CANCELLED])
def test_a_failed_or_cancelled_task_has_nothing_to_download_even_with_a_file_name(
    user_client, user, status, finished_task
):
    # The same real file on disk, but behind a task that did not succeed.
    Task.objects.filter(pk=finished_task.pk).update(status=status, error="The export failed.")
    assert default_storage.exists(finished_task.file.name)
    assert user_client.get(download_url(finished_task)).status_code == 404


def test_a_succeeded_task_without_a_file_is_404(user_client, user):
    task = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100)
    assert user_client.get(download_url(task)).status_code == 404


def test_a_file_deleted_from_storage_is_404_not_500(user_client, finished_task):
    default_storage.delete(finished_task.file.name)
    assert not default_storage.exists(finished_task.file.name)

    response = user_client.get(download_url(finished_task))

    assert response.status_code == 404
    # The task page still opens and no longer crashes either.
    assert user_client.get(f"/tasks/{finished_task.id}/").status_code == 200


def test_download_is_get_and_head_only(user_client, finished_task):
    assert user_client.post(download_url(finished_task)).status_code == 405


# --- HEAD, resumed downloads (byte ranges), and what the page says about the file -------------


def test_head_gives_the_headers_of_the_download_without_the_body(user_client, finished_task):
    size = default_storage.size(finished_task.file.name)
    response = user_client.head(download_url(finished_task))
    assert response.status_code == 200
    assert response["Content-Length"] == str(size)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    assert response.content == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-7", -7, None), ("bytes=5-100000000", 5, None)],
    ids=["slice", "open-ended", "suffix", "past-the-end"],
)
def test_a_single_byte_range_gets_206_and_exactly_those_bytes(user_client, finished_task, header, first, last):
    with default_storage.open(finished_task.file.name, "rb") as fh:
        stored = fh.read()
    expected = stored[first:] if last is None else stored[first : last + 1]
    start = len(stored) + first if first < 0 else first

    response = user_client.get(download_url(finished_task), HTTP_RANGE=header)

    assert response.status_code == 206
    assert read_body(response) == expected
    assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(stored)}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Disposition"].startswith("attachment; filename=")


@pytest.mark.parametrize("header", ["bytes=100000000-", "bytes=-0"])
def test_a_range_that_cannot_be_satisfied_gets_416_with_the_size(user_client, finished_task, header):
    size = default_storage.size(finished_task.file.name)
    response = user_client.get(download_url(finished_task), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=9-2", "lines=1-2", "bytes=abc"])
def test_several_ranges_or_a_malformed_one_get_the_whole_file(user_client, finished_task, header):
    response = user_client.get(download_url(finished_task), HTTP_RANGE=header)
    assert response.status_code == 200
    assert read_body(response) == f"the result of {finished_task.id}".encode()


def test_a_range_for_another_version_of_the_file_gets_the_whole_file(user_client, finished_task):
    etag = user_client.head(download_url(finished_task))["ETag"]
    resumed = user_client.get(download_url(finished_task), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE=etag)
    assert resumed.status_code == 206 and read_body(resumed) == b"the "
    stale = user_client.get(download_url(finished_task), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and len(read_body(stale)) > 4


def test_the_task_page_shows_the_file_size(user_client, finished_task):
    size = default_storage.size(finished_task.file.name)
    assert finished_task.file_size == size
    page = user_client.get(f"/tasks/{finished_task.id}/").content.decode()
    assert f'<span class="task-size" data-field="size">({filesizeformat(size)})</span>' in page
    assert user_client.get(f"/tasks/api/{finished_task.id}/").json()["file_size"] == size


def test_a_missing_file_gets_a_page_with_a_way_back(user_client, finished_task):
    default_storage.delete(finished_task.file.name)
    response = user_client.get(download_url(finished_task))
    assert response.status_code == 404
    page = response.content.decode()
    assert "The file of this test steps is missing." in page
    assert f'href="/tasks/{finished_task.id}/"' in page
