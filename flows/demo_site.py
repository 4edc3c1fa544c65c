"""Serve the bundled demo site (data/sample_site/, sample data) on 127.0.0.1: what `govreports demo-site` runs.

A plain static server (http.server): HTML goes out as a bare `text/html` with no charset, so the GBK site
(北仑区交通运输局) is served, as on the real web, with no charset anywhere. Files carry Last-Modified and
If-Modified-Since is honoured. Only loopback addresses (127.0.0.0/8) are ever bound. No Prefect here.
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from govreports.extract.sources import SITE_PLACEHOLDER  # in data/sample_site/sources.csv: the base URL serve() returns
from govreports.flows.config import DATA_DIR

DEFAULT_ROOT = DATA_DIR / "sample_site"


class _Handler(SimpleHTTPRequestHandler):
    """Static files, quietly. Content types come from the file name; text types carry no charset."""

    server_version = "govreports-demo-site"
    sys_version = ""
    # Keep-alive, as agency web servers do: on HTTP/1.0 every request paid for a new connection, which
    # made a nothing-changed run (one conditional request per page) measure the handshakes.
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no wait for an ACK between
    # The types the crawl decides by, pinned (the system's mime.types may say otherwise); the rest as guessed.
    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map, ".html": "text/html", ".htm": "text/html",
        ".txt": "text/plain", ".pdf": "application/pdf",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass

    def list_directory(self, path: str) -> None:  # a directory without index.html is 404, as on agency sites
        self.send_error(404, "File not found")


def serve(root: Path = DEFAULT_ROOT, host: str = "127.0.0.1", port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve `root` on host:port (0: an ephemeral port) from a daemon thread. Returns the server (stop it with
    shutdown() then server_close()) and its base URL, e.g. "http://127.0.0.1:40123". Raises ValueError for
    a host outside 127.0.0.0/8 and FileNotFoundError when `root` is not a directory."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:  # not an address
        loopback = False
    if not loopback:
        raise ValueError(f"demo site: {host!r} is outside 127.0.0.0/8; the demo site is served on loopback only")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"demo site: no directory {root} (build it: python -m benchmarks.build_sample_site)")
    server = ThreadingHTTPServer((host, port), partial(_Handler, directory=str(root)))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"demo-site:{server.server_port}", daemon=True).start()
    return server, f"http://{host}:{server.server_port}"


def main(port: int = 0, root: Path = DEFAULT_ROOT) -> None:
    """Serve until Ctrl-C, printing the URL and how to point the demo registry at it."""
    server, url = serve(root, port=port)
    print(f"Demo site (sample data) at {url}/  (Ctrl-C to stop)")
    print(f"  listings: {url}/330212-jtj/ndbg/index.html …; registry: {root / 'sources.csv'} "
          f"with {SITE_PLACEHOLDER} = {url}")
    sys.stdout.flush()
    try:
        # Short sleeps, not one endless wait: Ctrl-C may be delivered to a server thread, and the main
        # thread sees it only when it next wakes (an endless lock wait never did, once in CI).
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopped")
    finally:
        server.shutdown()
        server.server_close()
