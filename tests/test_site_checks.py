"""This site's real settings pass every check of the library (each check's own tests:
tests/library/test_checks.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from tests.processes import ROOT


@pytest.mark.django_db  # Django 6.1's model checks ask the database what it supports (JSONField)
def test_the_site_settings_give_none_of_the_librarys():
    assert [m for m in run_checks() if str(m.id).startswith("live_tasks.")] == []


def test_manage_py_check_on_the_real_settings_is_clean():
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="project.settings")
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout
