"""extract/connections.py's pure parts: the plain header reader (equal to the email parser's result on
any block), dot segments, and request targets. The pool itself is tested through the fetcher
(tests/test_fetch.py) against real servers."""

from __future__ import annotations

import http.client
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from govreports.extract.connections import parse_headers, remove_dot_segments, request_target

BLOCKS = [
    b"Date: Sat, 28 Nov 2026 15:00:00 GMT\r\nETag: \"abc\"\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nBODY",
    b"A: 1\r\nB:  two  \r\nX-Folded: a\r\n  b\r\n\r\n",  # folded: the email parser's path
    b"A: 1\nB:2\n\n",  # bare LF
    b"Bad line\r\nA: 1\r\n\r\n",  # no colon: a defect, the rest is payload
    b"A: 1\rB: 2\r\n\r\n",  # a stray CR
    b": empty\r\nA: 1\r\n\r\n",
    b"A: caf\xe9\r\n\r\n",  # Latin-1
    b"A: 1\r\n",  # the stream ends without the blank line
    b"From x\r\nA: 1\r\n\r\n",
    b"A : 1\r\n\r\n",  # space before the colon
    b"\r\n",
    b"",
]


def same(block: bytes) -> None:
    try:
        want, want_error = http.client.parse_headers(io.BytesIO(block)), None
    except http.client.HTTPException as exc:
        want, want_error = None, type(exc)
    try:
        got, got_error = parse_headers(io.BytesIO(block)), None
    except http.client.HTTPException as exc:
        got, got_error = None, type(exc)
    assert got_error == want_error
    if want is not None:
        assert got.items() == want.items()
        assert [type(d) for d in got.defects] == [type(d) for d in want.defects]
        assert got.get_payload() == want.get_payload()
        assert isinstance(got, http.client.HTTPMessage)


def test_the_plain_reader_equals_the_email_parser_on_known_blocks() -> None:
    for block in BLOCKS:
        same(block)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"A", b"b", b"-", b":", b" ", b"\t", b"\r", b"\n", b"\r\n", b"x", b"\xe9",
                                 b"From ", b"ETag: \"v1\"\r\n", b"Content-Length: 0\r\n"]), max_size=30))
def test_the_plain_reader_equals_the_email_parser_on_any_block(parts: list[bytes]) -> None:
    same(b"".join(parts) + b"\r\n\r\n")


def test_too_many_headers_are_refused_as_by_the_stdlib() -> None:
    same(b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n")


def test_dot_segments_are_removed_as_rfc_3986_says() -> None:
    # RFC 3986, 5.2.4 and the normal examples of 5.4.1 (paths only).
    assert remove_dot_segments("/a/b/c/./../../g") == "/a/g"
    assert remove_dot_segments("/b/c/./g") == "/b/c/g"
    assert remove_dot_segments("/b/c/..") == "/b/"
    assert remove_dot_segments("/b/c/.") == "/b/c/"
    assert remove_dot_segments("/../g") == "/g"
    assert remove_dot_segments("/a/2021.html") == "/a/2021.html"
    assert remove_dot_segments("") == ""


def test_request_targets_are_percent_encoded_as_utf8() -> None:
    assert request_target("", "") == "/"
    assert request_target("/年报/a b.html", "id=%41&q=年") == "/%E5%B9%B4%E6%8A%A5/a%20b.html?id=%41&q=%E5%B9%B4"
    assert request_target("/a/../b.html", "") == "/b.html"
