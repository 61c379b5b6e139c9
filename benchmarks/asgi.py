"""The project's ASGI application plus one benchmark-only WebSocket route, /ws/bench-noop/: a
consumer that only accepts, behind the same origin check and session auth (the socket capacity
benchmark's baseline). The product's routes are the project's own, unchanged."""

from project.asgi import django_asgi_app  # first: sets Django up for the imports below

# isort: split
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path
from notifications.routing import websocket_urlpatterns


class NoopConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([*websocket_urlpatterns, path("ws/bench-noop/", NoopConsumer.as_asgi())]))
        ),
    }
)
