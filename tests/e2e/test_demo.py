"""The first five minutes of a newcomer, as `make run` sets them up: the demo user (ensure_demo),
daphne and a worker with the site's own defaults, a browser that logs in as demo / demo.

Their export lasts long enough to watch its bar move, pushed live; then the page tells the truth:
how long it took, a notice that is still true, and a failed import that shows its error alone.
Screenshots mid-progress at 1280 and 375 px go to test-output/.
"""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.test import override_settings
from playwright.sync_api import expect, sync_playwright

from accounts.management.commands.ensure_demo import DEMO_PASSWORD, DEMO_USERNAME
from tests.e2e.browser import BAR, OUT, RECORD_PROGRESS, launch_chromium, off_loop, site_env_for
from tests.processes import CEILING, daphne, worker

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# `make run`'s values (project/settings.py's defaults), not the tests' small chunks and short
# throttle: the demo must move on its own merits.
MAKE_RUN_ENV = {"EXPORT_CHUNK_SIZE": "2000", "TASK_PROGRESS_INTERVAL": "0.25"}
# Distinct percentages strictly between 0 and 100 that a person sees the bar take: at 0.25 s a
# step, an export of about five seconds gives some twenty.
STEPS_AT_LEAST = 5
TOOK = re.compile(r"^Took (\d\.\d s|\d+ s|\d+ min \d+ s)$")
CARD = "main .task"
WAIT_MS = CEILING * 1000  # for the event, however slow the machine: never a timed check of speed


def ensure_demo() -> None:
    with override_settings(DEBUG=True):  # it refuses to make well-known passwords otherwise
        call_command("ensure_demo", stdout=io.StringIO(), stderr=io.StringIO())


def shot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def new_page(browser, width: int):
    context = browser.new_context(viewport={"width": width, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(f"script: {error}"))
    page.add_init_script(RECORD_PROGRESS)
    return page


def log_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", DEMO_USERNAME)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/exports/$"))


def test_the_demo_users_export_moves_live_then_every_text_beside_it_stays_true(smtp_server, tmp_path):
    off_loop(ensure_demo)
    env = site_env_for(smtp_server.url, **MAKE_RUN_ENV)
    with daphne(env) as (port, _), worker(env, name=f"worker-demo-{port}"), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        base = f"http://127.0.0.1:{port}"
        desktop, phone = new_page(browser, 1280), new_page(browser, 375)
        for page in (desktop, phone):
            log_in(page, base)

        desktop.get_by_role("button", name="Export my posts").click()
        desktop.wait_for_url(re.compile(r"/exports/[0-9a-f-]{36}/$"))
        phone.goto(desktop.url)
        # Mid-progress, as a person would catch it: both widths, for a look at the layout.
        desktop.wait_for_function(f"() => {{ const b = document.querySelector('{BAR}'); return b.value > 0; }}")
        shot(desktop, "demo-export-mid-1280")
        shot(phone, "demo-export-mid-375")
        expect(desktop.locator(CARD)).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)
        expect(phone.locator(CARD)).to_have_attribute("data-status", "succeeded", timeout=WAIT_MS)

        for page in (desktop, phone):
            seen = page.evaluate("window.__progress")
            steps = sorted({value for value in seen if 0 < value < 100})
            assert len(steps) >= STEPS_AT_LEAST, f"the bar hardly moved: {seen}"
        assert desktop.locator(f"{CARD} [data-field=percent]").inner_text() == "100%"
        timing = desktop.locator(f"{CARD} [data-field=timing]").inner_text()
        assert TOOK.match(timing), timing
        # The notice from the launch is still on the page, and still true.
        assert desktop.locator(".messages li").all_inner_texts() == ["Posts export started."]

        # An import of a file that is not an export fails: its error shows, no progress line.
        broken = tmp_path / "posts.json"
        broken.write_text("this is not JSON")
        desktop.goto(f"{base}/posts/")
        desktop.set_input_files("#import-file", str(broken))
        desktop.get_by_role("button", name="Import posts").click()
        desktop.wait_for_url(re.compile(r"/imports/[0-9a-f-]{36}/$"))
        expect(desktop.locator(CARD)).to_have_attribute("data-status", "failed", timeout=WAIT_MS)
        expect(desktop.locator(f"{CARD} [data-field=error]")).to_be_visible()
        expect(desktop.locator(f"{CARD} [data-field=detail]")).to_be_hidden()
        assert "Starting…" not in desktop.locator(CARD).inner_text()
        shot(desktop, "demo-import-failed-1280")

        for page in (desktop, phone):
            assert page.errors == [], page.errors
        browser.close()
