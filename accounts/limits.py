"""Limits on what an anonymous client can make the site email: password resets and sign-ups.

- At most PASSWORD_RESET_EMAIL_LIMIT reset requests per email address in each window, counted
  whether or not an account has that address, so a refusal says nothing about who has an account.
  The address is kept in Redis only as a keyed hash (HMAC with SECRET_KEY), never in clear.
- At most PASSWORD_RESET_CLIENT_LIMIT reset requests and SIGNUP_CLIENT_LIMIT sign-ups per client
  address in each window. The client address is the one django-axes locks logins out by
  (axes.helpers.get_client_ip_address, configured by AXES_* in project/settings.py), so the proxy
  setup is honoured in one place. An IPv6 client counts by its /64, the block one subscriber holds.

Every request counts, refused ones included. Redis being away lets the request through (the email
then cannot be queued either, so nothing is sent).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.utils.crypto import salted_hmac
from redis.exceptions import RedisError

from live_tasks.ratelimits import Limit, RateLimited

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = logging.getLogger(__name__)


class PasswordResetLimited(RateLimited):
    """Too many reset requests for this address or from this client; the same message either way."""


class SignupLimited(RateLimited):
    """Too many sign-ups from this client."""


def client_address(request: HttpRequest) -> str:
    """The key a client is counted by: its IPv4 address, or its IPv6 /64 network."""
    address = get_client_ip_address(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return "unknown"  # no REMOTE_ADDR (a test client, a misconfigured proxy): one shared key
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def email_key(email: str) -> str:
    """An email address as it appears in a Redis key: normalised like the account lookup
    (case-insensitive), then hashed with the site's secret, so the key cannot be read back."""
    normalised = email.strip().lower()
    return salted_hmac("accounts.limits.email", normalised, algorithm="sha256").hexdigest()


def password_reset_count(*, email: str, client: str) -> None:
    """Count a reset request; raise PasswordResetLimited past either limit."""
    by_client = Limit(
        "password-reset-client", settings.PASSWORD_RESET_CLIENT_LIMIT, settings.PASSWORD_RESET_CLIENT_WINDOW_SECONDS
    )
    by_email = Limit(
        "password-reset-email", settings.PASSWORD_RESET_EMAIL_LIMIT, settings.PASSWORD_RESET_EMAIL_WINDOW_SECONDS
    )
    # A client already over its limit is not counted against the address too: it cannot use up
    # someone's resets beyond its own allowance.
    retry_after = _hit(by_client, client) or _hit(by_email, email_key(email))
    if retry_after is not None:
        raise PasswordResetLimited(
            f"Too many password reset requests. Please wait {wait_text(retry_after)} and try again.",
            retry_after=retry_after,
        )


def signup_count(*, client: str) -> None:
    """Count a sign-up; raise SignupLimited past the limit."""
    limit = Limit("signup-client", settings.SIGNUP_CLIENT_LIMIT, settings.SIGNUP_CLIENT_WINDOW_SECONDS)
    retry_after = _hit(limit, client)
    if retry_after is not None:
        raise SignupLimited(
            f"Too many accounts were created from your network. Please wait {wait_text(retry_after)} and try again.",
            retry_after=retry_after,
        )


def wait_text(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    return f"{round(seconds / 60)} minutes"


def _hit(limit: Limit, key: str) -> int | None:
    try:
        return limit.hit(key)
    except RedisError as exc:
        logger.warning("%s limit not checked (Redis unavailable: %r)", limit.name, exc)
        return None
