"""Export pages: the list with its launch button. A task's own pages are the core's (exports/urls.py)."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from live_tasks import task_page_for_user
from live_tasks.conf import live_settings
from live_tasks.http import AuthenticatedHttpRequest, login_required_json_or_redirect
from live_tasks.views import task_launch_response

from .services import EXPORT_POSTS, export_start


@require_http_methods(["GET", "POST"])
@login_required_json_or_redirect
def export_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    def page() -> HttpResponse:
        tasks = task_page_for_user(user=request.user, kind=EXPORT_POSTS, page=request.GET.get("page"))
        context = {"page_obj": tasks, "tasks": tasks, "retention_days": live_settings.RESULT_RETENTION_DAYS}
        return render(request, "exports/export_list.html", context)

    if request.method == "POST":
        return task_launch_response(request, lambda: export_start(user=request.user), refused_page=page)
    return page()
