"""No shared disk, proven (issue #19, item 2): the web server, the task worker and the scheduler run
as hosts of their own, which share the network and nothing else, and a user's export, download,
import, cancel and a worker's death all end as they do on one machine.

Each program runs in a network namespace of its own on a private /24 (tests/netns.py): daphne, `manage.py
rqworker default` and `manage.py task_scheduler`, plus SeaweedFS (`weed mini`, bound to its host's
address; browsers reach the bucket at a second, public address, a TCP forwarder on that host) and a
Redis of the run's own. They reach Redis, the bucket and PostgreSQL over the veth network only:
the machine's own Redis and PostgreSQL listen on its loopback, which no namespace reaches, and
PostgreSQL is forwarded (socat) from the bridge's address. This test process is the browser: it
reaches daphne and the bucket's public address over the same network.

Each of the three hosts has its own MEDIA_ROOT, work directory (LIVE_TASKS["WORK_DIR"], the
TASK_WORK_DIR variable) and TMPDIR, in a folder of its own; in each program's mount namespace the
other hosts' folders, the bucket's data folder and this process's MEDIA_ROOT are covered by an
empty read-only tmpfs: not just elsewhere, absent. What they have in common is the code, the log
folder (written by this process) and, on SQLite, the database file, by necessity (SQLite is a file,
not a server; it is not MEDIA_ROOT). On PostgreSQL (DATABASE_URL, as `make test-postgres`) not even that.

Needs root (namespaces, veth, mount) and, on PostgreSQL, socat; skipped without root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import psutil
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from live_tasks.errors import worker_lost_error
from live_tasks.models import Task
from posts.models import Post, post_fingerprints_at
from posts.services import posts_seed
from tests.factories import UserFactory, session_cookie_for
from tests.library.helpers import WORKER_LOST_BOUND_SECONDS
from tests.library.s3server import S3Server, start_s3_server
from tests.netns import Host, PrivateNetwork, unavailable_reason, wait_for_address
from tests.processes import CEILING, HttpSession, StalledServer, child_env, running, wait_for_task

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# The hosts, by the last number of their address on the run's /24 (.1 is this process, the browser).
WEB, WORKER, SCHEDULER, STORAGE, STORAGE_PUBLIC, REDIS = 10, 11, 12, 20, 21, 30
APP_HOSTS = ("web", "worker", "scheduler")
WEB_PORT = 8000
FINAL = ("succeeded", "failed", "cancelled")
# The safety net on a short clock: a heartbeat a second, lost after 4 s, a pass every second.
SITE_ENV = {
    "WORKER_JOB_HEARTBEAT_SECONDS": "1",
    "TASK_LOST_AFTER_SECONDS": "4",
    "TASK_RECONCILE_INTERVAL_SECONDS": "1",
    "TASK_PROGRESS_INTERVAL": "0.01",
    "EXPORT_CHUNK_SIZE": "100",
    "IMPORT_BATCH_SIZE": "100",
    "IMPORT_MAX_BYTES": str(64 * 2**20),
    "TASK_RETRY_BACKOFF": "0.1",
}


@dataclass
class Site:
    """The running site: its network, hosts, bucket, and how each program is started."""

    net: PrivateNetwork
    s3: S3Server
    bucket: str
    public_netloc: str  # host:port, the bucket as browsers reach it
    folders: dict[str, Path]  # each app host's own folder
    envs: dict[str, dict[str, str]]
    hidden: dict[str, list[Path]]
    log_dir: str

    @property
    def web(self) -> Host:
        return self.net.hosts["web"]

    def session(self, user: Any) -> HttpSession:
        return HttpSession(WEB_PORT, session_cookie_for(user), host=self.web.address)

    def run(self, role: str, args: list[str], name: str, **env: str) -> Any:
        host = self.net.hosts[role]
        return self.net.run(host, args, {**self.envs[role], **env}, f"{self.log_dir}/{name}", hide=self.hidden[role])

    @contextmanager
    def worker(self, name: str = "worker", **env: str) -> Iterator[subprocess.Popen[Any]]:
        """`manage.py rqworker default` on the worker host."""
        with self.run("worker", [sys.executable, "manage.py", "rqworker", "default"], name, **env) as process:
            yield process

    def bucket_state(self) -> list[str]:
        """What the bucket holds: its objects, and the multipart uploads begun and never completed."""
        return self.s3.keys(self.bucket)

    def disks(self) -> dict[str, list[str]]:
        """What each host keeps on its own disk (its MEDIA_ROOT and work directory)."""
        return {
            role: sorted(
                str(path.relative_to(folder)) for part in ("media", "work") for path in (folder / part).rglob("*")
            )
            for role, folder in self.folders.items()
        }


def end_group(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)


def database_url(stack: ExitStack, net: PrivateNetwork, log_dir: str) -> str:
    """The test database as the hosts reach it: SQLite's file, or PostgreSQL forwarded from the bridge."""
    url = child_env()["DATABASE_URL"]
    if url.startswith("sqlite:"):
        return url
    if shutil.which("socat") is None:
        pytest.fail("socat is missing (apt-get install socat): it forwards PostgreSQL to the test network.")
    db = connection.settings_dict
    target = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    forward = ["socat", f"TCP-LISTEN:5432,bind={net.gateway},reuseaddr,fork", f"TCP:{target}"]
    process = stack.enter_context(running(forward, dict(os.environ), f"{log_dir}/postgres-forward", new_session=True))
    stack.callback(end_group, process.pid)  # its forks, one per connection
    wait_for_address(net.gateway, 5432)
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{net.gateway}:5432/{db['NAME']}"


@pytest.fixture(scope="module")
def site(django_db_setup) -> Iterator[Site]:
    if reason := unavailable_reason():
        pytest.skip(reason)
    with ExitStack() as stack:
        net = stack.enter_context(PrivateNetwork())
        log_dir = f"no-shared-disk/{net.tag}"
        (Path(os.environ["TEST_OUTPUT_DIR"]) / log_dir).mkdir(parents=True, exist_ok=True)
        for role, last in [("web", WEB), ("worker", WORKER), ("scheduler", SCHEDULER), ("redis", REDIS)]:
            net.add_host(role, last)
        storage = net.add_host("storage", STORAGE, extra=(STORAGE_PUBLIC,))

        redis_host = net.hosts["redis"]
        redis_args = ["redis-server", "--bind", redis_host.address, "--port", "6379", "--protected-mode", "no"]
        redis_args += ["--save", "", "--appendonly", "no"]  # it keeps no data
        stack.enter_context(net.run(redis_host, redis_args, dict(os.environ), f"{log_dir}/redis"))
        wait_for_address(redis_host.address, 6379)

        s3 = start_s3_server(ip=storage.address, netns=storage.netns)
        stack.callback(s3.stop)
        s3_port = urlsplit(s3.endpoint_url).port
        assert s3_port is not None
        public = storage.extra_addresses[0]
        forward = ["socat", f"TCP-LISTEN:{s3_port},bind={public},reuseaddr,fork", f"TCP:{storage.address}:{s3_port}"]
        stack.enter_context(net.run(storage, forward, dict(os.environ), f"{log_dir}/storage-public"))
        wait_for_address(public, s3_port)
        bucket = f"no-shared-disk-{net.tag}"
        s3.client().create_bucket(Bucket=bucket)

        root = Path(tempfile.mkdtemp(prefix=f"no-shared-disk-{net.tag}-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        folders = {role: root / role for role in APP_HOSTS}
        storage_url = (
            f"s3://{quote(s3.access_key, safe='')}:{quote(s3.secret_key, safe='')}@{storage.address}:{s3_port}/{bucket}"
            f"?region=us-east-1&secure=0&public_url=http://{public}:{s3_port}"
        )
        db_url = database_url(stack, net, log_dir)
        envs, hidden = {}, {}
        for role, folder in folders.items():
            for part in ("media", "work", "tmp", "mail"):
                (folder / part).mkdir(parents=True)
            envs[role] = child_env(
                DATABASE_URL=db_url,
                REDIS_URL=f"redis://{redis_host.address}:6379/0",
                CHANNEL_LAYER_PREFIX=f"no-shared-disk-{net.tag}",
                STORAGE_URL=storage_url,
                MEDIA_ROOT=str(folder / "media"),
                TASK_WORK_DIR=str(folder / "work"),
                TMPDIR=str(folder / "tmp"),
                EMAIL_URL=f"filemail:///{folder / 'mail'}",  # four slashes: an absolute path
                ALLOWED_HOSTS=net.hosts["web"].address,
                **SITE_ENV,
            )
            others = [folders[other] for other in APP_HOSTS if other != role]
            hidden[role] = [*others, *([s3.folder] if s3.folder else [])]
            if Path(settings.MEDIA_ROOT).is_dir():
                hidden[role].append(Path(settings.MEDIA_ROOT))  # this process's own
        site = Site(net, s3, bucket, f"{public}:{s3_port}", folders, envs, hidden, log_dir)

        daphne_args = [sys.executable, "-m", "daphne", "-b", site.web.address, "-p", str(WEB_PORT)]
        stack.enter_context(site.run("web", [*daphne_args, "project.asgi:application"], "web"))
        stack.enter_context(site.run("scheduler", [sys.executable, "manage.py", "task_scheduler"], "scheduler"))
        wait_for_address(site.web.address, WEB_PORT)
        yield site


@pytest.fixture
def worker(site: Site) -> Iterator[subprocess.Popen[Any]]:
    with site.worker() as process:
        yield process


class LiveSocket:
    """A signed-in page's WebSocket on daphne, over the test network, in a thread: every task
    message it is pushed."""

    def __init__(self, site: Site, session: HttpSession) -> None:
        self.url = f"ws://{site.web.address}:{WEB_PORT}/ws/notifications/"
        self.headers = {
            "Cookie": f"sessionid={session.cookies['sessionid']}",
            "Origin": f"http://{site.web.address}:{WEB_PORT}",
        }
        self.messages: list[dict] = []
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with connect(self.url, additional_headers=self.headers, open_timeout=10) as socket:
            while not self._stop.is_set():
                try:
                    message = json.loads(socket.recv(timeout=0.1))
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                if message["type"] == "snapshot":
                    self._ready.set()
                elif message["type"] == "task":
                    self.messages.append(message["task"])

    def task(self, task_id: str) -> list[dict]:
        return [m for m in list(self.messages) if m["id"] == task_id]

    def wait_for(self, task_id: str, predicate: Any, timeout: float = CEILING) -> dict:
        """The first message about the task that matches."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.task(task_id):
                if predicate(message):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no such message about {task_id} within {timeout}s; got {self.task(task_id)}")

    def __enter__(self) -> LiveSocket:
        self._thread.start()
        assert self._ready.wait(10), "the socket got no snapshot"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def from_the_bucket(url: str) -> bytes:
    """What a browser gets at a presigned URL: a plain GET, no key, no proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        assert response.status == 200
        return bytes(response.read())


def launch(session: HttpSession, path: str, **upload: Any) -> str:
    if upload:
        status, body = session.upload(path, "file", upload["name"], upload["content"], json_client=True)
    else:
        status, body = session.request("POST", path, json_client=True)
    assert status == 202, body
    return str(json.loads(body)["id"])


def download(site: Site, session: HttpSession, download_url: str) -> bytes:
    """The owner's download: the site redirects to the bucket's public address, which serves the file."""
    status, body = session.request("GET", download_url)
    assert status == 302, body
    location = session.last_headers["Location"]
    assert urlsplit(location).netloc == site.public_netloc, location  # not the address the hosts use
    return from_the_bucket(location)


def seed_posts(user: Any, count: int, *, size: int) -> None:
    """`count` posts of `size` characters each."""
    now = timezone.now()
    bodies = [f"{number:06d} {'x' * (size - 7)}" for number in range(count)]
    fingerprints = post_fingerprints_at(bodies, now)
    posts = [
        Post(author=user, body=body, created_at=now, fingerprint=fingerprint)
        for body, fingerprint in zip(bodies, fingerprints, strict=True)
    ]
    Post.objects.bulk_create(posts, batch_size=2000)


def assert_no_host_kept_a_file(site: Site, before: dict[str, list[str]], *roles: str) -> None:
    """Since `before` (site.disks()), no host (of `roles`) has kept a file on its own disk."""
    now = site.disks()
    for role in roles or APP_HOSTS:
        assert sorted(set(now[role]) - set(before[role])) == [], f"the {role} host kept files on its own disk"


# --- The hosts ---------------------------------------------------------------------------------

PROBE = """
import json, os, socket, sys
def reaches(address, port):
    with socket.socket() as probe:
        probe.settimeout(3)
        return probe.connect_ex((address, port)) == 0
targets, folders = json.loads(sys.argv[1]), json.loads(sys.argv[2])
seen = [sorted(os.listdir(folder)) for folder in folders]
print(json.dumps({"reaches": [reaches(*target) for target in targets], "sees": seen}))
"""


def test_each_host_reaches_the_others_over_the_network_alone_and_sees_only_its_own_folder(site):
    """What the other tests rely on: on each host, Redis and the bucket answer at their hosts'
    addresses, this machine's own Redis and PostgreSQL (on its loopback) do not, and the other
    hosts' folders are empty."""
    machine_redis = urlsplit(settings.REDIS_URL)
    storage = urlsplit(site.s3.endpoint_url)
    network = [(site.net.hosts["redis"].address, 6379), (storage.hostname, storage.port)]
    machine = [(machine_redis.hostname, machine_redis.port or 6379), ("127.0.0.1", 5432), (site.net.gateway, 6379)]
    for role, own in site.folders.items():
        others = [folder for other, folder in site.folders.items() if other != role]
        args = [sys.executable, "-c", PROBE, json.dumps(network + machine), json.dumps([str(own), *map(str, others)])]
        command = site.net.command(site.net.hosts[role], args, hide=site.hidden[role])
        probe = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        found = json.loads(probe.stdout)
        assert found["reaches"] == [True] * len(network) + [False] * len(machine), (role, found)
        assert found["sees"] == [["mail", "media", "tmp", "work"], *[[] for _ in others]], (role, found)


# --- Export, download -------------------------------------------------------------------------


def test_an_export_is_pushed_live_and_its_owner_downloads_it_from_the_bucket(site, worker):
    alice, bob = UserFactory(), UserFactory()
    posts_seed(author=alice, count=3000)
    bucket_before = site.bucket_state()
    disks_before = site.disks()
    alice_web = site.session(alice)

    with LiveSocket(site, alice_web) as page:
        task_id = launch(alice_web, "/exports/")
        final = page.wait_for(task_id, lambda t: t["status"] in FINAL)
    assert final["status"] == "succeeded", final["error"]
    pushed = page.task(task_id)
    seqs = [m["seq"] for m in pushed]
    assert seqs == list(range(seqs[0], final["seq"] + 1)), "every change was pushed"
    progress = [m["progress"] for m in pushed]
    assert progress == sorted(progress) and progress[-1] == 100
    assert any(0 < m["progress"] < 100 for m in pushed if m["status"] == "running"), "progress moved live"

    # The file is in the bucket, and on no host's disk.
    stored = Task.objects.get(pk=task_id).file.name
    assert site.bucket_state() == sorted([*bucket_before, stored])
    assert_no_host_kept_a_file(site, disks_before)

    # The owner follows the redirect to the bucket's public address and gets the stored file, exactly.
    content = download(site, alice_web, final["download_url"])
    assert content == site.s3.client().get_object(Bucket=site.bucket, Key=stored)["Body"].read()
    data = json.loads(content)
    assert data["count"] == 3000
    assert sorted(p["body"] for p in data["posts"]) == sorted(
        Post.objects.by_author(alice).values_list("body", flat=True)
    )

    # Another user: the missing page, and no URL of the bucket.
    bob_web = site.session(bob)
    status, body = bob_web.request("GET", final["download_url"])
    assert status == 404
    assert "Location" not in bob_web.last_headers and b"X-Amz" not in body


# --- Import ---------------------------------------------------------------------------------


def test_an_exported_file_imports_as_another_user(site, worker):
    alice, bob = UserFactory(), UserFactory()
    posts_seed(author=alice, count=1500)
    alice_web, bob_web = site.session(alice), site.session(bob)
    export_id = launch(alice_web, "/exports/")
    export = wait_for_task(export_id, lambda t: t.is_finished, CEILING)
    assert export.status == "succeeded", export.error
    exported = download(site, alice_web, f"/tasks/{export_id}/download/")
    bucket_before, disks_before = site.bucket_state(), site.disks()

    with LiveSocket(site, bob_web) as page:
        task_id = launch(bob_web, "/imports/", name="alice.json", content=exported)
        final = page.wait_for(task_id, lambda t: t["status"] in FINAL)
    assert final["status"] == "succeeded", final["error"]
    assert final["detail"] == "Imported 1,500 posts."
    assert any(m["status"] == "running" and m["detail"].startswith("Imported") for m in page.task(task_id))
    mine = sorted(Post.objects.by_author(bob).values_list("body", flat=True))
    assert mine == sorted(Post.objects.by_author(alice).values_list("body", flat=True)) and len(mine) == 1500

    task = wait_for_task(task_id, lambda t: not t.needs_cleanup, CEILING)
    assert task.status == "succeeded"
    assert site.bucket_state() == bucket_before, "the upload left nothing in the bucket"
    assert_no_host_kept_a_file(site, disks_before)


def test_an_import_cancelled_midway_adds_nothing_and_leaves_nothing(site, worker):
    user = UserFactory()
    posts = [{"body": f"Imported {i}", "created_at": "2024-01-01T00:00:00Z"} for i in range(200_000)]
    content = json.dumps({"posts": posts}).encode()
    web = site.session(user)
    bucket_before, disks_before = site.bucket_state(), site.disks()

    with LiveSocket(site, web) as page:
        task_id = launch(web, "/imports/", name="big.json", content=content)
        running_import = page.wait_for(
            task_id, lambda t: t["status"] in FINAL or (t["status"] == "running" and t["detail"].startswith("Imported"))
        )
        assert running_import["status"] == "running", running_import["error"]
        assert Post.all_objects.filter(author=user).exists(), "some posts were staged"
        during = site.bucket_state()
        assert [key for key in during if key.startswith(f"tasks/{task_id}/")], f"the upload is in the bucket: {during}"
        status, body = web.request("POST", running_import["cancel_url"], json_client=True)
        assert status == 200, body
        assert json.loads(body)["status"] == "cancelled"
        final = page.wait_for(task_id, lambda t: t["status"] in FINAL)
    assert final["status"] == "cancelled"
    assert final["detail"] == "Cancelled. No posts were added."

    task = wait_for_task(task_id, lambda t: not t.needs_cleanup, CEILING)
    assert task.status == "cancelled"
    assert not Post.all_objects.filter(author=user).exists(), "not one post stayed, visible or staged"
    assert site.bucket_state() == bucket_before, "nothing left in the bucket, not even a part"
    assert_no_host_kept_a_file(site, disks_before)


# --- A worker killed --------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["writing", "emailing"])
def test_a_worker_killed_mid_export_is_ended_by_the_scheduler_and_leaves_nothing(site, moment):
    """The whole worker host dies (the worker and its work horse, SIGKILL): the scheduler, on
    another host, fails the task as lost and removes what it had put in the bucket: while writing,
    whatever upload it had begun; while emailing, the stored file. (The dead host's own disk is
    gone with it: what it holds is nobody's business.)"""
    user = UserFactory()
    # While writing: 30 MB of posts, so that the kill comes past the first 8 MiB part of an upload.
    seed_posts(user, 30_000 if moment == "writing" else 200, size=1000)
    web = site.session(user)
    bucket_before, disks_before = site.bucket_state(), site.disks()

    with ExitStack() as stack:
        env = {}
        if moment == "emailing":  # a mail server that never answers: the export waits there
            env = {"EMAIL_URL": stack.enter_context(StalledServer(host=site.net.gateway)).url, "EMAIL_TIMEOUT": "300"}
        doomed = stack.enter_context(site.worker(name=f"worker-killed-{moment}", **env))
        page = stack.enter_context(LiveSocket(site, web))
        task_id = launch(web, "/exports/")
        if moment == "writing":
            wait_for_task(
                task_id, lambda t: t.is_finished or (t.status == "running" and 40 <= t.progress < 95), CEILING
            )
        else:
            wait_for_task(task_id, lambda t: t.is_finished or t.detail.startswith("Emailing"), CEILING)
        in_flight = site.bucket_state()
        family = [parent := psutil.Process(doomed.pid), *parent.children(recursive=True)]
        assert len(family) == 2, "the worker and its work horse"
        for process in family:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(family, timeout=10)
        killed_at = time.monotonic()
        assert Task.objects.get(pk=task_id).status == "running", "killed mid-export"

        final = page.wait_for(task_id, lambda t: t["status"] in FINAL)
        took = time.monotonic() - killed_at
    assert final["status"] == "failed"
    assert final["error"] == worker_lost_error("Posts export")
    assert took < WORKER_LOST_BOUND_SECONDS, f"ended {took:.1f}s after the kill"
    task = wait_for_task(task_id, lambda t: not t.needs_cleanup, CEILING)
    assert not task.file
    # What the bucket held of it at the kill: an upload under way (an export is written straight
    # into the bucket), or the stored file.
    (held,) = [key for key in in_flight if key not in bucket_before]
    assert held.startswith(f"tasks/{task_id}/")
    assert held.endswith(" (incomplete)") == (moment == "writing"), in_flight
    assert site.bucket_state() == bucket_before, f"nothing left in the bucket (at the kill: {in_flight})"
    assert_no_host_kept_a_file(site, disks_before, "web", "scheduler")
