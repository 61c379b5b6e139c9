"""Downloading a finished export on this site: the exact file, named for what it is, at the URLs its
pages and API give (every other case of a download: tests/library/test_download.py)."""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import default_storage
from django.template.defaultfilters import filesizeformat
from rq import SimpleWorker

from exports.services import export_start
from live_tasks.models import Task
from tests.factories import PostFactory
from tests.library.test_download import download_url, read_body

BODIES = ["Grüße 🌍", '<b>bold</b> & "quoted"', "line\r\nbreak\ttab", "שלום"]


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


def test_owner_downloads_the_exact_file_as_an_attachment(user_client, finished_export):
    with default_storage.open(finished_export.file.name, "rb") as fh:
        stored = fh.read()

    response = user_client.get(download_url(finished_export))

    assert response.status_code == 200
    name = f"posts-{finished_export.user.username}-{finished_export.created_at:%Y-%m-%d}.json"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["Content-Type"] == "application/json"
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
