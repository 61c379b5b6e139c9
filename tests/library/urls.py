from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from .testapp.views import steps_start

urlpatterns = [
    path("admin/", admin.site.urls),
    path("tasks/", include("live_tasks.urls")),
    path("steps/", steps_start, name="steps-start"),
]
