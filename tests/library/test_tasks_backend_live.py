"""`@task` functions on the real programs: `rqworker default` (the library's worker class) runs them,
daphne pushes them over the socket, the scheduler's safety net requeues and fails them, and
get_result reads each end back."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import timedelta

import psutil
import pytest
from django.utils import timezone
from websockets.asyncio.client import connect

import live_tasks
from live_tasks.backends import JobLost, TaskCancelled
from live_tasks.models import Task
from live_tasks.services import task_cancel

from .helpers import (
    StaffFactory,
    UserFactory,
    child_env,
    daphne,
    purge_queued_jobs,
    queued_job_ids,
    scheduler,
    session_cookie_for,
    wait_for_task,
    worker,
)
from .testapp import tasks

try:
    from django.tasks import TaskResultStatus
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import TaskResultStatus

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LOST = "The worker running this background task stopped unexpectedly (worker lost). Please start it again."


def open_socket(port: int, cookie: str, query: str = ""):
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    return connect(f"ws://127.0.0.1:{port}/ws/tasks/{query}", additional_headers=headers)


async def messages_until(ws, task_id: str, predicate, timeout: float = 30) -> list[dict]:
    """The task's messages from the socket, up to the first that satisfies `predicate`."""
    seen: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "task" and message["task"]["id"] == task_id:
                seen.append(message["task"])
                if predicate(message["task"]):
                    return seen


async def nothing_of(ws, task_id: str, wait: float) -> bool:
    try:
        async with asyncio.timeout(wait):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "task" and message["task"]["id"] == task_id:
                    return False
    except TimeoutError:
        return True


def run_db(fn, *args, **kwargs):
    """The ORM from inside the scenario's event loop (Django refuses it on the loop's thread)."""
    return asyncio.to_thread(fn, *args, **kwargs)


def test_a_task_runs_live_through_rqworker_and_daphne_and_is_cancelled_while_running():
    owner = UserFactory()
    cookie = session_cookie_for(owner)
    env = child_env()
    with daphne(env) as (port, _), worker(env, name="worker-django-task") as process:

        async def scenario():
            async with open_socket(port, cookie) as ws:
                assert json.loads(await ws.recv())["type"] == "snapshot"

                def launch(task, *args):
                    with live_tasks.for_user(owner):
                        return task.enqueue(*args)

                done = await run_db(launch, tasks.count_steps, 3, 0.3)
                pushed = await messages_until(ws, done.id, lambda t: t["status"] == "succeeded")
                assert [t["status"] for t in pushed][:2] == ["queued", "running"]
                assert "Step 2 of 3" in [t["detail"] for t in pushed], "progress, live over daphne"

                long = await run_db(launch, tasks.count_steps, 600, 0.1)
                await messages_until(ws, long.id, lambda t: t["progress"] > 0)
                (horse,) = psutil.Process(process.pid).children()
                await run_db(lambda: task_cancel(task=Task.objects.get(pk=long.id)))
                await messages_until(ws, long.id, lambda t: t["status"] == "cancelled")
                await asyncio.to_thread(horse.wait, 30)  # RQ's stop-job command killed it
                return done, long

        done, long = asyncio.run(scenario())
        assert process.poll() is None, "the worker goes on"
    done.refresh()
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, 3)
    cancelled = tasks.count_steps.get_result(long.id)
    assert (cancelled.status, cancelled.live_status) == (TaskResultStatus.FAILED, "cancelled")
    assert cancelled.errors[0].exception_class is TaskCancelled
    assert wait_for_task(long.id, lambda t: not t.needs_cleanup, 30).progress < 100


def test_a_killed_work_horse_ends_its_task_honestly():
    result = tasks.count_steps.enqueue(600, 0.1)
    with worker(child_env(), name="worker-django-task-horse-killed") as process:
        wait_for_task(result.id, lambda t: t.progress > 0, 30)
        (horse,) = psutil.Process(process.pid).children()
        horse.send_signal(signal.SIGKILL)
        failed = wait_for_task(result.id, lambda t: t.is_finished, 30)
    assert (failed.status, failed.error) == ("failed", LOST)
    result.refresh()
    assert (result.status, result.live_status) == (TaskResultStatus.FAILED, "failed")
    (error,) = result.errors
    assert error.exception_class is JobLost and error.traceback == LOST


def test_the_safety_net_requeues_a_job_redis_lost_and_the_task_runs():
    result = tasks.calculate_meaning_of_life.enqueue()
    assert result.id in queued_job_ids()
    purge_queued_jobs()  # the queue lost it: off the queue, no record
    Task.objects.filter(pk=result.id).update(created_at=timezone.now() - timedelta(minutes=5))  # past the grace
    env = child_env()
    with scheduler(env, name="scheduler-django-task"), worker(env, name="worker-django-task-requeued"):
        wait_for_task(result.id, lambda t: t.is_finished, 60)
    result.refresh()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


def test_a_task_without_an_owner_is_pushed_to_staff_only():
    user, staff = UserFactory(), StaffFactory(permissions=["view_task"])
    user_cookie, staff_cookie = session_cookie_for(user), session_cookie_for(staff)
    env = child_env()
    with daphne(env) as (port, _), worker(env, name="worker-django-task-ownerless"):

        async def scenario():
            async with open_socket(port, user_cookie) as mine, open_socket(port, staff_cookie, "?scope=all") as every:
                for ws in (mine, every):
                    assert json.loads(await ws.recv())["type"] == "snapshot"
                result = await run_db(tasks.sleep_quietly.enqueue, 0.2)
                pushed = await messages_until(every, result.id, lambda t: t["status"] == "succeeded")
                assert [t["status"] for t in pushed] == ["queued", "running", "succeeded"]
                assert await nothing_of(mine, result.id, 1.0), "no user's socket hears of it"
                return result

        result = asyncio.run(scenario())
    assert tasks.sleep_quietly.get_result(result.id).return_value == "slept"
