"""How long Chromium takes to load and lay out the posts page with 50 posts of 20,000 unbroken
characters, before and after the long-post previews.

One run of the issue measured 40 s for the page as it was (each post whole, with
`overflow-wrap: anywhere`), another under 1 s: this prints today's figures side by side.

- baseline: the posts as the page showed them before (each body whole, `overflow-wrap: anywhere`),
  with the site's stylesheet;
- the same with `overflow-wrap: break-word` (the stylesheet's change alone);
- project: the real /posts/ page served by daphne (previews; the whole post in a closed <details>).

    python benchmarks/longposts.py      # prints a table, writes benchmarks/results/longposts.json

Setup: a temporary SQLite database with one user and the posts, daphne on a free port, headless
Chromium (/usr/bin/chromium) at 1280 and 375 px. Teardown: daphne stopped, the folder deleted.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
POSTS, CHARS, RUNS = 50, 20_000, 3
WIDTHS = (1280, 375)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def static_page(wrap: str) -> str:
    """The posts list as the page rendered it before: every body whole."""
    css = (ROOT / "static" / "css" / "app.css").read_text()
    rule = f".post .body {{ margin: 0 0 .25rem; overflow-wrap: {wrap}; white-space: pre-wrap; }}"
    body = escape("x" * CHARS)
    items = "".join(f'<li class="card post"><p class="body">{body}</p><time>now</time></li>' for _ in range(POSTS))
    return f"<!doctype html><style>{css}\n{rule}</style><main><ul class='posts'>{items}</ul></main>"


def timed(page, load) -> float:
    started = time.perf_counter()
    load()
    page.evaluate("document.body.getBoundingClientRect().height")  # forces the whole layout
    return time.perf_counter() - started


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-longposts-"))
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="project.settings",
        SECRET_KEY="bench",
        DEBUG="0",
        DATABASE_URL=f"sqlite:///{work}/db.sqlite3",
        MEDIA_ROOT=str(work / "media"),
        STATIC_ROOT=str(work / "static"),
        CHANNEL_LAYER_PREFIX=f"bench-longposts-{os.getpid()}",
        EMAIL_URL="dummymail://",
    )
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.utils import timezone

    from posts.models import Post, post_fingerprint

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", "bench@example.com", "bench-password")
    now, body = timezone.now(), "x" * CHARS
    Post.objects.bulk_create(
        Post(author=user, body=body, created_at=now, fingerprint=post_fingerprint(body, now)) for _ in range(POSTS)
    )
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value

    from playwright.sync_api import sync_playwright

    port = free_port()
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "project.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    variants = ("baseline", "break-word", "project")
    figures: dict[str, list[float]] = {f"{v}@{w}": [] for w in WIDTHS for v in variants}
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            for _ in range(RUNS):
                for key in figures:
                    variant, width = key.split("@")
                    context = browser.new_context(viewport={"width": int(width), "height": 800})
                    context.add_cookies([{"name": "sessionid", "value": cookie, "domain": "127.0.0.1", "path": "/"}])
                    page = context.new_page()
                    page.set_default_timeout(300_000)
                    if variant == "project":
                        load = lambda page=page: page.goto(f"http://127.0.0.1:{port}/posts/")  # noqa: E731
                    else:
                        html = static_page("anywhere" if variant == "baseline" else "break-word")
                        # A second lambda, with other defaults, for the same name.
                        load = lambda page=page, html=html: page.set_content(html)  # type: ignore[misc]  # noqa: E731
                    figures[key].append(timed(page, load))
                    context.close()
            browser.close()
    finally:
        daphne.terminate()
        daphne.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    labels = {
        "baseline": "baseline: every post whole, `overflow-wrap: anywhere`",
        "break-word": "every post whole, `overflow-wrap: break-word`",
        "project": "**project: /posts/ with previews**",
    }
    print(f"Load and lay out {POSTS} posts of {CHARS:,} unbroken characters in Chromium ({RUNS} runs each)\n")
    print("| variant | width | median | slowest |")
    print("| --- | --- | --- | --- |")
    for key, times in figures.items():
        variant, width = key.split("@")
        print(f"| {labels[variant]} | {width} px | {statistics.median(times):.2f} s | {max(times):.2f} s |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"posts": POSTS, "chars": CHARS, "seconds": figures, "ceiling_seconds": 10}
    (RESULTS / "longposts.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
