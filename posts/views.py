from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from .forms import PostForm
from .models import Post
from .services import post_create

POSTS_PER_PAGE = 50


@login_required
def post_list(request):
    form = PostForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        post_create(author=request.user, body=form.cleaned_data["body"])
        messages.success(request, "Post saved.")
        return redirect("posts:list")
    posts = Paginator(Post.objects.by_author(request.user), POSTS_PER_PAGE).get_page(request.GET.get("page"))
    status = 400 if form.errors else 200
    return render(request, "posts/post_list.html", {"form": form, "posts": posts}, status=status)
