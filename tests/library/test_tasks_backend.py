"""`@task` functions through live_tasks.backends.LiveTasksBackend: the row, the job after the commit,
results read back with get_result, owners, progress and cancel (jobs run by a burst worker here;
tests/library/test_tasks_backend_live.py runs them through a real rqworker and daphne)."""

from __future__ import annotations

import importlib.util
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AnonymousUser
from django.core import checks
from django.test import override_settings
from django.utils import timezone

import live_tasks
from live_tasks.backends import DJANGO_TASK, JobLost, LiveTasksBackend, TaskCancelled
from live_tasks.conf import live_settings
from live_tasks.models import Task
from live_tasks.services import task_cancel, task_start

from .helpers import LiveFeed, StaffFactory, UserFactory, queued_job_ids, run_queued_jobs
from .testapp import tasks
from .testapp.kinds import TEST_STEPS

try:
    from django.tasks import TaskResultStatus, default_task_backend, task_backends
    from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
    from django.tasks.signals import task_enqueued, task_finished, task_started
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import TaskResultStatus, default_task_backend, task_backends
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued, task_finished, task_started

UNEXPECTED = "The background task failed unexpectedly. Please try again; the team has the details."


@pytest.fixture
def enqueue(django_capture_on_commit_callbacks):
    """`enqueue(task, *args)`, with the on-commit enqueue run as after a real commit."""

    def call(task, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return task.enqueue(*args, **kwargs)

    return call


# --- Django's backend contract (tests/tasks/ of Django, tests/ of django-tasks) --------------------
def test_the_setting_gives_this_backend_with_honest_flags():
    backend = task_backends["default"]
    assert isinstance(backend, LiveTasksBackend)
    assert (backend.supports_get_result, backend.supports_defer) == (True, False)
    assert (backend.supports_priority, backend.supports_async_task) == (False, False)


def test_enqueue_records_a_queued_row_and_its_job_only_after_the_commit(db, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        result = tasks.noop_task.enqueue()
        assert queued_job_ids() == [], "nothing on the queue before the commit"
    for callback in callbacks:
        callback()
    assert queued_job_ids() == [result.id]
    row = Task.objects.get(pk=result.id)
    assert (row.kind, row.status, row.user) == (DJANGO_TASK, "queued", None)
    assert row.params["task"] == f"{tasks.__name__}.noop_task"
    assert result.status == TaskResultStatus.READY and result.live_status == "queued"
    assert (result.task.func, result.backend, result.args, result.kwargs) == (tasks.noop_task.func, "default", [], {})
    assert result.enqueued_at is not None and result.started_at is None and result.finished_at is None
    assert (result.worker_ids, result.attempts, result.errors, result.is_finished) == ([], 0, [], False)
    with pytest.raises(ValueError, match="not finished"):
        result.return_value  # noqa: B018


def test_a_task_runs_and_its_result_is_read_back(db, queue, enqueue):
    result = enqueue(tasks.calculate_meaning_of_life)
    run_queued_jobs()
    read = default_task_backend.get_result(result.id)
    assert (read.status, read.return_value, read.live_status) == (TaskResultStatus.SUCCESSFUL, 42, "succeeded")
    assert read.is_finished and read.errors == [] and read.attempts == 1
    assert read.started_at <= read.finished_at
    assert tasks.calculate_meaning_of_life.get_result(result.id).return_value == 42
    result.refresh()
    assert (result.status, result.return_value, result.live_status) == (TaskResultStatus.SUCCESSFUL, 42, "succeeded")
    with pytest.raises(TaskResultMismatch):
        tasks.noop_task.get_result(result.id)


def test_arguments_and_return_value_go_through_json(db, queue, enqueue):
    result = enqueue(tasks.echo_args, 1, (2, 3), "four", key={"nested": [5]})
    assert (result.args, result.kwargs) == ([1, [2, 3], "four"], {"key": {"nested": [5]}})
    run_queued_jobs()
    result.refresh()
    assert result.return_value == {"args": [1, [2, 3], "four"], "kwargs": {"key": {"nested": [5]}}}


def test_arguments_that_json_cannot_carry_are_refused_before_any_row(db, queue):
    with pytest.raises(TypeError):
        tasks.noop_task.enqueue(object())
    with pytest.raises(TypeError):
        tasks.noop_task.enqueue(key=timezone.now())
    assert not Task.objects.exists() and queued_job_ids() == []


def test_a_failing_task_records_its_class_and_traceback_and_shows_one_sentence(db, queue, enqueue):
    result = enqueue(tasks.failing_task_value_error)
    run_queued_jobs()
    result.refresh()
    assert (result.status, result.live_status) == (TaskResultStatus.FAILED, "failed")
    (error,) = result.errors
    assert error.exception_class is ValueError
    assert "This task failed due to ValueError" in error.traceback and "failing_task_value_error" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018
    assert Task.objects.get(pk=result.id).error == UNEXPECTED, "the page: the sentence of any kind"


def test_a_return_value_that_json_cannot_carry_fails_the_task(db, queue, enqueue):
    result = enqueue(tasks.return_not_json)
    run_queued_jobs()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.errors[0].exception_class is TypeError


def test_get_result_of_an_unknown_id_or_a_task_of_another_kind_does_not_exist(db, queue):
    other_kind = task_start(user=UserFactory(), kind=TEST_STEPS)
    for result_id in ["not-a-uuid", "00000000-0000-0000-0000-000000000000", str(other_kind.id)]:
        with pytest.raises(TaskResultDoesNotExist):
            default_task_backend.get_result(result_id)


@pytest.mark.parametrize(
    ("using", "message"),
    [
        ({"run_after": timezone.now() + timedelta(hours=1)}, "run_after"),
        ({"priority": 10}, "priority"),
        ({"queue_name": "elsewhere"}, "Queue 'elsewhere' is not valid"),
    ],
)
def test_what_the_backend_does_not_support_is_refused_clearly(db, using, message):
    with pytest.raises(InvalidTask, match=message):
        tasks.noop_task.using(**using)
    assert not Task.objects.exists()


def test_an_async_task_is_refused():
    async def coroutine_task() -> None: ...

    coroutine_task.__qualname__ = coroutine_task.__name__  # module level, as validate_task wants
    with pytest.raises(InvalidTask, match="async"):
        type(tasks.noop_task)(func=coroutine_task)


@pytest.mark.django_db(transaction=True)  # the library's signals, which these follow, are sent on commit
def test_djangos_signals_are_sent_for_enqueue_start_and_finish(queue, enqueue):
    seen = []

    def receiver(signal):
        return lambda sender, task_result, **kwargs: seen.append((signal, task_result.status))

    receivers = {name: receiver(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    try:
        enqueue(tasks.noop_task)
        run_queued_jobs()
    finally:
        task_enqueued.disconnect(receivers["enqueued"])
        task_started.disconnect(receivers["started"])
        task_finished.disconnect(receivers["finished"])
    assert seen == [
        ("enqueued", TaskResultStatus.READY),
        ("started", TaskResultStatus.RUNNING),
        ("finished", TaskResultStatus.SUCCESSFUL),
    ]


def test_check_names_a_queue_the_library_does_not_run():
    tasks_setting = {"default": {"BACKEND": "live_tasks.backends.LiveTasksBackend", "QUEUES": ["default", "low"]}}
    with override_settings(TASKS=tasks_setting):
        errors = list(task_backends["default"].check())
    assert [e.id for e in errors] == ["live_tasks.E010"] and "'low'" in errors[0].msg
    assert list(default_task_backend.check()) == []
    assert isinstance(errors[0], checks.Error)


# --- What the library adds: progress, cancel, owners ----------------------------------------------
def test_progress_is_recorded_and_a_context_task_gets_it_too(db, queue, enqueue):
    result = enqueue(tasks.count_steps_with_context, 4)
    run_queued_jobs()
    result.refresh()
    assert result.return_value == {"steps": 4, "attempt": 1, "id": result.id}


def test_progress_outside_a_live_task_does_nothing():
    live_tasks.progress(1, 2, detail="called directly")
    assert tasks.count_steps.call(2, 0) == 2


def test_a_cancelled_task_reads_as_failed_with_its_own_status(db, queue, enqueue):
    result = enqueue(tasks.noop_task)
    task_cancel(task=Task.objects.get(pk=result.id))
    if live_settings.QUEUE_BACKEND == "rq":
        assert queued_job_ids() == [], "its job is off RQ's queue"
    # On Celery a revoked message, whose job would find its task cancelled and do nothing.
    assert run_queued_jobs().get(result.id, "skipped") == "skipped"
    result.refresh()
    assert (result.status, result.live_status) == (TaskResultStatus.FAILED, "cancelled")
    assert result.errors[0].exception_class is TaskCancelled


def test_a_task_failed_by_the_safety_net_reads_as_job_lost(db, queue, enqueue):
    from live_tasks.state import task_mark_failed

    result = enqueue(tasks.noop_task)
    task_mark_failed(result.id, error="The worker running this background task stopped unexpectedly.")
    result.refresh()
    (error,) = result.errors
    assert error.exception_class is JobLost and "stopped unexpectedly" in error.traceback


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_for_a_user_is_theirs_live_and_a_404_for_anyone_else(queue, client_for):
    owner, stranger = UserFactory(), UserFactory()
    with LiveFeed(owner) as feed:
        with live_tasks.for_user(owner):
            result = tasks.count_steps.enqueue(3)
            second = tasks.sleep_quietly.enqueue(0.01)  # many unfinished @task tasks per user
        run_queued_jobs()
        feed.wait_for(
            lambda m: m["type"] == "task" and m["task"]["id"] == second.id and m["task"]["status"] == "succeeded"
        )
    assert Task.objects.get(pk=result.id).user == owner
    pushed = feed.task_messages(result.id)
    assert [m["status"] for m in pushed][:2] == ["queued", "running"] and pushed[-1]["status"] == "succeeded"
    assert [m["detail"] for m in pushed if m["status"] == "running"][1:] == [
        "Step 1 of 3",
        "Step 2 of 3",
        "Step 3 of 3",
    ], "progress, pushed live"
    assert {m["label"] for m in pushed} == {"Count steps"}, "the function's name, not the kind's"
    quiet = [m["status"] for m in feed.task_messages(second.id)]
    assert quiet == ["queued", "running", "succeeded"], "a function that never reports still shows each state"
    assert client_for(owner).get(f"/tasks/{result.id}/").status_code == 200
    assert client_for(stranger).get(f"/tasks/{result.id}/").status_code == 404
    assert client_for(stranger).get(f"/tasks/api/tasks/{result.id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_task_without_an_owner_is_for_staff_only(queue, client_for):
    user = UserFactory()
    staff = StaffFactory(permissions=["view_task"])
    with LiveFeed(user) as users_feed, LiveFeed(staff, path="/ws/tasks/?scope=all") as staff_feed:
        result = tasks.noop_task.enqueue()
        run_queued_jobs()
        staff_feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")
    assert [m["status"] for m in staff_feed.task_messages(result.id)] == ["queued", "running", "succeeded"]
    assert users_feed.task_messages(result.id) == [], "no user's feed gets it"
    assert staff_feed.task_messages(result.id)[-1]["user"] == ""
    assert client_for(user).get(f"/tasks/{result.id}/").status_code == 404
    assert not Task.objects.for_user(AnonymousUser()).exists(), "user_id IS NULL is nobody's, not the anonymous user's"
    assert client_for(staff).get(f"/tasks/{result.id}/").status_code == 404, "not staff's own either"
    admin_list = client_for(staff).get("/admin/live_tasks/task/")
    assert admin_list.status_code == 200 and str(result.id)[:8].encode() in admin_list.content
    assert client_for(staff).get(f"/admin/live_tasks/task/{result.id}/change/").status_code == 200


def test_a_row_naming_anything_but_a_task_runs_nothing(db, queue, django_capture_on_commit_callbacks):
    params: dict[str, object] = {"task": f"{tasks.__name__}.not_a_task", "args": [], "kwargs": {}}
    params |= {"backend": "default", "queue": "default", "priority": 0}
    with django_capture_on_commit_callbacks(execute=True):
        row = task_start(user=None, kind=DJANGO_TASK, params=params)
    run_queued_jobs()
    row.refresh_from_db()
    assert (row.status, row.error_class) == ("failed", "builtins.TypeError")
    assert tasks.CALLED == []


# --- Adapted from Django's tests/tasks/test_immediate_backend.py, with a worker in between --------
def test_enqueue_and_run_as_djangos_immediate_backend_tests_it(db, queue, enqueue):
    result = enqueue(tasks.noop_task, 1, two=3)
    run_queued_jobs()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.is_finished
    assert result.started_at >= result.enqueued_at and result.finished_at >= result.started_at
    assert result.last_attempted_at is not None and result.return_value is None
    assert (result.task, result.args, result.kwargs, result.attempts) == (tasks.noop_task, [1], {"two": 3}, 1)


@pytest.mark.parametrize(
    ("task", "exception", "message"),
    [
        (tasks.failing_task_value_error, ValueError, "This task failed due to ValueError"),
        (tasks.failing_task_system_exit, SystemExit, "This task failed due to SystemExit"),
    ],
)
def test_an_exception_is_caught_with_its_traceback(db, queue, enqueue, task, exception, message):
    result = enqueue(task)
    run_queued_jobs()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.is_finished
    assert result.errors[0].exception_class is exception
    assert result.errors[0].traceback.endswith(f"{exception.__name__}: {message}\n")


def test_a_complex_exception_and_a_complex_return_value(db, queue, enqueue):
    raised, returned = enqueue(tasks.complex_exception), enqueue(tasks.return_not_json)
    run_queued_jobs()
    raised.refresh()
    returned.refresh()
    assert 'ValueError(ValueError("This task failed"))' in raised.errors[0].traceback
    assert returned.errors[0].exception_class is TypeError and "Unsupported type" in returned.errors[0].traceback
    assert raised._return_value is None and returned._return_value is None


def test_takes_context_gets_its_own_result(db, queue, enqueue):
    result = enqueue(tasks.get_task_id)
    run_queued_jobs()
    result.refresh()
    assert result.return_value == result.id


def test_enqueue_logs_as_django_does(queue, caplog, transactional_db, enqueue):
    logger = "django.tasks" if importlib.util.find_spec("django.tasks") else "django_tasks"  # the backport's
    with caplog.at_level("DEBUG", logger=logger):
        result = enqueue(tasks.noop_task)
        run_queued_jobs()
    logged = [r.getMessage() for r in caplog.records if r.name == logger]
    assert len(logged) == 3, logged
    assert "enqueued" in logged[0] and all(result.id in line for line in logged)
    assert "state=RUNNING" in logged[1] and "state=SUCCESSFUL" in logged[2]


@pytest.mark.django_db(transaction=True)
def test_aenqueue_aget_result_and_arefresh(queue):
    task = tasks.calculate_meaning_of_life
    result = async_to_sync(task.aenqueue)()
    run_queued_jobs()  # in the main thread: RQ's job timeout is a signal
    assert async_to_sync(task.aget_result)(result.id).return_value == 42
    async_to_sync(result.arefresh)()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 42)


# --- Adapted from django-tasks' tests/tests/test_rq_backend.py (its RQ backend, before the split) ---
def test_get_result_equals_the_enqueued_result_and_refresh_changes_only_the_copy_refreshed(db, queue, enqueue):
    result = enqueue(tasks.calculate_meaning_of_life)
    assert default_task_backend.get_result(result.id) == result
    run_queued_jobs()
    assert (result.status, result.started_at, result.attempts) == (TaskResultStatus.READY, None, 0)
    result.refresh()
    assert (result.status, result.return_value, result.attempts) == (TaskResultStatus.SUCCESSFUL, 42, 1)
    assert result.started_at is not None and result.last_attempted_at is not None and result.finished_at is not None


def test_failed_logs_as_django_tasks_rq_backend_does(queue, caplog, transactional_db, enqueue):
    logger = "django.tasks" if importlib.util.find_spec("django.tasks") else "django_tasks"
    result = enqueue(tasks.failing_task_value_error)
    with caplog.at_level("DEBUG", logger=logger):
        run_queued_jobs()
    logged = [r.getMessage() for r in caplog.records if r.name == logger]
    assert len(logged) == 2 and "state=RUNNING" in logged[0] and "state=FAILED" in logged[1], logged
    assert all(result.id in line for line in logged)
