"""A socket's authority ends with its session: real daphne, real sockets, changes made through
Django (logout over HTTP, the admin, model saves) and behind its back (SQL).

Through Django a revoked socket is closed with 4401 within 2 s (the signal handlers publish an
order to re-check); behind Django's back within the periodic re-check, LIVE_SESSION_RECHECK_SECONDS
times at most 1.25 (30 s -> 37.5 s by default; a 1 s period here). After the close nothing more
arrives, and a socket of the same user on another, still valid session carries on.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.utils import timezone
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from live_tasks.push.consumers import RECHECK_JITTER
from live_tasks.state import task_mark_running
from tests.factories import StaffFactory, TaskFactory, UserFactory, session_cookie_for, signed_in_client
from tests.processes import HttpSession, child_env, daphne

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

THROUGH_DJANGO_BOUND = 2.0
RECHECK_SECONDS = 1.0
BEHIND_DJANGOS_BACK_BOUND = RECHECK_SECONDS * RECHECK_JITTER[1] + 1.0  # + a database round trip
CEILING = 20  # how long any wait may take before the test gives up


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker):
    """daphne with the default re-check period (30 s): only the signals can close within 2 s."""
    with django_db_blocker.unblock(), daphne(child_env()) as (port, _):
        yield port


@pytest.fixture(scope="module")
def fast_recheck_site(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), daphne(child_env(LIVE_SESSION_RECHECK_SECONDS=str(RECHECK_SECONDS))) as (port, _):
        yield port


def open_socket(port: int, cookie: str, query: str = ""):
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    url = f"ws://127.0.0.1:{port}/ws/notifications/" + (f"?{query}" if query else "")
    return connect(url, additional_headers=headers)


async def recv(ws, timeout: float = CEILING) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def closed_after(ws, started: float) -> tuple[int | None, float, list[dict]]:
    """Wait for the close; return its code, the seconds since `started`, and what came before it."""
    before = []
    try:
        while True:
            before.append(await recv(ws))
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - started, before


async def still_live(ws, task_id) -> None:
    """The socket answers a snapshot request and receives the task's next change."""
    await ws.send('{"type": "snapshot"}')
    assert (await recv(ws))["type"] == "snapshot"
    await asyncio.to_thread(task_mark_running, task_id)
    message = await recv(ws)
    assert message["type"] == "task" and message["task"]["status"] == "running"


def sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def test_logout_closes_that_sessions_sockets_and_no_other(site):
    user = UserFactory()
    task = TaskFactory(user=user)
    tab_a, other_device = session_cookie_for(user), session_cookie_for(user)

    async def scenario():
        async with open_socket(site, tab_a) as a1, open_socket(site, tab_a) as a2, open_socket(site, other_device) as b:
            for ws in (a1, a2, b):
                assert (await recv(ws))["type"] == "snapshot"
            started = time.monotonic()
            status, _ = await asyncio.to_thread(HttpSession(site, tab_a).request, "POST", "/accounts/logout/")
            assert status == 302
            for ws in (a1, a2):  # both tabs of the logged-out session
                code, elapsed, before = await closed_after(ws, started)
                assert code == 4401 and before == []
                assert elapsed < THROUGH_DJANGO_BOUND, elapsed
            await still_live(b, task.id)  # the same user's other session is untouched

    asyncio.run(scenario())


def test_a_password_change_in_the_admin_closes_every_socket_of_that_user(site):
    user, bystander = UserFactory(), UserFactory()
    admin = UserFactory(is_staff=True, is_superuser=True)
    their_task = TaskFactory(user=bystander)
    mine, theirs = session_cookie_for(user), session_cookie_for(bystander)
    admin_client = signed_in_client(admin)

    def change_password_in_the_admin():
        response = admin_client.post(
            f"/admin/auth/user/{user.pk}/password/",
            {"password1": "a-new-Password-42", "password2": "a-new-Password-42", "usable_password": "true"},
        )
        assert response.status_code == 302, response.content[:2000]

    async def scenario():
        async with open_socket(site, mine) as ws, open_socket(site, theirs) as other_user:
            await recv(ws), await recv(other_user)
            started = time.monotonic()
            await asyncio.to_thread(change_password_in_the_admin)
            code, elapsed, before = await closed_after(ws, started)
            assert code == 4401 and before == [] and elapsed < THROUGH_DJANGO_BOUND, (code, elapsed)
            await still_live(other_user, their_task.id)

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_deactivating_or_deleting_the_account_closes_its_sockets_and_sends_nothing_more(site, change):
    user = UserFactory()
    task = TaskFactory(user=user)
    cookie = session_cookie_for(user)

    def apply():
        if change == "deactivate":
            user.is_active = False
            user.save()
        else:
            # The task's final state is published as the row goes: it must not reach the socket.
            task_mark_running(task.id)
            user.delete()

    async def scenario():
        async with open_socket(site, cookie) as ws:
            await recv(ws)
            started = time.monotonic()
            await asyncio.to_thread(apply)
            code, elapsed, before = await closed_after(ws, started)
            assert code == 4401 and elapsed < THROUGH_DJANGO_BOUND, (code, elapsed)
            return before

    before = asyncio.run(scenario())
    assert all(m["type"] == "task" for m in before)  # at most the change made before the save


def test_losing_is_staff_closes_the_all_users_feed_only(site):
    staff = StaffFactory()
    someone = UserFactory()
    own_task, someones_task = TaskFactory(user=staff), TaskFactory(user=someone)
    cookie = session_cookie_for(staff)

    def demote():
        staff.is_staff = False
        staff.save()

    async def scenario():
        async with open_socket(site, cookie, "scope=all") as everyone, open_socket(site, cookie) as own:
            assert {t["id"] for t in (await recv(everyone))["tasks"]} == {str(own_task.id), str(someones_task.id)}
            await recv(own)
            started = time.monotonic()
            await asyncio.to_thread(demote)
            code, elapsed, _ = await closed_after(everyone, started)
            assert code == 4401 and elapsed < THROUGH_DJANGO_BOUND, (code, elapsed)
            await asyncio.to_thread(task_mark_running, someones_task.id)  # no longer theirs to see
            await still_live(own, own_task.id)
            # Reconnecting with ?scope=all now gets only their own tasks.
            async with open_socket(site, cookie, "scope=all") as again:
                assert [t["id"] for t in (await recv(again))["tasks"]] == [str(own_task.id)]

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["session-deleted", "deactivated", "password", "staff", "view-permission"])
def test_changes_made_directly_in_the_database_close_sockets_within_the_recheck_period(fast_recheck_site, change):
    user = StaffFactory()
    cookie, other_session = session_cookie_for(user), session_cookie_for(user)
    task = TaskFactory(user=user)
    table = user._meta.db_table

    def apply():  # SQL: no signal, no Django in the loop
        if change == "session-deleted":
            sql(f"DELETE FROM {Session._meta.db_table} WHERE session_key = %s", [cookie])  # noqa: S608
        elif change == "deactivated":
            sql(f"UPDATE {table} SET is_active = %s WHERE id = %s", [False, user.pk])  # noqa: S608
        elif change == "password":
            sql(f"UPDATE {table} SET password = %s WHERE id = %s", ["md5$x$changed", user.pk])  # noqa: S608
        elif change == "staff":
            sql(f"UPDATE {table} SET is_staff = %s WHERE id = %s", [False, user.pk])  # noqa: S608
        else:  # the permission the staff feed needs (tasks.view_task), revoked
            grants = user.user_permissions.through._meta.db_table
            sql(f"DELETE FROM {grants} WHERE user_id = %s", [user.pk])  # noqa: S608

    query = "scope=all" if change in ("staff", "view-permission") else ""

    async def scenario():
        async with (
            open_socket(fast_recheck_site, cookie, query) as ws,
            open_socket(fast_recheck_site, other_session) as b,
        ):
            await recv(ws), await recv(b)
            started = time.monotonic()
            await asyncio.to_thread(apply)
            code, elapsed, _ = await closed_after(ws, started)
            assert code == 4401, code
            assert elapsed < BEHIND_DJANGOS_BACK_BOUND, elapsed
            if change == "session-deleted":  # the same user's other session carries on
                await asyncio.sleep(RECHECK_SECONDS * 2)
                await still_live(b, task.id)

    asyncio.run(scenario())


def test_a_session_is_closed_at_its_expiry_date(site):
    """The default 30 s re-check is far off: the close comes from the timer set at the expiry date."""
    user = UserFactory()
    cookie = session_cookie_for(user)
    expires = timezone.now() + timedelta(seconds=3)
    Session.objects.filter(session_key=cookie).update(expire_date=expires)

    async def scenario():
        async with open_socket(site, cookie) as ws:
            await recv(ws)
            code, _, _ = await closed_after(ws, time.monotonic())
            return code, timezone.now()

    code, closed_at = asyncio.run(scenario())
    assert code == 4401
    assert expires <= closed_at < expires + timedelta(seconds=THROUGH_DJANGO_BOUND)


def test_a_snapshot_request_on_a_revoked_session_is_never_answered_with_tasks(fast_recheck_site):
    """Between a change behind Django's back and the next re-check, a snapshot request re-checks first."""
    user = UserFactory()
    TaskFactory(user=user)
    cookie = session_cookie_for(user)

    async def scenario():
        async with open_socket(fast_recheck_site, cookie) as ws:
            assert len((await recv(ws))["tasks"]) == 1
            await asyncio.to_thread(Session.objects.filter(session_key=cookie).delete)
            await ws.send('{"type": "snapshot"}')
            code, _, before = await closed_after(ws, time.monotonic())
            assert code == 4401 and before == [], before

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("own", True),
        ("http://127.0.0.1:9999", False),
        ("http://localhost:{port}", False),
        ("https://127.0.0.1:{port}", False),
    ],
)
def test_daphne_accepts_only_the_sites_own_origin(site, origin, accepted):
    cookie = session_cookie_for(UserFactory())
    headers = {
        "Cookie": f"sessionid={cookie}",
        "Origin": f"http://127.0.0.1:{site}" if origin == "own" else origin.format(port=site),
    }

    async def scenario():
        try:
            async with connect(f"ws://127.0.0.1:{site}/ws/notifications/", additional_headers=headers) as ws:
                return (await recv(ws))["type"]
        except Exception as exc:  # websockets' InvalidStatus: the handshake was refused
            return getattr(getattr(exc, "response", None), "status_code", repr(exc))

    outcome = asyncio.run(scenario())
    assert outcome == ("snapshot" if accepted else 403)
