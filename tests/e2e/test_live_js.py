"""What live.js does with what it is pushed, in a real browser on the real stack: it never shows a
message older than the one on screen, and it writes the server's text as text, never as markup."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from live_tasks import task_to_dict
from live_tasks.push.publish import publish_task_update
from tests.e2e.browser import launch_chromium, off_loop, sign_in, site_env_for
from tests.factories import TaskFactory, UserFactory
from tests.library.test_timing_text import DURATIONS
from tests.processes import daphne

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CARD = "main .task"
# Before live.js handles the socket's snapshot (a listener added at construction runs before its
# onmessage), the server's timing lines are blanked: whatever shows afterwards, live.js wrote.
BLANK_TIMINGS_ON_SNAPSHOT = """
window.__snapshots = 0;
const Native = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = new Native(url, protocols);
  ws.addEventListener("message", (event) => {
    if (JSON.parse(event.data).type !== "snapshot") return;
    document.querySelectorAll("main .task [data-field=timing]").forEach((n) => { n.textContent = ""; });
    window.__snapshots += 1;
  });
  return ws;
};
window.WebSocket.prototype = Native.prototype;
"""
TIMINGS_WRITTEN = (
    "() => window.__snapshots > 0"
    " && [...document.querySelectorAll('main .task [data-field=timing]')].every((n) => n.textContent)"
)


@pytest.fixture
def page_of_a_running_task(smtp_server):
    """A signed-in browser on the page of a running task, its socket live; and a way to push to it."""
    user = off_loop(UserFactory)
    task = off_loop(TaskFactory, user=user, status="running", progress=10, seq=3, detail="started")
    env = site_env_for(smtp_server.url)
    with daphne(env) as (port, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context()
        url = f"http://127.0.0.1:{port}/tasks/{task.id}/"
        sign_in(context, user, url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # Resolved when the page's socket has delivered its snapshot (live.js connected).
        page.add_init_script(
            "window.__snapshots = 0; const N = window.WebSocket; window.WebSocket = function (u, p) {"
            " const ws = new N(u, p); ws.addEventListener('message', (e) => {"
            " if (JSON.parse(e.data).type === 'snapshot') window.__snapshots += 1; }); return ws; };"
            " window.WebSocket.prototype = N.prototype;"
        )
        page.goto(url)
        page.wait_for_function("() => window.__snapshots > 0")
        base = off_loop(task_to_dict, task)

        def push(**changes) -> None:
            off_loop(publish_task_update, user_id=user.pk, task={**base, **changes}, wait=True)

        yield page, push
        assert errors == []
        browser.close()


def test_a_message_older_than_the_one_shown_is_ignored(page_of_a_running_task):
    page, push = page_of_a_running_task
    push(seq=10, progress=60, detail="6 of 10")
    expect(page.locator(f"{CARD} [data-field=percent]")).to_have_text("60%")

    push(seq=7, progress=30, detail="3 of 10")  # late: published before the one above
    push(seq=11, progress=70, detail="7 of 10")  # a marker: once it shows, the late one was handled
    expect(page.locator(f"{CARD} [data-field=percent]")).to_have_text("70%")
    push(seq=9, progress=50, detail="5 of 10")
    page.wait_for_timeout(500)

    expect(page.locator(f"{CARD} [data-field=percent]")).to_have_text("70%")
    expect(page.locator(f"{CARD} [data-field=detail]")).to_have_text("7 of 10")
    assert page.locator(f"{CARD} progress").get_attribute("value") == "70"


def test_the_detail_and_error_are_shown_as_text_never_as_markup(page_of_a_running_task):
    page, push = page_of_a_running_task
    markup = '<img src=x onerror="window.__pwned=1"><b id="injected">bold</b>'
    push(seq=20, status="failed", status_display="Failed", detail=markup, error=markup, cancel_url=None)

    expect(page.locator(f"{CARD} [data-field=status]")).to_have_text("Failed")
    expect(page.locator(f"{CARD} [data-field=detail]")).to_have_text(markup)
    expect(page.locator(f"{CARD} [data-field=error]")).to_have_text(markup)
    assert page.locator("#injected").count() == 0 and page.locator("main img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_finished_tasks_timing_reads_the_same_from_the_server_and_from_live_js(smtp_server):
    """The timing line is rendered by the server and rewritten by live.js from the snapshot: both
    must say the same, and a task under a second is never "Took 0 s"."""
    user = off_loop(UserFactory)
    finished = timezone.now().replace(microsecond=273001)  # within the hour: in the snapshot
    expected = {ms: f"Took {text}" for ms, text in DURATIONS.items()}

    def seed():
        for ms in expected:
            started = finished - timedelta(milliseconds=ms)
            TaskFactory(user=user, status="succeeded", progress=100, started_at=started, finished_at=finished)

    off_loop(seed)
    env = site_env_for(smtp_server.url)
    with daphne(env) as (port, _), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        url = f"http://127.0.0.1:{port}/tasks/"
        texts = {}
        for script in (False, True):
            context = browser.new_context(java_script_enabled=script)
            sign_in(context, user, url)
            page = context.new_page()
            page.add_init_script(BLANK_TIMINGS_ON_SNAPSHOT)
            page.goto(url)
            if script:
                page.wait_for_function(TIMINGS_WRITTEN)
            texts[script] = sorted(page.locator("main .task [data-field=timing]").all_text_contents())
            context.close()
        browser.close()
    assert texts[False] == sorted(expected.values())
    assert texts[True] == texts[False]
