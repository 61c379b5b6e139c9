"""{% import_form %}: the import form, wherever a page offers it (the posts page, a refusal)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

register = template.Library()


@register.inclusion_tag("imports/_import_form.html", takes_context=True)
def import_form(context: template.Context) -> dict[str, Any]:
    return {"csrf_token": context.get("csrf_token"), "import_max_bytes": settings.IMPORT_MAX_BYTES}
