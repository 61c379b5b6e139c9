"""Staff view of every task, live; read-only, since tasks change only through their jobs.

Cancel and Retry go through the task's own kind: the same services as the site's buttons. Each
needs its permission (live_tasks/permissions.py): a staff account without them sees neither action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from .kinds import UnknownTaskKind
from .models import Task
from .permissions import CANCEL_ANY_TASK, RETRY_ANY_TASK, VIEW_EVERY_TASK, may
from .serializers import task_to_dict
from .services import QueueUnavailable, TaskAlreadyFinished, TaskAlreadyRunning, task_cancel, task_start
from .templatetags.live_tasks import duration_text, elapsed_ms, utc_text, utc_time

_TIME_FIELDS = ("created_at", "started_at", "finished_at", "expired_at")


# Generic in the type stubs only: a site need not run django_stubs_ext.monkeypatch() for this library.
if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Task]
else:
    _ModelAdmin = admin.ModelAdmin


@admin.register(Task)
class TaskAdmin(_ModelAdmin):
    # Every time is a <time> that live.js shows in the reader's zone; the columns that change while a
    # task runs (the task, finished, duration) are filled live like any page's task markup.
    list_display = ["created_display", "user", "task_display", "finished_display", "duration_display"]
    list_display_links = ["created_display"]
    list_filter = ["status", "kind"]
    search_fields = ["user__username", "=id"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    actions = ["cancel_tasks", "retry_tasks"]
    readonly_fields = [
        f"{f.name.removesuffix('_at')}_display" if f.name in _TIME_FIELDS else f.name for f in Task._meta.fields
    ] + ["duration_display"]

    # Watching every task, cancelling and retrying are three permissions (live_tasks/permissions.py).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return may(request.user, VIEW_EVERY_TASK)

    def has_view_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return may(request.user, VIEW_EVERY_TASK)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return may(request.user, CANCEL_ANY_TASK)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return may(request.user, RETRY_ANY_TASK)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    # A task ends through its job or the cancel action; deleting a row would orphan its files.
    def has_delete_permission(self, request: HttpRequest, obj: Task | None = None) -> bool:
        return False

    @admin.display(description=_("task"), ordering="status")
    def task_display(self, task: Task) -> SafeString:
        # The site's one task markup (live_tasks/_task.html), so live.js updates it like any page.
        return render_to_string("live_tasks/_task.html", {"task_json": task_to_dict(task)})

    @admin.display(description=_("created"), ordering="created_at")
    def created_display(self, task: Task) -> SafeString:
        return utc_time(task.created_at)

    @admin.display(description=_("started"))
    def started_display(self, task: Task) -> SafeString:
        return utc_time(task.started_at)

    @admin.display(description=_("expired"))
    def expired_display(self, task: Task) -> SafeString:
        return utc_time(task.expired_at)

    @admin.display(description=_("finished"), ordering="finished_at")
    def finished_display(self, task: Task) -> SafeString:
        finished = task.finished_at
        inner = (
            format_html('<time data-field="finished" datetime="{}">{}</time>', finished.isoformat(), utc_text(finished))
            if finished
            else format_html('<time data-field="finished">{}</time>', "—")
        )
        return self._live_cell(task, inner)

    @admin.display(description=_("duration"))
    def duration_display(self, task: Task) -> SafeString:
        elapsed = elapsed_ms(task.started_at, task.finished_at)
        text = "—" if elapsed is None else duration_text(elapsed)  # as live.js writes it
        return self._live_cell(task, format_html('<span data-field="duration">{}</span>', text))

    @staticmethod
    def _live_cell(task: Task, inner: SafeString) -> SafeString:
        # data-task-id makes live.js fill the data-field inside, as in the task markup: the column
        # never goes stale beside a task that finished.
        return format_html(
            '<span class="task-cell" data-task-id="{}" data-status="{}" data-seq="{}">{}</span>',
            task.id,
            task.status,
            task.seq,
            inner,
        )

    @admin.action(description=_("Cancel selected queued or running tasks"), permissions=["cancel"])
    def cancel_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        cancelled = 0
        for task in queryset.filter(status__in=Task.UNFINISHED):
            try:
                task_cancel(task=task)
                cancelled += 1
            except (TaskAlreadyFinished, UnknownTaskKind):
                pass
        text = ngettext("Cancelled %(count)s task.", "Cancelled %(count)s tasks.", cancelled) % {"count": cancelled}
        self.message_user(request, text, messages.SUCCESS)

    @admin.action(
        description=_("Retry selected tasks (a new task for the same user, kind and parameters)"),
        permissions=["retry"],
    )
    def retry_tasks(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        started, skipped = 0, []
        for task in queryset.select_related("user"):
            try:
                if not task.kind_spec.retryable:
                    skipped.append(
                        gettext("%(user)s (%(label)s: its input is gone)")
                        % {"user": _owner_name(task), "label": task.label}
                    )
                    continue
                task_start(user=task.user, kind=task.kind, params=task.params, limited=False)
                started += 1
            except UnknownTaskKind:
                skipped.append(
                    gettext("%(user)s (unknown kind %(kind)r)") % {"user": _owner_name(task), "kind": task.kind}
                )
            except TaskAlreadyRunning as exc:
                skipped.append(
                    gettext("%(user)s (%(label)s already unfinished)")
                    % {"user": _owner_name(task), "label": exc.task.label}
                )
            except QueueUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
        text = ngettext("Started %(count)s new task.", "Started %(count)s new tasks.", started) % {"count": started}
        self.message_user(request, text, messages.SUCCESS)
        if skipped:
            self.message_user(request, gettext("Skipped: %(tasks)s") % {"tasks": ", ".join(skipped)}, messages.WARNING)


def _owner_name(task: Task) -> str:
    return task.user.get_username() if task.user is not None else gettext("(no owner)")
