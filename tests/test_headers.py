"""Security headers: one strict Content-Security-Policy everywhere but django-rq's dashboard,
and a Permissions-Policy. (tests/e2e/test_browser_security.py checks that the pages work under them.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize("url", ["/accounts/login/", "/exports/", "/posts/", "/tasks/", "/admin/", "/healthz"])
def test_every_page_has_the_strict_policy_and_a_permissions_policy(url, user, client_for, queue):
    user.is_staff = True
    user.save()
    client = Client() if url == "/accounts/login/" else client_for(user)
    response = client.get(url)
    assert response.status_code in (200, 503)  # /healthz: no scheduler runs here
    directives = policy(response)
    for name, value in STRICT.items():
        assert directives[name] == value, (name, directives)
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    permissions = response["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in permissions


def test_only_the_rq_dashboard_allows_inline_scripts(admin_client):
    response = admin_client.get("/django-rq/")
    assert response.status_code == 200
    directives = policy(response)
    assert directives["script-src"] == "'self' 'unsafe-inline'"
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_no_inline_script_or_style_in_the_projects_own_templates():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    for template in [*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]:
        if ".venv" in template.parts:
            continue
        text = template.read_text()
        assert not inline_script.search(text), template
        assert not handler.search(text), template
        assert "style=" not in text and "<style" not in text, template
