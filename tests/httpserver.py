"""A small real HTTP/1.1 server for tests, on a loopback address and an ephemeral port.

Tests fill a routing table: a path maps to a `Reply` (status, headers, body, a delay before answering,
a chunked or trickled body, a connection dropped mid-body), a list of replies served in turn (the last
one repeats), or a function of the `Request`. The server counts requests per path and keeps their
headers. It only ever binds 127.0.0.0/8 addresses.

    with LocalServer() as srv:
        srv.route("/a", Reply(body="hello"))
        httpx.get(srv.url("/a"))
        assert srv.count("/a") == 1

In a test module: `@pytest.fixture def server(): yield from serve()`.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

import pytest

__all__ = ["LocalServer", "Reply", "Request", "can_bind", "serve"]


@dataclass(slots=True)
class Request:
    method: str
    path: str  # without the query
    query: str
    headers: dict[str, str]  # names lower-case
    at: float  # time.monotonic() when the request line arrived
    peer_port: int = 0  # the client's port: one per connection


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes | str = b""  # str is sent as UTF-8
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before sending the status line
    chunks: Iterable[bytes] | None = None  # sent with Transfer-Encoding: chunked (may be endless)
    chunk_delay: float = 0.0  # pause before each chunk
    drop_after: int | None = None  # announce the whole body, send this many bytes, then close the connection
    content_length: bool = True  # False: no Content-Length; the body ends when the connection closes
    trickle: int | None = None  # with Content-Length: send the body this many bytes at a time, chunk_delay apart
    close_after: bool = False  # send the whole reply as if the connection stayed open, then close it


Handler = Callable[[Request], Reply]
Route = Reply | list[Reply] | Handler


def can_bind(host: str) -> bool:
    """Whether this machine lets us bind `host` (127.0.0.2 is not configured everywhere, e.g. macOS)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
        return True
    except OSError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a handler stuck in a delay must not keep the test process alive
    allow_reuse_address = True
    owner: LocalServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up early (timeouts, caps) are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            at=time.monotonic(),
            peer_port=self.client_address[1],
        )
        reply = self.server.owner._dispatch(req)
        try:
            self._send(reply)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    do_HEAD = do_GET

    def _send(self, reply: Reply) -> None:
        if reply.delay:
            time.sleep(reply.delay)
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        self.send_response(reply.status)
        names = {k.lower() for k in reply.headers}
        for k, v in reply.headers.items():
            self.send_header(k, v)
        if reply.chunks is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in reply.chunks:
                if reply.chunk_delay:
                    time.sleep(reply.chunk_delay)
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if not reply.content_length:
            self.send_header("Connection", "close")
            self.close_connection = True
        elif "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if reply.drop_after is not None:
            self.wfile.write(body[: reply.drop_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if reply.trickle:
            for i in range(0, len(body), reply.trickle):
                time.sleep(reply.chunk_delay)
                self.wfile.write(body[i:i + reply.trickle])
                self.wfile.flush()
            return
        self.wfile.write(body)
        self.wfile.flush()
        if reply.close_after:  # a keep-alive that ran out: the client finds out on its next request
            self.close_connection = True


class LocalServer:
    """A threaded test server on `host` (a loopback address) and an ephemeral port; HTTPS with `tls`."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        if not host.startswith("127."):
            raise ValueError("tests only bind loopback addresses")
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._httpd = _Server((host, 0), _Handler)
        self._httpd.owner = self
        self.scheme = "http"
        if tls is not None:  # the handshake happens in the handler's thread, on its first read
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
            self.scheme = "https"
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- setup ------------------------------------------------------------------------------------

    def route(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://{self.host}:{self.port}{path}"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    # -- what happened ----------------------------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        """Requests received for `path` (all paths when None)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _dispatch(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
            route = self.routes.get(req.path)
            n = self._served.get(req.path, 0)
            self._served[req.path] = n + 1
        if route is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        if isinstance(route, Reply):
            return route
        if isinstance(route, list):
            return route[min(n, len(route) - 1)]
        return route(req)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve(host: str = "127.0.0.1") -> Iterator[LocalServer]:
    """Body of a pytest fixture: a started server, stopped afterwards; skips when `host` cannot be bound."""
    if not can_bind(host):
        pytest.skip(f"cannot bind {host} on this machine")
    with LocalServer(host) as srv:
        yield srv
