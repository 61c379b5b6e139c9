"""What users are told when an export goes wrong, and which faults are worth retrying."""

from __future__ import annotations

import smtplib

from rq.timeouts import JobTimeoutException

UNEXPECTED = "The export failed unexpectedly. Please try again; the team has the details."
TIMED_OUT = "The export timed out."
EMAIL_FAILED = "The export was written but the email could not be sent."
STORAGE_FAILED = "The export file could not be stored."
WORKER_LOST = "The worker running this export stopped unexpectedly (worker lost). Please start it again."


class ExportStepFailed(Exception):
    """A step failed for good (after its retries); `user_message` says which, in a sentence."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


def is_transient(exc: BaseException) -> bool:
    """Faults that a later attempt may not meet: network refusals, timeouts, SMTP 4xx replies."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False  # the address is wrong; asking again will not help
    return isinstance(exc, (smtplib.SMTPServerDisconnected, OSError))


def user_error_for(exc: BaseException) -> str:
    """A short message a user can act on; the traceback goes to the log, not to them."""
    if isinstance(exc, JobTimeoutException):
        return TIMED_OUT
    if isinstance(exc, ExportStepFailed):
        return exc.user_message
    return UNEXPECTED
