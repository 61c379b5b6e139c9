"""The site's error pages: they keep its navigation and say what to do next (templates/403*, 404, 500)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme

logger = logging.getLogger(__name__)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """settings.CSRF_FAILURE_VIEW. The usual cause is a tab left open across a sign-out and sign-in
    (its form carries the old session's token): offer to go back to that page, freshly loaded."""
    referer = request.headers.get("Referer", "")
    back = referer if url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}) else ""
    # Django's reason ("CSRF token from POST incorrect.") goes to the log, not to the visitor.
    logger.warning("CSRF failure on %s: %s", request.path, reason)
    return render(request, "403_csrf.html", {"back": back}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the site's layout, signed in as usual if rendering that still works."""
    try:
        return render(request, "500.html", status=500)
    except Exception:
        # The failure may be in what the page needs (the database, a context processor).
        logger.exception("The 500 page could not be rendered with the request; rendering it bare")
        try:
            return HttpResponseServerError(render_to_string("500.html"))
        except Exception:
            return HttpResponseServerError("<h1>Server error</h1>", content_type="text/html")
