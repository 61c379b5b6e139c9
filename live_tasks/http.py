"""Small HTTP helpers shared by the task pages, the kinds' views and the JSON API."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator
from functools import wraps
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import content_disposition_header
from django.utils.translation import gettext

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class AuthenticatedHttpRequest(HttpRequest):
    """For annotations only: the request of a view behind `login_required` (or
    `login_required_json_or_redirect`), whose user is signed in. Django still passes its own
    HttpRequest; this tells the type checker that `request.user` is a user, not AnonymousUser."""

    user: User


def wants_json(request: HttpRequest) -> bool:
    """A programmatic client asked for JSON; browsers' navigations never send this type."""
    return "application/json" in request.headers.get("Accept", "")


def login_required_json_or_redirect(view: _View) -> _View:
    """Anonymous JSON clients get 401 JSON; anonymous browsers are redirected to the login page."""
    redirecting_view = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated and (wants_json(request) or request.path.startswith("/api/")):
            return JsonResponse({"error": gettext("Authentication required.")}, status=401)
        return redirecting_view(request, *args, **kwargs)

    return cast("_View", wrapper)  # the view's own signature; a 401 is a JsonResponse like any answer


# --- Serving a result file: GET, HEAD and single byte ranges (RFC 9110, section 14) ------------
_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
FILE_CHUNK_SIZE = 64 * 1024


class RangeNotSatisfiable(Exception):
    pass


def requested_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range `header` asks for, as (first, last) inclusive, or None for the whole file.

    Several ranges, or a header that does not parse, get the whole file: the RFC lets a server
    ignore a Range header, and a resumed download never asks for more than one. Raises
    RangeNotSatisfiable for a range that starts past the end (the answer is then 416).
    """
    match = _RANGE.match(header or "")
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)  # bytes=-N: the last N bytes
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable
    return start, min(int(last) if last else size - 1, size - 1)


def _read_range(handle: IO[bytes], first: int, last: int) -> Iterator[bytes]:
    try:
        handle.seek(first)
        limit_to = getattr(handle, "limit_to", None)
        if limit_to is not None:
            limit_to(last)  # an object in a bucket (live_tasks.files.result_open): a GET of these bytes only
        remaining = last - first + 1
        while remaining > 0:
            chunk = handle.read(min(FILE_CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def file_download_response(
    request: HttpRequest, handle: IO[bytes], *, size: int, filename: str, etag: str
) -> HttpResponseBase:
    """A private attachment: the whole file, one byte range of it (206, for resumed downloads), or
    for HEAD only the headers. `handle` is closed when the response is done with it."""
    content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    assert disposition is not None  # None only for an inline response without a file name
    headers = {
        "Content-Disposition": disposition,
        "Accept-Ranges": "bytes",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    byte_range = None
    if_range = request.headers.get("If-Range")
    if request.method == "GET" and (if_range is None or if_range == etag):
        try:
            byte_range = requested_range(request.headers.get("Range", ""), size)
        except RangeNotSatisfiable:
            handle.close()
            return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if request.method == "HEAD":
        handle.close()
        response: HttpResponseBase = HttpResponse(content_type=content_type, headers=headers)
        response["Content-Length"] = str(size)
        return response
    if byte_range is None:
        response = FileResponse(handle, as_attachment=True, filename=filename, content_type=content_type)
        for name, value in headers.items():
            response[name] = value
        return response
    first, last = byte_range
    response = StreamingHttpResponse(
        _read_range(handle, first, last), status=206, content_type=content_type, headers=headers
    )
    response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Content-Length"] = str(last - first + 1)
    return response
