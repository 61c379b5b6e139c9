"""Request bodies are capped inside daphne as they arrive (project/bodylimit.py), tried on a real daphne
over raw sockets: a body over REQUEST_BODY_MAX_BYTES (POST /imports/: IMPORT_MAX_BYTES) is answered
413 before it is sent, or without a Content-Length once it passes the limit, and nothing of it lands
in daphne's temporary directory. The scheduler sweeps the upload files a killed web process left."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import time

import pytest

from live_tasks.models import Task
from tests.factories import UserFactory, session_cookie_for
from tests.processes import CEILING, HttpSession, child_env, daphne, scheduler, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MiB = 1 << 20
GiB = 1 << 30
LIMIT = MiB  # REQUEST_BODY_MAX_BYTES's default


def spooled_bytes(pid: int, directory) -> int:
    """What the process holds in files under `directory`, unlinked ones too (Python's TemporaryFile)."""
    total = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(directory)):
                total += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        except FileNotFoundError:
            continue  # closed meanwhile
    return total


def post_head(port: int, path: str, *, content_length: int | None = None, json_client: bool = False) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/x-www-form-urlencoded"]
    lines.append(f"Content-Length: {content_length}" if content_length is not None else "Transfer-Encoding: chunked")
    if json_client:
        lines.append("Accept: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(sock: socket.socket, received: bytes = b"") -> bytes:
    """The whole response (head and body, by its Content-Length); fails if none comes in CEILING."""
    sock.settimeout(CEILING)
    while b"\r\n\r\n" not in received or len(received.partition(b"\r\n\r\n")[2]) < _length(received):
        try:
            data = sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"no answer within {CEILING}s") from None
        assert data, f"connection closed with no complete answer: {received!r}"
        received += data
    return received


def answer_json(answer: bytes) -> object:
    return json.loads(answer.partition(b"\r\n\r\n")[2])


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port))


def _length(received: bytes) -> int:
    for line in received.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def send_regardless(sock: socket.socket, size: int) -> None:
    """Go on sending as a careless client does; the server may hang up (that is fine)."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(b"a" * size)


@pytest.fixture
def spool_dir(tmp_path):
    """daphne's temporary directory (TMPDIR): where Twisted and Django spool request bodies."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(spool_dir):
    with daphne(child_env(TMPDIR=str(spool_dir))) as (port, proc), connect(port) as sock:
        sock.sendall(post_head(port, "/accounts/login/", content_length=GiB))
        answer = read_answer(sock)  # not a byte of the body sent yet
        assert answer.startswith(b"HTTP/1.1 413 ") and b"Connection: close" in answer
        assert b"The request is too large: the limit is 1 MiB." in answer
        send_regardless(sock, 4 * MiB)
        assert spooled_bytes(proc.pid, spool_dir) == 0
        assert list(spool_dir.iterdir()) == []
        sock.settimeout(CEILING)
        assert sock.recv(65536) == b"", "the connection ends after the answer"


def test_a_chunked_body_is_cut_off_once_over_the_limit(spool_dir):
    with daphne(child_env(TMPDIR=str(spool_dir))) as (port, proc), connect(port) as sock:
        sock.sendall(post_head(port, "/accounts/login/", json_client=True))
        chunk = b"%x\r\n" % (64 * 1024) + b"a" * (64 * 1024) + b"\r\n"
        sent, kept, received = 0, 0, b""
        while sent < 8 * MiB and not received:  # a few MiB, or until the server answers
            if select.select([sock], [], [], 0)[0]:
                received = sock.recv(65536)
                break
            sock.sendall(chunk)
            sent += len(chunk)
            kept = max(kept, spooled_bytes(proc.pid, spool_dir))
        assert kept <= LIMIT, f"daphne kept {kept / MiB:.1f} MiB of a body of {sent / MiB:.1f} MiB"
        answer = read_answer(sock, received)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert answer_json(answer) == {"error": "The request is too large: the limit is 1 MiB."}
        assert wait_until(lambda: spooled_bytes(proc.pid, spool_dir) == 0)
        assert list(spool_dir.iterdir()) == []


def test_the_import_endpoint_keeps_its_own_larger_limit(spool_dir):
    user = UserFactory()
    env = child_env(TMPDIR=str(spool_dir), IMPORT_MAX_BYTES=str(8 * MiB))
    with daphne(env) as (port, proc):
        with connect(port) as sock:
            sock.sendall(post_head(port, "/imports/", content_length=GiB, json_client=True))
            answer = read_answer(sock)
            assert answer.startswith(b"HTTP/1.1 413 ")
            assert answer_json(answer) == {"error": "The file is too large: the limit is 8 MiB."}
        # A file three times the site's limit, within the import's: accepted, and the task has it.
        export = b'{"posts": [{"body": "hello", "created_at": "2020-01-01T00:00:00Z"}]}' + b" " * (3 * MiB)
        session = HttpSession(port, session_cookie_for(user))
        status, body = session.upload("/imports/", "file", "posts.json", export, json_client=True)
        assert status == 202, body
        assert wait_until(lambda: spooled_bytes(proc.pid, spool_dir) == 0)
    assert Task.objects.get(user=user).kind == "import_posts"


def test_the_scheduler_sweeps_orphaned_upload_files_and_keeps_fresh_ones(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    orphan, fresh = work / "upload-1c0b.part", work / "upload-2f3a.part"
    an_input = work / "7d5e9b0c-0000-4000-8000-000000000000.input"  # a task's: its task deletes it
    for path in (orphan, fresh, an_input):
        path.write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(orphan, (two_hours_ago, two_hours_ago))
    os.utime(an_input, (two_hours_ago, two_hours_ago))
    with scheduler(child_env(TASK_WORK_DIR=str(work))):
        wait_until(lambda: not orphan.exists())
    assert fresh.exists() and an_input.exists()
