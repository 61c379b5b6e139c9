"""The posts page: list and write; edit and delete one's own posts (another's is a 404)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from .forms import PostForm
from .models import Post
from .services import PostingTooFast, post_delete, post_submit, post_update

if TYPE_CHECKING:
    from live_tasks.http import AuthenticatedHttpRequest

POSTS_PER_PAGE = 50


@login_required
def post_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PostForm(request.POST if request.method == "POST" else None)
    retry_after = None
    if request.method == "POST" and form.is_valid():
        try:
            post_submit(author=request.user, body=form.cleaned_data["body"])
        except PostingTooFast as exc:
            messages.error(request, str(exc))  # the form keeps what was typed
            retry_after = exc.retry_after
        else:
            messages.success(request, "Post saved.")
            return redirect("posts:list")
    posts = Paginator(Post.objects.by_author(request.user), POSTS_PER_PAGE).get_page(request.GET.get("page"))
    status = 429 if retry_after else 400 if form.errors else 200
    response = render(request, "posts/post_list.html", {"form": form, "posts": posts}, status=status)
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _own_post(request: AuthenticatedHttpRequest, post_id: int) -> Post:
    return get_object_or_404(Post.objects.by_author(request.user), pk=post_id)


@require_http_methods(["GET", "POST"])
@login_required
def post_edit(request: AuthenticatedHttpRequest, post_id: int) -> HttpResponse:
    post = _own_post(request, post_id)
    form = PostForm(request.POST or None, instance=post)
    if request.method == "POST" and form.is_valid():
        post_update(post=post, body=form.cleaned_data["body"])
        messages.success(request, "Post updated.")
        return redirect("posts:list")
    return render(request, "posts/post_edit.html", {"form": form, "post": post}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@login_required
def post_delete_view(request: AuthenticatedHttpRequest, post_id: int) -> HttpResponse:
    post = _own_post(request, post_id)
    if request.method == "POST":
        post_delete(post=post)
        messages.success(request, "Post deleted.")
        return redirect("posts:list")
    return render(request, "posts/post_delete.html", {"post": post})
