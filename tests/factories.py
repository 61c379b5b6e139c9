"""The site's users, posts and tasks for tests; users and staff are the library tests' own."""

from __future__ import annotations

import factory
from django.http import HttpRequest
from django.test import Client

from posts.models import Post

from .library.helpers import PASSWORD, StaffFactory, UserFactory
from .library.helpers import TaskFactory as LibraryTaskFactory

__all__ = [
    "PASSWORD",
    "PostFactory",
    "StaffFactory",
    "TaskFactory",
    "UserFactory",
    "login",
    "session_cookie_for",
    "signed_in_client",
]


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Post number {n}")


class TaskFactory(LibraryTaskFactory):
    kind = "export_posts"


def login(client, username: str, password: str = PASSWORD) -> bool:
    """client.login() through django-axes, which needs the request it checks (the login form's
    is the real one; this is the quick way in). Successful logins are never locked out."""
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    return client.login(request=request, username=username, password=password)


def signed_in_client(user, **kwargs) -> Client:
    """The one quick way in for tests: a test client with `user`'s session, through django-axes as
    the site's login does (the login form itself is tested in tests/accounts and tests/e2e)."""
    client = Client(**kwargs)
    assert login(client, user.username)
    return client


def session_cookie_for(user) -> str:
    """A new session of `user`, as the value of the `sessionid` cookie (for sockets, daphne, a browser)."""
    return signed_in_client(user).cookies["sessionid"].value
