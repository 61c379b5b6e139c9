"""Import pages: POST /imports/ takes the upload; a task's own pages are the core's (imports/urls.py).

The checks run in the documented order (docs/imports.md): 401, 403 (CSRF), 413, 400, 409, then the
core's launch checks: 429 (launch rate), 409 (storage quota), 503 (no queue).
CSRF is checked here rather than by the middleware, because the middleware would read the whole
body before the upload handler is in place to cap it.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from tasks.http import wants_json
from tasks.models import Task
from tasks.selectors import task_to_dict
from tasks.views import task_launch_response

from .services import IMPORT_POSTS, import_start
from .uploads import FILE_FIELD, CappedUploadHandler, too_large_message


def _refused(request: HttpRequest, status: int, message: str, *, task: Task | None = None) -> HttpResponse:
    """The same status for every client: JSON for programs, the message on a page for people."""
    if wants_json(request):
        return JsonResponse(task_to_dict(task) if task else {"error": message}, status=status)
    context = {"message": message, "task_json": task_to_dict(task) if task else None}
    return render(request, "imports/import_refused.html", context, status=status)


def _body_size(request: HttpRequest) -> int:
    """A chunked request has no Content-Length; under ASGI the server has the whole body by now
    (under daphne, at most IMPORT_MAX_BYTES of it: project/bodylimit.py)."""
    stream = request._stream  # ASGIRequest's spooled body
    position = stream.tell()
    size = stream.seek(0, 2)
    stream.seek(position)
    return int(size)


@csrf_exempt  # checked in _import_create, once the upload is capped
@require_POST
def import_create(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return _refused(request, 401, "Please log in to import posts.")
    if not request.META.get("CONTENT_LENGTH"):
        request.META["CONTENT_LENGTH"] = str(_body_size(request))
    unfinished = Task.objects.for_user(request.user).unfinished().of_kind(IMPORT_POSTS).first()
    handler = CappedUploadHandler(max_bytes=settings.IMPORT_MAX_BYTES, store=unfinished is None)
    request.upload_handlers = [handler]
    try:
        return _import_create(request, handler, unfinished)
    finally:
        handler.discard()  # the upload, unless import_start moved it into the task's keeping


@csrf_protect
def _import_create(request: HttpRequest, handler: CappedUploadHandler, unfinished: Task | None) -> HttpResponse:
    upload = request.FILES.get(FILE_FIELD)
    if handler.too_large:
        return _refused(request, 413, too_large_message())
    if not handler.file_seen:
        return _refused(request, 400, "Choose a file to import (an export of your posts, .json or .json.gz).")
    if unfinished is not None or upload is None:
        return _refused(request, 409, "You already have a posts import in progress.", task=unfinished)
    assert handler.path is not None
    path = handler.path  # moved into the task's keeping by import_start; deleted by discard() if not
    user = request.user
    assert user.is_authenticated  # import_create answered anonymous requests with 401

    def refused_page() -> HttpResponse:
        return render(request, "imports/import_refused.html", {"message": ""})

    def start() -> Task:
        return import_start(user=user, upload=path, file_name=upload.name or "")

    return task_launch_response(request, start, refused_page=refused_page)
