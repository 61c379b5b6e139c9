"""Production Redis settings: passwords and TLS in the URL, a separate layer, and Sentinel for real."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
import redis
from websockets.asyncio.client import connect

from live_tasks.models import Task
from tests.factories import PostFactory, UserFactory, session_cookie_for
from tests.processes import ROOT, HttpSession, RedisServer, child_env, daphne, free_port, run_burst_worker


def settings_seen_with(**env: str) -> dict:
    """Load the real settings in a fresh process with `env` and return what Redis users get."""
    code = (
        "import json, django; from django.conf import settings; django.setup();"
        "print(json.dumps({'rq': settings.RQ_QUEUES['default'],"
        " 'layer': settings.CHANNEL_LAYERS['default']['CONFIG']}, default=list))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env=child_env(DJANGO_SETTINGS_MODULE="project.settings", **env),
    )
    return json.loads(result.stdout)


def test_password_tls_and_a_separate_channel_layer_come_from_the_environment():
    seen = settings_seen_with(
        REDIS_URL="rediss://:s3cret@redis.internal:6380/2",
        CHANNEL_LAYER_REDIS_URL="rediss://:other@layer.internal:6380/3",
        CHANNEL_LAYER_PREFIX="shop-live",
        REDIS_SSL_CERT_REQS="required",
    )
    assert seen["rq"]["URL"] == "rediss://:s3cret@redis.internal:6380/2"
    assert seen["rq"]["SSL_CERT_REQS"] == "required"
    assert seen["layer"]["hosts"] == [{"address": "rediss://:other@layer.internal:6380/3", "ssl_cert_reqs": "required"}]
    assert seen["layer"]["prefix"] == "shop-live"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_queue_and_channel_layer_work_through_redis_sentinel(tmp_path):
    user = UserFactory()
    PostFactory.create_batch(500, author=user)
    sentinel_port = free_port()
    with RedisServer() as master:
        conf = tmp_path / "sentinel.conf"
        conf.write_text(
            f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
            f"sentinel monitor exportsmaster 127.0.0.1 {master.port} 1\n"
        )
        sentinel = subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=subprocess.DEVNULL)
        try:
            env = child_env(
                REDIS_URL="redis://nowhere.invalid:1/0",  # proves the address comes from Sentinel
                REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}",
                REDIS_SENTINEL_MASTER="exportsmaster",
                EMAIL_URL="memorymail://",
                EXPORT_CHUNK_SIZE="50",
            )
            time.sleep(0.5)
            with daphne(env) as (port, _):
                session = HttpSession(port, session_cookie_for(user))

                async def follow_export() -> list[dict]:
                    headers = {
                        "Cookie": f"sessionid={session.cookies['sessionid']}",
                        "Origin": f"http://127.0.0.1:{port}",
                    }
                    async with connect(f"ws://127.0.0.1:{port}/ws/notifications/", additional_headers=headers) as ws:
                        assert json.loads(await ws.recv())["type"] == "snapshot"
                        status, body = session.request("POST", "/exports/", json_client=True)
                        assert status == 202, body
                        assert redis.Redis(port=master.port).llen("rq:queue:default") == 1
                        worker = asyncio.create_task(asyncio.to_thread(run_burst_worker, env))
                        seen: list[dict] = []
                        while not seen or seen[-1]["status"] != "succeeded":
                            seen.append(json.loads(await asyncio.wait_for(ws.recv(), 30))["task"])
                        assert (await worker).returncode == 0
                        return seen

                updates = asyncio.run(follow_export())
        finally:
            sentinel.terminate()
            sentinel.wait(10)
    assert [u["status"] for u in updates][0] == "queued"
    assert updates[-1]["progress"] == 100
    assert Task.objects.get(user=user).status == Task.Status.SUCCEEDED
