from __future__ import annotations

from django.urls import path

from .consumers import TaskNotificationsConsumer

websocket_urlpatterns = [path("ws/notifications/", TaskNotificationsConsumer.as_asgi())]
