from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from .forms import PostForm
from .models import Post
from .services import PostingTooFast, post_submit

POSTS_PER_PAGE = 50


@login_required
def post_list(request):
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
