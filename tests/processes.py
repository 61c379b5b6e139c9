"""Helpers for the site's tests (and benchmarks) that run the real programs: the library tests'
(`rqworker`, `task_scheduler`, `daphne`, waiting for events) on the site's test settings, and the
site's own (the email worker, a captured SMTP server, a slow or a private Redis, an HTTP session)."""

from __future__ import annotations

import email
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from email.message import Message
from typing import Any

from .library.helpers import (
    CEILING,
    ROOT,
    daphne,
    free_port,
    running,
    scheduler,
    wait_for_log,
    wait_for_port,
    wait_for_task,
    wait_until,
    worker,
)
from .library.helpers import child_env as library_child_env

__all__ = [
    "CEILING",
    "ROOT",
    "CapturedSMTP",
    "HttpSession",
    "RedisServer",
    "SlowProxy",
    "StalledServer",
    "child_env",
    "daphne",
    "email_worker",
    "free_port",
    "run_burst_worker",
    "running",
    "scheduler",
    "wait_for_log",
    "wait_for_port",
    "wait_for_task",
    "wait_until",
    "worker",
]


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: the site's test settings, on the *test* database."""
    env = library_child_env(**{"DJANGO_SETTINGS_MODULE": "tests.settings", **extra})
    # Importing project.asgi here (a LiveFeed does) sets DATABASE_POOL for daphne; a worker must
    # not inherit it (daphne's children set it again themselves).
    if "DATABASE_POOL" not in extra:
        env.pop("DATABASE_POOL", None)
    return env


def run_burst_worker(env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """`manage.py rqworker default --burst`: process every queued job, then exit."""
    return subprocess.run(
        [sys.executable, "manage.py", "rqworker", "default", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def email_worker(env: dict[str, str], name: str = "email-worker"):
    """The account emails' worker, as the Procfile runs it: RQ's plain worker on the "email" queue."""
    args = [sys.executable, "manage.py", "rqworker", "email", "--worker-class", "rq.Worker"]
    with running(args, env, name, new_session=True) as proc:
        yield proc


class StalledServer:
    """Accepts TCP connections and never answers: a hung mail server."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.socket()
        self._sock.bind((host, 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.url = f"smtp://{host}:{self.port}"

    def __enter__(self) -> StalledServer:
        return self  # the kernel completes handshakes from the listen backlog; nobody replies

    def __exit__(self, *exc) -> None:
        self._sock.close()


class SlowProxy:
    """A TCP proxy on loopback that holds every reply `delay` seconds: a server far away (a slow Redis)."""

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port, self.delay = target_port, delay
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(256)
        self.port = self._sock.getsockname()[1]
        self._open: list[socket.socket] = []

    def __enter__(self) -> SlowProxy:
        threading.Thread(target=self._accept, name="slow-proxy", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()
        for sock in self._open:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return  # closed by __exit__
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, self.delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay: float) -> None:
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class RedisServer:
    """A private redis-server process that a test may stop and start again (it keeps no data)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class CapturedSMTP:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives.

    With `refuse_first=N` it answers the first N messages with a temporary failure (451), as a
    busy mail server does; with `reply` too, with that reply instead (a permanent 5xx, say).
    """

    def __init__(self, refuse_first: int = 0, reply: str = "451 4.3.0 Try again later") -> None:
        from aiosmtpd.controller import Controller

        self.refuse_first = refuse_first
        self.reply = reply
        self.attempts = 0
        self.messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 -- aiosmtpd's hook name
        self.attempts += 1
        if self.attempts <= self.refuse_first:
            return self.reply
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def __enter__(self) -> CapturedSMTP:
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()


class HttpSession:
    """A signed-in browser-like HTTP client for a server started by a test (session + CSRF cookies)."""

    def __init__(
        self, port: int, session_key: str | None = None, *, source_address: str | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self.host = host  # the server's address
        # The local address to connect from (any of 127.0.0.0/8 on Linux): another client's address.
        self.source_address = source_address
        self.cookies = {"sessionid": session_key} if session_key else {}
        self.last_headers: Any = None  # the last response's headers (an http.client.HTTPMessage)

    def _cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(
        self,
        method: str,
        path: str,
        *,
        json_client: bool = False,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
        chunked: bool = False,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request with the session's cookies (the response's headers are then in `last_headers`);
        a POST carries the CSRF token in its header. `chunked` sends the body without a
        Content-Length, in pieces, as a streaming client does."""
        import http.client
        from http.cookies import SimpleCookie
        from urllib.parse import urlencode

        if method == "POST" and "csrftoken" not in self.cookies:
            self.request("GET", "/exports/" if "sessionid" in self.cookies else "/accounts/login/")
        headers = {"Cookie": self._cookie_header(), "Host": f"{self.host}:{self.port}"}
        if json_client:
            headers["Accept"] = "application/json"
        if method == "POST":
            headers["X-CSRFToken"] = self.cookies["csrftoken"]
            headers["Origin"] = f"http://{self.host}:{self.port}"
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if content_type:
            headers["Content-Type"] = content_type
        payload = body
        if chunked and body is not None:
            headers["Transfer-Encoding"] = "chunked"
            payload = (body[i : i + 65536] for i in range(0, len(body), 65536))  # type: ignore[assignment]
        headers.update(extra_headers or {})
        source = (self.source_address, 0) if self.source_address else None
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60, source_address=source)
        try:
            conn.request(method, path, body=payload, headers=headers, encode_chunked=chunked)
            response = conn.getresponse()
            data = response.read()
            self.last_headers = response.headers
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            return response.status, data
        finally:
            conn.close()

    def upload(self, path: str, field: str, file_name: str, content: bytes, **kwargs) -> tuple[int, bytes]:
        """A multipart/form-data POST of one file, as the page's form sends it."""
        boundary = "----testboundary7MA4YWxkTrZu0gW"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{file_name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request("POST", path, body=body, content_type=f"multipart/form-data; boundary={boundary}", **kwargs)
