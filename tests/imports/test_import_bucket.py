"""Imports with the files in an S3 bucket (a real SeaweedFS, tests/library/s3server.py): the upload
goes from the web process to the bucket, the worker reads it from there as a stream, and nothing is
left behind on the web host's disk or in the bucket; a bucket that cannot take the upload is a 503
that records nothing. An export written into the bucket imports back."""

from __future__ import annotations

import pytest
from rq import SimpleWorker

from live_tasks.models import Task
from posts.models import Post
from tests.factories import PostFactory, UserFactory

from ..library.s3server import _free_ports
from .test_import_job import numbered
from .test_import_views import JSON, URL, upload

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

pytest.importorskip("storages")


def content(posts: list[dict]) -> bytes:
    import json

    return json.dumps({"posts": posts}).encode()


def test_an_upload_goes_to_the_bucket_and_the_worker_imports_it_from_there(
    browser, s3_server, bucket, queue, uploads_left, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            URL, {"csrfmiddlewaretoken": browser.token, "file": upload(content(numbered(300)))}, **JSON
        )
    assert response.status_code == 202, response.content
    task_id = response.json()["id"]
    # The web host kept nothing past the request: the upload is in the bucket, the task's input.
    assert uploads_left() == set()
    assert s3_server.keys(bucket) == [f"tasks/{task_id}/input"]

    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    task = Task.objects.get(pk=task_id)
    assert task.status == Task.Status.SUCCEEDED, task.error
    assert task.detail == "Imported 300 posts."
    assert Post.objects.by_author(browser.user).count() == 300
    assert s3_server.keys(bucket) == []


def test_with_the_bucket_down_an_upload_is_503_and_nothing_is_left(browser, s3_server, bucket, settings, uploads_left):
    (port,) = _free_ports(1)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_server.storage_options(bucket, endpoint_url=f"http://127.0.0.1:{port}"),
    }
    response = browser.post(URL, {"csrfmiddlewaretoken": browser.token, "file": upload()}, **JSON)
    assert response.status_code == 503
    assert response.json()["error"] == "The file could not be stored. Please try again in a minute."
    response = browser.post(URL, {"csrfmiddlewaretoken": browser.token, "file": upload()})
    assert response.status_code == 503 and b"The file could not be stored" in response.content
    assert not Task.objects.exists() and uploads_left() == set()
    assert s3_server.keys(bucket) == []


def test_an_export_written_into_the_bucket_imports_back(
    s3_server, bucket, queue, tmp_path, django_capture_on_commit_callbacks, settings
):
    from exports.services import export_start
    from imports.services import import_start

    settings.EXPORT_CHUNK_SIZE = 50
    alice, bob = UserFactory(), UserFactory()
    for number in range(420):
        PostFactory(author=alice, body=f"Post {number} ✓")
    with django_capture_on_commit_callbacks(execute=True):
        exported = export_start(user=alice)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    exported.refresh_from_db()
    assert exported.status == Task.Status.SUCCEEDED, exported.error
    assert s3_server.keys(bucket) == [exported.file.name]

    copy = tmp_path / "posts.json"
    copy.write_bytes(s3_server.client().get_object(Bucket=bucket, Key=exported.file.name)["Body"].read())
    with django_capture_on_commit_callbacks(execute=True):
        imported = import_start(user=bob, upload=copy, file_name="posts.json")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    imported.refresh_from_db()
    assert imported.detail == "Imported 420 posts."
    assert set(Post.objects.by_author(bob).values_list("body", "created_at")) == set(
        Post.objects.by_author(alice).values_list("body", "created_at")
    )
    assert s3_server.keys(bucket) == [exported.file.name]  # the import's input is gone
