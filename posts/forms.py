from __future__ import annotations

from django import forms

from .models import Post

POST_BODY_MAX_LENGTH = 20_000


class PostForm(forms.ModelForm[Post]):
    body = forms.CharField(
        max_length=POST_BODY_MAX_LENGTH,
        strip=False,  # a post is stored exactly as written: exports must be byte-exact
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a post…"}),
    )

    class Meta:
        model = Post
        fields = ["body"]

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        if not body.strip():
            raise forms.ValidationError("A post cannot be empty.")
        return body
