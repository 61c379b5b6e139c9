"""Root URL map: each app owns its URLs; the admin and the RQ dashboard are for staff."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from exports import api as exports_api
from project.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="exports:list", permanent=False), name="home"),
    path("accounts/", include("accounts.urls")),
    path("posts/", include("posts.urls")),
    path("exports/", include("exports.urls")),
    path("api/tasks/", exports_api.task_list, name="api-task-list"),
    path("api/tasks/<uuid:task_id>/", exports_api.task_detail, name="api-task-detail"),
    # django-rq's dashboard (queues, workers, failed jobs); its views require staff.
    path("django-rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
