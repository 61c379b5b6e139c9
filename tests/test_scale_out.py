"""Many processes on one Redis and one database: two daphnes, two workers, a worker pool."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from live_tasks.models import Task
from live_tasks.services import task_start
from posts.services import posts_seed
from tests.factories import UserFactory, session_cookie_for
from tests.library.testapp.kinds import TEST_STEPS
from tests.processes import HttpSession, child_env, daphne, running, wait_for_task, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

USERS = 20
POSTS_EACH = 300


async def follow_own_export(user_index: int, cookie: str, launch_port: int, socket_port: int) -> dict:
    """One user: a socket on one daphne, the launch through the other; collect until final."""
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{socket_port}"}
    async with connect(f"ws://127.0.0.1:{socket_port}/ws/notifications/", additional_headers=headers) as ws:
        snapshot = json.loads(await ws.recv())
        assert snapshot == {"type": "snapshot", "tasks": []}
        status, body = await asyncio.to_thread(
            HttpSession(launch_port, cookie).request, "POST", "/exports/", json_client=True
        )
        assert status == 202, body
        task_id = json.loads(body)["id"]
        received: list[dict] = []
        while not received or received[-1]["status"] not in ("succeeded", "failed", "cancelled"):
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            assert message["type"] == "task"
            received.append(message["task"])
        return {"task_id": task_id, "received": received}


def test_two_daphnes_and_two_workers_serve_twenty_users_at_once(smtp_server):
    users = [UserFactory() for _ in range(USERS)]
    for user in users:
        posts_seed(author=user, count=POSTS_EACH)
    cookies = [session_cookie_for(user) for user in users]
    env = child_env(EMAIL_URL=smtp_server.url, EXPORT_CHUNK_SIZE="50", TASK_PROGRESS_INTERVAL="0.01")

    with (
        daphne(env) as (port_a, _),
        daphne(env) as (port_b, _),
        worker(env, name="scale-worker-1"),
        worker(env, name="scale-worker-2"),
    ):
        ports = [port_a, port_b]

        async def everyone():
            return await asyncio.gather(
                *(follow_own_export(i, cookies[i], ports[i % 2], ports[(i + 1) % 2]) for i in range(USERS))
            )

        results = asyncio.run(everyone())

    out_dir = Path(env["TEST_OUTPUT_DIR"])
    worker_logs = (out_dir / "scale-worker-1.log").read_text() + (out_dir / "scale-worker-2.log").read_text()
    for user, result in zip(users, results, strict=True):
        task = Task.objects.get(pk=result["task_id"])
        assert task.user == user
        # Only this user's task ever reached this user's socket...
        assert {t["id"] for t in result["received"]} == {result["task_id"]}
        # ...and every change of it did: seq counts changes, so none may be missing.
        seqs = [t["seq"] for t in result["received"]]
        assert seqs == list(range(seqs[0], task.seq + 1)) and seqs[0] == 0, seqs
        progress = [t["progress"] for t in result["received"]]
        assert progress == sorted(progress) and progress[-1] == 100
        assert task.status == Task.Status.SUCCEEDED
        data = json.loads(task.file.open("rb").read())
        assert data["count"] == POSTS_EACH == len(data["posts"])
        # RQ logs the call: task_run_job('<id>', language='en-us') (the task's language, live_tasks/queue.py).
        job_starts = re.findall(rf"default: live_tasks\.jobs\.task_run_job\('{task.id}'[,)]", worker_logs)
        assert len(job_starts) == 1, "each job ran exactly once"
    assert sorted(m["To"] for m in smtp_server.messages) == sorted(u.email for u in users)


def test_worker_pool_uses_several_processes():
    """`rqworker-pool --num-workers 2` runs jobs in two worker processes at once."""
    tasks = [
        task_start(user=UserFactory(), kind=TEST_STEPS, params={"steps": 4, "step_seconds": 0.25}) for _ in range(4)
    ]
    pool = [sys.executable, "manage.py", "rqworker-pool", "default", "--num-workers", "2"]
    with running(pool, child_env(), "worker-pool", new_session=True):
        done = [wait_for_task(task.id, lambda t: t.is_finished, 120) for task in tasks]
    assert {t.status for t in done} == {"succeeded"}
    workers = {t.detail.rsplit(" ", 1)[1] for t in done}
    assert len(workers) == 2, f"two worker processes ran the jobs, not one: {workers}"
