"""Shared set-up for the Playwright tests: site processes' environment, fast seeding, Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

from django.db import connection, transaction
from django.utils import timezone

from posts.models import Post
from tests.factories import session_cookie_for
from tests.library.helpers import launch_chromium as launch_chromium
from tests.library.helpers import off_loop
from tests.processes import ROOT, child_env

# Many small chunks and a short throttle, so that an export reports its progress often.
SITE_ENV = {"EXPORT_CHUNK_SIZE": "500", "TASK_PROGRESS_INTERVAL": "0.05"}
OUT = Path(os.environ.get("TEST_OUTPUT_DIR", ROOT / "test-output"))
BAR = "main .task progress[data-field=bar]"
DOWNLOAD_LINK = "main [data-field=download] a"

# Runs in the page before its own scripts: records every value a task's bar is given.
RECORD_PROGRESS = """
window.__progress = [];
new MutationObserver(function (records) {
  records.forEach(function (r) {
    if (r.target.matches && r.target.matches(".task progress[data-field=bar]")) {
      window.__progress.push(Number(r.target.getAttribute("value")));
    }
  });
}).observe(document, {subtree: true, attributes: true, attributeFilter: ["value"]});
"""


def seed_posts(user, count: int) -> None:
    """Insert `count` posts in one statement: posts.services.posts_seed builds a model per row
    (about 30 µs each), far too slow for the million-row scale that makes an export last."""
    table = Post._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            # The fingerprint only matters to imports (posts.models.post_fingerprint); any number will do here.
            f"INSERT INTO {table} (author_id, body, created_at, fingerprint) "  # noqa: S608 -- our own table name
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %s) "
            "SELECT %s, 'Browser post ' || i, %s, i FROM n",
            [count, user.pk, timezone.now()],
        )
    assert Post.objects.filter(author=user).count() == count


def site_env_for(smtp_url: str, **extra: str) -> dict[str, str]:
    """The environment for daphne and the worker, with the static files collected for daphne.

    Production settings (DEBUG off) serve static files (live.js) from STATIC_ROOT through WhiteNoise,
    and daphne reads STATIC_ROOT when it starts: collect first.
    """
    env = child_env(EMAIL_URL=smtp_url, **{**SITE_ENV, **extra})
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True, timeout=60
    )
    return env


def sign_in(context, user, url: str) -> None:
    """Give a browser context the session cookie of `user` for the site at `url` (any page of it).

    The login form is covered by test_browser.py; this is the quick way in.
    """
    host = urlsplit(url).hostname
    cookie = off_loop(session_cookie_for, user)
    # For the whole site: a cookie set for a page's URL would be scoped to that page's path.
    context.add_cookies([{"name": "sessionid", "value": cookie, "domain": host, "path": "/", "httpOnly": True}])


def bar_value(page, selector: str = BAR) -> int:
    return int(page.locator(selector).get_attribute("value"))
