from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.http import HttpRequest
from django.test import Client

from live_tasks.models import Task
from posts.models import Post

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    """A staff account with the task permissions named (codenames of live_tasks.Task: "view_task",
    "cancel_task", "retry_task"); by default it may watch every task and nothing more."""

    is_staff = True

    @factory.post_generation
    def permissions(obj, create, extracted, **kwargs):
        if create:
            codenames = ["view_task"] if extracted is None else extracted
            obj.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="live_tasks", codename__in=codenames)
            )


class PostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Post

    author = factory.SubFactory(UserFactory)
    body = factory.Sequence(lambda n: f"Post number {n}")


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    user = factory.SubFactory(UserFactory)
    kind = "export_posts"


def login(client, username: str, password: str = PASSWORD) -> bool:
    """client.login() through django-axes, which needs the request it checks (the login form's
    is the real one; this is the quick way in). Successful logins are never locked out."""
    request = HttpRequest()
    request.META["REMOTE_ADDR"] = "127.0.0.1"
    return client.login(request=request, username=username, password=password)


def signed_in_client(user, **kwargs) -> Client:
    """The one quick way in for tests: a test client with `user`'s session (the login form itself
    is tested in tests/accounts and tests/e2e)."""
    client = Client(**kwargs)
    assert login(client, user.username)
    return client


def session_cookie_for(user) -> str:
    """A new session of `user`, as the value of the `sessionid` cookie (for sockets, daphne, a browser)."""
    return signed_in_client(user).cookies["sessionid"].value
