"""A real browser when things go wrong, for staff, and on a phone: headless Chromium on daphne.

- daphne restarts while a task page is open: the page reconnects on its own and shows the final
  state of an export that finished while the server was down;
- WebSockets never connect, or are dropped before their first message: the page falls back to
  polling /tasks/api/ after two attempts, backs off, and still follows the export;
- the admin's task list (staff, ?scope=all) updates another user's task live;
- the task page at a phone and at a desktop viewport: nothing overflows, the bar and buttons show.
"""

from __future__ import annotations

import math
import time

import pytest
from playwright.sync_api import expect, sync_playwright

from exports.services import export_start
from live_tasks.models import Task
from live_tasks.reporter import ProgressReporter
from live_tasks.state import task_mark_running
from tests.e2e.browser import (
    BAR,
    DOWNLOAD_LINK,
    OUT,
    RECORD_PROGRESS,
    bar_value,
    launch_chromium,
    off_loop,
    seed_posts,
    sign_in,
    site_env_for,
)
from tests.factories import StaffFactory, TaskFactory, UserFactory
from tests.processes import daphne, free_port, worker

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The export itself is not under test here: enough posts for a few progress steps, quickly.
POSTS = 100_000
STATUS = "main .task [data-field=status]"
# live.js backs off up to 30 s; after a short outage its next attempt comes within ~10 s.
RECONNECT_TIMEOUT_MS = 30_000
EXPORT_TIMEOUT_MS = 30_000

# Runs in the page before its own scripts: counts the page's WebSockets and their open/close events,
# and keeps each close's code (window.__wsCloseCodes), to tell the server's 4401 from a dropped socket.
WATCH_SOCKETS = """
(function () {
  var Native = window.WebSocket;
  window.__ws = {created: 0, opened: 0, closed: 0};
  window.__wsCloseCodes = [];
  function Watched(url, protocols) {
    var ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__ws.created += 1;
    ws.addEventListener("open", function () { window.__ws.opened += 1; });
    ws.addEventListener("close", function (event) {
      window.__ws.closed += 1;
      window.__wsCloseCodes.push(event.code);
    });
    return ws;
  }
  Watched.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach(function (k) { Watched[k] = Native[k]; });
  window.WebSocket = Watched;
})();
"""


@pytest.fixture
def site_env(smtp_server) -> dict[str, str]:
    return site_env_for(smtp_server.url)


@pytest.fixture
def browser():
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def exporter(db):
    user = UserFactory()
    seed_posts(user, POSTS)
    return user


@pytest.fixture
def queued_task(exporter, queue) -> Task:
    """An export launched as the site does (task row + RQ job), left queued: no worker runs yet."""
    assert queue.count == 0  # the `queue` fixture emptied the test Redis database
    task = export_start(user=exporter)
    assert queue.count == 1
    return task


@pytest.fixture
def staff(db):
    return StaffFactory()


# Data fixtures come before `browser` in each test's arguments: once sync Playwright runs, the ORM
# may only be used through off_loop().


def open_page(browser, user, url: str, before=None, **context_options):
    """A signed-in page at `url`, recording its bar values, sockets, errors, and any reload.

    `before(page)` runs before the page loads (to route its traffic).
    """
    context = browser.new_context(**context_options)
    sign_in(context, user, url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if before:
        before(page)
    page.add_init_script(RECORD_PROGRESS)
    page.add_init_script(WATCH_SOCKETS)
    page.goto(url)
    # From here on the page must never be reloaded or left: this marker would be lost.
    page.evaluate("window.__marker = 1")
    return page, errors


def assert_not_reloaded(page, errors: list[str]) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert errors == []


def wait_for_status(task: Task, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = off_loop(lambda: Task.objects.get(pk=task.pk).status)
        if current == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"task {task.id} is {current}, not {status}, after {timeout}s")


def expect_final_state(page, task: Task) -> None:
    link = page.locator(DOWNLOAD_LINK)
    expect(link).to_be_visible(timeout=RECONNECT_TIMEOUT_MS)
    expect(page.locator(STATUS)).to_have_text("Succeeded")
    expect(page.locator(BAR)).to_have_attribute("value", "100")
    expect(page.locator("main .task [data-field=percent]")).to_have_text("100%")
    assert link.get_attribute("href") == f"/tasks/{task.id}/download/"


def test_open_page_reconnects_after_daphne_restarts_and_shows_the_final_state(site_env, exporter, queued_task, browser):
    task = queued_task
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def refuse_polling(page) -> None:
        # Only the WebSocket may bring news: with polling refused, the final state below can only
        # come from a socket that reconnected by itself and applied its snapshot.
        page.route("**/tasks/api/**", lambda route: route.abort())

    with daphne(site_env, port=port) as (_, first_daphne):
        page, errors = open_page(browser, exporter, f"{base}/exports/{task.id}/", before=refuse_polling)
        page.wait_for_function("() => window.__ws.opened === 1 && window.__progress.length > 0")  # live
        expect(page.locator(STATUS)).to_have_text("Queued")

        first_daphne.terminate()
        first_daphne.wait(10)
    page.wait_for_function("() => window.__ws.closed >= 1")  # the page saw the drop

    # The whole export happens while nobody serves the page: its pushes are lost.
    with worker(site_env, name=f"worker-restart-{port}"):
        wait_for_status(task, Task.Status.SUCCEEDED)
    assert page.evaluate("window.__ws.opened") == 1
    expect(page.locator(STATUS)).to_have_text("Queued")
    assert bar_value(page) == 0
    expect(page.locator("main [data-field=download]")).to_be_hidden()

    with daphne(site_env, port=port):
        expect_final_state(page, task)
        assert page.evaluate("window.__ws.opened") == 2, "the page's socket did not reconnect"
        # At least one attempt failed while daphne was down (the outage outlasts the first 0.5-1.5 s delay).
        assert page.evaluate("window.__ws.created") > 2
    assert_not_reloaded(page, errors)
    values = page.evaluate("window.__progress")
    assert values == sorted(values) and values[-1] == 100, values
    page.context.close()


@pytest.mark.parametrize("failure", ["refused", "dropped_before_snapshot"])
def test_page_polls_the_api_when_websockets_cannot_connect(site_env, exporter, queued_task, browser, failure):
    """`refused`: no socket ever opens. `dropped_before_snapshot`: each one opens (daphne accepts it)
    and is dropped before its snapshot reaches the page, as by a proxy that kills WebSockets."""
    task = queued_task
    socket_attempts: list[str] = []
    polls: list[int] = []  # for each /tasks/api/ request: how many sockets had failed by then

    def refuse(ws) -> None:  # never connects to the server: the page's socket closes at once
        socket_attempts.append(ws.url)
        ws.close()

    def drop_before_snapshot(ws) -> None:
        socket_attempts.append(ws.url)
        server = ws.connect_to_server()  # the page's socket opens when daphne accepts
        server.on_message(lambda message: (ws.close(), server.close()))  # the snapshot: never delivered

    def no_websockets(page) -> None:
        page.route_web_socket("**/ws/notifications/**", refuse if failure == "refused" else drop_before_snapshot)
        page.on("request", lambda r: polls.append(len(socket_attempts)) if "/tasks/api/" in r.url else None)

    with daphne(site_env) as (port, _):
        opened_at = time.monotonic()
        page, errors = open_page(browser, exporter, f"http://127.0.0.1:{port}/exports/{task.id}/", before=no_websockets)
        page.wait_for_function("() => window.__ws.created >= 2")  # (WATCH_SOCKETS wraps Playwright's mock)
        expect(page.locator(STATUS)).to_have_text("Queued")
        deadline = time.monotonic() + 15
        while not polls and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert polls, "the page never polled /tasks/api/"
        # live.js polls right after its second failed attempt (the third comes 0.5 s or more later).
        assert polls[0] == 2, f"polling began after {polls[0]} failed socket attempt(s), not 2"

        with worker(site_env, name=f"worker-polling-{port}"):
            expect_final_state(page, task)
        assert len(polls) >= 2, polls
        opened = page.evaluate("window.__ws.opened")
        if failure == "refused":
            assert opened == 0, "a WebSocket connected after all"
        else:
            assert opened >= 2, "the sockets were meant to open, then drop"
        # The backoff grew: with delays of at least 0.5, 1, 2, 4… s, T seconds leave room for at most
        # 1 + log2(2T + 1) attempts (one more allowed for slack), where a fixed delay would make ~T.
        elapsed = time.monotonic() - opened_at
        assert len(socket_attempts) <= 2 + math.log2(2 * elapsed + 1), (len(socket_attempts), elapsed)
        assert_not_reloaded(page, errors)
        page.context.close()


def test_staff_admin_task_list_updates_another_users_task_live(site_env, queued_task, staff, browser):
    task = queued_task
    row = f'div.task[data-task-id="{task.id}"]'

    with daphne(site_env) as (port, _):
        page, errors = open_page(browser, staff, f"http://127.0.0.1:{port}/admin/live_tasks/task/")
        bar = page.locator(f"{row} progress[data-field=bar]")
        status = page.locator(f"{row} [data-field=status]")
        expect(bar).to_have_attribute("value", "0")
        expect(status).to_have_text("Queued")
        page.wait_for_function("() => window.__ws.opened === 1 && window.__progress.length > 0")  # live

        with worker(site_env, name=f"worker-admin-{port}"):
            expect(status).to_have_text("Succeeded", timeout=EXPORT_TIMEOUT_MS)
        expect(bar).to_have_attribute("value", "100")
        assert bar.evaluate("n => n.value") == 100
        expect(page.locator(f"{row} [data-field=percent]")).to_have_text("100%")
        values = page.evaluate("window.__progress")
        assert values == sorted(values) and values[-1] == 100, values
        assert any(0 < v < 100 for v in values), f"no progress step was pushed live: {values}"
        assert page.evaluate("window.__ws.created") == 1  # all of it over the one staff socket
        assert_not_reloaded(page, errors)
        page.context.close()


VIEWPORTS: dict[str, dict] = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}


def assert_no_horizontal_overflow(page, what: str) -> None:
    """Nothing is wider than the screen.

    window.innerWidth alone cannot tell: on a mobile viewport Chromium widens the layout viewport
    to fit content that overflows (innerWidth then equals scrollWidth); the screen's width can.
    """
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    screen_width = page.viewport_size["width"]
    assert scroll_width <= inner_width == screen_width, f"{what} is {scroll_width}px wide on a {screen_width}px screen"


def test_export_page_layout_on_a_phone_and_a_desktop(site_env, user, browser):
    task = off_loop(TaskFactory, user=user)  # queued, with no job: this test drives its state itself

    with daphne(site_env) as (port, _):
        base = f"http://127.0.0.1:{port}"
        pages = {
            name: open_page(browser, user, f"{base}/exports/{task.id}/", **options)
            for name, options in VIEWPORTS.items()
        }
        for page, _ in pages.values():
            page.wait_for_function("() => window.__ws.opened === 1 && window.__progress.length > 0")  # live

        # Mid-progress, as a worker reports it, pushed live to both pages.
        off_loop(task_mark_running, task.id)
        off_loop(lambda: ProgressReporter(task.id, interval=0)(252_000, 600_000, detail="252,000 of 600,000 posts"))

        for name, (page, errors) in pages.items():
            expect(page.locator(BAR)).to_have_attribute("value", "42")
            expect(page.locator(STATUS)).to_have_text("Running")
            expect(page.locator("main .task [data-field=detail]")).to_have_text("252,000 of 600,000 posts")
            expect(page.locator("#running-tasks .task")).to_be_visible()
            page.wait_for_timeout(300)  # the bar's width transition (0.2 s)
            page.screenshot(path=str(OUT / f"export-{name}.png"), full_page=True)

            assert_no_horizontal_overflow(page, f"{name}: the task page")
            expect(page.locator(BAR)).to_be_in_viewport(ratio=1)
            expect(page.get_by_role("button", name="Cancel", exact=True)).to_be_in_viewport(ratio=1)

            # The page that launches exports, with this one running.
            page.goto(f"{base}/exports/")
            expect(page.locator(f'main .task[data-task-id="{task.id}"] [data-field=percent]')).to_have_text("42%")
            page.screenshot(path=str(OUT / f"exports-list-{name}.png"), full_page=True)
            assert_no_horizontal_overflow(page, f"{name}: the exports page")
            expect(page.get_by_role("button", name="Export my posts")).to_be_in_viewport(ratio=1)
            assert errors == []
            page.context.close()
