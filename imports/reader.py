"""Reads an export file as a stream of posts, checking everything, in constant memory.

Accepted: `{"posts": [{"body": "...", "created_at": "<ISO 8601>"}, ...]}`, other keys anywhere
ignored, plain or gzip-compressed (recognised by its first bytes, not its name). Parsing is
ijson's event stream (yajl, in C), so a million posts never sit in memory at once; every refusal
is an ImportFileError with one sentence that says what is wrong and where, posts numbered from 1.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import ijson

from posts.forms import POST_BODY_MAX_LENGTH

GZIP_MAGIC = b"\x1f\x8b"
READ_SIZE = 64 * 1024
# Keys nest at most this deep inside the ignored parts of a file (a post itself is 3 levels down).
MAX_DEPTH = 64
# No single value of a valid file comes near this: the longest body, every character \u-escaped.
MAX_VALUE_BYTES = POST_BODY_MAX_LENGTH * 12 + 64 * 1024


# A \uD800-\uDBFF escape, the backslashes before it (an even number means it is not an escape),
# and the \uDC00-\uDFFF escape that must follow it. yajl would turn an unpaired one into "?".
_HIGH_SURROGATE = re.compile(rb"(\\+)u[dD][89abAB][0-9a-fA-F]{2}(\\u[dD][c-fC-F][0-9a-fA-F]{2})?")


class ImportFileError(Exception):
    """The file cannot be imported; the message says why, for the person who uploaded it."""


@dataclass(frozen=True, slots=True)
class ImportedPost:
    number: int  # from 1, in file order
    body: str
    created_at: datetime


class _CountingReader:
    """Reads the raw upload, counting bytes for the progress bar."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data


class _GuardedReader:
    """What the JSON parser reads: decompressed if need be, capped, and watched for huge values."""

    def __init__(self, source: Any, *, max_bytes: int) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.total = 0
        self.since_last_event = 0  # reset by the parser's loop at each event
        self.posts_read = 0
        self._tail = b""  # the end of the previous chunk, where an escape may have begun

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self.source.read(READ_SIZE if size < 0 else size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ImportFileError(f"The file looks gzip-compressed but cannot be decompressed ({exc}).") from None
        self.total += len(data)
        self.since_last_event += len(data)
        if self.total > self.max_bytes:
            limit = format_size(self.max_bytes)
            raise ImportFileError(f"The file is larger than the limit of {limit} once decompressed.")
        if self.since_last_event > MAX_VALUE_BYTES:
            raise ImportFileError(f"The file has a value far longer than any post allows, {where(self.posts_read)}.")
        self._check_surrogates(data)
        return data

    def _check_surrogates(self, data: bytes) -> None:
        window = self._tail + data
        self._tail = window[-64:]
        if b"\\ud" not in window and b"\\uD" not in window:
            return  # the usual case: exports of this site carry no such escapes
        for match in _HIGH_SURROGATE.finditer(window):
            escaped = len(match.group(1)) % 2 == 1
            decidable = match.end() + 6 <= len(window) or data == b""
            if escaped and match.group(2) is None and decidable:
                raise ImportFileError(
                    "The file has an invalid \\u escape (an unpaired surrogate such as \\ud800), "
                    f"{where(self.posts_read)}."
                )


def where(posts_read: int) -> str:
    return f"after post {posts_read:,}" if posts_read else "before the first post"


def format_size(count: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= factor:
            return f"{count / factor:,.1f}".removesuffix(".0") + f" {unit}"
    return f"{count:,} bytes"


_KIND = {
    "start_map": "an object",
    "start_array": "a list",
    "string": "a string",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:40] + "…"


class PostReader:
    """`for post in PostReader(upload, max_decompressed_bytes=...)`; `bytes_read` tracks the upload."""

    def __init__(self, upload: IO[bytes], *, max_decompressed_bytes: int) -> None:
        self._raw = _CountingReader(upload)
        head = upload.read(2)
        upload.seek(0)
        # typeshed asks the file object for seek() too; GzipFile only reads forward from it here.
        source: Any = gzip.GzipFile(fileobj=self._raw, mode="rb") if head == GZIP_MAGIC else self._raw  # type: ignore[call-overload]
        self._reader = _GuardedReader(source, max_bytes=max_decompressed_bytes)

    @property
    def bytes_read(self) -> int:
        return self._raw.bytes_read

    def __iter__(self) -> Iterator[ImportedPost]:
        reader = self._reader
        # use_float: yajl reads numbers itself, so an integer past 64 bits is its parse error. Without
        # it, yajl2_c hands the digits to Python's int(), which refuses more than 4,300 of them with
        # an error the backend mishandles (a SystemError, then a crash of the process later on).
        events = ijson.basic_parse(reader, buf_size=READ_SIZE, use_float=True)
        try:
            yield from self._document(events)
            for _ in events:  # the rest must be nothing but whitespace
                pass
        except ijson.IncompleteJSONError as exc:
            raise ImportFileError(self._json_error(exc)) from None
        except (SystemError, ValueError):  # the parser failed in a way it does not document
            raise ImportFileError(f"The file cannot be read as JSON ({where(self._reader.posts_read)}).") from None
        except UnicodeDecodeError:  # an unpaired \uDC00-\uDFFF escape
            raise ImportFileError(
                f"The file has an invalid \\u escape (an unpaired surrogate), {where(self._reader.posts_read)}."
            ) from None

    def _next(self, events: Iterator[tuple[str, Any]]) -> tuple[str, Any]:
        event = next(events)
        self._reader.since_last_event = 0
        return event

    def _json_error(self, exc: Exception) -> str:
        text = str(exc)
        if text.startswith("b'") or text.startswith('b"'):
            text = text[2:-1].encode().decode("unicode_escape", "replace")
        first_line = text.strip().splitlines()[0] if text.strip() else "unreadable"
        at = where(self._reader.posts_read)
        if self._reader.total == 0:
            return "The file is empty."
        if "invalid bytes in UTF8" in first_line:
            return f"The file is not valid UTF-8 text ({at})."
        if "premature EOF" in first_line:
            return f"The file ends too early: it is cut off or incomplete ({at})."
        if "integer overflow" in first_line or "floating point) overflow" in first_line:
            return f"The file has a number too large to read ({at}); numbers must fit in 64 bits."
        if "trailing garbage" in first_line:
            return "The file has more after the end of its JSON object."
        return f"The file is not valid JSON ({at}): {first_line.removesuffix('.')}."

    def _document(self, events: Iterator[tuple[str, Any]]) -> Iterator[ImportedPost]:
        event, _ = self._next(events)
        if event != "start_map":
            raise ImportFileError(f'The file must be a JSON object with a "posts" list; it is {_KIND[event]}.')
        seen_posts = False
        while True:
            event, key = self._next(events)
            if event == "end_map":
                break
            event, value = self._next(events)
            if key != "posts":
                self._skip(events, event, depth=2)
                continue
            if seen_posts:
                raise ImportFileError('The file has "posts" twice.')
            seen_posts = True
            if event != "start_array":
                raise ImportFileError(f'"posts" must be a list; it is {_KIND[event]}.')
            yield from self._posts(events)
        if not seen_posts:
            raise ImportFileError('The file has no "posts" list: is it an export of this site?')

    def _posts(self, events: Iterator[tuple[str, Any]]) -> Iterator[ImportedPost]:
        number = 0
        while True:
            event, _ = self._next(events)
            if event == "end_array":
                return
            number += 1
            if event != "start_map":
                raise ImportFileError(f"Post {number:,} is not an object; it is {_KIND[event]}.")
            fields: dict[str, Any] = {}
            while True:
                event, key = self._next(events)
                if event == "end_map":
                    break
                event, value = self._next(events)
                if key in ("body", "created_at"):
                    if event != "string":
                        raise ImportFileError(f'Post {number:,}: "{key}" is not a string; it is {_KIND[event]}.')
                    fields[key] = value
                else:
                    self._skip(events, event, depth=4)
            yield ImportedPost(number, _checked_body(number, fields), _checked_date(number, fields))
            self._reader.posts_read = number

    def _skip(self, events: Iterator[tuple[str, Any]], event: str, *, depth: int) -> None:
        """Pass over an ignored value, however nested, up to MAX_DEPTH."""
        level = 1 if event in ("start_map", "start_array") else 0
        while level:
            if depth + level > MAX_DEPTH:
                raise ImportFileError(
                    f"The file nests too deeply (over {MAX_DEPTH} levels), {where(self._reader.posts_read)}."
                )
            event, _ = self._next(events)
            if event in ("start_map", "start_array"):
                level += 1
            elif event in ("end_map", "end_array"):
                level -= 1


def _checked_body(number: int, fields: dict[str, Any]) -> str:
    if "body" not in fields:
        raise ImportFileError(f'Post {number:,} has no "body".')
    body: str = fields["body"]
    if len(body) > POST_BODY_MAX_LENGTH:
        longest = POST_BODY_MAX_LENGTH
        raise ImportFileError(
            f'Post {number:,}: "body" is {len(body):,} characters long; the longest allowed is {longest:,}.'
        )
    if not body.strip():
        raise ImportFileError(f'Post {number:,}: "body" is empty.')
    if "\x00" in body:
        raise ImportFileError(f'Post {number:,}: "body" contains a NUL character (\\u0000), which cannot be stored.')
    return body


def _checked_date(number: int, fields: dict[str, Any]) -> datetime:
    if "created_at" not in fields:
        raise ImportFileError(f'Post {number:,} has no "created_at".')
    text: str = fields["created_at"]
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # no offset: read as UTC, as documented
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ImportFileError(f'Post {number:,}: "created_at" is not a date (got "{_shown(text)}").') from None
