"""What users are told when a task goes wrong, and which faults are worth retrying."""

from __future__ import annotations

import smtplib

from rq.timeouts import JobTimeoutException

from .kinds import TaskKind


class TaskStepFailed(Exception):
    """A step failed for good (after its retries, or on bad input): `user_message` says what, in a sentence."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class TaskInputInvalid(TaskStepFailed):
    """The job's input is unusable (a malformed file): the user's to fix, not an operator's fault."""


def unexpected_error(label: str) -> str:
    return f"The {label.lower()} failed unexpectedly. Please try again; the team has the details."


def timed_out_error(label: str) -> str:
    return f"The {label.lower()} timed out."


def worker_lost_error(label: str) -> str:
    return f"The worker running this {label.lower()} stopped unexpectedly (worker lost). Please start it again."


def is_transient(exc: BaseException) -> bool:
    """Faults that a later attempt may not meet: network refusals, timeouts, SMTP 4xx replies."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False  # the address is wrong; asking again will not help
    return isinstance(exc, (smtplib.SMTPServerDisconnected, OSError))


def user_error_for(exc: BaseException, kind: TaskKind) -> str:
    """A short message a user can act on; the traceback goes to the log, not to them."""
    if isinstance(exc, JobTimeoutException):
        return timed_out_error(kind.label)
    if isinstance(exc, TaskStepFailed):
        return exc.user_message
    return unexpected_error(kind.label)
