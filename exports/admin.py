"""Staff view of every task; read-only, since tasks change only through their jobs."""

from django.contrib import admin, messages
from django.utils.html import format_html

from .models import Task
from .services import ExportAlreadyRunning, QueueUnavailable, TaskAlreadyFinished, export_cancel, export_start


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "user",
        "kind",
        "status",
        "progress_bar",
        "created_at",
        "started_at",
        "finished_at",
        "duration_display",
        "error",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    actions = ["cancel_tasks", "retry_tasks"]
    readonly_fields = [f.name for f in Task._meta.fields] + ["duration_display"]

    # Every staff member may watch tasks, without a per-model permission to grant first.
    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    # A task ends through its job or the cancel action; deleting a row would orphan its file.
    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="progress", ordering="progress")
    def progress_bar(self, task: Task) -> str:
        # The same data-task-id / data-field markup as the site's pages, so live.js updates it.
        return format_html(
            '<span class="task" data-task-id="{}" data-seq="{}">'
            '<progress data-field="bar" max="100" value="{}" role="progressbar" aria-valuemin="0" '
            'aria-valuemax="100" aria-valuenow="{}"></progress> <span data-field="percent">{}%</span> '
            '<span data-field="status">{}</span></span>',
            task.id,
            task.seq,
            task.progress,
            task.progress,
            task.progress,
            task.get_status_display(),
        )

    @admin.display(description="duration")
    def duration_display(self, task: Task) -> str:
        duration = task.duration
        return "—" if duration is None else f"{duration.total_seconds():.1f} s"

    @admin.action(description="Cancel selected queued or running tasks")
    def cancel_tasks(self, request, queryset) -> None:
        cancelled = 0
        for task in queryset.filter(status__in=Task.UNFINISHED):
            try:
                export_cancel(task=task)
                cancelled += 1
            except TaskAlreadyFinished:
                pass
        self.message_user(request, f"Cancelled {cancelled} task(s).", messages.SUCCESS)

    @admin.action(description="Retry selected tasks (a new task for the same user and kind)")
    def retry_tasks(self, request, queryset) -> None:
        started, skipped = 0, []
        for task in queryset.select_related("user"):
            try:
                export_start(user=task.user)
                started += 1
            except ExportAlreadyRunning:
                skipped.append(task.user.get_username())
            except QueueUnavailable as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
        self.message_user(request, f"Started {started} new task(s).", messages.SUCCESS)
        if skipped:
            self.message_user(
                request, f"Skipped, an export is already unfinished for: {', '.join(skipped)}", messages.WARNING
            )
