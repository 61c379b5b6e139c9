from __future__ import annotations

from django.urls import path

from live_tasks.urls import kind_urlpatterns

from . import views
from .services import EXPORT_POSTS

app_name = "exports"
urlpatterns = [
    path("", views.export_list, name="list"),
    *kind_urlpatterns(EXPORT_POSTS, detail_template="exports/export_detail.html"),
]
