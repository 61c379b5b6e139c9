"""Import pages: POST /imports/ takes the upload; a task's own pages are the core's (imports/urls.py).

The checks run in the documented order (docs/imports.md): 401, 403 (CSRF), 413, 400, 409, then the
core's launch checks: 429 (launch rate), 409 (storage quota), 503 (no queue).
CSRF is checked here rather than by the middleware, because the middleware would read the whole
body before the upload handler is in place to cap it.
"""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from live_tasks import Task, TaskAlreadyRunning, TaskError, task_to_dict
from live_tasks.views import task_error_response, task_launch_response

from .services import IMPORT_POSTS, import_start
from .uploads import FILE_FIELD, CappedUploadHandler, too_large_message


class ImportLoginRequired(TaskError):
    status = 401


class ImportTooLarge(TaskError):
    status = 413


class ImportFileMissing(TaskError):
    status = 400


def _refused_page(request: HttpRequest, error: TaskError) -> HttpResponse:
    """This view's own refusals, for people: the message, a link to the task it is about, the form again."""
    context = {"message": error.message, "task_json": task_to_dict(error.task) if error.task else None}
    return render(request, "imports/import_refused.html", context)


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
    try:
        if not request.user.is_authenticated:
            raise ImportLoginRequired("Please log in to import posts.")
        if not request.META.get("CONTENT_LENGTH"):
            request.META["CONTENT_LENGTH"] = str(_body_size(request))
        unfinished = Task.objects.for_user(request.user).unfinished().of_kind(IMPORT_POSTS).first()
        handler = CappedUploadHandler(max_bytes=settings.IMPORT_MAX_BYTES, store=unfinished is None)
        request.upload_handlers = [handler]
        try:
            return _import_create(request, handler, unfinished)
        finally:
            handler.discard()  # the upload, unless import_start moved it into the task's keeping
    except TaskError as error:  # this view's own checks; the launch's refusals are task_launch_response's
        return task_error_response(request, error, page=partial(_refused_page, request))


@csrf_protect
def _import_create(request: HttpRequest, handler: CappedUploadHandler, unfinished: Task | None) -> HttpResponse:
    upload = request.FILES.get(FILE_FIELD)
    if handler.too_large:
        raise ImportTooLarge(too_large_message())
    if not handler.file_seen or (upload is None and unfinished is None):
        raise ImportFileMissing("Choose a file to import (an export of your posts, .json or .json.gz).")
    if unfinished is not None:
        raise TaskAlreadyRunning(unfinished)  # found before the upload, which was therefore not stored
    assert upload is not None and handler.path is not None
    path = handler.path  # moved into the task's keeping by import_start; deleted by discard() if not
    user = request.user
    assert user.is_authenticated  # import_create answered anonymous requests with 401

    def refused_page() -> HttpResponse:
        return render(request, "imports/import_refused.html", {"message": ""})

    def start() -> Task:
        return import_start(user=user, upload=path, file_name=upload.name or "")

    return task_launch_response(request, start, refused_page=refused_page)
