"""The project's URLs plus /bench/noop/: the launch baseline, behind the same middleware, doing nothing."""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_POST


@require_POST
def noop(request):
    return JsonResponse({}, status=202)


urlpatterns = [path("", include("project.urls")), path("bench/noop/", noop)]
