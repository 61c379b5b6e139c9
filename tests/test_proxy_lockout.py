"""The failed-login lockout behind the documented reverse proxy: Debian's nginx serving the
`location` blocks of docs/deploy.md, in front of daphne started as the Procfile starts it.

A client that sends a new X-Forwarded-For with each wrong password is still locked out at the
limit, and clients with different addresses are counted apart (not all as the proxy)."""

from __future__ import annotations

import re
import shlex
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings

from tests.factories import PASSWORD, UserFactory
from tests.processes import CEILING, ROOT, HttpSession, child_env, free_port, running, wait_for_port, wait_until

NGINX = Path("/usr/sbin/nginx")
LOGIN = "/accounts/login/"
# Two clients of the proxy, as two machines would be: Linux answers on all of 127.0.0.0/8.
CLIENT_A, CLIENT_B = "127.0.0.1", "127.0.0.2"


def documented_nginx_config() -> str:
    """The nginx block of docs/deploy.md's reverse-proxy section."""
    section = (ROOT / "docs" / "deploy.md").read_text().split("## 3. Reverse proxy", 1)[1].split("\n## ", 1)[0]
    (config,) = re.findall(r"```nginx\n(.*?)```", section, re.S)
    return config


def location_blocks(config: str) -> list[str]:
    """Each `location ... { ... }` of the config, whole (braces counted, so nested blocks stay in)."""
    blocks = []
    for match in re.finditer(r"^[ \t]*location\b[^{]*\{", config, re.M):
        depth, end = 1, match.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(config[end], 0)
            end += 1
        blocks.append(config[match.start() : end])
    return blocks


def directives(block: str, name: str) -> list[str]:
    """The arguments of every `name ...;` in the block, comments dropped."""
    lines = [line.split("#", 1)[0] for line in block.splitlines()]
    return [args.strip() for args in re.findall(rf"^\s*{name}\s+([^;]*);", "\n".join(lines), re.M)]


def procfile_web_command(port: int) -> list[str]:
    """The Procfile's web command on `port`, run with this interpreter's daphne."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    (command,) = [line.split(":", 1)[1] for line in lines if line.startswith("web:")]
    words = shlex.split(command.replace("${WEB_PORT:-8000}", str(port)))
    assert words[0] == "daphne"
    return [sys.executable, "-m", "daphne", *words[1:]]


def nginx_config(directory: Path, listen: int, upstream_port: int) -> str:
    """A whole nginx.conf that runs as any user in `directory`, around the documented locations."""
    locations = location_blocks(documented_nginx_config())
    (upstream,) = {target.removeprefix("http://") for b in locations for target in directives(b, "proxy_pass")}
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    body = "\n".join(locations)
    return f"""
daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {directory}/access.log;
{temp}
    upstream {upstream} {{ server 127.0.0.1:{upstream_port}; }}
    server {{
        listen 127.0.0.1:{listen};
{body}
    }}
}}
"""


@contextmanager
def nginx(directory: Path, port: int, upstream_port: int) -> Iterator[None]:
    if not NGINX.exists():
        pytest.fail(f"{NGINX} is missing: install it with `bash scripts/ensure_nginx.sh` (or `make proxy`).")
    (directory / "nginx.conf").write_text(nginx_config(directory, port, upstream_port))
    args = [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf"), "-e", str(directory / "error.log")]
    with running(args, child_env(), f"nginx-{port}") as proc:

        def listening() -> bool:
            assert proc.poll() is None, (directory / "error.log").read_text(errors="replace")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, CEILING)
        yield


@pytest.fixture
def proxied_site(transactional_db, tmp_path) -> Iterator[tuple[int, int]]:
    """(nginx's port, daphne's port): daphne as the Procfile runs it, nginx as docs/deploy.md says."""
    web_port, proxy_port = free_port(), free_port()
    # The documented nginx passes `Host $host`, without the port the browser used: the origin it
    # posts from is then a trusted origin, as deploy.md's CSRF_TRUSTED_ORIGINS row says.
    env = child_env(CSRF_TRUSTED_ORIGINS=f"http://127.0.0.1:{proxy_port}")
    with running(procfile_web_command(web_port), env, f"daphne-{web_port}"):
        wait_for_port(web_port)
        with nginx(tmp_path, proxy_port, web_port):
            yield proxy_port, web_port


def log_in(client: HttpSession, username: str, password: str, forwarded_for: str | None = None) -> int:
    extra = {"X-Forwarded-For": forwarded_for} if forwarded_for else None
    status, _ = client.request("POST", LOGIN, form={"username": username, "password": password}, extra_headers=extra)
    return status


# --- the documented config, read as text -------------------------------------------------------


def test_every_documented_location_replaces_the_clients_forwarded_for():
    locations = location_blocks(documented_nginx_config())
    assert [block.split("{", 1)[0].split(None, 1)[1].strip() for block in locations] == ["/ws/", "= /imports/", "/"]
    for block in locations:
        assert directives(block, "proxy_set_header X-Forwarded-For") == ["$remote_addr"], block
    # Appending keeps the client's own value leftmost, where daphne reads it.
    assert "$proxy_add_x_forwarded_for" not in documented_nginx_config()


# --- nginx and daphne for real ------------------------------------------------------------------


@pytest.mark.slow
def test_a_client_spoofing_forwarded_for_is_locked_out_and_another_client_is_not(proxied_site):
    port, _ = proxied_site
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    spoofer = HttpSession(port, source_address=CLIENT_A)
    statuses = [log_in(spoofer, user.username, "wrong", f"203.0.113.{n}") for n in range(1, limit + 3)]
    # Locked at the limit, as without any header, and still locked for the right password.
    assert statuses == [200] * (limit - 1) + [429] * 3
    assert log_in(spoofer, user.username, PASSWORD, "203.0.113.200") == 429
    # axes counted one address, the one nginx saw, never one the client wrote.
    attempts = apps.get_model("axes", "AccessAttempt").objects  # axes ships no types
    assert set(attempts.values_list("ip_address", flat=True)) == {CLIENT_A}

    # Another client of the proxy signs in as that user at once.
    other = HttpSession(port, source_address=CLIENT_B)
    assert log_in(other, user.username, PASSWORD) == 302
    assert "sessionid" in other.cookies


@pytest.mark.slow
def test_clients_behind_the_proxy_are_counted_apart(proxied_site):
    port, _ = proxied_site
    user = UserFactory()
    limit = settings.AXES_FAILURE_LIMIT
    first, second = HttpSession(port, source_address=CLIENT_A), HttpSession(port, source_address=CLIENT_B)
    # Together they pass the limit; had daphne seen only the proxy's address, the second would be
    # locked out by the first's mistakes.
    assert [log_in(first, user.username, "wrong") for _ in range(limit - 1)] == [200] * (limit - 1)
    assert [log_in(second, user.username, "wrong") for _ in range(limit - 1)] == [200] * (limit - 1)
    assert log_in(first, user.username, "wrong") == 429
    assert log_in(second, user.username, PASSWORD) == 302


@pytest.mark.slow
def test_a_client_that_reaches_daphne_directly_chooses_its_address(proxied_site):
    # What docs/deploy.md warns of: daphne --proxy-headers believes anyone's X-Forwarded-For, so its
    # port must be reachable by the proxy alone (loopback here, as in the Procfile and compose).
    _, web_port = proxied_site
    user = UserFactory()
    direct = HttpSession(web_port)
    statuses = [
        log_in(direct, user.username, "wrong", f"198.51.100.{n}") for n in range(settings.AXES_FAILURE_LIMIT + 2)
    ]
    assert 429 not in statuses
