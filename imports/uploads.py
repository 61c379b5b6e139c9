"""The upload of an import: streamed to disk where the worker will read it, and capped.

Under daphne a body over IMPORT_MAX_BYTES never gets this far: the server refuses it as it arrives
(project/bodylimit.py). This handler is the same limit for any other server and for the test
client: a body over it is refused from its Content-Length before any of the file is stored;
without a Content-Length the running byte count stops it. Either way the parser stops at the file,
so a CSRF token sent before it (as the page's form does) is still read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

from live_tasks.files import upload_spool_path

from .reader import format_size

FILE_FIELD = "file"


def too_large_message() -> str:
    """The refusal of a body over IMPORT_MAX_BYTES, from the view or from the server itself."""
    return f"The file is too large: the limit is {format_size(settings.IMPORT_MAX_BYTES)}."


class StoredUpload(UploadedFile):
    """The uploaded file, already complete on disk at `path`."""

    def __init__(self, path: Path, name: str, size: int) -> None:
        super().__init__(file=None, name=name, size=size)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


class CappedUploadHandler(FileUploadHandler):
    """Stores the `file` field under TASK_WORK_DIR, up to `max_bytes`; `store=False` only notes it came."""

    def __init__(self, *, max_bytes: int, store: bool = True) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self.store = store
        self.too_large = False
        self.file_seen = False
        self.path: Path | None = None
        self._out: Any = None
        self._size = 0

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:  # noqa: N803 -- Django's name
        self.too_large = content_length > self.max_bytes

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        if field_name != FILE_FIELD or self.file_seen:
            raise SkipFile()
        self.file_seen = True
        if self.too_large:
            raise StopUpload(connection_reset=False)
        if not self.store:
            raise SkipFile()
        self.path = upload_spool_path()
        self._out = open(self.path, "wb")  # noqa: SIM115 -- closed in file_complete or discard

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._size += len(raw_data)
        if self._size > self.max_bytes:
            self.too_large = True
            self.discard()
            raise StopUpload(connection_reset=False)
        self._out.write(raw_data)

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self._out is None:
            return None
        self._out.close()
        self._out = None
        assert self.path is not None
        return StoredUpload(self.path, self.file_name or "upload", file_size)

    def upload_interrupted(self) -> None:
        self.discard()

    def discard(self) -> None:
        """Delete what was stored (a refused or interrupted upload)."""
        if self._out is not None:
            self._out.close()
            self._out = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
