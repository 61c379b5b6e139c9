"""Downloading a finished export: the owner gets the exact file, everyone and everything else a 404."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat
from rq import SimpleWorker

from exports.services import export_start
from live_tasks.models import Task
from tests.factories import PostFactory, TaskFactory

BODIES = ["Grüße 🌍", '<b>bold</b> & "quoted"', "line\r\nbreak\ttab", "שלום"]


def download_url(task: Task) -> str:
    return f"/tasks/{task.id}/download/"


@pytest.fixture
def finished_export(user, queue, django_capture_on_commit_callbacks) -> Task:
    """A real export of the user's posts, produced by the real job in an in-process RQ worker."""
    for body in BODIES:
        PostFactory(author=user, body=body)
    with django_capture_on_commit_callbacks(execute=True):
        task = export_start(user=user)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    task.refresh_from_db()
    assert task.status == Task.Status.SUCCEEDED, task.error
    return task


def read_body(response) -> bytes:
    # The test client closes a streaming response once its content is consumed; closing it again
    # would send request_finished and close the test's database connection.
    return b"".join(response.streaming_content)


def test_owner_downloads_the_exact_file_as_an_attachment(user_client, finished_export):
    with default_storage.open(finished_export.file.name, "rb") as fh:
        stored = fh.read()

    response = user_client.get(download_url(finished_export))

    assert response.status_code == 200
    name = f"posts-{finished_export.user.username}-{finished_export.created_at:%Y-%m-%d}.json"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "application/json"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Length"] == str(len(stored))
    body = read_body(response)
    assert body == stored
    data = json.loads(body)
    assert [p["body"] for p in data["posts"]] == BODIES
    assert data["count"] == len(BODIES)


def test_the_api_download_url_is_the_one_that_works(user_client, finished_export):
    url = user_client.get(f"/api/tasks/{finished_export.id}/").json()["download_url"]
    assert url == download_url(finished_export)
    response = user_client.get(url)
    assert response.status_code == 200
    assert json.loads(read_body(response))["count"] == len(BODIES)


def test_another_user_cannot_download_it(client_for, other_user, finished_export):
    response = client_for(other_user).get(download_url(finished_export))
    assert response.status_code == 404
    assert "Grüße".encode() not in response.content


@pytest.mark.parametrize("status", [Task.Status.QUEUED, Task.Status.RUNNING])
def test_an_unfinished_export_has_nothing_to_download(user_client, user, status):
    task = TaskFactory(user=user, status=status, progress=60)
    assert user_client.get(download_url(task)).status_code == 404


@pytest.mark.parametrize("status", [Task.Status.FAILED, Task.Status.CANCELLED])
def test_a_failed_or_cancelled_export_has_nothing_to_download_even_with_a_file_name(
    user_client, user, status, finished_export
):
    # The same real file on disk, but behind a task that did not succeed.
    Task.objects.filter(pk=finished_export.pk).update(status=status, error="The export failed.")
    assert default_storage.exists(finished_export.file.name)
    assert user_client.get(download_url(finished_export)).status_code == 404


def test_a_succeeded_task_without_a_file_is_404(user_client, user):
    task = TaskFactory(user=user, status=Task.Status.SUCCEEDED, progress=100)
    assert user_client.get(download_url(task)).status_code == 404


def test_a_file_deleted_from_storage_is_404_not_500(user_client, finished_export):
    default_storage.delete(finished_export.file.name)
    assert not default_storage.exists(finished_export.file.name)

    response = user_client.get(download_url(finished_export))

    assert response.status_code == 404
    # The task page still opens and no longer crashes either.
    assert user_client.get(f"/exports/{finished_export.id}/").status_code == 200


def test_download_is_get_and_head_only(user_client, finished_export):
    assert user_client.post(download_url(finished_export)).status_code == 405


# --- HEAD, resumed downloads (byte ranges), and what the page says about the file -------------


def test_head_gives_the_headers_of_the_download_without_the_body(user_client, finished_export):
    size = default_storage.size(finished_export.file.name)
    response = user_client.head(download_url(finished_export))
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
def test_a_single_byte_range_gets_206_and_exactly_those_bytes(user_client, finished_export, header, first, last):
    with default_storage.open(finished_export.file.name, "rb") as fh:
        stored = fh.read()
    expected = stored[first:] if last is None else stored[first : last + 1]
    start = len(stored) + first if first < 0 else first

    response = user_client.get(download_url(finished_export), HTTP_RANGE=header)

    assert response.status_code == 206
    assert read_body(response) == expected
    assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(stored)}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Disposition"].startswith("attachment; filename=")


@pytest.mark.parametrize("header", ["bytes=100000000-", "bytes=-0"])
def test_a_range_that_cannot_be_satisfied_gets_416_with_the_size(user_client, finished_export, header):
    size = default_storage.size(finished_export.file.name)
    response = user_client.get(download_url(finished_export), HTTP_RANGE=header)
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=9-2", "lines=1-2", "bytes=abc"])
def test_several_ranges_or_a_malformed_one_get_the_whole_file(user_client, finished_export, header):
    response = user_client.get(download_url(finished_export), HTTP_RANGE=header)
    assert response.status_code == 200
    assert json.loads(read_body(response))["count"] == len(BODIES)


def test_a_range_for_another_version_of_the_file_gets_the_whole_file(user_client, finished_export):
    etag = user_client.head(download_url(finished_export))["ETag"]
    resumed = user_client.get(download_url(finished_export), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE=etag)
    assert resumed.status_code == 206 and read_body(resumed) == b'{"us'
    stale = user_client.get(download_url(finished_export), HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200 and len(read_body(stale)) > 4


def test_the_task_page_shows_the_file_size(user_client, finished_export):
    size = default_storage.size(finished_export.file.name)
    assert finished_export.file_size == size
    page = user_client.get(f"/exports/{finished_export.id}/").content.decode()
    assert f'<span class="task-size" data-field="size">({filesizeformat(size)})</span>' in page
    assert user_client.get(f"/api/tasks/{finished_export.id}/").json()["file_size"] == size


def test_a_missing_file_gets_the_sites_page_with_a_way_back(user_client, finished_export):
    default_storage.delete(finished_export.file.name)
    response = user_client.get(download_url(finished_export))
    assert response.status_code == 404
    page = response.content.decode()
    assert 'class="site-header"' in page and "The file of this posts export is missing." in page
    assert f'href="/exports/{finished_export.id}/"' in page
