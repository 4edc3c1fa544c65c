"""Kept-alive HTTP/1.1 connections per host, on the standard library's http.client.

A nightly run is mostly conditional requests answered 304, one thread's Python after another under
one GIL: urllib3 spent 125 µs of Python on each, http.client alone 52 µs
(benchmarks/conditional_requests.py). What the fetcher used of urllib3 is kept here: a few idle
connections per host (least recently used hosts dropped), TLS verified against certifi's roots, a
request target percent-encoded as UTF-8, and a request on a kept connection that the server had
meanwhile closed sent once more on a new one. Redirects, retries, politeness and the reading of
bodies are the fetcher's (extract/fetch.py).
"""

from __future__ import annotations

import email.parser
import http.client
import re
import select
import ssl
import threading
import types
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

import certifi

__all__ = ["ConnectError", "Connections", "Exchange", "header_dict", "parse_headers", "remove_dot_segments",
           "request_target"]

# A request target keeps what RFC 3986 allows in a path and a query (and "%" of escapes already
# made); anything else, a Chinese file name say, is sent percent-encoded as UTF-8, as browsers do.
_TARGET_SAFE = "/?:@!$&'()*+,;=%~"
_FOLD = re.compile(r"\r\n[ \t]+")  # an obsolete folded header line
# A kept connection the server closed while it sat idle: the request could not be sent on it, or the
# server hung up without a byte of answer (it closed as the request left). Sent once more, on a new
# connection, as browsers do for a GET; a reset after the request was sent is not (a firewall's
# answer, say: sending again would only double the requests).
_SEND_FAILED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_NO_ANSWER = (http.client.RemoteDisconnected,)

Key = tuple[str, str, int]  # scheme, host, port


_HEADER_NAME = re.compile(r"[!-9;-~]+")  # a field name: printable ASCII but space and colon


def parse_headers(fp: object, _class: type = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """http.client.parse_headers with a plain reader for plain header blocks. The stdlib puts every
    response's headers through email.parser, about 15 µs of Python a response; this reads "Name: value"
    lines in 5. A block holding anything the email parser treats specially (a folded line, a line
    without a name, a stray CR) goes to the email parser as before, so the result is the same."""
    lines = http.client._read_headers(fp)  # the stdlib's own limits on line length and count
    msg = _class()
    for raw in lines:
        line = raw.decode("iso-8859-1")
        if line in ("\r\n", "\n", ""):
            break  # the blank line that ends the block (or the end of the stream)
        text = line[:-2] if line.endswith("\r\n") else line.rstrip("\n")
        name, colon, value = text.partition(":")
        if not colon or "\r" in text or not _HEADER_NAME.fullmatch(name):
            return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
        msg[name] = value.lstrip(" \t")
    msg.set_payload("")  # as the email parser leaves it: no unparsed data
    return msg


class _Response(http.client.HTTPResponse):
    """http.client's response reading its headers with `parse_headers` above: its own `begin`, bound to
    a namespace in which that name is ours, so that none of its status line, chunking, length and
    keep-alive logic is copied here (a Python whose begin() names no parse_headers keeps its own)."""

    if "parse_headers" in http.client.HTTPResponse.begin.__code__.co_names:
        begin = types.FunctionType(http.client.HTTPResponse.begin.__code__,
                                   {**vars(http.client), "parse_headers": parse_headers}, "begin")


class _HTTPConnection(http.client.HTTPConnection):
    response_class = _Response


class _HTTPSConnection(http.client.HTTPSConnection):
    response_class = _Response


class _Stale(Exception):
    """A kept connection turned out closed by its server before the request reached it."""


class ConnectError(OSError):
    """The connection could not be opened: refused, unreachable, or a name that does not resolve."""


@dataclass(slots=True)
class Exchange:
    """A request sent and its response's status line and headers read; the body is the caller's to read."""

    key: Key
    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse


def header_dict(response: http.client.HTTPResponse) -> dict[str, str]:
    """Headers by lower-case name; a repeated header's values joined with ", ", folded lines unfolded."""
    out: dict[str, str] = {}
    for name, value in response.headers.items():
        if "\r\n" in value:
            value = _FOLD.sub(" ", value)
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def remove_dot_segments(path: str) -> str:
    """"/a/./b/../c" -> "/a/c" (RFC 3986, 5.2.4): urljoin resolves relative links, not absolute ones, and
    some servers refuse a path with dot segments."""
    if "/." not in path:  # an http(s) URL's path is empty or starts with "/"
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if path.startswith("/") and (not out or out[0]):
        out.insert(0, "")
    if segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." names the directory "/a/"
    return "/".join(out)


def request_target(path: str, query: str) -> str:
    """The path and query of a URL as a request line carries them."""
    target = remove_dot_segments(path) or "/"
    if query:
        target = f"{target}?{query}"
    return quote(target, safe=_TARGET_SAFE)


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle connection was closed by its server (or has stray bytes to read: unusable too)."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


class Connections:
    """Idle connections by (scheme, host, port), shared by a Fetcher's threads. A connection is in use
    by one request at a time: `get` takes one (or opens one), `done` gives it back or closes it."""

    def __init__(self, timeout: float, per_host: int, hosts: int = 256, ca_certs: str | None = None) -> None:
        self.timeout = timeout
        self.ca_certs = ca_certs or certifi.where()  # Mozilla's roots: a slim image may have no system store
        self.per_host = max(1, per_host)  # idle connections kept per host
        self.hosts = max(1, hosts)  # hosts whose idle connections are kept
        self._idle: OrderedDict[Key, list[http.client.HTTPConnection]] = OrderedDict()
        self._lock = threading.Lock()
        self._closed = False
        # Roots given by the caller are loaded now, so that a wrong file is an error at once; certifi's on
        # first use (a few milliseconds a Fetcher that may never see an https URL).
        self._tls: ssl.SSLContext | None = self._new_context() if ca_certs else None

    def _new_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_certs)
        context.set_alpn_protocols(["http/1.1"])
        return context

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            context = self._new_context()
            with self._lock:
                if self._tls is None:
                    self._tls = context
        return self._tls

    def _open(self, key: Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = _HTTPSConnection(host, port, timeout=self.timeout, context=self._context())
        else:
            conn = _HTTPConnection(host, port, timeout=self.timeout)
        try:
            conn.connect()
        except (TimeoutError, ssl.SSLError):  # a timeout, or a certificate or handshake failure: as they are
            conn.close()
            raise
        except OSError as exc:  # refused, unreachable, no such name
            conn.close()
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        return conn

    def _take(self, key: Key) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if not _dropped(conn):
                return conn
            conn.close()

    def get(self, scheme: str, host: str, port: int, target: str, headers: Mapping[str, str]) -> Exchange:
        """Send a GET for `target` and read the response's status line and headers."""
        key = (scheme, host, port)
        conn = self._take(key)
        if conn is not None:
            try:
                return self._send(key, conn, target, headers, stale=True)
            except _Stale:
                pass
        return self._send(key, self._open(key), target, headers)

    @staticmethod
    def _send(key: Key, conn: http.client.HTTPConnection, target: str, headers: Mapping[str, str],
              stale: bool = False) -> Exchange:
        """`stale`: the connection was kept; a sign that the server had closed it raises _Stale."""
        sent = False
        try:
            conn.request("GET", target, headers=dict(headers))
            sent = True
            return Exchange(key, conn, conn.getresponse())
        except BaseException as exc:
            conn.close()
            if stale and isinstance(exc, _NO_ANSWER if sent else _SEND_FAILED):
                raise _Stale() from None
            raise

    def done(self, exchange: Exchange, complete: bool) -> None:
        """Keep the connection when its response was read to the end (`complete`, said by the reader) and the
        server keeps it open; else close it. An interim answer (1xx) leaves the real one on the wire."""
        response, conn = exchange.response, exchange.conn
        if not (complete and response.isclosed() and not response.will_close and conn.sock is not None
                and response.status >= 200 and not self._closed):
            response.close()
            conn.close()
            return
        evicted: list[http.client.HTTPConnection] = []
        with self._lock:
            idle = self._idle.setdefault(exchange.key, [])
            self._idle.move_to_end(exchange.key)
            if len(idle) < self.per_host:
                idle.append(conn)
            else:
                evicted.append(conn)
            while len(self._idle) > self.hosts:
                evicted += self._idle.popitem(last=False)[1]
        for c in evicted:
            c.close()

    def close(self) -> None:
        """Close the idle connections; one handed back later is closed then."""
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()

