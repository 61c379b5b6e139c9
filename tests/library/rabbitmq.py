"""A private RabbitMQ node for a test that must stop its broker and lose what it held, which the
shared broker on 5672 (other sessions' queues on it) must never do.

The node is Debian's rabbitmq-server run directly (not through /usr/sbin's wrapper, which switches
to the rabbitmq user and its home) as a child of the test process: its own node name, AMQP and
distribution ports, data and log folders and Erlang cookie (HOME) under a temporary folder, no
plugins. The module-scoped fixture `private_rabbitmq` (import private_rabbitmq_fixture to have it)
starts it once and stops it at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import free_port, wait_for_port

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class PrivateRabbitMQ:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"lt-test-{os.getpid()}-{self.port}@localhost"
        self.mnesia = base / "mnesia"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        (base / "home").mkdir(parents=True, exist_ok=True)
        (base / "enabled_plugins").write_text("")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            HOME=str(self.base / "home"),  # the Erlang cookie: this node's own
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.mnesia),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            # None of the system's configuration (absent files: the defaults).
            RABBITMQ_CONFIG_FILE=str(self.base / "no-rabbitmq.conf"),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(self.base / "no-advanced.config"),
            RABBITMQ_CONF_ENV_FILE=str(self.base / "no-rabbitmq-env.conf"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )

    def start(self, timeout: float = 60) -> None:
        assert self.process is None, "already running"
        self.starts += 1
        with open(self.base / f"server-{self.starts}.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                env=self.env(),
                cwd=self.base,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed whole if it will not stop
            )
        try:
            wait_for_port(self.port, timeout)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        """A clean stop (rabbitmqctl stop), else its process group is killed."""
        process, self.process = self.process, None
        if process is None:
            return
        subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, "stop"],
            env=self.env(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def lose_everything(self) -> None:
        """Stop the node, delete its data (queues, messages), start it again: a broker restarted
        without persistence."""
        self.stop()
        shutil.rmtree(self.mnesia)
        self.start()


@pytest.fixture(scope="module", name="private_rabbitmq")
def private_rabbitmq_fixture() -> Iterator[PrivateRabbitMQ]:
    if not (RABBITMQ_BIN / "rabbitmq-server").exists():
        pytest.fail(f"{RABBITMQ_BIN}/rabbitmq-server is missing: install Debian's rabbitmq-server.")
    with tempfile.TemporaryDirectory(prefix="lt-rabbitmq-") as base:
        broker = PrivateRabbitMQ(Path(base))
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()
