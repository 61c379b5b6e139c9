# recount/views.py: GET /recount/ lists the user's recounts; POST starts one, owned by the user
from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import live_tasks
from live_tasks.views import task_launch_response

from .tasks import recount_words

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@login_required
def recount(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return task_launch_response(request, partial(recount_start, request.user), refused_page=partial(page, request))
    return page(request)


def recount_start(user: User) -> live_tasks.Task:
    # The user's: their pages show it live, and their launch limits apply (429 past the rate).
    with live_tasks.for_user(user):
        result = recount_words.enqueue(user.pk)
    return live_tasks.Task.objects.get(pk=result.id)


def page(request: HttpRequest) -> HttpResponse:
    tasks = live_tasks.task_page_for_user(user=request.user, kind="django_task", page=request.GET.get("page"))
    return render(request, "recount/recount.html", {"page_obj": tasks, "tasks": tasks})
