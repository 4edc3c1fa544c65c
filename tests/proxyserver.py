"""A small real forward proxy for tests, on 127.0.0.1 and an ephemeral port.

It takes plain-HTTP requests in absolute form (`GET http://host:port/path HTTP/1.1`), keeps the URLs it
was asked for, sends each request on to its origin with http.client and relays the answer, body and
all. CONNECT (HTTPS through the proxy) is not supported. It only forwards to 127.0.0.0/8.

    with ProxyServer() as proxy:
        Fetcher(proxy=proxy.url, ...).get(...)
        assert proxy.seen == ["http://127.0.0.1:…/a"]
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["ProxyServer"]

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: ProxyServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.scheme != "http" or not (parts.hostname or "").startswith("127."):
            self.send_error(400, "absolute-form http:// URLs to 127.0.0.0/8 only")
            return
        with self.server.owner._lock:
            self.server.owner.seen.append(self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        origin = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
        try:
            origin.request("GET", target or "/", headers=headers)
            resp = origin.getresponse()
            body = resp.read()
        except OSError as exc:
            self.send_error(502, f"origin unreachable: {exc}")
            return
        finally:
            origin.close()
        self.send_response(resp.status)
        for name, value in resp.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ProxyServer:
    """A threaded forward proxy on 127.0.0.1; `seen` lists the absolute URLs it was asked for."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ProxyServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
