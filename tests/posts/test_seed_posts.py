"""`manage.py seed_posts USERNAME COUNT`: bulk demo posts, creating the user (with a password) if needed."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.management.commands.ensure_demo import DEMO_POSTS
from posts.models import Post, post_fingerprint
from tests.factories import UserFactory, login

PASSWORD_LINE = re.compile(r"^Created user 'alice' with password: (\S+)$", re.MULTILINE)


def seed(*args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_posts", *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_creates_the_user_with_a_working_password_and_exactly_count_posts(db):
    out, err = seed("alice", "1234")

    alice = get_user_model().objects.get(username="alice")
    assert alice.email == "alice@example.com"
    match = PASSWORD_LINE.search(out)
    assert match, out
    password = match.group(1)
    assert len(password) >= 12
    assert login(Client(), "alice", password)
    assert Post.objects.filter(author=alice).count() == 1234
    assert Post.objects.count() == 1234
    assert "Created 1,234 posts for alice." in out
    assert err == "", "no progress bar below the threshold"


def test_posts_are_numbered_demo_posts(db):
    seed("alice", "3")
    bodies = sorted(Post.objects.values_list("body", flat=True))
    assert bodies == ["Demo post 1 ✓", "Demo post 2 ✓", "Demo post 3 ✓"]


def test_two_new_users_get_different_passwords(db):
    first, _ = seed("alice", "0")
    second, _ = seed("bob", "0")
    password_of = re.compile(r"with password: (\S+)$", re.MULTILINE)
    first_match, second_match = password_of.search(first), password_of.search(second)
    assert first_match and second_match
    assert first_match.group(1) != second_match.group(1)


def test_a_given_password_is_used_for_a_new_user(db):
    out, _ = seed("alice", "1", password="s3cret-chosen-pass")
    assert "s3cret-chosen-pass" in out
    assert login(Client(), "alice", "s3cret-chosen-pass")


def test_a_second_run_adds_posts_to_the_existing_user_without_a_password(db):
    seed("alice", "1234")
    alice = get_user_model().objects.get(username="alice")
    old_hash = alice.password

    out, _ = seed("alice", "66")

    assert "password" not in out.lower()
    assert "Created 66 posts for alice." in out
    assert get_user_model().objects.filter(username="alice").count() == 1
    assert Post.objects.filter(author=alice).count() == 1300
    alice.refresh_from_db()
    assert alice.password == old_hash, "the existing password is left alone"


def test_an_existing_user_keeps_their_password_and_posts(db):
    user = UserFactory(username="alice")
    out, _ = seed("alice", "10", password="ignored-for-existing")
    assert "password" not in out.lower()
    assert login(Client(), "alice")
    assert Post.objects.filter(author=user).count() == 10


@pytest.mark.parametrize("count", ["-1", "-1234"])
def test_a_negative_count_is_an_error_and_changes_nothing(db, count):
    with pytest.raises(CommandError, match="COUNT must be zero or more"):
        seed("alice", count)
    assert not get_user_model().objects.filter(username="alice").exists()
    assert Post.objects.count() == 0


def test_a_non_numeric_count_is_an_error(db):
    with pytest.raises(CommandError):
        seed("alice", "many")
    assert Post.objects.count() == 0


def test_a_large_count_shows_a_progress_bar_on_stderr(db):
    out, err = seed("alice", "25000")

    assert Post.objects.filter(author__username="alice").count() == 25000
    assert "25000/25000" in err and "100%" in err and "post/s" in err
    assert "25000/25000" not in out, "the bar goes to stderr, not into the output"
    assert "Created 25,000 posts for alice." in out


def test_the_progress_bar_is_silent_at_verbosity_zero(db):
    _, err = seed("alice", "20000", verbosity=0)
    assert err == ""
    assert Post.objects.count() == 20000


def test_seeded_posts_are_whole_posts_an_import_recognises(db):
    """posts_seed writes rows itself (no model per row): they must read back as the ORM's own,
    visible, with the fingerprint an import compares, so re-importing an export skips them all."""
    seed("alice", "7")
    posts = list(Post.objects.filter(author__username="alice").order_by("id"))
    assert [p.body for p in posts] == [f"Demo post {n} ✓" for n in range(1, 8)]
    assert all(p.batch_id is None for p in posts)
    assert [p.fingerprint for p in posts] == [post_fingerprint(p.body, p.created_at) for p in posts]


def test_ensure_demo_seeds_the_demo_user_once_with_the_bar(db, settings):
    settings.DEBUG = True
    out, err = io.StringIO(), io.StringIO()
    call_command("ensure_demo", stdout=out, stderr=err)
    demo = get_user_model().objects.get(username="demo")
    assert Post.objects.filter(author=demo).count() == DEMO_POSTS
    assert f"{DEMO_POSTS}/{DEMO_POSTS}" in err.getvalue(), "seeding that long shows its progress"
    assert f"Created {DEMO_POSTS:,} posts for demo." in out.getvalue()

    call_command("ensure_demo", stdout=io.StringIO(), stderr=io.StringIO())
    assert Post.objects.filter(author=demo).count() == DEMO_POSTS, "only once"
