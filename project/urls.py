"""Root URL map: each app owns its URLs; the admin and the RQ dashboard are for staff."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

from live_tasks.health import healthz
from live_tasks.urls import api_urlpatterns
from project.csp import allow_inline_scripts_and_styles


def _rq_dashboard_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    view = allow_inline_scripts_and_styles(view)

    @functools.wraps(view)
    def superusers_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # Others who are not staff meet django-rq's own staff_member_required: the admin's login.
        if request.user.is_staff and not request.user.is_superuser:
            raise PermissionDenied
        response: HttpResponse = view(request, *args, **kwargs)
        return response

    return superusers_only


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="exports:list", permanent=False), name="home"),
    path("accounts/", include("accounts.urls")),
    path("posts/", include("posts.urls")),
    path("exports/", include("exports.urls")),
    path("imports/", include("imports.urls")),
    path("recount/", include("recount.urls")),
    path("tasks/", include("live_tasks.urls")),
    path("api/tasks/", include(api_urlpatterns)),
    # django-rq's dashboard (queues, workers, failed jobs): superusers only, since it can stop,
    # delete and requeue any job, which the task admin grants staff one permission at a time. Its
    # pages need inline scripts: the only place the Content-Security-Policy is loosened.
    path(
        "django-rq/",
        include((get_api_urlpatterns() + get_admin_urlpatterns(view_wrapper=_rq_dashboard_view), "django_rq")),
    ),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    # Pages link their icon (base.html); this answers what browsers and tools ask for regardless.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=False)),
]

# The error pages keep the site's layout (404.html and 403.html need no handler of their own).
handler500 = "project.views.server_error"
