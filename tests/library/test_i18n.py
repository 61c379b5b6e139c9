"""The library in another language: its French catalog on the pages, in the Task JSON, on the
socket and in live.js's catalog; and a task's own words (detail, error) written in the language it
was launched in, by whichever process writes them."""

from __future__ import annotations

import gettext
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone, translation

import live_tasks
from live_tasks.reconcile import tasks_reconcile
from live_tasks.services import task_cancel, task_start

from .helpers import LiveFeed, TaskFactory, UserFactory, queued_jobs, run_queued_jobs
from .testapp.kinds import TEST_STEPS

LOCALE = Path(live_tasks.__file__).parent / "locale"
FRENCH = {"HTTP_ACCEPT_LANGUAGE": "fr"}


@pytest.fixture
def negotiated_language(settings):
    """A site that picks each request's language from the browser (Django's LocaleMiddleware)."""
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(
        middleware.index("django.contrib.sessions.middleware.SessionMiddleware") + 1,
        "django.middleware.locale.LocaleMiddleware",
    )
    settings.MIDDLEWARE = middleware
    yield
    translation.deactivate()  # LocaleMiddleware left the last request's language active in this thread


@pytest.mark.django_db(transaction=True)
def test_a_task_launched_in_french_is_french_on_the_socket_on_its_page_and_in_its_json(
    queue, client_for, negotiated_language
):
    user = UserFactory()
    with LiveFeed(user) as feed:
        with translation.override("fr"):  # the launching request's language
            task = task_start(user=user, kind=TEST_STEPS, params={"steps": 2, "with_file": True})
        run_queued_jobs()
        feed.wait_for(lambda m: m["type"] == "task" and m["task"]["status"] == "succeeded")
    task.refresh_from_db()
    assert task.language == "fr"

    pushed = {m["status"]: m for m in feed.task_messages(task.id)}
    assert pushed["running"]["status_display"] == "En cours"
    assert [m["detail"] for m in feed.task_messages(task.id) if m["status"] == "running"][0] == "Démarrage…"
    assert pushed["succeeded"]["status_display"] == "Réussie"

    client = client_for(user)
    page = client.get(f"/tasks/{task.id}/", **FRENCH).content.decode()
    assert "Réussie" in page and "Télécharger le fichier" in page and "Toutes vos tâches" in page
    assert re.search(r"Durée : [\d.]+ s", page), "the timing line, as live.js writes it in French"
    assert client.get(f"/tasks/api/{task.id}/", **FRENCH).json()["status_display"] == "Réussie"
    # The same page for an English reader: the request decides how the page reads.
    assert "Succeeded" in client.get(f"/tasks/{task.id}/").content.decode()

    catalog = client.get("/tasks/jsi18n/", **FRENCH).content.decode()
    assert (
        "Cette t\\u00e2che a \\u00e9t\\u00e9 supprim\\u00e9e." in catalog or "Cette tâche a été supprimée." in catalog
    )


def test_a_cancel_is_written_in_the_launchers_language_not_the_cancellers(
    db, queue, django_capture_on_commit_callbacks
):
    with translation.override("fr"), django_capture_on_commit_callbacks(execute=True):
        task = task_start(user=UserFactory(), kind=TEST_STEPS)
    with translation.override("en"):  # staff in the admin, say
        cancelled = task_cancel(task=task)
    assert cancelled.detail == "Annulée."
    assert cancelled.get_status_display() == "Cancelled", "the status is read in the reader's language"


def test_the_safety_net_writes_in_each_tasks_own_language(db, queue):
    long_ago = timezone.now() - timedelta(minutes=5)
    french = TaskFactory(kind=TEST_STEPS, status="queued", created_at=long_ago, language="fr")
    english = TaskFactory(kind=TEST_STEPS, status="queued", created_at=long_ago, language="en")
    assert tasks_reconcile() == {"requeued": 2}  # their jobs were lost
    french.refresh_from_db()
    english.refresh_from_db()
    assert french.detail == "Remise en file d’attente après sa perte par la file des travaux."
    assert english.detail == "Queued again after the job queue lost it."
    (job,) = [job for job in queued_jobs() if job.id == str(french.id)]
    assert job.kwargs == {"language": "fr"}, "the requeued job writes in French too"


def _po_entries(po: str) -> list[dict[str, str]]:
    """Each entry of a .po file as {"msgid": ..., "msgstr": ...} (plural forms joined), header left out."""
    entries = []
    for block in po.split("\n\n"):
        fields: dict[str, str] = {}
        key = ""
        for line in block.splitlines():
            if line.startswith("#"):
                continue
            if line.startswith('"'):
                fields[key] += line[1:-1]  # a continuation of the field above
            else:
                key, value = line.split(" ", 1)
                key = "msgstr" if key.startswith("msgstr") else key
                fields[key] = fields.get(key, "") + value[1:-1] if key == "msgstr" else value[1:-1]
        if fields.get("msgid"):
            entries.append(fields)
    return entries


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_shipped_french_catalog_is_complete_and_compiled(domain):
    """No msgid left untranslated, and the .mo in the wheel is this .po (compilemessages was run)."""
    folder = LOCALE / "fr" / "LC_MESSAGES"
    entries = _po_entries((folder / f"{domain}.po").read_text(encoding="utf-8"))
    assert entries and not [e["msgid"] for e in entries if not e["msgstr"]]
    with open(folder / f"{domain}.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for entry in entries:
        msgid = entry["msgid"].encode().decode("unicode_escape").encode("latin-1").decode()
        assert compiled.gettext(msgid) != msgid or entry["msgid"] == entry["msgstr"] or "msgid_plural" in entry, (
            f"{msgid!r} is not in the compiled catalog: run `django-admin compilemessages` in live_tasks/"
        )
