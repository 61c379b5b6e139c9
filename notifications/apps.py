from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """The push layer: the one sender to the channel layer, group names, and live sockets' authority."""

    name = "notifications"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.signals import user_logged_out
        from django.db.models.signals import post_delete, post_save, pre_save

        from . import revocation

        user_model = get_user_model()
        uid = "notifications.revocation"
        user_logged_out.connect(revocation.on_user_logged_out, dispatch_uid=uid)
        pre_save.connect(revocation.on_user_pre_save, sender=user_model, dispatch_uid=uid)
        post_save.connect(revocation.on_user_post_save, sender=user_model, dispatch_uid=uid)
        post_delete.connect(revocation.on_user_post_delete, sender=user_model, dispatch_uid=uid)
