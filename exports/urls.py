from django.urls import path

from . import views

app_name = "exports"
urlpatterns = [
    path("", views.export_list, name="list"),
    path("<uuid:task_id>/", views.export_detail, name="detail"),
    path("<uuid:task_id>/cancel/", views.export_cancel_view, name="cancel"),
    path("<uuid:task_id>/download/", views.export_download, name="download"),
]
