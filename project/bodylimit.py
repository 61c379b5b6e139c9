"""The request-body limit, enforced inside daphne while a body arrives, before any of it is stored.

daphne's HTTP/1.1 is Twisted's, and Twisted receives a request's whole body (into a temporary
file past 100 kB) before daphne even builds the ASGI scope; Django's ASGI handler then copies it
into another before any middleware or view runs. A limit in a view or in an ASGI middleware
therefore comes after the disk has filled (measured: a POST to /accounts/login/ declaring 1 GiB,
256 MiB streamed, all of it taken into daphne's temporary file, no answer). The request class below
refuses a body whose Content-Length is over its limit as soon as the headers are in, and counts a
chunked one as it arrives: 413, the connection closed, nothing of the body kept.
project/asgi.py installs it in the process that serves the site (daphne, or `runserver`).

POST /imports/ may send up to IMPORT_MAX_BYTES (its own limit, imports/uploads.py); any other
request REQUEST_BODY_MAX_BYTES. Behind a reverse proxy, the proxy's limit comes first (nginx:
client_max_body_size, docs/deploy.md).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from io import BytesIO
from typing import Any
from urllib.parse import unquote

from daphne import http_protocol
from django.conf import settings
from django.urls import reverse
from django.utils.html import escape
from twisted.web import http

logger = logging.getLogger(__name__)

# After the 413, what the client is still sending is read and dropped for this long, then the
# connection is closed. Closed at once with unread data, it would be reset, and a reset can destroy
# the answer in the client's buffers before the client reads it (RFC 9112, section 9.6).
LINGER_SECONDS = 5.0


@dataclass(frozen=True)
class BodyLimit:
    max_bytes: int
    message: str


@dataclass(frozen=True)
class BodyLimits:
    default: BodyLimit
    by_route: dict[tuple[bytes, str], BodyLimit]  # (method, path) -> a limit of its own

    def for_request(self, method: bytes, target: bytes) -> BodyLimit:
        # The path as daphne hands it to Django (without the query, percent-decoded): the route
        # matched here is the one Django resolves.
        path = unquote(target.split(b"?", 1)[0].decode("ascii", "replace"))
        return self.by_route.get((method, path), self.default)


def site_limits() -> BodyLimits:
    from imports.reader import format_size
    from imports.uploads import too_large_message

    default = settings.REQUEST_BODY_MAX_BYTES
    return BodyLimits(
        default=BodyLimit(default, f"The request is too large: the limit is {format_size(default)}."),
        by_route={(b"POST", reverse("imports:create")): BodyLimit(settings.IMPORT_MAX_BYTES, too_large_message())},
    )


def refusal(limit: BodyLimit, *, json_client: bool) -> bytes:
    """The whole 413 response, in the site's two shapes: JSON for programs, a page for people."""
    if json_client:
        body, content_type = json.dumps({"error": limit.message}).encode(), b"application/json"
    else:
        title = "413 Content Too Large"
        page = f"<!DOCTYPE html><html lang=en><title>{title}</title><h1>{title}</h1><p>{escape(limit.message)}</p>"
        body, content_type = page.encode(), b"text/html; charset=utf-8"
    head = [
        b"HTTP/1.1 413 Content Too Large",
        b"Content-Type: " + content_type,
        b"Content-Length: %d" % len(body),
        b"Connection: close",
        b"X-Content-Type-Options: nosniff",
        b"Content-Security-Policy: default-src 'none'",
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


class BodyLimitedRequest(http_protocol.WebRequest):  # type: ignore[misc]  # daphne ships no types
    """daphne's request, with its body capped while it is received (Twisted's hooks, per request)."""

    limits: BodyLimits | None = None  # set by limit_request_bodies()
    _limit: BodyLimit | None = None
    _received = 0
    _refused = False
    _linger: Any = None

    def gotLength(self, length: int | None) -> None:  # noqa: N802 -- Twisted's name
        # Called once the headers are in, before any of the body. HTTP/1.1 only: daphne speaks
        # HTTP/2 only on a TLS endpoint, which this site never gives it (TLS ends at the proxy).
        channel = self.channel
        if self.limits is None or not isinstance(channel, http.HTTPChannel):
            super().gotLength(length)
            return
        # Twisted keeps the request line on the channel until the body is complete.
        self._limit = self.limits.for_request(getattr(channel, "_command", b""), getattr(channel, "_path", b""))
        if length is not None and length > self._limit.max_bytes:
            self.content = BytesIO()  # never written to
            self._refuse(f"declared {length:,} bytes")
            return
        # Sized for what may come: held in memory under 100 kB, else in a file that is unlinked at
        # once (it vanishes with the process, even a killed one).
        super().gotLength(self._limit.max_bytes if length is None else length)

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 -- Twisted's name
        if self._refused:
            return  # lingering: read and dropped
        if self._limit is not None:
            self._received += len(data)
            if self._received > self._limit.max_bytes:  # only without a Content-Length
                self.content.close()  # what was kept so far goes with it
                self.content = BytesIO()
                self._refuse(f"sent over {self._limit.max_bytes:,} bytes without a Content-Length")
                return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:  # noqa: N802 -- Twisted's name
        if self._refused:
            return  # the whole refused body came within the linger: the application never runs
        super().requestReceived(command, path, version)

    def connectionLost(self, reason: Any) -> None:  # noqa: N802 -- Twisted's name
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        super().connectionLost(reason)

    def _refuse(self, why: str) -> None:
        assert self._limit is not None
        self._refused = True
        # Twisted answers "Expect: 100-continue" right after gotLength: not after a refusal.
        self.requestHeaders.removeHeader(b"expect")
        accept = b",".join(self.requestHeaders.getRawHeaders(b"accept") or [])
        channel = self.channel
        channel.persistent = False
        transport = channel.transport
        transport.write(refusal(self._limit, json_client=b"application/json" in accept))
        transport.loseWriteConnection()
        self._linger = channel.callLater(LINGER_SECONDS, transport.abortConnection)  # as Twisted's own timers
        peer = transport.getPeer()
        logger.warning(
            "Refused a request body over %s bytes (%s): %s %s from %s",
            f"{self._limit.max_bytes:,}",
            why,
            getattr(channel, "_command", b"").decode("ascii", "replace"),
            getattr(channel, "_path", b"").decode("ascii", "replace")[:200],
            getattr(peer, "host", peer),
        )


def limit_request_bodies() -> None:
    """Make daphne build its HTTP requests from BodyLimitedRequest: daphne has no option for a limit,
    and its factory looks the class up by name for every new connection."""
    BodyLimitedRequest.limits = site_limits()
    http_protocol.WebRequest = BodyLimitedRequest
