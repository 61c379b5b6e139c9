"""Reading import files: everything a valid export holds comes back exactly; every kind of bad
content is refused with a sentence that says what is wrong and where."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime

import pytest

from imports.reader import MAX_DEPTH, ImportFileError, PostReader

GOOD = {"body": "a", "created_at": "2020-01-01T00:00:00+00:00"}


def read(data: bytes, *, max_decompressed_bytes: int = 10 << 20) -> list[tuple[str, datetime]]:
    return [(p.body, p.created_at) for p in PostReader(io.BytesIO(data), max_decompressed_bytes=max_decompressed_bytes)]


def document(*posts, **extra) -> bytes:
    return json.dumps({**extra, "posts": list(posts)}).encode()


def test_an_export_reads_back_value_for_value_plain_or_gzipped():
    bodies = ["Grüße 🌍 — ünïcödé", "<script>alert('x')</script> & \"q\"", "tabs\tand\nlines\r\n", "x" * 20_000]
    data = document(
        *({"id": i, "body": body, "created_at": "2026-11-24T10:26:00.123456+00:00"} for i, body in enumerate(bodies)),
        user="alice",
        exported_at="2026-11-24T10:27:00+00:00",
        count=len(bodies),
    )
    moment = datetime(2026, 11, 24, 10, 26, 0, 123456, tzinfo=UTC)
    assert read(data) == [(body, moment) for body in bodies]
    assert read(gzip.compress(data)) == read(data), "recognised by its content, not its name"


def test_escaped_text_and_surrogate_pairs_decode_as_the_same_characters():
    data = json.dumps({"posts": [{"body": "emoji 😀 ü", "created_at": "2020-01-01T00:00:00Z"}]}, ensure_ascii=True)
    assert "\\ud83d\\ude00" in data
    assert read(data.encode())[0][0] == "emoji 😀 ü"


@pytest.mark.parametrize(
    ("created_at", "expected"),
    [
        ("2020-01-02T03:04:05", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),  # no offset: UTC
        ("2020-01-02T03:04:05Z", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-01-02T05:04:05+02:00", datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2020-01-02", datetime(2020, 1, 2, tzinfo=UTC)),
    ],
)
def test_dates_are_iso_8601_and_those_without_an_offset_are_utc(created_at, expected):
    assert read(document({"body": "x", "created_at": created_at})) == [("x", expected)]


def test_unknown_keys_are_ignored_however_nested():
    nested = {"a": [1, {"b": [None, True, 2.5, {"c": "d"}]}]}
    assert read(document({**GOOD, "id": 7, "extra": nested}, meta=nested)) == [("a", datetime(2020, 1, 1, tzinfo=UTC))]


def test_an_empty_posts_list_is_a_valid_file():
    assert read(b'{"posts": []}') == []


BAD = [
    ("empty", b"", "The file is empty."),
    (
        "not json",
        b"hello",
        "The file is not valid JSON (before the first post): lexical error: invalid char in json text.",
    ),
    (
        "truncated",
        document(GOOD, GOOD)[:-10],
        "The file ends too early: it is cut off or incomplete (after post 1).",
    ),
    ("extra after the end", document(GOOD) + b" {}", "The file has more after the end of its JSON object."),
    (
        "invalid UTF-8",
        b'{"posts": [{"body": "caf\xe9", "created_at": "2020-01-01"}]}',
        "The file is not valid UTF-8 text (before the first post).",
    ),
    ("a list at the top", b"[]", 'The file must be a JSON object with a "posts" list; it is a list.'),
    ("no posts key", b'{"user": "x"}', 'The file has no "posts" list: is it an export of this site?'),
    ("posts not a list", b'{"posts": {}}', '"posts" must be a list; it is an object.'),
    ("posts twice", b'{"posts": [], "posts": []}', 'The file has "posts" twice.'),
    ("a post not an object", document(GOOD, GOOD, "x"), "Post 3 is not an object; it is a string."),
    ("no body", document({"created_at": "2020-01-01"}), 'Post 1 has no "body".'),
    (
        "body a number",
        document({"body": 5, "created_at": "2020-01-01"}),
        'Post 1: "body" is not a string; it is a number.',
    ),
    ("body null", document({"body": None, "created_at": "2020-01-01"}), 'Post 1: "body" is not a string; it is null.'),
    ("body empty", document({"body": " \n", "created_at": "2020-01-01"}), 'Post 1: "body" is empty.'),
    (
        "body too long",
        document({"body": "x" * 20_001, "created_at": "2020-01-01"}),
        'Post 1: "body" is 20,001 characters long; the longest allowed is 20,000.',
    ),
    (
        "body with NUL",
        document({"body": "a\u0000b", "created_at": "2020-01-01"}),
        'Post 1: "body" contains a NUL character (\\u0000), which cannot be stored.',
    ),
    (
        "unpaired surrogate",
        b'{"posts": [{"body": "a\\ud800", "created_at": "2020-01-01"}]}',
        "The file has an invalid \\u escape (an unpaired surrogate such as \\ud800), before the first post.",
    ),
    ("no created_at", document({"body": "x"}), 'Post 1 has no "created_at".'),
    (
        "created_at not a date",
        document(*[GOOD] * 1202, {"body": "x", "created_at": "yesterday"}),
        'Post 1,203: "created_at" is not a date (got "yesterday").',
    ),
    (
        "created_at a number",
        document({"body": "x", "created_at": 1700000000}),
        'Post 1: "created_at" is not a string; it is a number.',
    ),
    (
        "absurd nesting",
        b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b', "posts": []}',
        f"The file nests too deeply (over {MAX_DEPTH} levels), before the first post.",
    ),
    (
        "a value far too long",
        b'{"posts": [{"body": "' + b"x" * 2_000_000 + b'"}]}',
        "The file has a value far longer than any post allows, before the first post.",
    ),
    (
        "an integer too long for Python in an ignored field",
        # Far enough into the file that the posts before it were read (the parser reads ahead).
        document(*[GOOD] * 3000, {**GOOD, "id": 0}).replace(b'"id": 0', b'"id": ' + b"9" * 5000),
        "The file has a number too large to read (after post 3,000); numbers must fit in 64 bits.",
    ),
    (
        "an integer too long at the top",
        b'{"count": -' + b"1" * 4301 + b', "posts": []}',
        "The file has a number too large to read (before the first post); numbers must fit in 64 bits.",
    ),
    (
        "an integer past 64 bits",
        document({**GOOD, "id": 0}).replace(b'"id": 0', b'"id": 9223372036854775808'),
        "The file has a number too large to read (before the first post); numbers must fit in 64 bits.",
    ),
    (
        "a float past double precision",
        b'{"posts": [], "score": 1e99999}',
        "The file has a number too large to read (before the first post); numbers must fit in 64 bits.",
    ),
    ("damaged gzip", b"\x1f\x8b" + b"not really gzip", "The file looks gzip-compressed but cannot be decompressed"),
]


@pytest.mark.parametrize(
    ("content", "message"), [(content, message) for _, content, message in BAD], ids=[n for n, *_ in BAD]
)
def test_bad_content_is_refused_with_what_and_where(content, message):
    with pytest.raises(ImportFileError) as refused:
        read(content)
    assert str(refused.value).startswith(message)


def test_a_gzip_bomb_is_stopped_at_the_decompressed_limit_without_inflating_it_whole():
    post = json.dumps(GOOD).encode()
    # 100 MiB of valid posts once inflated, about 0.4 MiB compressed.
    bomb = gzip.compress(b'{"posts": [' + b",".join([post] * (100 * 2**20 // (len(post) + 1))) + b"]}", 9)
    reader = PostReader(io.BytesIO(bomb), max_decompressed_bytes=5 * 2**20)
    with pytest.raises(ImportFileError, match=r"larger than the limit of 5 MiB once decompressed"):
        for _ in reader:
            pass
    assert reader._reader.total <= 5 * 2**20 + 65536, "it stopped at the limit"
