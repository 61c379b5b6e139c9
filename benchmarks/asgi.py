"""daphne's app for the socket-capacity baseline: the project's WebSocket stack (Origin check,
session auth) around a consumer that only accepts, at /ws/bench-noop/."""

from __future__ import annotations

from project.asgi import django_asgi_app  # first: sets Django up

# isort: split
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter
from django.urls import path

from live_tasks.asgi import websocket_application


class NoopConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


application = ProtocolTypeRouter(
    # Channels routes ASGI applications with django.urls.path(), which django-stubs types for views only.
    {"http": django_asgi_app, "websocket": websocket_application([path("ws/bench-noop/", NoopConsumer.as_asgi())])}  # type: ignore[arg-type]
)
