"""A real browser follows an export: headless Chromium (Playwright) on daphne, with a real worker.

The user logs in, clicks "Export my posts", lands on the task page, and watches the progress bar
rise to 100 and the download link appear, all pushed over the WebSocket, without a reload.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.e2e.browser import (
    BAR,
    DOWNLOAD_LINK,
    OUT,
    RECORD_PROGRESS,
    bar_value,
    launch_chromium,
    seed_posts,
    site_env_for,
)
from tests.factories import PASSWORD, UserFactory
from tests.processes import daphne, worker

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Big enough that the export runs for a second or two (it streams ~400k posts a second here).
POSTS = 600_000


@pytest.fixture
def exporter(db):
    user = UserFactory()
    seed_posts(user, POSTS)
    return user


@pytest.fixture
def site_env(smtp_server) -> dict[str, str]:
    return site_env_for(smtp_server.url)


def test_user_watches_an_export_progress_live_and_gets_the_download_link(exporter, site_env):
    OUT.mkdir(parents=True, exist_ok=True)
    with daphne(site_env) as (port, _), sync_playwright() as p:
        base = f"http://127.0.0.1:{port}"
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.set_default_timeout(20_000)
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.add_init_script(RECORD_PROGRESS)

            page.goto(f"{base}/accounts/login/")
            page.get_by_label("Username").fill(exporter.username)
            page.get_by_label("Password").fill(PASSWORD)
            page.locator("main").get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base}/exports/")

            page.locator("#export-button").click()
            page.wait_for_url(re.compile(rf"^{re.escape(base)}/exports/[0-9a-f-]{{36}}/$"))
            task_id = page.url.rstrip("/").rsplit("/", 1)[1]
            expect(page.locator("main .task [data-field=status]")).to_have_text("Queued")
            assert bar_value(page) == 0
            expect(page.locator("main [data-field=download]")).to_be_hidden()

            # From here on the page must never be reloaded or left: this marker would be lost.
            page.evaluate("window.__marker = 1")
            navigations: list[str] = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            # The page is live (socket open, snapshot shown) before any work starts: only now does
            # a worker come up and take the queued job, so every step of it has to be pushed.
            page.wait_for_function("() => window.__progress.length > 0")  # the snapshot was rendered

            with worker(site_env, name=f"worker-browser-{port}"):
                page.wait_for_function(
                    f"() => {{ const v = +document.querySelector('{BAR}').getAttribute('value');"
                    " return v >= 5 && v <= 90; }",
                    polling=20,
                )
                mid = bar_value(page)
                page.screenshot(path=str(OUT / "export-progress.png"), full_page=True)
                assert 0 < mid < 100
                expect(page.locator("main .task [data-field=status]")).to_have_text("Running")

                link = page.locator(DOWNLOAD_LINK)
                expect(link).to_be_visible(timeout=40_000)
                page.screenshot(path=str(OUT / "export-done.png"), full_page=True)

            assert link.get_attribute("href") == f"/tasks/{task_id}/download/"
            assert bar_value(page) == 100
            expect(page.locator("main .task [data-field=percent]")).to_have_text("100%")
            expect(page.locator("main .task [data-field=status]")).to_have_text("Succeeded")
            expect(page.locator("main .task [data-field=detail]")).to_have_text(f"{POSTS:,} posts exported")

            assert page.evaluate("window.__marker") == 1, "the page was reloaded"
            assert navigations == [], f"the page navigated: {navigations}"
            values = page.evaluate("window.__progress")
            assert values == sorted(values), f"the bar went backwards: {values}"
            assert values[-1] == 100
            assert len({v for v in values if 0 < v < 100}) >= 5, f"too few live steps: {values}"
            assert page_errors == []

            # The link works for this signed-in user.
            response = page.request.get(base + link.get_attribute("href"))
            assert response.status == 200
            assert response.headers["content-disposition"].startswith("attachment")
        finally:
            browser.close()
