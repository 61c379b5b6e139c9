"""Small HTTP helpers shared by the task pages, the kinds' views and the JSON API."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse


def wants_json(request: HttpRequest) -> bool:
    """A programmatic client asked for JSON; browsers' navigations never send this type."""
    return "application/json" in request.headers.get("Accept", "")


def login_required_json_or_redirect(view):
    """Anonymous JSON clients get 401 JSON; anonymous browsers are redirected to the login page."""
    redirecting_view = login_required(view)

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated and (wants_json(request) or request.path.startswith("/api/")):
            return JsonResponse({"error": "Authentication required."}, status=401)
        return redirecting_view(request, *args, **kwargs)

    return wrapper
