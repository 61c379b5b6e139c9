"""A kind's own refusal (a TaskError subclass raised by its start service) is answered like the core's:
its status and message, its task's JSON or page, and Retry-After, through the one mapping
(live_tasks.views.task_error_response) that every launch, cancel and delete goes through."""

from __future__ import annotations

import pytest
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from live_tasks.errors import TaskError
from live_tasks.models import Task
from live_tasks.services import task_start
from live_tasks.views import task_error_response, task_launch_response

from .helpers import TaskFactory
from .testapp.kinds import TEST_STEPS
from .urls import urlpatterns as site_urlpatterns

pytestmark = pytest.mark.urls(__name__)
JSON = {"HTTP_ACCEPT": "application/json"}


class StepsPaused(TaskError):
    """Not a status the core uses: the mapping must take it from the class, not know it."""

    status = 423


class StepsWaiting(TaskError):
    status = 409


def steps_start(*, user, refusal: str) -> Task:
    """The kind's start service, which refuses as the URL asks."""
    if refusal == "paused":
        raise StepsPaused("Steps are paused for maintenance. Try again shortly.", retry_after=7)
    if refusal == "waiting":
        raise StepsWaiting("Your steps wait for the last ones.", task=Task.objects.for_user(user).get())
    return task_start(user=user, kind=TEST_STEPS)


def steps_launch(request: HttpRequest, refusal: str) -> HttpResponse:
    return task_launch_response(
        request,
        lambda: steps_start(user=request.user, refusal=refusal),
        refused_page=lambda: render(request, "live_tasks/base.html"),
    )


urlpatterns = [*site_urlpatterns, path("steps/<str:refusal>/", steps_launch)]


def test_a_kinds_refusal_gives_a_json_client_its_status_message_and_retry_after(user_client):
    response = user_client.post("/steps/paused/", **JSON)
    assert response.status_code == 423
    assert response.json() == {"error": "Steps are paused for maintenance. Try again shortly."}
    assert response["Retry-After"] == "7"
    assert not Task.objects.exists(), "a refused launch leaves no task"


def test_a_kinds_refusal_shows_a_person_the_launching_page_with_the_message(user_client):
    response = user_client.post("/steps/paused/")
    assert response.status_code == 423 and response["Retry-After"] == "7"
    assert "Steps are paused for maintenance. Try again shortly." in response.content.decode()


def test_a_kinds_refusal_about_a_task_answers_with_that_task(user_client, user):
    blocking = TaskFactory(user=user, kind=TEST_STEPS, status="running")
    response = user_client.post("/steps/waiting/", **JSON)
    assert response.status_code == 409 and response.json()["id"] == str(blocking.id), "the Task JSON, not an error"
    assert "Retry-After" not in response

    response = user_client.post("/steps/waiting/")
    assert response.status_code == 302 and response["Location"] == f"/tasks/{blocking.id}/"
    assert "Your steps wait for the last ones." in user_client.get(response["Location"]).content.decode()


def test_a_refusal_with_neither_a_page_nor_a_task_still_keeps_its_status_for_a_person(rf):
    response = task_error_response(rf.post("/anywhere/"), StepsPaused("Paused.", retry_after=3))
    assert (response.status_code, response["Retry-After"], response.content) == (423, "3", b"Paused.")
