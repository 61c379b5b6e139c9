"""The Task row: the single source of truth for a background job's state and progress, any kind."""

from __future__ import annotations

import uuid
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from .kinds import UnknownTaskKind, get_kind

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User

    from .kinds import TaskKind


class TaskQuerySet(models.QuerySet["Task"]):
    def for_user(self, user: AbstractBaseUser | AnonymousUser) -> TaskQuerySet:
        if user.pk is None:  # AnonymousUser: no task, and never the ownerless ones (user_id IS NULL)
            return self.none()
        return self.filter(user_id=user.pk)

    def unfinished(self) -> TaskQuerySet:
        return self.filter(status__in=Task.UNFINISHED)

    def finished(self) -> TaskQuerySet:
        return self.exclude(status__in=Task.UNFINISHED)

    def of_kind(self, kind: str) -> TaskQuerySet:
        return self.filter(kind=kind)

    def expirable(self, *, before: datetime) -> TaskQuerySet:
        return self.filter(status=Task.Status.SUCCEEDED, expired_at__isnull=True, finished_at__lt=before).exclude(
            file=""
        )

    def needing_attention(self) -> TaskQuerySet:
        """What the safety net looks at: unfinished tasks, and ended ones whose cleanup is owed."""
        return self.filter(Q(status__in=Task.UNFINISHED) | Q(needs_cleanup=True))

    def stored_results(self) -> TaskQuerySet:
        """Tasks whose result file is still stored: what counts against a user's quota."""
        return self.filter(status=Task.Status.SUCCEEDED, expired_at__isnull=True).exclude(file="")

    def prunable(self, *, before: datetime) -> TaskQuerySet:
        """Finished long enough ago to delete, and owing no cleanup."""
        return self.finished().filter(finished_at__lt=before, needs_cleanup=False)

    def recent_or_unfinished(self, *, within: timedelta = timedelta(hours=1)) -> TaskQuerySet:
        """What a page opened now should show: work in progress and what just ended."""
        return self.filter(Q(status__in=Task.UNFINISHED) | Q(finished_at__gte=timezone.now() - within))


class Task(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    # The id is ours, made before the job exists, and doubles as the RQ job id.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # None: a task that no user launched (a `@task` enqueued without live_tasks.for_user): only
    # staff see it, in the admin and the staff feed.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="live_tasks",
        verbose_name=_("user"),
        null=True,
        blank=True,
    )
    # The name of a registered kind (live_tasks/kinds.py); no choices, so a new kind needs no migration.
    kind = models.CharField(_("kind"), max_length=32)
    # The kind's arguments, as JSON (a kind that needs none leaves it empty).
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    # Bumped by every change, so a client can drop a message older than what it already shows.
    seq = models.PositiveIntegerField(_("sequence"), default=0)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    file = models.FileField(_("file"), upload_to="tasks/", blank=True)
    # The result file's size in bytes, recorded once when the task succeeds: pages show it without
    # asking the storage backend (a network round trip on object storage) for every task listed,
    # and a user's quota of stored results is one query (live_tasks/limits.py). None once it is gone.
    file_size = models.PositiveBigIntegerField(_("file size"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # Set when the retention period deleted the file: the download link then says so.
    expired_at = models.DateTimeField(_("expired"), null=True, blank=True)
    # Set with a failed or cancelled state; cleared once the kind's cleanup has run (live_tasks/cleanup.py).
    needs_cleanup = models.BooleanField(_("needs cleanup"), default=False)
    # The language active when the task was launched: its detail and error are written in it,
    # by whichever process writes them (Task.launch_language). Empty: settings.LANGUAGE_CODE.
    language = models.CharField(_("language"), max_length=15, blank=True)
    # What a `@task` function returned (live_tasks/backends.py; JSON, as django.tasks requires), and
    # for operators the class and traceback of what it raised: `error` stays the sentence users read.
    return_value = models.JSONField(_("return value"), null=True, blank=True)
    error_class = models.CharField(_("error class"), max_length=200, blank=True)
    error_traceback = models.TextField(_("error traceback"), blank=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        # Beside Django's view_task (the admin list and the staff live feed of every user's tasks):
        # acting on another user's task is granted on its own.
        permissions = [
            ("cancel_task", _("Can cancel any user's task")),
            ("retry_task", _("Can retry any user's task (starts a new one for its owner)")),
        ]
        constraints = [
            # At most one unfinished task per user and kind: the database settles two launches
            # that arrive at the same instant, not a check-then-insert in Python. Not for `@task`
            # functions (one kind for all of them, live_tasks/backends.py): django.tasks lets a
            # caller enqueue as many as it likes.
            models.UniqueConstraint(
                fields=["user", "kind"],
                condition=Q(status__in=["queued", "running"]) & ~Q(kind="django_task"),
                name="one_unfinished_task_per_user_and_kind",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="task_progress_at_most_100"),
        ]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="task_user_created_idx"),
            # The safety net's query every few seconds stays small however many tasks have ended.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["queued", "running"]) | Q(needs_cleanup=True),
                name="task_needing_attention_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} {self.id} ({self.status})"

    @property
    def owner(self) -> User:
        """The user who launched the task, for a kind whose tasks always have one (every kind a
        site registers: task_start takes a user). Only a `@task` function may run without one."""
        if self.user is None:
            raise ValueError(f"Task {self.id} has no owner.")
        return self.user

    @property
    def kind_spec(self) -> TaskKind:
        return get_kind(self.kind)

    @property
    def kind_label(self) -> str:
        """The kind's label (the kind's name if no app registers it): what messages about a task
        of the kind say ("The posts export timed out."), even where `label` is the task's own."""
        try:
            return str(self.kind_spec.label)
        except UnknownTaskKind:
            return self.kind

    @property
    def label(self) -> str:
        try:
            spec = self.kind_spec
        except UnknownTaskKind:
            return self.kind
        return str(spec.label_for(self) if spec.label_for else spec.label)  # a kind may give a lazy translation

    def launch_language(self) -> AbstractContextManager[None]:
        """`with task.launch_language():` what is written for the task reads in its launcher's language."""
        return translation.override(self.language or settings.LANGUAGE_CODE)

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED

    @property
    def duration(self) -> timedelta | None:
        if self.started_at is None:
            return None
        return (self.finished_at or timezone.now()) - self.started_at
