"""The project's URLs plus a no-op view: the launch benchmark's baseline, on the same server,
behind the same middleware (sessions, CSRF, auth), doing no work of its own."""

from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.http import require_POST


@require_POST
def noop(request):
    return JsonResponse({}, status=202)


urlpatterns = [
    path("", include("project.urls")),
    path("bench/noop/", noop),
]
