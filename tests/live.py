"""A live page in a test (the library tests' LiveFeed) on this site's ASGI stack and socket path."""

from __future__ import annotations

from tests.library.helpers import ORIGIN, LiveFeed

__all__ = ["ORIGIN", "LiveFeed"]
