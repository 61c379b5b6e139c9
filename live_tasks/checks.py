"""System checks (`manage.py check`): the settings and kinds the core needs, each with its own id.

The ids are `live_tasks.E001`... (the library's label to be), stable once published: a site may
silence one with SILENCED_SYSTEM_CHECKS, as a test settings file does for the in-memory layer
(live_tasks.E004). `rqworker`, `migrate` and `runserver` run these checks and stop on an error,
so a worker never starts without its heartbeat. docs/api.md ("System checks") lists them.
"""

from __future__ import annotations

import importlib.util
import uuid
from typing import Any

from django.conf import settings
from django.core import checks
from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from .kinds import all_kinds, kind_clashes

TASK_WORKER = "live_tasks.worker.TaskWorker"
IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"

WORKER_NOT_TASK_WORKER = "live_tasks.E001"
QUEUE_MISSING = "live_tasks.E002"
NO_CHANNEL_LAYER = "live_tasks.E003"
IN_MEMORY_CHANNEL_LAYER = "live_tasks.E004"
USE_TZ_OFF = "live_tasks.E005"
KIND_REGISTERED_TWICE = "live_tasks.E006"
KIND_URL_UNRESOLVED = "live_tasks.E007"
UNKNOWN_SETTING = "live_tasks.E008"
METRICS_WITHOUT_CLIENT = "live_tasks.E009"
TASKS_QUEUE_NOT_LIVE = "live_tasks.E010"  # live_tasks/backends.py: LiveTasksBackend.check
QUEUE_BACKEND_UNUSABLE = "live_tasks.E011"
METRICS_TOKEN_WEAK = "live_tasks.W001"  # noqa: S105 -- a check id, not a secret
CELERY_PREFETCH = "live_tasks.W002"

# 32 characters of secrets.token_urlsafe() hold 192 random bits; a shorter token was typed by hand.
METRICS_TOKEN_MIN_LENGTH = 32

Messages = list[checks.CheckMessage]


def check_worker_class(app_configs: Any = None, **kwargs: Any) -> Messages:
    from .conf import live_settings

    if live_settings.QUEUE_BACKEND != "rq":
        return []  # Celery's worker side is the library's own task and request class
    from .worker import TaskWorker

    hint = f'Set RQ = {{..., "WORKER_CLASS": "{TASK_WORKER}"}} in your settings (or a subclass of it).'
    why = "without it the 5 s heartbeat and the handling of a dead work horse silently disappear"
    dotted = getattr(settings, "RQ", {}).get("WORKER_CLASS")
    if dotted is None:
        msg = f'RQ["WORKER_CLASS"] is not set, so `rqworker` runs RQ\'s plain Worker: {why}.'
        return [checks.Error(msg, hint=hint, obj="settings.RQ", id=WORKER_NOT_TASK_WORKER)]
    try:
        worker_class = import_string(dotted) if isinstance(dotted, str) else dotted
    except ImportError as exc:
        msg = f'RQ["WORKER_CLASS"] {dotted!r} cannot be imported ({exc}).'
        return [checks.Error(msg, hint=hint, obj="settings.RQ", id=WORKER_NOT_TASK_WORKER)]
    if not (isinstance(worker_class, type) and issubclass(worker_class, TaskWorker)):
        msg = f'RQ["WORKER_CLASS"] {dotted!r} is not a subclass of {TASK_WORKER}: {why}.'
        return [checks.Error(msg, hint=hint, obj="settings.RQ", id=WORKER_NOT_TASK_WORKER)]
    return []


def check_queue(app_configs: Any = None, **kwargs: Any) -> Messages:
    from .conf import live_settings

    queue = live_settings.QUEUE
    if queue in getattr(settings, "RQ_QUEUES", {}):
        return []
    return [
        checks.Error(
            f'RQ_QUEUES has no {queue!r} queue (LIVE_TASKS["QUEUE"]): every task\'s job is enqueued there.',
            hint=f'Add it: RQ_QUEUES = {{"{queue}": {{"URL": "redis://127.0.0.1:6379/0"}}, ...}}, '
            f"and run `manage.py rqworker {queue}`. On Celery it names the library's Redis (rate limits, "
            "socket counts, job heartbeats).",
            obj="settings.RQ_QUEUES",
            id=QUEUE_MISSING,
        )
    ]


def check_channel_layer(app_configs: Any = None, **kwargs: Any) -> Messages:
    hint = (
        'Set CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", '
        '"CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}}.'
    )
    backend = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {}).get("BACKEND")
    if not backend:
        msg = "CHANNEL_LAYERS has no 'default' layer: no progress, cancel or finish reaches an open page."
        return [checks.Error(msg, hint=hint, obj="settings.CHANNEL_LAYERS", id=NO_CHANNEL_LAYER)]
    if _is_in_memory(backend):
        # An error, not a warning: the worker (and each work horse it forks) is always another
        # process than daphne, so with this layer no live update ever arrives, in development too.
        # A test suite that runs jobs in-process silences it by its id.
        msg = (
            f"The default channel layer is {backend!r}: it lives in one process, so the updates that "
            "workers publish never reach the pages that daphne serves."
        )
        return [
            checks.Error(
                msg,
                hint=f"{hint} Test settings that run everything in one process may silence this: "
                f'SILENCED_SYSTEM_CHECKS = ["{IN_MEMORY_CHANNEL_LAYER}"].',
                obj="settings.CHANNEL_LAYERS",
                id=IN_MEMORY_CHANNEL_LAYER,
            )
        ]
    return []


def _is_in_memory(backend: str) -> bool:
    from channels.layers import InMemoryChannelLayer

    if backend == IN_MEMORY_LAYER:
        return True
    try:
        layer_class = import_string(backend)
    except ImportError:
        return False  # channels itself says so when the layer is first used
    return isinstance(layer_class, type) and issubclass(layer_class, InMemoryChannelLayer)


def check_use_tz(app_configs: Any = None, **kwargs: Any) -> Messages:
    if settings.USE_TZ:
        return []
    return [
        checks.Error(
            "USE_TZ is off: the safety net compares RQ's heartbeats, which are aware UTC times, with "
            "timezone.now(), and the pages and Task JSON give every time as a UTC instant.",
            hint="Set USE_TZ = True (Django's default since 5.0).",
            obj="settings.USE_TZ",
            id=USE_TZ_OFF,
        )
    ]


def check_kinds_registered_once(app_configs: Any = None, **kwargs: Any) -> Messages:
    return [
        checks.Error(
            f"Task kind {clash.name!r} is registered twice: at {clash.first} (in use) and at {clash.second}.",
            hint="Give one of the two kinds another name (TaskKind(name=...)); Task.kind stores it.",
            obj=clash.name,
            id=KIND_REGISTERED_TWICE,
        )
        for clash in kind_clashes()
    ]


def check_kind_urls(app_configs: Any = None, **kwargs: Any) -> Messages:
    """A task's `url`, and the page a deleted task sends its user to, must resolve for every kind."""
    errors: Messages = []
    for kind in all_kinds():
        for field, name, url_kwargs in (
            ("url_name", kind.url_name, {"task_id": uuid.uuid4()}),
            ("list_url_name", kind.list_url_name, {}),
        ):
            try:
                reverse(name, kwargs=url_kwargs)
            except NoReverseMatch:
                takes = "a task_id argument" if url_kwargs else "no argument"
                errors.append(
                    checks.Error(
                        f"Task kind {kind.name!r}: {field} {name!r} does not resolve with {takes}.",
                        hint=f"Set TaskKind({field}=...) to the name of a URL pattern that takes {takes}"
                        f' (with its namespace: "app_name:name"), or leave the default.',
                        obj=kind.name,
                        id=KIND_URL_UNRESOLVED,
                    )
                )
    return errors


def check_settings_keys(app_configs: Any = None, **kwargs: Any) -> Messages:
    from .conf import DEFAULTS

    value = getattr(settings, "LIVE_TASKS", {})
    if not isinstance(value, dict):
        return [checks.Error("LIVE_TASKS must be a dict.", obj="settings.LIVE_TASKS", id=UNKNOWN_SETTING)]
    return [
        checks.Error(
            f"LIVE_TASKS has no setting {key!r}: it would be ignored.",
            hint=f"The settings are: {', '.join(sorted(DEFAULTS))} (docs: live_tasks/conf.py).",
            obj="settings.LIVE_TASKS",
            id=UNKNOWN_SETTING,
        )
        for key in value
        if key not in DEFAULTS
    ]


def check_metrics(app_configs: Any = None, **kwargs: Any) -> Messages:
    from .conf import live_settings

    token = live_settings.METRICS_TOKEN
    if not token:
        return []
    if importlib.util.find_spec("prometheus_client") is None:
        return [
            checks.Error(
                'LIVE_TASKS["METRICS_TOKEN"] is set, but prometheus-client is not installed: the metrics '
                "endpoint would answer 500.",
                hint="pip install 'django-live-tasks[metrics]' (or prometheus-client), or unset the token.",
                obj="settings.LIVE_TASKS",
                id=METRICS_WITHOUT_CLIENT,
            )
        ]
    if not isinstance(token, str) or len(token) < METRICS_TOKEN_MIN_LENGTH:
        return [
            checks.Warning(
                f'LIVE_TASKS["METRICS_TOKEN"] is not a string of at least {METRICS_TOKEN_MIN_LENGTH} characters: '
                "anyone who guesses it reads the site's metrics.",
                hint='python -c "import secrets; print(secrets.token_urlsafe(32))"',
                obj="settings.LIVE_TASKS",
                id=METRICS_TOKEN_WEAK,
            )
        ]
    return []


def check_queue_backend(app_configs: Any = None, **kwargs: Any) -> Messages:
    from .conf import live_settings
    from .queue import BACKENDS

    name = live_settings.QUEUE_BACKEND
    obj = "settings.LIVE_TASKS"
    if name not in BACKENDS:
        return [
            checks.Error(
                f'LIVE_TASKS["QUEUE_BACKEND"] is {name!r}: it must be one of {", ".join(map(repr, BACKENDS))}.',
                obj=obj,
                id=QUEUE_BACKEND_UNUSABLE,
            )
        ]
    if name != "celery":
        return []
    if importlib.util.find_spec("celery") is None:
        return [
            checks.Error(
                'LIVE_TASKS["QUEUE_BACKEND"] is "celery", but Celery is not installed.',
                hint="pip install 'django-live-tasks[celery]' (or celery).",
                obj=obj,
                id=QUEUE_BACKEND_UNUSABLE,
            )
        ]
    from .queue.celery import run_task

    conf = run_task.app.conf
    if not conf.broker_url:
        return [
            checks.Error(
                "The Celery app has no broker_url: the site's Celery app is not loaded in this process, or "
                "it is not configured.",
                hint='Create it in project/celery.py (app.config_from_object("django.conf:settings", '
                'namespace="CELERY")), import it in project/__init__.py, and set CELERY_BROKER_URL.',
                obj=obj,
                id=QUEUE_BACKEND_UNUSABLE,
            )
        ]
    if conf.worker_prefetch_multiplier != 1:
        return [
            checks.Warning(
                f"The Celery app's worker_prefetch_multiplier is {conf.worker_prefetch_multiplier}: each "
                "worker then holds that many messages per pool process that it does not run yet, where "
                "another worker could, and the safety net cannot tell them from lost ones.",
                hint="CELERY_WORKER_PREFETCH_MULTIPLIER = 1 (and run the worker with -O fair).",
                obj=obj,
                id=CELERY_PREFETCH,
            )
        ]
    return []


ALL_CHECKS = (
    check_queue_backend,
    check_worker_class,
    check_queue,
    check_channel_layer,
    check_use_tz,
    check_kinds_registered_once,
    check_kind_urls,
    check_settings_keys,
    check_metrics,
)
