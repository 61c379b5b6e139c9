"""The Prometheus endpoint: `live_tasks:metrics` (`metrics/` under the library's URLs), behind a token.

Every figure is computed at the scrape, from what every process shares, so one scrape of any web
process gives the whole deployment's view, however many daphnes and workers run on however many
hosts (docs/metrics.md):
- state, read now: tasks by kind and status and the oldest unfinished ones (one GROUP BY on the
  task table), the age of the safety net's last pass (the key /healthz reads), the live sockets of
  each daphne (each reports its own count into Redis, live_tasks/stats.py);
- events, counted in Redis by whichever process saw them (live_tasks/stats.py): tasks launched,
  started and finished, durations and queue waits (histograms), pushes sent and dropped, socket
  revocations and closes, safety-net passes and actions, 429s by limit, storage errors;
- django-rq's own collector (`django_rq.contrib.prometheus.RQCollector`): RQ's workers and its
  queues' jobs by status, read from Redis too.

The endpoint answers 404 while LIVE_TASKS["METRICS_TOKEN"] is unset, and 401 without
`Authorization: Bearer <that token>`. It needs prometheus-client (`django-live-tasks[metrics]`),
imported only here.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import redisclients, stats
from .conf import live_settings
from .kinds import all_kinds

try:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.metrics_core import Metric
except ImportError:  # pragma: no cover - the site did not install the [metrics] extra
    prometheus_installed = False
else:
    prometheus_installed = True

logger = logging.getLogger(__name__)

MISSING = (
    'LIVE_TASKS["METRICS_TOKEN"] is set but prometheus-client is not installed: '
    "pip install 'django-live-tasks[metrics]'."
)


def _token_given(request: HttpRequest) -> bytes:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip().encode() if scheme.lower() == "bearer" else b""


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format for a scraper holding the token; 404 while no token is configured."""
    expected = live_settings.METRICS_TOKEN
    if not expected:
        raise Http404("Metrics are off (LIVE_TASKS['METRICS_TOKEN'] is not set).")
    if not hmac.compare_digest(_token_given(request), str(expected).encode()):
        return HttpResponse(
            "A bearer token is needed.\n",
            status=401,
            content_type="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    if not prometheus_installed:
        raise ImproperlyConfigured(MISSING)
    stats.flush()  # this process's own latest events, before they are read back
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LiveTasksCollector())
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)


class LiveTasksCollector:
    """Reads every figure at each collect(); a source that fails is reported down, not raised."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "live_tasks_metrics_source_up",
            "Whether this scrape could read the source (database, redis, rq): 0 means its figures are missing.",
            labels=["source"],
        )
        sources = [("database", _from_database), ("redis", _from_redis)]
        if live_settings.QUEUE_BACKEND == "rq":
            sources.append(("rq", _from_rq))
        for source, read in sources:
            started = time.monotonic()
            try:
                families = list(read())
            except Exception as exc:
                logger.warning("Metrics: could not read the %s (%r)", source, exc)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            logger.debug("Metrics: %s read in %.3f s", source, time.monotonic() - started)
            yield from families
        yield up


def _from_database() -> Iterator[Metric]:
    from .models import Task

    tasks = GaugeMetricFamily(
        "live_tasks_tasks",
        'Task rows by kind and status, now (finished rows are kept LIVE_TASKS["ROW_RETENTION_DAYS"]).',
        labels=["kind", "status"],
    )
    oldest = GaugeMetricFamily(
        "live_tasks_oldest_task_age_seconds",
        "Age of the oldest queued task of a kind (since its launch) and of the oldest running one (since its start).",
        labels=["kind", "status"],
    )
    counts: dict[tuple[str, str], int] = {
        (kind.name, status): 0 for kind in all_kinds() for status in Task.Status.values
    }
    now = timezone.now()
    rows = (
        Task.objects.order_by()
        .values("kind", "status")
        .annotate(n=Count("pk"), oldest_created=Min("created_at"), oldest_started=Min("started_at"))
    )
    for row in rows:
        counts[(row["kind"], row["status"])] = row["n"]
        since = {Task.Status.QUEUED: row["oldest_created"], Task.Status.RUNNING: row["oldest_started"]}.get(
            row["status"]
        )
        if since is not None:
            oldest.add_metric([row["kind"], row["status"]], max(0.0, (now - since).total_seconds()))
    for (kind, status), n in sorted(counts.items()):
        tasks.add_metric([kind, status], n)
    yield tasks
    yield oldest


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _from_redis() -> Iterator[Metric]:
    from .scheduler import SAFETY_NET_PASS_KEY

    client = redisclients.rq_connection()
    with client.pipeline(transaction=False) as pipe:
        pipe.hgetall(stats.COUNTERS_KEY)
        pipe.hgetall(stats.HISTOGRAMS_KEY)
        pipe.hgetall(stats.SOCKETS_KEY)
        pipe.get(SAFETY_NET_PASS_KEY)
        counters, histograms, sockets, last_pass = pipe.execute()

    yield from _counters({_text(k): float(v) for k, v in counters.items()})
    yield from _histograms({_text(k): float(v) for k, v in histograms.items()})
    yield _sockets(client, {_text(k): _text(v) for k, v in sockets.items()})

    stamp = GaugeMetricFamily(
        "live_tasks_safety_net_last_pass_timestamp_seconds",
        "Unix time of the safety net's last completed pass (manage.py task_scheduler).",
    )
    age = GaugeMetricFamily(
        "live_tasks_safety_net_last_pass_age_seconds",
        "Seconds since the safety net's last completed pass; +Inf if none was ever recorded.",
    )
    if last_pass:
        stamp.add_metric([], float(last_pass))
        age.add_metric([], max(0.0, time.time() - float(last_pass)))
    else:
        age.add_metric([], math.inf)
    yield stamp
    yield age


def _counters(values: dict[str, float]) -> Iterator[Metric]:
    families = {
        metric.name: CounterMetricFamily(metric.name, metric.help, labels=list(metric.labels))
        for metric in stats.METRICS.values()
        if metric.type == "counter"
    }
    for field, value in sorted(values.items()):
        name, label_values, _ = stats.parse_field(field)
        family = families.get(name)
        if family is not None and len(label_values) == len(stats.METRICS[name].labels):
            family.add_metric(label_values, value)
    yield from families.values()


def _histograms(values: dict[str, float]) -> Iterator[Metric]:
    series: dict[tuple[str, tuple[str, ...]], dict[str, float]] = {}
    for field, value in values.items():
        name, label_values, part = stats.parse_field(field)
        series.setdefault((name, tuple(label_values)), {})[part] = value
    for metric in stats.METRICS.values():
        if metric.type != "histogram":
            continue
        family = HistogramMetricFamily(metric.name, metric.help, labels=list(metric.labels))
        for (name, label_set), parts in sorted(series.items()):
            if name != metric.name or len(label_set) != len(metric.labels):
                continue
            cumulative, buckets = 0.0, []
            for le in (*metric.buckets, math.inf):
                bound = "+Inf" if le == math.inf else str(le)  # as stats.observe names the field
                cumulative += parts.get(bound, 0.0)
                buckets.append((bound, cumulative))
            family.add_metric(list(label_set), buckets, parts.get("sum", 0.0))
        yield family


def _sockets(client: Any, reports: dict[str, str]) -> Metric:
    family = GaugeMetricFamily(
        "live_tasks_sockets_open",
        "Live sockets open on each daphne process (host:pid), as it last reported (every second).",
        labels=["process"],
    )
    stale = []
    for process, report in sorted(reports.items()):
        count, _, reported_at = report.partition(" ")
        if time.time() - float(reported_at or 0) > stats.SOCKETS_STALE_AFTER_SECONDS:
            stale.append(process)  # a daphne that stopped without saying so
        else:
            family.add_metric([process], float(count))
    if stale:
        client.hdel(stats.SOCKETS_KEY, *stale)
    return family


def _from_rq() -> Iterator[Metric]:
    """django-rq's own collector: rq_workers, rq_jobs{queue,status} and its per-worker counters."""
    from django_rq.contrib.prometheus import RQCollector

    if RQCollector is None:  # pragma: no cover - defined only where prometheus_client is installed
        return
    collector: Any = RQCollector()  # untyped
    yield from collector.collect()
