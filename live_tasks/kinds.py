"""Kinds of task: what a long job declares, and the registry that the core consults by name.

A kind is registered once, from its app's `AppConfig.ready()`. The core never imports a kind:
it looks the kind up by the name stored in `Task.kind`, so adding one needs no core migration.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

    from .models import Task
    from .reporter import ProgressReporter


@dataclass(frozen=True)
class TaskResult:
    """What a kind's `run` returns when the work is done."""

    detail: str  # shown to the user, e.g. "5,000 posts exported"
    file: str = ""  # a stored result file (live_tasks.files.result_store), offered for download
    # Runs inside the transaction that marks the task succeeded: the one small commit that makes
    # the job's output visible (for example, staged rows). Not run if the task was ended meanwhile.
    commit: Callable[[], Any] | None = None


@dataclass(frozen=True)
class TaskKind:
    name: str  # stored in Task.kind; at most 32 characters
    label: StrOrPromise  # for people: "Posts export", or gettext_lazy("Posts export")
    # The work, in the worker: receives the task (status running) and its progress reporter.
    run: Callable[[Task, ProgressReporter], TaskResult]
    # Seconds before RQ kills the job (then: "timed out"); a callable is read at each enqueue.
    timeout: int | Callable[[], int] = 15 * 60
    # The page of one task of this kind: a URL name taking `task_id`.
    url_name: str = "live_tasks:detail"
    # The page listing tasks of this kind (a URL name without arguments): where a deleted task's
    # page sends the user.
    list_url_name: str = "live_tasks:list"
    # After a failure or cancel, once no job is writing any more: remove partial output. Must be
    # idempotent; the core retries it until it returns (live_tasks/cleanup.py).
    cleanup: Callable[[Task], None] | None = None
    # The file name a download of the result gets (by default the kind and id, with the stored
    # file's extension).
    download_name: Callable[[Task], str] = field(
        default=lambda task: f"{task.kind}-{task.id}{PurePosixPath(task.file.name).suffix}"
    )
    # The detail a cancelled task shows (in the language the task was launched in).
    cancelled_detail: StrOrPromise = _("Cancelled.")
    # Whether the admin's Retry may start the same work again (false when the input is gone).
    retryable: bool = True
    # One task's label, where tasks of the kind differ (a `@task` function's name): else `label`.
    label_for: Callable[[Task], StrOrPromise] | None = None
    # Run once in each worker process before it forks work horses: load what every job of this
    # kind needs (templates, modules), so that each job does not load it again (live_tasks/worker.py).
    warm_up: Callable[[], None] | None = None

    def job_timeout(self) -> int:
        return self.timeout() if callable(self.timeout) else self.timeout


class UnknownTaskKind(LookupError):
    pass


_registry: dict[str, TaskKind] = {}
# Where each registered kind was registered ("path:line"), and every later registration of a name
# already taken: a clash is reported by `manage.py check` (live_tasks.E006) with both places,
# rather than raised from inside some app's ready(), where the traceback names only the second.
_registered_at: dict[str, str] = {}
_clashes: list[KindClash] = []


@dataclass(frozen=True)
class KindClash:
    name: str
    first: str  # "path:line" of the registration that is kept
    second: str  # "path:line" of the one that was refused


def register(kind: TaskKind) -> TaskKind:
    """Register a kind under its name and return it (so `my_kind = register(TaskKind(...))`)."""
    if len(kind.name) > 32:
        raise ValueError(f"Task kind name {kind.name!r} is longer than 32 characters.")
    caller = sys._getframe(1)
    place = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    existing = _registry.get(kind.name)
    # The same place again is a module run twice (a reload, a test that execs an example): the new
    # object replaces the old. Another place is a second kind taking the name: the first stays.
    if existing is not None and existing is not kind and _registered_at[kind.name] != place:
        _clashes.append(KindClash(kind.name, first=_registered_at[kind.name], second=place))
        return kind
    _registry[kind.name] = kind
    _registered_at[kind.name] = place
    return kind


def kind_clashes() -> list[KindClash]:
    """Names that two places registered: the first registration is the one in use."""
    return list(_clashes)


def get_kind(name: str) -> TaskKind:
    try:
        return _registry[name]
    except KeyError:
        raise UnknownTaskKind(f"No task kind named {name!r} is registered.") from None


def all_kinds() -> list[TaskKind]:
    return list(_registry.values())
