from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import PasswordChangeForm, SetPasswordForm, UserCreationForm

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import User  # noqa: F401 -- named as a string in SignupForm's base


class PasswordErrorsUnderTheNewPassword:
    """Django puts what the password validators say ("This password is too common.") under the
    confirmation field; a person looks for it under the password they typed. A mismatch stays
    under the confirmation, where Django puts it."""

    def validate_password_for_user(self, user: AbstractBaseUser, password_field_name: str = "password2") -> None:  # noqa: S107
        first = {"password2": "password1", "new_password2": "new_password1"}.get(
            password_field_name, password_field_name
        )
        super().validate_password_for_user(user, first)  # type: ignore[misc]


def email_taken(email: str, *, except_user: AbstractBaseUser | None = None) -> bool:
    users = get_user_model().objects.filter(email__iexact=email)
    if except_user is not None:
        users = users.exclude(pk=except_user.pk)
    return users.exists()


class SignupForm(PasswordErrorsUnderTheNewPassword, UserCreationForm["User"]):
    email = forms.EmailField(required=True, help_text="Your exports are emailed here.")

    class Meta(UserCreationForm.Meta):  # type: ignore[name-defined,misc]  # django-stubs declares no Meta on it
        model = get_user_model()
        fields = ["username", "email"]

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        if email_taken(email):
            raise forms.ValidationError("An account with this email already exists.")
        return email


class AccountPasswordChangeForm(PasswordErrorsUnderTheNewPassword, PasswordChangeForm):
    pass


# SetPasswordForm[User] would fail at run time: django_stubs_ext does not make plain forms subscriptable.
class AccountSetPasswordForm(PasswordErrorsUnderTheNewPassword, SetPasswordForm):  # type: ignore[type-arg]
    pass


class PasswordConfirmForm(forms.Form):
    """Asks for the current password before a change that locks the user out if made by someone else."""

    password = forms.CharField(
        label="Your current password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args: Any, user: AbstractBaseUser, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self) -> str:
        password: str = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your current password.")
        return password


class EmailChangeForm(PasswordConfirmForm):
    email = forms.EmailField(label="New email address", help_text="Your exports and password resets are sent here.")
    field_order = ["email", "password"]

    def clean_email(self) -> str:
        email: str = self.cleaned_data["email"]
        if email_taken(email, except_user=self.user):
            raise forms.ValidationError("An account with this email already exists.")
        return email
