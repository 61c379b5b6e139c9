"""The production template in .env.example is complete, read by settings, and passes check --deploy."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.processes import ROOT, child_env

ENV_EXAMPLE = ROOT / ".env.example"


def example_values() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if re.match(r"^[A-Z_]+=", line))
    return {key: value for key, value in pairs}


def test_check_deploy_passes_with_the_production_template(tmp_path):
    env = child_env(DJANGO_SETTINGS_MODULE="project.settings", **example_values())
    env["MEDIA_ROOT"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_every_setting_read_from_the_environment_is_documented():
    settings_source = (ROOT / "project" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_source))
    documented = set(example_values()) | set(re.findall(r"^# ([A-Z_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    assert read, "settings.py reads its configuration through django-environ"
    assert read - documented == set(), f"undocumented in .env.example: {sorted(read - documented)}"
