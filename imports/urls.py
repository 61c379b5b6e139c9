from __future__ import annotations

from django.urls import path

from live_tasks.urls import kind_urlpatterns

from . import views
from .services import IMPORT_POSTS

app_name = "imports"
urlpatterns = [
    path("", views.import_create, name="create"),
    *kind_urlpatterns(IMPORT_POSTS, detail_template="imports/import_detail.html"),
]
