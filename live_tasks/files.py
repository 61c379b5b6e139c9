"""A task's files: its input (an upload), its output while being written, and its stored result.

Results go through Django's storage API under `tasks/<task id>/`, one folder per task: the local
disk (FileSystemStorage) or an S3 bucket (django-storages' S3Storage, e.g. live_tasks.s3.S3Storage),
which this module recognises without importing it: a site on local disk needs no boto3.

On the local disk, a task's input and its half-written output are work files in
LIVE_TASKS["WORK_DIR"], named by task id so that cleanup never has to guess; that directory is then
shared by the web processes and the workers, and is never served to anyone. With a bucket, nothing
is shared but the bucket: the input is the object `tasks/<id>/input`, and the output is written
straight into the bucket as a multipart upload, which no one sees until it completes.
Either way an upload is first received on the web host's disk as WORK_DIR/`upload-<uuid>.part`
before any task owns it; one that a killed web process left behind is swept by the scheduler.
"""

from __future__ import annotations

import io
import mimetypes
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
    storage = object_storage()
    if storage is not None:
        with storage_errors_counted("delete"):
            storage.delete(_input_name(task_id))


def _input_name(task_id: TaskId) -> str:
    return f"{_result_folder(task_id)}/input"


def input_store(task_id: TaskId, source: Path) -> None:
    """Make the file at `source` the task's input: moved into the work directory on the local disk,
    uploaded to the bucket (then deleted) with object storage. Raises what the storage raised, and
    leaves `source` where it was if nothing was stored."""
    storage = object_storage()
    if storage is None:
        shutil.move(source, input_path(task_id))
        return
    with open(source, "rb") as handle, storage_errors_counted("save"):
        storage.connection.meta.client.upload_fileobj(
            handle, storage.bucket_name, storage._normalize_name(_input_name(task_id)), Config=storage.transfer_config
        )
    source.unlink()


# Reads of an input in the bucket ask for this much at a time (each a part of one streamed GET).
INPUT_READ_BUFFER_BYTES = 1024 * 1024


def input_open(task_id: TaskId) -> tuple[IO[bytes], int]:
    """The task's input for reading as a stream, and its size in bytes."""
    storage = object_storage()
    if storage is None:
        path = input_path(task_id)
        return open(path, "rb"), path.stat().st_size  # noqa: SIM115 -- the caller closes it
    name = _input_name(task_id)
    with storage_errors_counted("open"):
        size = int(storage.size(name))
    reader = io.BufferedReader(_ObjectReader(storage, name, size), INPUT_READ_BUFFER_BYTES)
    return cast("IO[bytes]", reader), size


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
    storage_class = default_storage.__class__  # opens the lazy default storage, importing its module
    module = sys.modules.get("storages.backends.s3")
    if module is not None and issubclass(storage_class, module.S3Storage):
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


class ResultWriter(io.RawIOBase):
    """The file a job writes its result into (live_tasks.files.result_writer): write-only, in order.
    `stored_name` is the result's name in storage once the `with` block has ended without an error."""

    stored_name: str = ""


class _DiskResultWriter(ResultWriter):
    def __init__(self, path: Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115 -- closed by close()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        self._file.close()
        super().close()


# A result is sent to the bucket in parts of this size (S3's minimum is 5 MiB, but for the last).
RESULT_PART_BYTES = 8 * 1024 * 1024


class _BucketResultWriter(ResultWriter):
    """Writes into the bucket as a multipart upload: each full part is sent by one upload thread
    while the job writes the next, so memory holds two parts at most (16 MiB) whatever the size,
    and the job waits for the bucket only when it writes faster than the bucket takes. A result
    smaller than one part is sent in one PUT when complete."""

    def __init__(self, storage: Any, key: str) -> None:
        self._client = storage.connection.meta.client
        self._bucket = storage.bucket_name
        self._key = key
        # As django-storages' save() types an object: from its name.
        self._type = {"ContentType": mimetypes.guess_type(key)[0] or "application/octet-stream"}
        self._buffer: list[bytes] = []  # the part being written, as it came
        self._buffered = 0
        self._written = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._sending: Future[None] | None = None
        self._sender: ThreadPoolExecutor | None = None

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._written

    def write(self, data: Any) -> int:
        self._buffer.append(bytes(data))
        self._buffered += len(data)
        self._written += len(data)
        if self._buffered >= RESULT_PART_BYTES:
            self._part_send(self._part_take())
        return len(data)

    def _part_take(self) -> bytes:
        part = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        return part

    def _part_send(self, part: bytes) -> None:
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-tasks-upload")
            with storage_errors_counted("save"):
                self._upload_id = self._client.create_multipart_upload(
                    Bucket=self._bucket, Key=self._key, **self._type
                )["UploadId"]
        self._sent_wait()  # the previous part: never more than one in flight
        number = len(self._parts) + 1
        self._parts.append({"PartNumber": number})
        self._sending = self._sender.submit(self._part_upload, number, part)

    def _part_upload(self, number: int, part: bytes) -> None:
        answer = self._client.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=part
        )
        self._parts[number - 1]["ETag"] = answer["ETag"]

    def _sent_wait(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            with storage_errors_counted("save"):
                sending.result()

    def complete(self) -> None:
        """Send what is left and make the object visible (one PUT if it never filled a part)."""
        with storage_errors_counted("save"):
            if self._upload_id is None:
                self._client.put_object(Bucket=self._bucket, Key=self._key, Body=self._part_take(), **self._type)
                return
            if self._buffered or not self._parts:
                self._part_send(self._part_take())
            self._sent_wait()
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
            self._upload_id = None

    def abort(self) -> None:
        """Drop the parts sent so far: nothing appears under the name."""
        try:
            if self._sending is not None:
                self._sending.exception()  # let it finish, whatever it did
            if self._upload_id is not None:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=self._upload_id)
        except Exception as exc:  # a task's cleanup aborts whatever is left under its folder
            if not is_storage_fault(exc):
                raise

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=True)
        self._buffer, self._buffered = [], 0
        super().close()


@contextmanager
def result_writer(task_id: TaskId, *, name: str) -> Iterator[ResultWriter]:
    """A file to write the task's result into, stored as `name` when the block ends without an
    error (then `writer.stored_name` is set); an error leaves nothing stored.

    On the local disk it is the work file, moved into place at the end (atomic). With a bucket it
    is a multipart upload in progress, which becomes visible only once complete; an error aborts it.
    A killed process leaves an incomplete upload, which the task's cleanup aborts (results_delete).
    Write in order (no seek): the file may never be on any disk.
    """
    storage = object_storage()
    if storage is None:
        disk_writer = _DiskResultWriter(work_path(task_id))
        with disk_writer:
            yield disk_writer
        disk_writer.stored_name = result_store(task_id, name=name)
        return
    stored_name = storage.get_available_name(f"{_result_folder(task_id)}/{name}")
    bucket_writer = _BucketResultWriter(storage, storage._normalize_name(stored_name))
    with bucket_writer:
        try:
            yield bucket_writer
            bucket_writer.complete()
        except BaseException:
            bucket_writer.abort()
            raise
    bucket_writer.stored_name = stored_name


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
    storage = object_storage()
    if storage is not None:
        _uploads_abort(storage, storage._normalize_name(f"{folder}/"))


def _uploads_abort(storage: Any, prefix: str) -> None:
    """Abort the incomplete multipart uploads under `prefix`: a result whose writer was killed."""
    client = storage.connection.meta.client
    with storage_errors_counted("list"):
        pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=storage.bucket_name, Prefix=prefix)
        uploads = [upload for page in pages for upload in page.get("Uploads", [])]
    for upload in uploads:
        with storage_errors_counted("delete"):
            client.abort_multipart_upload(Bucket=storage.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"])
