"""What a person sees, in headless Chromium at 1280 and 375 px wide: the pages and the admin, the
running-tasks strip and its chips, lists and the admin kept live (new, changed, deleted tasks),
times in the reader's own zone, and long posts laid out quickly. Screenshots go to test-output/.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from exports.services import export_start
from live_tasks.models import Task
from live_tasks.reporter import ProgressReporter
from live_tasks.state import task_mark_running, task_mark_succeeded
from posts.models import Post, post_fingerprint
from tests.e2e.browser import OUT, launch_chromium, off_loop, sign_in, site_env_for
from tests.factories import PostFactory, StaffFactory, TaskFactory, UserFactory
from tests.processes import daphne

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = {"desktop": 1280, "phone": 375}
# A fixed instant, shown in Tokyo (UTC+9, no summer time) by a reader there.
CREATED = datetime(2026, 11, 24, 10, 26, 3, tzinfo=UTC)
TOKYO_TEXT = "Nov 24, 2026, 7:26:03 PM"
GREEN = "rgb(21, 128, 61)"

# Runs in the page before its own scripts: what screen readers would hear, in order.
RECORD_ANNOUNCEMENTS = """
window.__heard = [];
document.addEventListener("DOMContentLoaded", function () {
  var region = document.getElementById("task-announcer");
  if (region) new MutationObserver(function () { window.__heard.push(region.textContent); })
    .observe(region, {childList: true, characterData: true, subtree: true});
});
"""


@pytest.fixture
def site_env(smtp_server) -> dict[str, str]:
    return site_env_for(smtp_server.url)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, user, url: str, *, width: int = 1280, **options):
    """A signed-in page at `url` in Tokyo, failing the test on any script error or 4xx/5xx answer."""
    context = browser.new_context(
        viewport={"width": width, "height": 800}, timezone_id="Asia/Tokyo", locale="en-US", **options
    )
    sign_in(context, user, url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(f"script: {error}"))
    page.on("response", lambda r: page.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this task and its file?"
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    page.goto(url)
    return page


def assert_fits(page, what: str) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= page.viewport_size["width"], f"{what} is {scroll_width}px wide"


def shot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def assert_chip(chip, text: str) -> None:
    """The chip reads `text` (its visible text, spaces collapsed)."""
    expect(chip).to_be_visible()
    deadline = time.monotonic() + 10
    while " ".join(chip.inner_text().split()) != text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert " ".join(chip.inner_text().split()) == text


def live(page) -> None:
    """The page's socket delivered its snapshot: from here on, changes arrive by push alone."""
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('live.js'))")
    page.wait_for_timeout(500)


# A username as long as a real one can be (an email address): the admin's columns must still fit.
LONG_USERNAME = "jean-baptiste.dupont-delafontaine@example.com"


def test_every_page_at_both_widths_with_local_times_and_no_strip_when_idle(site_env, browser):
    user, staff = off_loop(UserFactory, username=LONG_USERNAME), off_loop(StaffFactory)

    def seed():
        for i in range(3):
            PostFactory(author=user, body=f"Post {i}: " + "a few words " * (30 if i else 300), created_at=CREATED)
        done = TaskFactory(
            user=user,
            status=Task.Status.SUCCEEDED,
            progress=100,
            detail="3 posts exported",
            created_at=CREATED,
            started_at=CREATED,
            finished_at=CREATED,
            file="tasks/x/posts.json",
            file_size=123_456,
        )
        TaskFactory(
            user=user,
            status=Task.Status.FAILED,
            progress=40,
            detail="Starting…",  # left by a failure before live_tasks/state.py cleared it: never shown
            error="The export timed out.",
            created_at=CREATED,
            finished_at=CREATED,
        )
        return done

    done = off_loop(seed)
    with daphne(site_env) as (port, _):
        base = f"http://127.0.0.1:{port}"
        for width in WIDTHS.values():
            pages = {
                "posts": (user, "/posts/"),
                "exports": (user, "/exports/"),
                "export": (user, f"/exports/{done.id}/"),
                "admin": (staff, "/admin/live_tasks/task/"),
            }
            for page_name, (who, path) in pages.items():
                page = open_page(browser, who, base + path, width=width)
                live(page)
                # Nothing runs: no empty strip under the header.
                if page_name != "admin":
                    expect(page.locator("#running-tasks")).to_be_hidden()
                    assert page.locator("#running-tasks").bounding_box() is None
                # Every time in the reader's zone and locale, in one format; UTC stays in the attribute.
                times = page.locator("time[datetime]")
                assert times.count() >= 1
                for i in range(times.count()):
                    if times.nth(i).get_attribute("datetime").startswith("2026-11-24T10:26:03"):
                        expect(times.nth(i)).to_have_text(TOKYO_TEXT)
                assert_fits(page, f"{page_name} at {width}px")
                if page_name == "admin":
                    # Nothing cut off: the created column shows its whole time, the table scrolls
                    # inside its box on a phone instead of widening the page.
                    created = page.locator("#result_list tbody th time").first
                    expect(created).to_have_text(TOKYO_TEXT)
                    assert created.evaluate("n => n.scrollWidth <= n.clientWidth + 1")
                    assert page.locator("#result_list tbody tr").count() == 2
                    if width >= 1280:
                        table = page.locator("#changelist .results")
                        assert table.evaluate("n => n.scrollWidth <= n.clientWidth"), "every column is on screen"
                        last = page.locator("#result_list thead th").last
                        assert last.evaluate("n => n.getBoundingClientRect().right") <= table.evaluate(
                            "n => n.getBoundingClientRect().right"
                        ), "the last column is not cut off"
                if page_name in ("exports", "admin"):
                    # The failed task shows its error alone, not the progress line it had before.
                    expect(page.get_by_text("The export timed out.").first).to_be_visible()
                    expect(page.get_by_text("Starting…")).to_be_hidden()
                if page_name == "export":
                    expect(page.locator("main [data-field=size]")).to_have_text("(120.6 KB)")
                shot(page, f"{page_name}-{width}")
                assert page.errors == [], page.errors  # no script error, no 404 (the icon included)
                page.context.close()


def test_lists_the_admin_and_the_chip_follow_a_new_task_live_then_its_deletion(site_env, browser, queue):
    user, staff = off_loop(UserFactory), off_loop(StaffFactory)
    off_loop(TaskFactory, status=Task.Status.FAILED, finished_at=CREATED)  # someone's: the admin table exists

    with daphne(site_env) as (port, _):
        base = f"http://127.0.0.1:{port}"
        exports = open_page(browser, user, f"{base}/exports/")
        admin = open_page(browser, staff, f"{base}/admin/live_tasks/task/", width=375)
        for page in (exports, admin):
            live(page)
        expect(exports.get_by_text("No exports yet.")).to_be_visible()
        expect(exports.locator("#running-tasks")).to_be_hidden()

        task = off_loop(export_start, user=user)  # as the button does; no worker: this test drives it
        row = f'[data-task-id="{task.id}"]'
        chip = exports.locator(f"#running-tasks {row}")
        expect(exports.locator(f"main .task-list {row} [data-field=status]")).to_have_text("Queued")
        expect(exports.get_by_text("No exports yet.")).to_be_hidden()
        assert_chip(chip, "Posts export · Queued 0%")
        admin_row = admin.locator(f"#result_list tbody tr{row}")
        expect(admin_row.locator(".field-user")).to_have_text(user.username)
        expect(admin_row.locator("[data-field=status]").first).to_have_text("Queued")
        assert admin.locator("#result_list tbody tr").count() == 2

        off_loop(task_mark_running, task.id)
        reporter = ProgressReporter(task.id, interval=0)
        for done in range(1, 10):
            off_loop(reporter, done, 10, detail=f"{done} of 10")
        expect(chip.locator("[data-field=percent]")).to_have_text("90%")
        off_loop(task_mark_succeeded, task.id, detail="10 posts exported")

        assert_chip(chip, "Posts export · Succeeded 100% ×")  # × closes it
        assert chip.locator("progress").evaluate("n => getComputedStyle(n).accentColor") == GREEN
        expect(admin_row.locator("[data-field=status]").first).to_have_text("Succeeded")
        # The columns beside it do not go stale: finished and duration are filled too.
        # (The run may take under a tenth of a second on a quick machine: live.js then says so.)
        expect(admin_row.locator("[data-field=duration]")).to_have_text(re.compile(r"^(\d+\.\d s|under 0\.1 s)$"))
        expect(admin_row.locator("time[data-field=finished]")).to_have_attribute("datetime", re.compile(r"^20\d\d-"))
        shot(exports, "chip-succeeded-1280")
        shot(admin, "admin-live-375")
        # Screen readers heard each change of state once, never the nine percent steps.
        assert exports.evaluate("window.__heard") == [
            "Posts export: Queued",
            "Posts export: Running",
            "Posts export: Succeeded",
        ]
        assert exports.locator("[aria-live]").count() == 1

        # The chip closes, and stays closed after a reload.
        chip.get_by_role("button", name="Dismiss").click()
        expect(chip).to_have_count(0)
        expect(exports.locator("#running-tasks")).to_be_hidden()
        exports.reload()
        live(exports)
        expect(exports.locator(f"#running-tasks {row}")).to_have_count(0)

        # Deleted from the list: it leaves the admin's open page too, without a reload.
        admin.evaluate("window.__marker = 1")
        exports.locator(f"main .task-list {row}").get_by_role("button", name="Delete").click()
        expect(exports.get_by_text("Posts export deleted.")).to_be_visible()
        expect(exports.locator(row)).to_have_count(0)
        expect(admin.locator(f"#result_list {row}")).to_have_count(0)
        assert admin.evaluate("window.__marker") == 1, "the admin page was not reloaded"
        assert off_loop(lambda: Task.objects.filter(pk=task.pk).exists()) is False
        for page in (exports, admin):
            assert page.errors == [], page.errors
            page.context.close()


LONG_POSTS, LONG_POST_CHARS = 50, 20_000
LAYOUT_CEILING_S = 10


def test_fifty_posts_of_twenty_thousand_unbroken_characters_lay_out_quickly(site_env, browser):
    user = off_loop(UserFactory)

    def seed():
        now = datetime.now(UTC)
        body = "x" * LONG_POST_CHARS
        Post.objects.bulk_create(
            Post(author=user, body=body, created_at=now, fingerprint=post_fingerprint(body, now))
            for _ in range(LONG_POSTS)
        )

    off_loop(seed)
    with daphne(site_env) as (port, _):
        for width in WIDTHS.values():
            context = browser.new_context(viewport={"width": width, "height": 800})
            sign_in(context, user, f"http://127.0.0.1:{port}/")
            page = context.new_page()
            page.set_default_timeout(LAYOUT_CEILING_S * 3 * 1000)
            started = time.monotonic()
            page.goto(f"http://127.0.0.1:{port}/posts/")
            page.evaluate("document.body.getBoundingClientRect().height")  # forces the whole layout
            elapsed = time.monotonic() - started
            assert elapsed < LAYOUT_CEILING_S, f"the posts page took {elapsed:.1f} s to load and lay out"
            assert page.locator("details.more").count() == LONG_POSTS
            assert_fits(page, f"the posts page at {width}px")
            # The whole post on demand, wrapped to the screen.
            first = page.locator("li.post").first
            first.get_by_text("Show the whole post (20,000 characters)").click()
            expect(first.locator("details.more p.body")).to_be_visible()
            expect(first.locator("p.preview")).to_be_hidden()
            assert first.locator("details.more p.body").evaluate("n => n.textContent.length") == LONG_POST_CHARS
            assert_fits(page, f"an opened long post at {width}px")
            page.screenshot(path=str(OUT / f"posts-long-{width}.png"))
            context.close()
