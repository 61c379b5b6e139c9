"""JSON status of the signed-in user's tasks: the same Task shape as the WebSocket pushes."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .http import login_required_json_or_redirect
from .selectors import task_get_for_user, task_list_for_user, task_snapshot_for, task_to_dict


@require_GET
@login_required_json_or_redirect
def task_list(request):
    # ?scope=all is the staff feed (the admin's polling fallback): every user's recent tasks.
    if request.GET.get("scope") == "all" and request.user.is_staff:
        return JsonResponse({"tasks": task_snapshot_for(user=request.user, all_users=True)})
    tasks = task_list_for_user(user=request.user)
    return JsonResponse({"tasks": [task_to_dict(task) for task in tasks]})


@require_GET
@login_required_json_or_redirect
def task_detail(request, task_id):
    return JsonResponse(task_to_dict(task_get_for_user(user=request.user, task_id=task_id)))
