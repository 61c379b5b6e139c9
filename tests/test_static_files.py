"""Production static files: served by the project itself (whitenoise), before and after collectstatic."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request

import pytest

from tests.processes import ROOT, child_env, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def fetch(port: int, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.headers.get("Cache-Control", ""), response.read()


def test_css_and_js_are_served_before_and_after_collectstatic(tmp_path):
    env = child_env(DJANGO_SETTINGS_MODULE="project.settings", DEBUG="0", STATIC_ROOT=str(tmp_path / "static"))

    # A fresh checkout started straight with daphne: no collectstatic yet, and still no 500.
    with daphne(env) as (port, _):
        status, _, page = fetch(port, "/accounts/login/")
        assert status == 200
        assert b'href="/static/css/app.css"' in page
        assert fetch(port, "/static/css/app.css")[0] == 200

    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    with daphne(env) as (port, _):
        html = fetch(port, "/accounts/login/")[2].decode()
        (css,) = re.findall(r'href="(/static/css/app\.[0-9a-f]{12}\.css)"', html)
        status, cache_control, body = fetch(port, css)
        assert status == 200 and b".post .body" in body
        assert "immutable" in cache_control, "hashed files are cached for good"
