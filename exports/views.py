"""Export pages: launch, list, follow one, download. Thin: each calls one service or selector."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .emails import ATTACHMENT_NAME
from .http import login_required_json_or_redirect, wants_json
from .models import Task
from .selectors import task_get_for_user, task_list_for_user, task_to_dict
from .services import ExportAlreadyRunning, QueueUnavailable, TaskAlreadyFinished, export_cancel, export_start


@require_http_methods(["GET", "POST"])
@login_required_json_or_redirect
def export_list(request):
    if request.method == "POST":
        return _export_launch(request)
    return render(request, "exports/export_list.html", {"tasks": task_list_for_user(user=request.user)})


def _export_launch(request):
    json_client = wants_json(request)
    try:
        task = export_start(user=request.user)
    except ExportAlreadyRunning as exc:
        if json_client:
            return JsonResponse(task_to_dict(exc.task), status=409)
        messages.info(request, "You already have an export in progress; here it is.")
        return redirect("exports:detail", task_id=exc.task.id)
    except QueueUnavailable as exc:
        if json_client:
            return JsonResponse({"error": str(exc)}, status=503)
        messages.error(request, str(exc))
        return render(request, "exports/export_list.html", {"tasks": task_list_for_user(user=request.user)}, status=503)
    if json_client:
        return JsonResponse(task_to_dict(task), status=202)
    messages.success(request, "Export started. You can follow it here, and it will be emailed to you.")
    return redirect("exports:detail", task_id=task.id)


@require_GET
@login_required
def export_detail(request, task_id):
    task = task_get_for_user(user=request.user, task_id=task_id)
    return render(request, "exports/export_detail.html", {"task": task, "task_json": task_to_dict(task)})


@require_POST
@login_required_json_or_redirect
def export_cancel_view(request, task_id):
    task = task_get_for_user(user=request.user, task_id=task_id)
    try:
        task = export_cancel(task=task)
    except TaskAlreadyFinished as exc:
        if wants_json(request):
            return JsonResponse(task_to_dict(exc.task), status=409)
        messages.info(request, str(exc))
        return redirect("exports:detail", task_id=task.id)
    if wants_json(request):
        return JsonResponse(task_to_dict(task))
    messages.success(request, "Export cancelled.")
    return redirect("exports:detail", task_id=task.id)


@require_GET
@login_required
def export_download(request, task_id):
    task = task_get_for_user(user=request.user, task_id=task_id)
    if task.status != Task.Status.SUCCEEDED or not task.file:
        raise Http404("This export has no file to download.")
    try:
        handle = task.file.open("rb")
    except FileNotFoundError:
        raise Http404("This export's file is no longer available.") from None
    response = FileResponse(handle, as_attachment=True, filename=ATTACHMENT_NAME, content_type="application/json")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
