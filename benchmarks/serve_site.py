"""Serve a generated site on 127.0.0.1 from its own process, for the scale benchmarks.

    .venv/bin/python -m benchmarks.serve_site ROOT

Prints the base URL on its first line of standard output, then serves (flows.demo_site.serve: static files,
no charset, Last-Modified / If-Modified-Since answered with 304) until standard input closes or the process
is stopped. Serving from another process keeps the server's Python work off the measured pipeline's GIL.
"""

from __future__ import annotations

import sys
from pathlib import Path

from govreports.flows.demo_site import serve


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m benchmarks.serve_site ROOT")
    server, url = serve(Path(argv[0]), host="127.0.0.1", port=0)
    print(url, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main(sys.argv[1:])
