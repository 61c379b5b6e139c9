"""A task's files: its input (an upload), its output while being written, and its stored result.

Work files live in LIVE_TASKS["WORK_DIR"], named by task id so that cleanup never has to guess; that
directory is shared by the web processes and the workers, and is never served to anyone. An upload
is received there as `upload-<uuid>.part` before any task owns it; one that a killed web process
left behind is swept by the scheduler.
Results go through Django's storage API under `tasks/<task id>/`, one folder per task: the local
disk (FileSystemStorage) or an S3 bucket (django-storages' S3Storage, e.g. live_tasks.s3.S3Storage),
which this module recognises without importing it: a site on local disk needs no boto3.
"""

from __future__ import annotations

import io
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils.http import content_disposition_header

from . import stats
from .conf import live_settings
from .types import TaskId


def work_dir() -> Path:
    path = Path(live_settings.work_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def work_path(task_id: TaskId) -> Path:
    """The output a job is writing, before it is stored."""
    return work_dir() / f"{task_id}.part"


def input_path(task_id: TaskId) -> Path:
    """The task's input file (an upload), kept only while the task is unfinished."""
    return work_dir() / f"{task_id}.input"


def upload_spool_path() -> Path:
    """A new file for an upload being received; the request that writes it renames or deletes it."""
    return work_dir() / f"upload-{uuid.uuid4()}.part"


# An upload spool is written from a body the server already holds whole (project/bodylimit.py), at
# disk speed, then renamed or deleted within the same request: one untouched for an hour belongs to
# no live request (its web process was killed), and nothing else ever opens it.
UPLOAD_SPOOL_MAX_AGE_SECONDS = 3600


def upload_spools_sweep(*, older_than_seconds: float = UPLOAD_SPOOL_MAX_AGE_SECONDS) -> int:
    """Delete upload spools left by a web process that died mid-upload; return how many."""
    cutoff = time.time() - older_than_seconds
    deleted = 0
    for path in work_dir().glob("upload-*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                deleted += 1
        except FileNotFoundError:
            continue  # its request finished with it meanwhile
    return deleted


def work_files_delete(task_id: TaskId) -> None:
    """Delete the task's input and half-written output; called whenever a task ends."""
    for path in (work_path(task_id), input_path(task_id)):
        path.unlink(missing_ok=True)


# Generic in the type stubs only (no django_stubs_ext.monkeypatch() needed at run time).
if TYPE_CHECKING:
    _BytesFile = File[bytes]
else:
    _BytesFile = File


class _WorkFile(_BytesFile):
    # With temporary_file_path(), FileSystemStorage moves the file into place instead of
    # copying it; any other storage backend streams it from disk as usual.
    def temporary_file_path(self) -> str:
        assert self.file is not None  # made with an open handle
        return str(self.file.name)


def _result_folder(task_id: TaskId) -> str:
    return f"tasks/{task_id}"


@contextmanager
def storage_errors_counted(operation: str) -> Iterator[None]:
    """Count an error of the result storage (an object store's outage shows in the metrics), and let it go on."""
    try:
        yield
    except Exception:
        stats.count("live_tasks_storage_errors", operation=operation)
        raise


def object_storage() -> Any | None:
    """The default storage if it is an S3 bucket (django-storages' S3Storage or a subclass), else None.

    Looked up in sys.modules, never imported: if the site's STORAGES names an S3 backend, opening
    the default storage has imported it.
    """
    module = sys.modules.get("storages.backends.s3")
    if module is not None and isinstance(default_storage, module.S3Storage):
        return default_storage
    return None


def is_storage_fault(exc: BaseException) -> bool:
    """An error of the storage itself (disk, network, or the bucket refusing), not of the caller."""
    if isinstance(exc, OSError):
        return True
    botocore = sys.modules.get("botocore.exceptions")
    return botocore is not None and isinstance(exc, botocore.BotoCoreError | botocore.ClientError)


def result_store(task_id: TaskId, *, name: str) -> str:
    """Move the finished work file into storage as the task's result; return the stored name.

    On the local disk the file is moved into place (os.rename: atomic). On S3 it is streamed from
    the work file with boto3's upload_fileobj: a multipart upload for files past the transfer's
    threshold (8 MiB parts by default), reading the file a part at a time, so memory stays flat
    whatever the size. An S3 object is visible only once its upload completes (a multipart upload
    that fails is aborted, and nothing appears under its name): the same guarantee as the rename.
    """
    with open(work_path(task_id), "rb") as handle, storage_errors_counted("save"):
        return default_storage.save(f"{_result_folder(task_id)}/{name}", _WorkFile(handle))


class _ObjectReader(io.RawIOBase):
    """A stored S3 object read as a seekable file, streamed from the bucket: each read after a seek
    asks for the bytes from there on (a ranged GET), so a byte range reads only that range, and a
    whole download never holds more than one chunk. (django-storages' S3File downloads the whole
    object into a temporary file, in memory by default, on its first read.)"""

    def __init__(self, storage: Any, name: str, size: int) -> None:
        self._client = storage.connection.meta.client
        self._bucket = storage.bucket_name
        self._key = storage._normalize_name(name)
        self._size = size
        self._position = 0
        self._last: int | None = None  # the last byte wanted, if a caller said (limit_to)
        self._body: Any = None
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        position = max(0, base + offset)
        if position != self._position:
            self._drop_body()
            self._position = position
        return position

    def limit_to(self, last: int) -> None:
        """Read no further than byte `last` (inclusive): the GET then asks for exactly that range."""
        self._drop_body()
        self._last = last

    def readinto(self, buffer: Any) -> int:
        end = self._size - 1 if self._last is None else min(self._last, self._size - 1)
        if self._position > end:
            return 0
        if self._body is None:
            with storage_errors_counted("open"):
                self._body = self._client.get_object(
                    Bucket=self._bucket, Key=self._key, Range=f"bytes={self._position}-{end}"
                )["Body"]
        data = self._body.read(min(len(buffer), end - self._position + 1))
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


def result_open(name: str) -> IO[bytes]:
    """The stored result, for reading in chunks. FileNotFoundError if storage has no such file."""
    with storage_errors_counted("open"):
        storage = object_storage()
        if storage is not None:
            return cast("IO[bytes]", _ObjectReader(storage, name, storage.size(name)))
        return default_storage.open(name, "rb")


# A presigned download URL works this long at most: enough to follow the redirect, too short to share.
DOWNLOAD_URL_MAX_SECONDS = 60


def result_url(name: str, *, filename: str, content_type: str, method: str = "GET") -> str | None:
    """A URL that downloads the stored result straight from the bucket for DOWNLOAD_URL_MAX_SECONDS
    (or the storage's querystring_expire, if shorter), named `filename` and typed `content_type` by
    the bucket's answer; None when storage cannot make one (the local disk). The signature covers
    the HTTP method: a HEAD gets a URL for HEAD."""
    storage = object_storage()
    if storage is None or not getattr(storage, "querystring_auth", False):
        return None
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    expire = min(int(storage.querystring_expire), DOWNLOAD_URL_MAX_SECONDS)
    parameters = {"ResponseContentDisposition": disposition, "ResponseContentType": content_type}
    with storage_errors_counted("url"):
        return str(storage.url(name, parameters=parameters, expire=expire, http_method=method))


def result_size_or_missing(name: str) -> int:
    """The stored result's size in bytes; FileNotFoundError if storage has no such file."""
    with storage_errors_counted("size"):
        return int(default_storage.size(name))


def result_size(name: str) -> int | None:
    """The stored result's size in bytes, or None if storage cannot tell."""
    try:
        with storage_errors_counted("size"):
            return default_storage.size(name)
    except Exception as exc:
        if is_storage_fault(exc):
            return None
        raise


def result_delete(name: str) -> None:
    if name:
        with storage_errors_counted("delete"):
            default_storage.delete(name)


def results_delete(task_id: TaskId) -> None:
    """Delete whatever a task stored, for a task that did not succeed (its row names no file)."""
    folder = _result_folder(task_id)
    try:
        # On S3, the keys under the prefix `tasks/<id>/` (none: empty lists, not an error).
        _, names = default_storage.listdir(folder)
    except FileNotFoundError:
        return  # it stored nothing: no error
    except Exception:
        stats.count("live_tasks_storage_errors", operation="list")
        raise
    for name in names:
        with storage_errors_counted("delete"):
            default_storage.delete(f"{folder}/{name}")
