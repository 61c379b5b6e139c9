"""The site's URLs plus one view that fails, to see the 500 page (tests/test_error_pages.py)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import path

from project.urls import handler500
from project.urls import urlpatterns as site_urlpatterns


def boom(request):
    raise RuntimeError("a bug")


def forbidden(request):
    raise PermissionDenied


urlpatterns = [*site_urlpatterns, path("boom/", boom), path("forbidden/", forbidden)]
__all__ = ["handler500", "urlpatterns"]
