from __future__ import annotations

from django.urls import path

from .consumers import TaskNotificationsConsumer

# Channels' URLRouter takes django.urls.path() with an ASGI application, which django-stubs types for views only.
websocket_urlpatterns = [path("ws/notifications/", TaskNotificationsConsumer.as_asgi())]  # type: ignore[arg-type]
