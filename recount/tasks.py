# recount/tasks.py: a plain django.tasks function; the library's backend runs it (settings.TASKS)
from __future__ import annotations

try:
    from django.tasks import task  # Django 6
except ImportError:
    from django_tasks import task  # Django 5.2: the backport, `django-live-tasks[django-tasks]`

import live_tasks
from posts.models import Post


@task
def recount_words(user_id: int) -> dict[str, int]:
    """Count the words of every post of the user; the return value is read back with get_result."""
    posts = Post.objects.filter(author_id=user_id)
    total, words = posts.count(), 0
    for done, body in enumerate(posts.values_list("body", flat=True).iterator(), start=1):
        words += len(body.split())
        live_tasks.progress(done, total, detail=f"{done:,} of {total:,} posts counted")  # live, and stops on cancel
    return {"posts": total, "words": words}
