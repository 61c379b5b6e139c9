"""Task pages and the JSON API, for every kind. Thin: each calls one service or selector.

Kinds reuse these views for their own URLs (`/exports/<id>/`, `/imports/<id>/cancel/`...) with
`kind=` set, so that one kind's URL never shows another kind's task.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from .http import login_required_json_or_redirect, wants_json
from .limits import TaskLaunchLimited, TaskQuotaExceeded
from .models import Task
from .selectors import task_get_for_user, task_has_file, task_list_for_user, task_snapshot_for, task_to_dict
from .services import QueueUnavailable, TaskAlreadyFinished, TaskAlreadyRunning, task_cancel


def task_launch_response(
    request: HttpRequest, start: Callable[[], Task], *, refused_page: Callable[[], HttpResponse]
) -> HttpResponse:
    """Run a kind's start service and answer: 202 + Task JSON or a redirect to the task's page;
    409 (the unfinished task) or a redirect to it; otherwise `{"error": ...}` or `refused_page`
    with the message: 429 + Retry-After (launch rate), 409 (storage quota), 503 (no queue)."""
    json_client = wants_json(request)
    try:
        task = start()
    except TaskAlreadyRunning as exc:
        if json_client:
            return JsonResponse(task_to_dict(exc.task), status=409)
        messages.info(request, f"{exc} Here it is.")
        return redirect(task_to_dict(exc.task)["url"])
    except TaskLaunchLimited as exc:
        response = _refused(request, exc, 429, json_client, refused_page)
        response["Retry-After"] = str(exc.retry_after)
        return response
    except TaskQuotaExceeded as exc:
        return _refused(request, exc, 409, json_client, refused_page)
    except QueueUnavailable as exc:
        return _refused(request, exc, 503, json_client, refused_page)
    if json_client:
        return JsonResponse(task_to_dict(task), status=202)
    messages.success(request, f"{task.label} started. You can follow it here.")
    return redirect(task_to_dict(task)["url"])


def _refused(
    request: HttpRequest, exc: Exception, status: int, json_client: bool, page: Callable[[], HttpResponse]
) -> HttpResponse:
    if json_client:
        return JsonResponse({"error": str(exc)}, status=status)
    messages.error(request, str(exc))
    response = page()
    response.status_code = status
    return response


@require_GET
@login_required
def task_list_page(request: HttpRequest) -> HttpResponse:
    return render(request, "tasks/task_list.html", {"tasks": task_list_for_user(user=request.user)})


@require_GET
@login_required
def task_detail(
    request: HttpRequest, task_id: str, kind: str | None = None, template: str = "tasks/task_detail.html"
) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    return render(request, template, {"task": task, "task_json": task_to_dict(task)})


@require_POST
@login_required_json_or_redirect
def task_cancel_view(request: HttpRequest, task_id: str, kind: str | None = None) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    try:
        task = task_cancel(task=task)
    except TaskAlreadyFinished as exc:
        if wants_json(request):
            return JsonResponse(task_to_dict(exc.task), status=409)
        messages.info(request, str(exc))
        return redirect(task_to_dict(exc.task)["url"])
    if wants_json(request):
        return JsonResponse(task_to_dict(task))
    messages.success(request, f"{task.label} cancelled.")
    return redirect(task_to_dict(task)["url"])


@require_GET
@login_required
def task_download(request: HttpRequest, task_id: str, kind: str | None = None) -> FileResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    if not task_has_file(task):
        raise Http404("This task has no file to download.")
    try:
        handle = task.file.open("rb")
    except FileNotFoundError:
        raise Http404("This task's file is no longer available.") from None
    name = task.kind_spec.download_name(task)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
@login_required_json_or_redirect
def api_task_list(request: HttpRequest) -> JsonResponse:
    # ?scope=all is the staff feed (the admin's polling fallback): every user's recent tasks.
    if request.GET.get("scope") == "all" and request.user.is_staff:
        return JsonResponse({"tasks": task_snapshot_for(user=request.user, all_users=True)})
    tasks = task_list_for_user(user=request.user)
    return JsonResponse({"tasks": [task_to_dict(task) for task in tasks]})


@require_GET
@login_required_json_or_redirect
def api_task_detail(request: HttpRequest, task_id: str) -> JsonResponse:
    return JsonResponse(task_to_dict(task_get_for_user(user=request.user, task_id=task_id)))
