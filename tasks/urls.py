"""The core's URLs: every task's page, cancel and download; the JSON API; and the per-kind set."""

from __future__ import annotations

from django.urls import URLPattern, path

from . import views

app_name = "tasks"
urlpatterns = [
    path("", views.task_list_page, name="list"),
    path("clear/", views.task_clear_view, name="clear"),
    path("<uuid:task_id>/", views.task_detail, name="detail"),
    path("<uuid:task_id>/cancel/", views.task_cancel_view, name="cancel"),
    path("<uuid:task_id>/download/", views.task_download, name="download"),
    path("<uuid:task_id>/delete/", views.task_delete_view, name="delete"),
]

# Mounted at /api/tasks/ by project/urls.py, outside the namespace.
api_urlpatterns = [
    path("", views.api_task_list, name="api-task-list"),
    path("<uuid:task_id>/", views.api_task_detail, name="api-task-detail"),
]


def kind_urlpatterns(kind: str, *, detail_template: str = "tasks/task_detail.html") -> list[URLPattern]:
    """A kind's own `<id>/`, `<id>/cancel/`, `<id>/download/` and `<id>/delete/`, for tasks of that kind only."""
    return [
        path("<uuid:task_id>/", views.task_detail, {"kind": kind, "template": detail_template}, name="detail"),
        path("<uuid:task_id>/cancel/", views.task_cancel_view, {"kind": kind}, name="cancel"),
        path("<uuid:task_id>/download/", views.task_download, {"kind": kind}, name="download"),
        path("<uuid:task_id>/delete/", views.task_delete_view, {"kind": kind}, name="delete"),
    ]
