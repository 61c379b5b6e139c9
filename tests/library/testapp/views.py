"""POST /steps/ starts a test_steps task (its params from the form or the JSON body), as a site's
launch view does (README: "Add your own long job")."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from live_tasks import task_start
from live_tasks.http import AuthenticatedHttpRequest
from live_tasks.views import task_launch_response

from .kinds import TEST_STEPS


@require_POST
@login_required
def steps_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    params = {"steps": int(request.POST.get("steps", 3)), "with_file": request.POST.get("with_file") == "1"}
    return task_launch_response(
        request,
        lambda: task_start(user=request.user, kind=TEST_STEPS, params=params),
        refused_page=lambda: redirect("live_tasks:list"),
    )
