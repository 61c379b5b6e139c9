"""Hosts of their own on this one machine, for tests that must prove a deployment shares nothing but
the network: each host a Linux network namespace with one veth into a private /24 (10.231.N.0/24,
N picked free per run), all joined by a bridge in the test's own namespace, which holds .1 and so
reaches every host as a browser would. A host sees only its own addresses and the bridge: nothing
bound to this machine's loopback (the developer's Redis, PostgreSQL) is reachable from it.

A program is run on a host with `PrivateNetwork.run`; `hide` mounts an empty read-only tmpfs over
folders in that program's own mount namespace, so that another host's folders are not merely
elsewhere but absent. Needs root (`ip netns`, `mount`) and iproute2.

Names carry the pid of the test process and a random tag: parallel runs do not clash, and a run
that was killed before its cleanup is swept by the next one (`sweep_stale`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .library.helpers import running

SUBNET_PREFIX = "10.231"
NAME_PREFIX = "nsd"
# mount(8) fails inside `sh -c` with this status: the program never starts.
HIDE_FAILED_STATUS = 97
_HIDE_SCRIPT = (
    'while [ "$1" != -- ]; do'
    f' mount -t tmpfs -o ro,size=64k,mode=0555 hidden-by-test "$1" || exit {HIDE_FAILED_STATUS}; shift;'
    ' done; shift; exec "$@"'
)


def unavailable_reason() -> str | None:
    """Why this machine cannot make the network (None if it can)."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns, veth, mount)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing (apt-get install iproute2)"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _own_namespaces() -> list[str]:
    names = ip("netns", "list").stdout.split()
    return [name for name in names if name.startswith(f"{NAME_PREFIX}-")]


def _end_processes_in(netns: str) -> None:
    """Kill what still runs in one of this module's namespaces (programs a test started there)."""
    pids = [int(pid) for pid in ip("netns", "pids", netns, check=False).stdout.split()]
    processes = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            process.kill()
            processes.append(process)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(processes, timeout=10)


def sweep_stale() -> None:
    """Remove the namespaces and bridges of runs whose test process is gone (killed mid-run)."""
    for netns in _own_namespaces():
        parts = netns.split("-")  # nsd-<pid>-<tag>-<role>
        if len(parts) < 4 or not parts[1].isdigit() or psutil.pid_exists(int(parts[1])):
            continue
        _end_processes_in(netns)
        ip("netns", "del", netns, check=False)
        ip("link", "del", f"{NAME_PREFIX}{parts[2]}", check=False)


def _used_third_octets() -> set[int]:
    used = set()
    for line in ip("-o", "-4", "addr", "show").stdout.splitlines():
        for word in line.split():
            if word.startswith(f"{SUBNET_PREFIX}."):
                used.add(int(word.split(".")[2]))
    return used


def wait_for_address(address: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((address, port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {address}:{port} after {timeout}s")


@dataclass
class Host:
    role: str
    netns: str
    address: str
    extra_addresses: list[str] = field(default_factory=list)


class PrivateNetwork:
    """The bridge and the hosts of one run; `with` it, and everything is removed on the way out
    (the programs run on it first, then the namespaces, then the bridge), however the block ends."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.owner = os.getpid()
        self.bridge = f"{NAME_PREFIX}{self.tag}"  # interface names: 15 characters at most
        self.subnet: ipaddress.IPv4Network | None = None
        self.hosts: dict[str, Host] = {}
        self._stack = ExitStack()

    @property
    def gateway(self) -> str:
        """This process's own address on the network (the bridge's)."""
        assert self.subnet is not None
        return str(self.subnet.network_address + 1)

    def address(self, last: int) -> str:
        assert self.subnet is not None
        return str(self.subnet.network_address + last)

    def __enter__(self) -> PrivateNetwork:
        sweep_stale()
        self._stack.callback(self._remove)
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            self._claim_subnet()
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self._stack.close()
            raise
        return self

    def _claim_subnet(self) -> None:
        for _ in range(20):
            free = sorted(set(range(256)) - _used_third_octets())
            third = free[secrets.randbelow(len(free))]
            subnet = ipaddress.IPv4Network(f"{SUBNET_PREFIX}.{third}.0/24")
            ip("addr", "add", f"{subnet.network_address + 1}/24", "dev", self.bridge)
            # A parallel run may have picked the same one at the same moment: then both pick again.
            holders = [
                line.split()[1]
                for line in ip("-o", "-4", "addr", "show").stdout.splitlines()
                if f" {SUBNET_PREFIX}.{third}." in line
            ]
            if holders == [self.bridge]:
                self.subnet = subnet
                return
            ip("addr", "flush", "dev", self.bridge)
            time.sleep(secrets.randbelow(100) / 1000)
        raise RuntimeError(f"no free {SUBNET_PREFIX}.N.0/24 for the test network")

    def add_host(self, role: str, last: int, *, extra: tuple[int, ...] = ()) -> Host:
        """A namespace with its loopback and one veth on the bridge, at .`last` (and .`extra`)."""
        netns = f"{NAME_PREFIX}-{self.owner}-{self.tag}-{role}"
        outside = f"{self.bridge}{role[0]}{len(self.hosts)}"
        ip("netns", "add", netns)
        self.hosts[role] = host = Host(role, netns, self.address(last), [self.address(n) for n in extra])
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", netns)
        ip("link", "set", outside, "master", self.bridge, "up")
        for address in [host.address, *host.extra_addresses]:
            ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "link", "set", "eth0", "up")
        return host

    def command(self, host: Host, args: list[str], *, hide: list[Path] | tuple[Path, ...] = ()) -> list[str]:
        """`args` run on `host`, with each folder of `hide` made empty for that program."""
        prefix = ["ip", "netns", "exec", host.netns]
        if hide:
            prefix += ["sh", "-c", _HIDE_SCRIPT, "sh", *map(str, hide), "--"]
        return [*prefix, *args]

    @contextmanager
    def run(
        self,
        host: Host,
        args: list[str],
        env: dict[str, str],
        log_name: str,
        *,
        hide: list[Path] | tuple[Path, ...] = (),
    ) -> Iterator[subprocess.Popen[Any]]:
        """A long-lived program on `host` for the `with` block (ip and sh exec it: its pid is the
        program's), in a session of its own; its output in TEST_OUTPUT_DIR/<log_name>.log."""
        with running(self.command(host, args, hide=hide), env, log_name, new_session=True) as process:
            yield process

    def _remove(self) -> None:
        for host in self.hosts.values():
            _end_processes_in(host.netns)
            ip("netns", "del", host.netns, check=False)  # takes its veth pair along
        ip("link", "del", self.bridge, check=False)

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
