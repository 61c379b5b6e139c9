"""The library's own pages in a real browser, with no template of the site's: a task's page shows
its bar moving live to the end, with its file to download, and the pages fit a phone's width as
well as a desktop's. daphne and `rqworker` are real; the browser is Debian's Chromium."""

from __future__ import annotations

import pytest
from django.conf import settings

from live_tasks import task_start

from .helpers import UserFactory, child_env, daphne, launch_chromium, off_loop, session_cookie_for, worker

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": 1280, "phone": 375}


@pytest.mark.parametrize("screen", WIDTHS)
def test_a_tasks_page_moves_live_to_its_file_at_each_width(screen):
    from playwright.sync_api import expect, sync_playwright

    user = UserFactory()
    env = child_env()
    with daphne(env) as (port, _), sync_playwright() as playwright:
        base = f"http://127.0.0.1:{port}"
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport={"width": WIDTHS[screen], "height": 800})
        cookie = off_loop(session_cookie_for, user)
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))

        task = off_loop(
            task_start, user=user, kind="test_steps", params={"steps": 8, "step_seconds": 0.4, "with_file": True}
        )
        page.goto(f"{base}/tasks/{task.id}/")
        card = page.locator(f'.task-card [data-task-id="{task.id}"]')
        expect(card.locator('[data-field="status"]')).to_have_text("Queued")
        with worker(env, name=f"worker-browser-{screen}"):
            expect(card).to_have_attribute("data-status", "running", timeout=30_000)
            page.wait_for_function(
                f"document.querySelector('.task-card [data-task-id=\"{task.id}\"] progress').value > 0", timeout=30_000
            )
            expect(card).to_have_attribute("data-status", "succeeded", timeout=60_000)
        expect(card.locator('[data-field="percent"]')).to_have_text("100%")
        expect(card.get_by_role("link", name="Download the file")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            "nothing wider than the screen"
        )
        page.screenshot(path=f"{env['TEST_OUTPUT_DIR']}/library-task-{WIDTHS[screen]}.png", full_page=True)

        page.goto(f"{base}/tasks/")
        expect(page.locator(f'.task-list [data-task-id="{task.id}"]')).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=f"{env['TEST_OUTPUT_DIR']}/library-list-{WIDTHS[screen]}.png", full_page=True)
        assert errors == [], errors
        browser.close()
