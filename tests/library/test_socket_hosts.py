"""The per-user socket count reaches the channel layer's Redis however CHANNEL_LAYERS writes its host.

channels-redis accepts a URL string (as the README writes it), a dict or a (host, port) pair; the
socket count (live_tasks/push/sockets.py) read only the dict, and a site configured as the README
says had every WebSocket fail at connect (found by tests/test_package.py's fresh project).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from live_tasks.push import sockets


def written(url: str, form: str):
    """The layer's Redis at `url`, written in one of the forms channels-redis accepts."""
    if form == "url":
        return url
    if form == "dict":
        return {"address": url}
    parts = urlsplit(url)
    return (parts.hostname, parts.port or 6379)  # database 0: the test only pings


@pytest.mark.parametrize("form", ["url", "dict", "host and port"])
def test_the_socket_count_reads_the_layers_host_in_each_form(settings, form):
    host = written(settings.REDIS_URL, form)
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [host]}}}

    async def ping() -> bool:
        client = sockets._client()
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert asyncio.run(ping()) is True
