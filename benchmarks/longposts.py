"""Long posts in the browser.

How long headless Chromium takes to load and lay out a posts page of 50 posts of 20,000 unbroken
characters, at 1280 and 375 px, best of three. Baseline: the posts as the page showed them before
(each body whole, `overflow-wrap: anywhere`, the site's stylesheet), as a static page; the same
with `overflow-wrap: break-word`. Project: the real /posts/ page served by daphne (previews, the
whole post in a closed <details>). One run of an outside test once measured 40 s for the baseline.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from benchmarks.common import ROOT, save, start, target, users_with_sessions

POSTS, CHARS, RUNS, WIDTHS = 50, 20_000, 3, (1280, 375)


def static_page(wrap: str) -> str:
    css = (ROOT / "static" / "css" / "app.css").read_text()
    rule = f".post .body {{ margin: 0 0 .25rem; overflow-wrap: {wrap}; white-space: pre-wrap; }}"
    item = f'<li class="card post"><p class="body">{escape("x" * CHARS)}</p><time>now</time></li>'
    return f"<!doctype html><style>{css}\n{rule}</style><main><ul class='posts'>{item * POSTS}</ul></main>"


def main() -> None:
    args = start(__doc__, database="sqlite")
    import os

    from django.utils import timezone
    from playwright.sync_api import sync_playwright

    from posts.models import Post, post_fingerprint
    from tests.library.helpers import CHROMIUM, CHROMIUM_ARGS
    from tests.processes import daphne

    ((user_id, session),) = users_with_sessions("bench-longposts-", 1)
    now, body = timezone.now(), "x" * CHARS
    posts = 5 if args.smoke else POSTS
    Post.objects.bulk_create(
        Post(author_id=user_id, body=body, created_at=now, fingerprint=post_fingerprint(body, now))
        for _ in range(posts)
    )
    loads = {
        "baseline: every post whole, overflow-wrap: anywhere": static_page("anywhere"),
        "every post whole, overflow-wrap: break-word": static_page("break-word"),
        "project: /posts/": None,
    }
    rows: list[dict[str, Any]] = []
    with daphne(dict(os.environ)) as (port, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for variant, html in loads.items():
            for width in WIDTHS:
                best = float("inf")
                for _ in range(1 if args.smoke else RUNS):
                    context = browser.new_context(viewport={"width": width, "height": 800})
                    context.add_cookies([{"name": "sessionid", "value": session, "domain": "127.0.0.1", "path": "/"}])
                    page = context.new_page()
                    page.set_default_timeout(300_000)
                    began = time.perf_counter()
                    page.set_content(html) if html else page.goto(f"http://127.0.0.1:{port}/posts/")
                    page.evaluate("document.body.getBoundingClientRect().height")  # forces the whole layout
                    best = min(best, time.perf_counter() - began)
                    context.close()
                rows.append({"variant": variant, "width px": width, "load and layout s": best})
        browser.close()
    slowest = max(row["load and layout s"] for row in rows if row["variant"].startswith("project"))
    save(args, "longposts", __doc__, {"": rows}, [target("project: slowest load and layout, s", slowest, "≤", 10)])


if __name__ == "__main__":
    main()
