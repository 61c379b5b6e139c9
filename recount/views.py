# recount/views.py: GET /recount/ lists the user's recounts; POST starts one, owned by the user
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

import live_tasks

from .tasks import recount_words


@login_required
def recount(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        with live_tasks.for_user(request.user):  # the user's pages show it live; without: staff only
            result = recount_words.enqueue(request.user.pk)
        return redirect("live_tasks:detail", task_id=result.id)
    tasks = live_tasks.task_page_for_user(user=request.user, kind="django_task", page=request.GET.get("page"))
    return render(request, "recount/recount.html", {"page_obj": tasks, "tasks": tasks})
