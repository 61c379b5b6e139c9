"""{{ post.body|post_preview }}: the beginning of a long post, so that one post cannot fill the page."""

from __future__ import annotations

from django import template

register = template.Library()

# A post longer than this (or with more lines) shows its beginning and a "Show the whole post".
PREVIEW_CHARS = 600
PREVIEW_LINES = 10


@register.filter
def post_preview(body: str) -> str:
    """The first PREVIEW_CHARS characters or PREVIEW_LINES lines, cut at a space when there is one
    near the end; the empty string when the post is short enough to show whole."""
    lines = body.split("\n", PREVIEW_LINES)
    if len(body) <= PREVIEW_CHARS and len(lines) <= PREVIEW_LINES:
        return ""
    head = "\n".join(lines[:PREVIEW_LINES])[:PREVIEW_CHARS]
    space = head.rfind(" ", PREVIEW_CHARS * 3 // 4)
    return (head[:space] if space > 0 else head).rstrip()
