"""What one conditional request (answered 304) costs the client, and the server, on loopback.

    .venv/bin/python -m benchmarks.conditional_requests [--requests N] [--json FILE]

Serves the bundled demo site from another process (benchmarks/serve_site.py, the scale benchmarks'
server), then sends N conditional GETs for one page, one after another on one kept connection, with:
our `extract.fetch.Fetcher.get` (URL policy, robots, politeness, the result; on http.client through
extract/connections.py since round 6), bare http.client (the floor of the standard library), and, when
installed, bare urllib3 (the Fetcher's client in round 5) and httpx (before round 5). For each: wall
time, client CPU and the server process's CPU per request. A nightly run where nothing changed is
mostly these requests (BENCHMARKS.md, Scale, rounds 5 and 6).
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SITE = REPO / "data" / "sample_site"
PAGE = "/330212-jtj/ndbg/index.html"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000, help="conditional requests per client (default 3000)")
    ap.add_argument("--json", metavar="FILE", help="write the numbers as JSON")
    args = ap.parse_args(argv)

    from benchmarks.scale import server_cpu
    from govreports.extract.fetch import Fetcher

    server = subprocess.Popen([sys.executable, "-m", "benchmarks.serve_site", str(SITE)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base = server.stdout.readline().strip()
        url = base + PAGE
        host, port = base.split("//")[1].split(":")
        fetcher = Fetcher(allow_loopback=True, delay=0.0)
        first = fetcher.get(url, allowed_hosts=[host])
        if first.outcome != "fetched" or not first.last_modified:
            raise SystemExit(f"the demo site did not serve {PAGE} with Last-Modified: {first.outcome} {first.error}")
        since = first.last_modified

        def ours() -> None:
            assert fetcher.get(url, allowed_hosts=[host], last_modified=since).outcome == "not_modified"

        conn = http.client.HTTPConnection(host, int(port))

        def bare_http_client() -> None:
            conn.request("GET", PAGE, headers={"If-Modified-Since": since})
            r = conn.getresponse()
            r.read()
            assert r.status == 304

        clients: list[tuple[str, Callable[[], None]]] = [("Fetcher.get", ours), ("http.client", bare_http_client)]
        try:  # what the fetcher ran on before (installed with Prefect's dependencies)
            import urllib3

            pool = urllib3.PoolManager()

            def bare_urllib3() -> None:
                r = pool.urlopen("GET", url, headers={"If-Modified-Since": since}, redirect=False, retries=False,
                                 preload_content=False, decode_content=False)
                for _ in r.stream(65536, decode_content=False):
                    pass
                r.release_conn()
                assert r.status == 304

            clients.append(("urllib3", bare_urllib3))
        except ImportError:
            pass
        try:
            import httpx

            hx = httpx.Client(trust_env=False)

            def bare_httpx() -> None:
                with hx.stream("GET", url, headers={"If-Modified-Since": since}) as r:
                    for _ in r.iter_raw():
                        pass
                    assert r.status_code == 304

            clients.append(("httpx", bare_httpx))
        except ImportError:
            pass

        rows = []
        for name, call in clients:
            for _ in range(50):  # connections open, caches warm
                call()
            s0, c0, w0 = server_cpu(server.pid), time.process_time(), time.perf_counter()
            for _ in range(args.requests):
                call()
            n = args.requests
            rows.append({"client": name, "requests": n,
                         "wall_ms": round(1000 * (time.perf_counter() - w0) / n, 3),
                         "client_cpu_ms": round(1000 * (time.process_time() - c0) / n, 3),
                         "server_cpu_ms": round(1000 * (server_cpu(server.pid) - s0) / n, 3)})
        fetcher.close()
    finally:
        server.stdin.close()
        server.wait(timeout=30)

    print(f"{args.requests} conditional requests (304) per client, one at a time, one kept connection, "
          f"to the demo site on 127.0.0.1 (another process)")
    print(f"{'client':24s} {'wall ms':>9s} {'client CPU ms':>14s} {'server CPU ms':>14s}")
    for r in rows:
        print(f"{r['client']:24s} {r['wall_ms']:9.3f} {r['client_cpu_ms']:14.3f} {r['server_cpu_ms']:14.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"benchmark": "conditional_requests", "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
