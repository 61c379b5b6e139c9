"""What the import tests share: a browser-like client and the upload files a test left behind."""

from __future__ import annotations

import pytest

from live_tasks.files import work_dir
from tests.factories import UserFactory, signed_in_client


@pytest.fixture
def browser(db):
    """A signed-in client that enforces CSRF like a browser's session, with its token at hand."""
    user = UserFactory()
    client = signed_in_client(user, enforce_csrf_checks=True)
    client.get("/posts/")
    client.user, client.token = user, client.cookies["csrftoken"].value  # type: ignore[attr-defined]  # the test's own
    return client


@pytest.fixture
def uploads_left():
    """The names of upload and input files in the work directory that a test left behind."""
    before = set(work_dir().iterdir())
    return lambda: set(work_dir().iterdir()) - before
