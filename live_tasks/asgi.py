"""The live socket, for a site's `asgi.py`.

    django_asgi_app = get_asgi_application()  # first: it sets Django up

    from live_tasks.asgi import websocket_application

    application = ProtocolTypeRouter({"http": django_asgi_app, "websocket": websocket_application()})

The task feed is served at `LIVE_TASKS["WEBSOCKET_PATH"]`, beside any routes of the site's own,
and every route sits behind the session authentication and the exact Origin check: a site that
uses this cannot forget them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .push.origins import SameOriginValidator


def websocket_application(routes: Sequence[Any] = ()) -> SameOriginValidator:
    """The WebSocket application: the task feed plus `routes` (Channels routes, `path(..., Consumer.as_asgi())`).

    The Origin must be the site's own (scheme, host and port) or a CSRF-trusted one; the scope's
    user comes from the session cookie (Channels' AuthMiddlewareStack). Call it after Django is set up.
    """
    from channels.auth import AuthMiddlewareStack
    from channels.routing import URLRouter
    from django.urls import path

    from .conf import live_settings
    from .consumers import TaskFeedConsumer

    # Channels routes ASGI applications with django.urls.path(), which django-stubs types for views only.
    feed: Any = path(live_settings.WEBSOCKET_PATH.lstrip("/"), TaskFeedConsumer.as_asgi())  # type: ignore[arg-type]
    return SameOriginValidator(AuthMiddlewareStack(URLRouter([feed, *routes])))
