"""What users are told when something goes wrong: a request refused (TaskError, with its HTTP
status), a job that failed (TaskStepFailed and the messages below), and which faults are worth retrying."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext
from rq.timeouts import JobTimeoutException

from .kinds import TaskKind

if TYPE_CHECKING:
    from .models import Task


class TaskError(Exception):
    """A request about a task that cannot be done (now), carrying the answer it deserves.

    Every view answers one the same way, in one place (live_tasks.views.task_error_response): a JSON
    client gets `status` with the Task JSON of `task` if the refusal is about one (409 with the
    unfinished task: it says what to do next), else `{"error": message}`; a person gets the message
    on a page, or on the task's page. `retry_after` (seconds) becomes the Retry-After header.
    A kind's start service may raise its own subclass: it gets the same answer.
    """

    status: ClassVar[int] = 400

    def __init__(self, message: str, *, task: Task | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.task = task
        self.retry_after = retry_after

    @property
    def notice(self) -> str:
        """What a person sent to `task`'s page reads there."""
        return self.message


class TaskStepFailed(Exception):
    """A step failed for good (after its retries, or on bad input): `user_message` says what, in a sentence."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class TaskInputInvalid(TaskStepFailed):
    """The job's input is unusable (a malformed file): the user's to fix, not an operator's fault."""


def kind_unavailable_error() -> str:
    """For a task whose kind no installed app registers any more: its work cannot run."""
    return gettext("This kind of task is not available any more.")


def unexpected_error(label: str) -> str:
    return gettext("The %(label)s failed unexpectedly. Please try again; the team has the details.") % {
        "label": label.lower()
    }


def timed_out_error(label: str) -> str:
    return gettext("The %(label)s timed out.") % {"label": label.lower()}


def worker_lost_error(label: str) -> str:
    return gettext("The worker running this %(label)s stopped unexpectedly (worker lost). Please start it again.") % {
        "label": label.lower()
    }


def is_transient(exc: BaseException) -> bool:
    """Faults that a later attempt may not meet: the network's (refusals, resets, timeouts).

    A step whose service has transient faults of its own (a mail server's 4xx replies) passes its
    own test to `with_retries(..., transient=...)`. An S3 bucket's faults (through botocore) count
    when another attempt may fare better: no connection, a timeout, a 5xx or throttling; not a
    refusal (a wrong key, no such bucket), which retrying cannot fix.
    """
    return isinstance(exc, OSError) or _is_transient_s3_fault(exc)


def _is_transient_s3_fault(exc: BaseException) -> bool:
    botocore = sys.modules.get("botocore.exceptions")  # never imported here: a site on disk has none
    if botocore is None:
        return False
    if isinstance(exc, botocore.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return bool(status >= 500 or exc.response.get("Error", {}).get("Code") in {"SlowDown", "RequestTimeout"})
    # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError...
    return isinstance(exc, botocore.HTTPClientError | botocore.ConnectionError)


def is_job_timeout(exc: BaseException) -> bool:
    """The job's own time limit, raised inside it: RQ's job_timeout, or Celery's soft_time_limit."""
    if isinstance(exc, JobTimeoutException):
        return True
    billiard = sys.modules.get("billiard.exceptions")  # there only where Celery runs the job
    return billiard is not None and isinstance(exc, billiard.SoftTimeLimitExceeded)


def user_error_for(exc: BaseException, kind: TaskKind) -> str:
    """A short message a user can act on; the traceback goes to the log, not to them."""
    if is_job_timeout(exc):
        return timed_out_error(str(kind.label))
    if isinstance(exc, TaskStepFailed):
        return exc.user_message
    return unexpected_error(str(kind.label))
