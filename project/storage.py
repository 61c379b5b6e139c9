"""Static files storage: hashed, compressed names once `collectstatic` has run, plain names before."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):  # type: ignore[misc]  # whitenoise ships no types
    """Without the fallback, `daphne project.asgi:application` with DEBUG=0 before any
    `collectstatic` answers every page with a 500 (no manifest entry, no file to hash). Falling back
    to the plain name keeps the site up; whitenoise then serves the file from the app folders."""

    manifest_strict = False

    def stored_name(self, name: str) -> str:
        try:
            stored: str = super().stored_name(name)
            return stored
        except ValueError:
            return name
