from __future__ import annotations

from django.urls import path

from . import views

app_name = "posts"
urlpatterns = [
    path("", views.post_list, name="list"),
    path("<int:post_id>/edit/", views.post_edit, name="edit"),
    path("<int:post_id>/delete/", views.post_delete_view, name="delete"),
]
