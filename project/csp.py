"""The one place where the Content-Security-Policy is loosened: django-rq's dashboard.

Every page of the site and Django's admin work under the strict policy of settings.CSP_DIRECTIVES
(their scripts and styles are files). django-rq's templates carry inline <script> and <style>
blocks, so its staff-only views also allow inline scripts and styles, and nothing else more.
Django 6 has CSP built in; on 5.2 LTS django-csp sets the header (settings.DJANGO_HAS_CSP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings

INLINE = "'unsafe-inline'"


def allow_inline_scripts_and_styles(view: Callable[..., Any]) -> Callable[..., Any]:
    if settings.DJANGO_HAS_CSP:
        # Django 6.0+ only: django-stubs follows the 5.2 LTS, which has no such module.
        from django.views.decorators.csp import csp_override  # type: ignore[import-untyped]

        policy = dict(settings.SECURE_CSP)
        policy["script-src"] = [*policy["script-src"], INLINE]
        policy["style-src"] = [*policy["style-src"], INLINE]
        overridden: Callable[..., Any] = csp_override(policy)(view)
        return overridden

    from csp.decorators import csp_update

    return csp_update({"script-src": [INLINE], "style-src": [INLINE]})(view)
