"""POST /imports/ exactly as documented (docs/imports.md): the refusals in their order, 202 + Task
JSON for a program, the task's page for a person; another user's import is a 404 everywhere."""

from __future__ import annotations

import io
import json

import pytest
from django.test import Client
from redis.exceptions import ConnectionError as RedisConnectionError

from live_tasks.models import Task
from tests.factories import TaskFactory

URL = "/imports/"
JSON: dict = {
    "HTTP_ACCEPT": "application/json"
}  # extra headers: dict[str, str] would clash with Client's typed options
CONTENT = json.dumps({"posts": [{"body": "hello", "created_at": "2020-01-01T00:00:00Z"}]}).encode()


def upload(content: bytes = CONTENT, name: str = "posts.json") -> io.BytesIO:
    file = io.BytesIO(content)
    file.name = name
    return file


def post(client, data, **extra):
    return client.post(URL, data, **extra)


def test_json_client_gets_202_and_the_task(browser, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()}, **JSON)
    assert response.status_code == 202
    body = response.json()
    assert (body["kind"], body["status"], body["label"]) == ("import_posts", "queued", "Posts import")
    assert body["url"] == f"/imports/{body['id']}/"
    assert queue.job_ids == [body["id"]]
    assert Task.objects.get(pk=body["id"]).params == {"file_name": "posts.json"}


def test_a_form_is_redirected_to_the_tasks_page_with_its_live_bar(browser, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()}, follow=True)
    task = Task.objects.get()
    assert response.redirect_chain == [(f"/imports/{task.id}/", 302)]
    page = response.content.decode()
    assert "Posts import started." in page and f'data-task-id="{task.id}"' in page
    assert '<progress class="task-bar"' in page and "posts.json" in page


def test_anonymous_is_401_for_programs_and_people(db, uploads_left):
    assert Client().post(URL, {"file": upload()}, **JSON).json() == {"error": "Please log in to import posts."}
    response = Client().post(URL, {"file": upload()})
    assert response.status_code == 401 and b"Log in</a> to import posts." in response.content
    assert uploads_left() == set()


def test_without_a_csrf_token_it_is_403_even_for_a_file_too_large(browser, settings, uploads_left):
    settings.IMPORT_MAX_BYTES = 100
    assert post(browser, {"file": upload()}, **JSON).status_code == 403
    assert post(browser, {"csrfmiddlewaretoken": "x" * 32, "file": upload()}).status_code == 403
    assert uploads_left() == set() and not Task.objects.exists()


def test_a_body_over_the_limit_is_413_before_anything_is_stored(browser, settings, uploads_left):
    settings.IMPORT_MAX_BYTES = len(CONTENT) + 100  # the file fits; the body with its form does not
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload(CONTENT + b" " * 200)}, **JSON)
    assert response.status_code == 413
    assert response.json() == {"error": f"The file is too large: the limit is {len(CONTENT) + 100} bytes."}
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload(CONTENT + b" " * 200)})
    assert response.status_code == 413 and b"The file is too large" in response.content
    assert uploads_left() == set() and not Task.objects.exists()


def test_a_request_without_a_file_is_400(browser, uploads_left):
    response = post(browser, {"csrfmiddlewaretoken": browser.token}, **JSON)
    assert response.status_code == 400 and "Choose a file" in response.json()["error"]
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": ""})
    assert response.status_code == 400 and b"Choose a file to import" in response.content


def test_a_second_import_while_one_is_unfinished_is_409_with_that_task(browser, uploads_left):
    running = TaskFactory(user=browser.user, kind="import_posts", status="running")
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()}, **JSON)
    assert response.status_code == 409 and response.json()["id"] == str(running.id)
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()})
    assert response.status_code == 409 and f'href="/imports/{running.id}/"'.encode() in response.content
    assert uploads_left() == set(), "the second file is not even stored"
    assert Task.objects.count() == 1


def test_an_unfinished_export_does_not_block_an_import(browser, queue, django_capture_on_commit_callbacks):
    TaskFactory(user=browser.user, kind="export_posts", status="running")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()}, **JSON)
    assert response.status_code == 202


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: the enqueue runs inside the request
def test_with_the_queue_down_it_is_503_and_nothing_is_left(browser, monkeypatch, uploads_left):
    def refuse(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr("live_tasks.services.task_job_enqueue", refuse)
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()}, **JSON)
    assert response.status_code == 503 and "unavailable" in response.json()["error"]
    response = post(browser, {"csrfmiddlewaretoken": browser.token, "file": upload()})
    assert response.status_code == 503 and b"The background service is unavailable" in response.content
    assert not Task.objects.exists() and uploads_left() == set()


@pytest.mark.parametrize("path", ["/imports/{id}/", "/api/tasks/{id}/", "/tasks/{id}/"])
def test_another_users_import_is_404(user_client, other_user, path):
    theirs = TaskFactory(user=other_user, kind="import_posts", params={"file_name": "secret.json"})
    assert user_client.get(path.format(id=theirs.id)).status_code == 404
    assert user_client.post(f"/imports/{theirs.id}/cancel/").status_code == 404


def test_a_kinds_pages_show_only_its_own_tasks(user_client, user):
    export = TaskFactory(user=user, kind="export_posts")
    imported = TaskFactory(user=user, kind="import_posts")
    assert user_client.get(f"/imports/{export.id}/").status_code == 404
    assert user_client.get(f"/exports/{imported.id}/").status_code == 404
    assert user_client.get(f"/imports/{imported.id}/").status_code == 200


def test_the_file_name_is_shown_escaped(user_client, user):
    task = TaskFactory(user=user, kind="import_posts", params={"file_name": "<img src=x onerror=alert(1)>.json"})
    page = user_client.get(f"/imports/{task.id}/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.json" in page


def test_the_posts_page_offers_the_import_form(user_client):
    page = user_client.get("/posts/").content.decode()
    form = (
        page.split('id="import-form"')[0].rsplit("<form", 1)[1] + page.split('id="import-form"')[1].split("</form>")[0]
    )
    assert 'action="/imports/"' in form and 'enctype="multipart/form-data"' in form
    assert form.index("csrfmiddlewaretoken") < form.index('type="file" name="file"'), "the token comes first"
    assert "Import posts from a file" in page
