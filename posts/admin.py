from __future__ import annotations

from django.contrib import admin

from .models import Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin[Post]):
    list_display = ["id", "author", "created_at"]
    search_fields = ["author__username"]
    raw_id_fields = ["author"]
