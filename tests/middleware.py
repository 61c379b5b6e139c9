"""Test-only middleware for daphne started by the tests (tests/settings.py adds it on request)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from django.db import transaction
from django.http import HttpRequest, HttpResponse


def hold_the_commit(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[[HttpRequest], HttpResponse]:
    """Each request runs in one transaction that stays open TEST_HOLD_COMMIT_SECONDS after the view
    has answered, as a slow commit would: a job enqueued before the commit reaches a worker that
    cannot see its task yet."""
    hold = float(os.environ["TEST_HOLD_COMMIT_SECONDS"])

    def middleware(request: HttpRequest) -> HttpResponse:
        with transaction.atomic():
            response = get_response(request)
            if request.method == "POST":
                time.sleep(hold)
        return response

    return middleware
