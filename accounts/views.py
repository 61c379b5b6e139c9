"""Account pages: sign-up, the account page, email change, deletion. Password change and reset are
Django's own views (accounts/urls.py) with this site's forms and templates; the reset goes through
this site's service, which limits it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods

from live_tasks.http import AuthenticatedHttpRequest
from live_tasks.ratelimits import RateLimited

from .forms import AccountPasswordChangeForm, EmailChangeForm, PasswordConfirmForm, SignupForm
from .limits import client_address
from .services import account_delete, password_reset_request, user_change_email, user_signup


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("exports:list")
    form = SignupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_signup(form=form, client=client_address(request))
        except RateLimited as exc:
            form.add_error(None, str(exc))  # the form keeps what was typed (but the passwords)
            return _limited(render(request, "registration/signup.html", {"form": form}), exc)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}! A welcome email is on its way.")
        return redirect("exports:list")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's view and template; the email goes through the queue after the commit (the request
    never waits for a mail server), and requests are limited per address and per client."""

    form_class = PasswordResetForm  # validates the address; its save(), which sends at once, is not used

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        try:
            password_reset_request(email=form.cleaned_data["email"], client=client_address(self.request))
        except RateLimited as exc:
            # The same answer whether or not an account has this address: the count does not know.
            form.add_error(None, str(exc))
            return _limited(self.form_invalid(form), exc)
        return HttpResponseRedirect(self.get_success_url())


def _limited(response: HttpResponse, exc: RateLimited) -> HttpResponse:
    response.status_code = 429
    response["Retry-After"] = str(exc.retry_after)
    return response


@require_GET
@login_required
def account(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/account.html")


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view: it keeps this session signed in (update_session_auth_hash); the user's other
    sessions end, as the password hash they were signed with no longer matches."""

    form_class = AccountPasswordChangeForm
    success_url = reverse_lazy("account")
    # Not registration/password_change_form.html: that name is the admin's own password page.
    template_name = "accounts/password_change.html"

    def form_valid(self, form: AccountPasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, "Your password was changed. Your other sessions were signed out.")
        return response


@require_http_methods(["GET", "POST"])
@login_required
def email_change(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = EmailChangeForm(request.POST or None, user=request.user, initial={"email": request.user.email})
    if request.method == "POST" and form.is_valid():
        user_change_email(user=request.user, email=form.cleaned_data["email"])
        messages.success(request, f"Your email address is now {form.cleaned_data['email']}.")
        return redirect("account")
    return render(request, "registration/email_change.html", {"form": form}, status=400 if form.errors else 200)


@require_http_methods(["GET", "POST"])
@login_required
def account_delete_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        username = user.get_username()
        logout(request)
        account_delete(user=user)
        messages.success(request, f"The account {username} and everything in it were deleted.")
        return redirect("login")
    return render(request, "registration/account_delete.html", {"form": form}, status=400 if form.errors else 200)
