"""One step of a job, retried on transient faults with exponential backoff, visibly to the user."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.utils.translation import gettext
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .conf import live_settings
from .errors import TaskStepFailed, is_job_timeout, is_transient
from .reporter import ProgressReporter, TaskNoLongerRunning

logger = logging.getLogger(__name__)

T = TypeVar("T")


def with_retries(
    progress: ProgressReporter,
    step: str,
    failure_message: str,
    action: Callable[[], T],
    *,
    transient: Callable[[BaseException], bool] = is_transient,
) -> T:
    """Run `action`; retry the faults that `transient` accepts (by default the network's,
    live_tasks.errors.is_transient) up to LIVE_TASKS["RETRY_ATTEMPTS"] times in all.

    Meanwhile the task's detail says "Retrying <step> in N s (attempt 2 of 4)…". A fault that is
    not transient, or the last attempt's, ends the step with TaskStepFailed(failure_message).
    """
    attempts = live_settings.RETRY_ATTEMPTS

    def say_retrying(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning("Task %s: %s failed (%r); retrying", progress.task_id, step, error)
        sleep = state.next_action.sleep if state.next_action else 0
        progress.say(
            gettext("Retrying %(step)s in %(seconds)s s (attempt %(attempt)s of %(attempts)s)…")
            % {"step": step, "seconds": f"{sleep:.0f}", "attempt": state.attempt_number + 1, "attempts": attempts}
        )

    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=live_settings.RETRY_BACKOFF, max=60),
            retry=retry_if_exception(transient),
            before_sleep=say_retrying,
            reraise=True,
        ):
            with attempt:
                return action()
    except TaskNoLongerRunning:
        raise  # a cancel: not this step's fault
    except Exception as exc:
        if is_job_timeout(exc):
            raise  # the job's own time limit: not this step's fault either
        raise TaskStepFailed(failure_message) from exc
    raise AssertionError("unreachable: Retrying either returns or raises")
