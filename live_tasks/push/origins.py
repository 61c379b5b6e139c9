"""The WebSocket Origin check: the same rule as Django's CSRF check for a POST.

A handshake is accepted only when its Origin is the origin the handshake itself came in on
(scheme, host and port; the host in ALLOWED_HOSTS), or is listed in CSRF_TRUSTED_ORIGINS (exactly,
or as https://*.example.com), which is what a deployment behind a reverse proxy lists.
Channels' AllowedHostsOriginValidator compares host names only, so another application on the
same host, on any port, could open a signed-in user's feed from the user's own browser.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _normalised(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    domain, port = split_domain_port(netloc.lower())
    if not domain or scheme not in DEFAULT_PORTS:
        return None
    try:
        return scheme, domain, int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None


def _request_scheme(scope: dict[str, Any]) -> str:
    secure = scope.get("scheme") in ("wss", "https")
    proxy_header = settings.SECURE_PROXY_SSL_HEADER
    if proxy_header:
        # As request.is_secure(): trust the proxy's header only when settings say there is one.
        meta_name, expected = proxy_header
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower().encode()
        forwarded = _header(scope, name)
        if forwarded is not None:
            secure = forwarded.split(",", 1)[0].strip() == expected
    return "https" if secure else "http"


def _allowed_hosts() -> list[str]:
    hosts: list[str] = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:
        return [".localhost", "127.0.0.1", "[::1]"]  # as HttpRequest.get_host() in DEBUG
    return hosts


def origin_allowed(scope: dict[str, Any]) -> bool:
    origin = _header(scope, b"origin")
    if not origin:
        return False
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" in trusted:
            pattern = urlsplit(trusted)
            if pattern.scheme == parsed.scheme and is_same_domain(parsed.netloc, pattern.netloc.lstrip("*")):
                return True
    host = _header(scope, b"host")
    if not host:
        return False
    own = _normalised(_request_scheme(scope), host)
    if own is None or not validate_host(own[1], _allowed_hosts()):
        return False
    return _normalised(parsed.scheme, parsed.netloc) == own


class SameOriginValidator:
    """ASGI middleware for WebSocket routes: refuses the handshake (HTTP 403) from another origin."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            # A plain ASGI scope: channels' stubs type a consumer's scope as their own TypedDict.
            return await WebsocketDenier()(scope, receive, send)  # type: ignore[arg-type]
        return await self.application(scope, receive, send)
