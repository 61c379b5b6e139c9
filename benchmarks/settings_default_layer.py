"""The benchmark settings with channels_redis' default list-based RedisChannelLayer (the live
progress benchmark's baseline). Same Redis server and database number, same prefix."""

from benchmarks.settings import *  # noqa: F403
from benchmarks.settings import CHANNEL_LAYERS

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
            "prefix": CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        },
    },
}
