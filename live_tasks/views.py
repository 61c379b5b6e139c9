"""Task pages and the JSON API, for every kind. Thin: each calls one service or selector.

Kinds reuse these views for their own URLs (`/exports/<id>/`, `/imports/<id>/cancel/`...) with
`kind=` set, so that one kind's URL never shows another kind's task.
"""

from __future__ import annotations

import logging
import mimetypes
import os
from collections.abc import Callable
from functools import partial
from typing import IO, Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .conf import live_settings
from .errors import TaskError
from .files import (
    is_storage_fault,
    object_storage,
    result_open,
    result_size_or_missing,
    result_url,
    storage_errors_counted,
)
from .http import AuthenticatedHttpRequest, file_download_response, login_required_json_or_redirect, wants_json
from .kinds import UnknownTaskKind
from .models import Task
from .permissions import VIEW_EVERY_TASK, may
from .selectors import task_get_for_user, task_page_for_user, task_snapshot_for
from .serializers import task_has_file, task_to_dict, task_url
from .services import task_cancel, task_delete, tasks_delete_finished

logger = logging.getLogger(__name__)


def _page(context: dict[str, Any]) -> dict[str, Any]:
    """A page of the library's: it extends the site's base template (LIVE_TASKS["BASE_TEMPLATE"])."""
    return {**context, "live_tasks_base": live_settings.BASE_TEMPLATE}


def task_error_response(
    request: HttpRequest, error: TaskError, *, page: Callable[[TaskError], HttpResponse] | None = None
) -> HttpResponse:
    """The one answer to a TaskError, for every view and kind (docs/protocol.md, docs/imports.md).

    A JSON client gets `error.status` with the Task JSON of the task the refusal is about (it can
    act on it), else `{"error": message}`. A person gets `page(error)` at that status: the refusing
    view's own page, which shows the message; a page that is a redirect stays one (a browser follows
    no Location of a 429), to a page that shows the message; without one, the task's page with the notice.
    Retry-After from `error.retry_after`, either way.
    """
    response: HttpResponse
    if wants_json(request):
        body = task_to_dict(error.task) if error.task is not None else {"error": error.message}
        response = JsonResponse(body, status=error.status)
    elif page is not None:
        response = page(error)
        if not 300 <= response.status_code < 400:
            response.status_code = error.status
    elif error.task is not None:
        # Not an error the person made: where the task stands, on the page that shows it.
        messages.info(request, error.notice)
        response = redirect(task_url(error.task))
    else:  # a view that can refuse without a task gives a page; this is only the last resort
        response = HttpResponse(error.message, status=error.status, content_type="text/plain; charset=utf-8")
    if error.retry_after is not None:
        response["Retry-After"] = str(error.retry_after)
    return response


def task_launch_response(
    request: HttpRequest, start: Callable[[], Task], *, refused_page: Callable[[], HttpResponse]
) -> HttpResponse:
    """Run a kind's start service and answer: 202 + Task JSON or a redirect to the task's page; a
    TaskError as task_error_response does: 409 with the unfinished task, or a redirect to it; else
    `{"error": ...}`, or `refused_page` with the message, at the error's status (429 + Retry-After
    for the launch rate, 409 for the storage quota, 503 without a queue, a kind's own...)."""
    try:
        task = start()
    except TaskError as error:
        return task_error_response(
            request, error, page=None if error.task is not None else partial(_launch_refused, request, refused_page)
        )
    if wants_json(request):
        return JsonResponse(task_to_dict(task), status=202)
    # Worded to stay true after the task ends: the notice stays on this page, beside the live card.
    messages.success(request, gettext("%(label)s started.") % {"label": task.label})
    return redirect(task_to_dict(task)["url"])


def _launch_refused(request: HttpRequest, refused_page: Callable[[], HttpResponse], error: TaskError) -> HttpResponse:
    messages.error(request, error.message)  # the launching page again, saying why not
    return refused_page()


@require_GET
@login_required
def task_list_page(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = task_page_for_user(user=request.user, page=request.GET.get("page"))
    return render(request, "live_tasks/task_list.html", _page({"page_obj": page, "tasks": page}))


@require_GET
@login_required
def task_detail(
    request: AuthenticatedHttpRequest,
    task_id: str,
    kind: str | None = None,
    template: str = "live_tasks/task_detail.html",
) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    return render(request, template, _page({"task": task, "task_json": task_to_dict(task)}))


@require_POST
@login_required_json_or_redirect
def task_cancel_view(request: AuthenticatedHttpRequest, task_id: str, kind: str | None = None) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    try:
        task = task_cancel(task=task)
    except TaskError as error:
        return task_error_response(request, error)
    if wants_json(request):
        return JsonResponse(task_to_dict(task))
    messages.success(request, gettext("%(label)s cancelled.") % {"label": task.label})
    return redirect(task_to_dict(task)["url"])


@require_http_methods(["GET", "HEAD"])
@login_required
def task_download(request: AuthenticatedHttpRequest, task_id: str, kind: str | None = None) -> HttpResponseBase:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)  # the owner's, else 404
    if not task_has_file(task):
        return _file_gone(request, task)
    name = task.kind_spec.download_name(task)
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    try:
        if live_settings.DOWNLOAD_REDIRECT and object_storage() is not None:
            # Asked first: a file the bucket lost gets the page that says so, not the bucket's 404.
            result_size_or_missing(task.file.name)
            method = "HEAD" if request.method == "HEAD" else "GET"
            url = result_url(task.file.name, filename=name, content_type=content_type, method=method)
            if url is not None:
                # GET and HEAD alike; byte ranges are then the bucket's to answer.
                return HttpResponseRedirect(url, headers={"Cache-Control": "private, no-store"})
        with storage_errors_counted("open"):  # a row whose file storage lost counts too
            handle = result_open(task.file.name)
            size = _handle_size(handle)
    except FileNotFoundError:
        return _file_gone(request, task)
    except Exception as exc:
        if not is_storage_fault(exc):
            raise
        logger.warning("Download of task %s: storage failed (%r)", task.id, exc)
        return _file_gone(request, task, unavailable=True)
    etag = f'"{task.id}-{size}"'
    return file_download_response(request, handle, size=size, filename=name, etag=etag)


def _handle_size(handle: IO[bytes]) -> int:
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def _file_gone(request: HttpRequest, task: Task, *, unavailable: bool = False) -> HttpResponse:
    """A download that is not (or no longer) there: a page that says why and links back, not a bare
    404. `unavailable`: the storage did not answer (503, try again later)."""
    context = _page({"task": task, "task_json": task_to_dict(task), "unavailable": unavailable})
    response = render(request, "live_tasks/file_gone.html", context, status=503 if unavailable else 404)
    if unavailable:
        response["Retry-After"] = "30"
    return response


def _list_url(request: HttpRequest, task: Task | None) -> str:
    """Where to go after a deletion: the page the form came from (`next`), else the kind's list."""
    target = request.POST.get("next", "")
    own_page = task_url(task) if task is not None else None
    if target and target != own_page and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    try:
        return reverse(task.kind_spec.list_url_name) if task is not None else reverse("live_tasks:list")
    except (UnknownTaskKind, NoReverseMatch):
        return reverse("live_tasks:list")


@require_POST
@login_required_json_or_redirect
def task_delete_view(request: AuthenticatedHttpRequest, task_id: str, kind: str | None = None) -> HttpResponse:
    task = task_get_for_user(user=request.user, task_id=task_id, kind=kind)
    try:
        task_delete(task=task)
    except TaskError as error:
        return task_error_response(request, error)
    if wants_json(request):
        return JsonResponse({"deleted": str(task.id)})
    messages.success(request, gettext("%(label)s deleted.") % {"label": task.label})
    return redirect(_list_url(request, task))


@require_POST
@login_required_json_or_redirect
def tasks_delete_finished_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Delete the user's finished tasks, of one kind if the form says which (`kind`)."""
    kind = request.POST.get("kind") or None
    deleted = tasks_delete_finished(user=request.user, kind=kind)
    if wants_json(request):
        return JsonResponse({"deleted": deleted})
    text = ngettext("Deleted %(count)s finished task.", "Deleted %(count)s finished tasks.", deleted)
    messages.success(request, text % {"count": f"{deleted:,}"})
    return redirect(_list_url(request, None))


@require_GET
@login_required_json_or_redirect
def api_task_list(request: AuthenticatedHttpRequest) -> JsonResponse:
    # ?scope=all is the staff feed (the admin's polling fallback): every user's recent tasks.
    if request.GET.get("scope") == "all" and may(request.user, VIEW_EVERY_TASK):
        return JsonResponse({"tasks": task_snapshot_for(user=request.user, all_users=True)})
    # Newest first, TASKS_PER_PAGE a page: ?page=2 and so on, each page linking to the next.
    page = task_page_for_user(user=request.user, page=request.GET.get("page"))
    path = request.path
    return JsonResponse(
        {
            "tasks": [task_to_dict(task) for task in page],
            "count": page.paginator.count,
            "page": page.number,
            "pages": page.paginator.num_pages,
            "next": f"{path}?page={page.next_page_number()}" if page.has_next() else None,
            "previous": f"{path}?page={page.previous_page_number()}" if page.has_previous() else None,
        }
    )


@require_GET
@login_required_json_or_redirect
def api_task_detail(request: AuthenticatedHttpRequest, task_id: str) -> JsonResponse:
    return JsonResponse(task_to_dict(task_get_for_user(user=request.user, task_id=task_id)))
