"""`path("tasks/", include("live_tasks.urls"))`: every task's page, cancel, delete and download, the
Task JSON (`api/`), the catalog of live.js's translations, and the Prometheus metrics (`metrics/`,
behind LIVE_TASKS["METRICS_TOKEN"]). A kind's own set: `kind_urlpatterns`."""

from __future__ import annotations

from django.urls import URLPattern, path
from django.views.i18n import JavaScriptCatalog

from . import metrics, views

# Mounted at /api/tasks/ too by this site's project/urls.py (its clients use that path).
api_urlpatterns = [
    path("", views.api_task_list, name="api-task-list"),
    path("<uuid:task_id>/", views.api_task_detail, name="api-task-detail"),
]

app_name = "live_tasks"
urlpatterns = [
    path("", views.task_list_page, name="list"),
    path("delete-finished/", views.tasks_delete_finished_view, name="delete-finished"),
    path("<uuid:task_id>/", views.task_detail, name="detail"),
    path("<uuid:task_id>/cancel/", views.task_cancel_view, name="cancel"),
    path("<uuid:task_id>/download/", views.task_download, name="download"),
    path("<uuid:task_id>/delete/", views.task_delete_view, name="delete"),
    path("api/", views.api_task_list, name="api-task-list"),
    path("api/<uuid:task_id>/", views.api_task_detail, name="api-task-detail"),
    path("jsi18n/", JavaScriptCatalog.as_view(packages=["live_tasks"]), name="javascript-catalog"),
    path("metrics/", metrics.metrics_view, name="metrics"),
]


def kind_urlpatterns(kind: str, *, detail_template: str = "live_tasks/task_detail.html") -> list[URLPattern]:
    """A kind's own `<id>/`, `<id>/cancel/`, `<id>/download/` and `<id>/delete/`, for tasks of that kind only."""
    return [
        path("<uuid:task_id>/", views.task_detail, {"kind": kind, "template": detail_template}, name="detail"),
        path("<uuid:task_id>/cancel/", views.task_cancel_view, {"kind": kind}, name="cancel"),
        path("<uuid:task_id>/download/", views.task_download, {"kind": kind}, name="download"),
        path("<uuid:task_id>/delete/", views.task_delete_view, {"kind": kind}, name="delete"),
    ]
