"""extract.fetch against a real HTTP server on 127.0.0.1 (127.0.0.2 stands for a foreign host).

Private, link-local and other non-loopback addresses are tested against the URL policy only: no test
opens a connection outside 127.0.0.0/8.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import socket
import ssl
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from email.utils import formatdate
from urllib.parse import urlsplit

import httpcore
import pytest

from govreports.extract.fetch import DEFAULT_USER_AGENT, Fetcher, HostGates, UrlRefused, _retry_after, check_url
from tests.httpserver import LocalServer, Reply, Request, serve
from tests.proxyserver import ProxyServer
from tests.rawserver import CLOSE, raw_server

HOSTS = ("127.0.0.1",)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    yield from serve("127.0.0.1")


@pytest.fixture
def foreign() -> Iterator[LocalServer]:
    yield from serve("127.0.0.2")


def fetcher(**kw: object) -> Fetcher:
    """Small timeouts and backoffs so the file runs in seconds; loopback allowed for the test server."""
    opts: dict[str, object] = {
        "timeout": 0.5,
        "retries": 2,
        "backoff": 0.01,
        "max_backoff": 2.0,
        "delay": 0.0,
        "allow_loopback": True,
    }
    opts.update(kw)
    return Fetcher(**opts)  # type: ignore[arg-type]


# -- URL policy (no connections) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/a", "private"),
        ("http://192.168.1.1/a", "private"),
        ("http://172.16.0.1/a", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::1]/", "loopback"),
        ("http://127.0.0.1/", "loopback"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://100.64.0.1/", "non-global"),
        ("http://[fe80::1]/", "link-local"),
    ],
)
def test_check_url_refuses_non_public_addresses(url: str, reason: str) -> None:
    host = urlsplit(url).hostname or ""
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, [host])


def test_check_url_loopback_only_when_allowed() -> None:
    check_url("http://127.0.0.1:8080/x", ["127.0.0.1"], allow_loopback=True)
    check_url("http://[::1]/x", ["::1"], allow_loopback=True)
    with pytest.raises(UrlRefused, match="loopback"):
        check_url("http://127.0.0.1:8080/x", ["127.0.0.1"])
    # Names are resolved: localhost is loopback too.
    with pytest.raises(UrlRefused, match="resolves to"):
        check_url("http://localhost/x", ["localhost"])
    # Loopback allowed still never lets private addresses through.
    with pytest.raises(UrlRefused, match="private"):
        check_url("http://10.0.0.1/", ["10.0.0.1"], allow_loopback=True)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://127.0.0.1/x", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http:///nohost", "no host"),
        ("http://127.0.0.1:99999/", "malformed"),
        ("http://user:pw@127.0.0.1/", "credentials"),
        ("http://127.0.0.2/", "not among"),
        ("http://www.example.com/", "not among"),
    ],
)
def test_check_url_refuses_scheme_host_and_shape(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, ["127.0.0.1"], allow_loopback=True)


def test_check_url_host_matching_ignores_case_port_and_trailing_dot() -> None:
    check_url("http://127.0.0.1:1234/", ["127.0.0.1"], allow_loopback=True)
    check_url("HTTP://127.0.0.1./x", ["127.0.0.1"], allow_loopback=True)


def test_check_url_unresolvable_name_is_left_to_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    # The resolver's answer is faked: a real lookup of any name would leave the machine (tests stay on
    # 127.0.0.0/8), and a failed lookup is a fault no local part produces on demand.
    asked = []

    def no_such_name(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    check_url("http://no-such-host.invalid/x", ["no-such-host.invalid"])
    assert asked == ["no-such-host.invalid"]


def test_connection_refused_is_retried_then_recorded() -> None:
    # A loopback port nobody listens on: every attempt is refused by the kernel.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with fetcher(retries=2) as f:
        r = f.get(f"http://127.0.0.1:{port}/report.html", allowed_hosts=HOSTS)
    assert r.outcome == "failed" and r.attempts == 3
    assert "cannot connect" in (r.error or "") and "gave up after 3 attempts" in (r.error or "")


def test_backoff_doubles_with_full_jitter_and_a_cap() -> None:
    f = Fetcher(backoff=0.5, max_backoff=3.0)
    try:
        for n, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
            pauses = [f._pause(n, None) for _ in range(300)]
            assert all(0.0 <= p <= cap for p in pauses)
            assert max(pauses) > 0.8 * cap and min(pauses) < 0.2 * cap  # spread over [0, cap]: jitter
        assert f._pause(1, 2.5) == 2.5  # Retry-After is honoured
        assert f._pause(1, 120.0) == 3.0  # … up to the cap
    finally:
        f.close()


def test_retry_after_parses_seconds_and_dates() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    later = _retry_after(formatdate(time.time() + 10, usegmt=True))
    assert later is not None and 8 <= later <= 10
    assert _retry_after(formatdate(time.time() - 100, usegmt=True)) == 0.0


# -- plain fetches ---------------------------------------------------------------------------------


def test_fetch_ok_sends_user_agent_and_hashes_body(server: LocalServer) -> None:
    body = "<html>报告</html>".encode()
    server.route("/a", Reply(body=body, headers={"Content-Type": "text/html; charset=UTF-8", "ETag": '"x"'}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.status == 200 and r.error is None
    assert r.body == body and r.sha256 == hashlib.sha256(body).hexdigest()
    assert r.declared_charset == "utf-8" and r.etag == '"x"' and r.attempts == 1
    assert server.requests_for("/a")[0].headers["user-agent"] == DEFAULT_USER_AGENT
    assert "govreports" in DEFAULT_USER_AGENT


def test_retry_500_then_success(server: LocalServer) -> None:
    server.route("/a", [Reply(500, b"oops"), Reply(body=b"ok")])
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.body == b"ok" and r.attempts == 2
    assert server.count("/a") == 2


def test_persistent_503_gives_up(server: LocalServer) -> None:
    server.route("/a", Reply(503, b"busy"))
    with fetcher(retries=3) as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and r.status == 503 and r.attempts == 4 and r.body is None
    assert "HTTP 503" in (r.error or "") and "4 attempts" in (r.error or "")
    assert server.count("/a") == 4


def test_404_is_not_retried(server: LocalServer) -> None:
    with fetcher() as f:
        r = f.get(server.url("/missing"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and r.status == 404 and r.attempts == 1 and r.error == "HTTP 404"
    assert server.count("/missing") == 1


def test_slow_response_times_out_and_is_retried(server: LocalServer) -> None:
    server.route("/slow", Reply(body=b"late", delay=2.0))
    with fetcher(timeout=0.3, retries=1) as f:
        t0 = time.monotonic()
        r = f.get(server.url("/slow"), allowed_hosts=HOSTS)
        took = time.monotonic() - t0
    assert r.outcome == "failed" and r.status is None and r.attempts == 2
    assert "timed out" in (r.error or "")
    assert took < 1.5


def test_429_honours_retry_after(server: LocalServer) -> None:
    server.route("/a", [Reply(429, b"slow down", {"Retry-After": "1"}), Reply(body=b"ok")])
    with fetcher(backoff=0.0) as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.attempts == 2
    first, second = server.requests_for("/a")
    assert 0.9 <= second.at - first.at < 2.0


def test_retry_after_is_capped_by_max_backoff(server: LocalServer) -> None:
    server.route("/a", [Reply(503, b"", {"Retry-After": "3600"}), Reply(body=b"ok")])
    with fetcher(max_backoff=0.2) as f:
        t0 = time.monotonic()
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and time.monotonic() - t0 < 1.0


# -- redirects ---------------------------------------------------------------------------------------


def test_redirect_within_host_is_followed(server: LocalServer) -> None:
    server.route("/old", Reply(301, b"", {"Location": "/new"}))
    server.route("/new", Reply(body=b"here"))
    with fetcher() as f:
        r = f.get(server.url("/old"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.body == b"here"
    assert r.url == server.url("/old") and r.final_url == server.url("/new") and r.attempts == 2


def test_redirect_loop(server: LocalServer) -> None:
    server.route("/a", Reply(302, b"", {"Location": "/b"}))
    server.route("/b", Reply(302, b"", {"Location": "/a"}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and "redirect loop" in (r.error or "")
    assert server.count("/a") == 1 and server.count("/b") == 1


def test_too_many_redirects(server: LocalServer) -> None:
    for i in range(10):
        server.route(f"/r{i}", Reply(302, b"", {"Location": f"/r{i + 1}"}))
    with fetcher(max_redirects=3) as f:
        r = f.get(server.url("/r0"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and "too many redirects" in (r.error or "")
    assert server.count("/r3") == 1 and server.count("/r4") == 0


def test_redirect_to_foreign_host_is_refused_before_connecting(server: LocalServer, foreign: LocalServer) -> None:
    foreign.route("/", Reply(body=b"elsewhere"))
    server.route("/a", Reply(302, b"", {"Location": foreign.url("/")}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "refused" and "127.0.0.2" in (r.error or "") and "not among" in (r.error or "")
    assert r.body is None
    assert foreign.count() == 0  # not even robots.txt


def test_foreign_host_is_reachable_when_allowed(foreign: LocalServer) -> None:
    # The foreign server itself works, so the refusal above is the policy, not a dead server.
    foreign.route("/", Reply(body=b"elsewhere"))
    with fetcher() as f:
        assert f.get(foreign.url("/"), allowed_hosts=("127.0.0.2",)).outcome == "fetched"


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/"])
def test_redirect_to_other_scheme_is_refused(server: LocalServer, target: str) -> None:
    server.route("/a", Reply(302, b"", {"Location": target}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "refused" and "scheme" in (r.error or "")


def test_redirect_to_private_address_is_refused(server: LocalServer) -> None:
    server.route("/a", Reply(302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=(*HOSTS, "169.254.169.254"))
    assert r.outcome == "refused" and "link-local" in (r.error or "")


def test_first_url_is_checked_too() -> None:
    with fetcher(allow_loopback=False) as f:
        r = f.get("http://127.0.0.1:9/x", allowed_hosts=HOSTS)
    assert r.outcome == "refused" and r.attempts == 0 and "loopback" in (r.error or "")


# -- charsets ----------------------------------------------------------------------------------------


def test_declared_charset_is_what_the_header_says(server: LocalServer) -> None:
    gbk = "<html><title>鄞州区2020年政府信息公开工作年度报告</title></html>".encode("gbk")
    server.route("/wrong", Reply(body=gbk, headers={"Content-Type": "text/html; charset=ISO-8859-1"}))
    server.route("/none", Reply(body=gbk, headers={"Content-Type": "text/html"}))
    with fetcher() as f:
        wrong = f.get(server.url("/wrong"), allowed_hosts=HOSTS)
        none = f.get(server.url("/none"), allowed_hosts=HOSTS)
    assert wrong.declared_charset == "iso-8859-1" and wrong.body == gbk
    assert none.declared_charset is None and none.content_type == "text/html" and none.body == gbk


# -- bounds ------------------------------------------------------------------------------------------


def test_oversize_body_by_content_length(server: LocalServer) -> None:
    server.route("/big", Reply(body=b"x" * 5000))
    with fetcher(max_bytes=1000) as f:
        r = f.get(server.url("/big"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and "larger than 1000 bytes" in (r.error or "") and r.attempts == 1


def test_oversize_chunked_body_without_length(server: LocalServer) -> None:
    server.route("/big", Reply(chunks=[b"y" * 300] * 20))
    with fetcher(max_bytes=1000) as f:
        r = f.get(server.url("/big"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and "larger than 1000 bytes" in (r.error or "")


def test_body_at_the_cap_is_accepted(server: LocalServer) -> None:
    server.route("/ok", Reply(chunks=[b"y" * 250] * 4))
    with fetcher(max_bytes=1000) as f:
        r = f.get(server.url("/ok"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and len(r.body or b"") == 1000


def test_gzip_body_is_decoded(server: LocalServer) -> None:
    body = "<html>年度报告</html>".encode() * 50
    server.route("/gz", Reply(body=gzip.compress(body), headers={"Content-Encoding": "gzip"}))
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    server.route(
        "/raw-deflate",
        Reply(body=raw_deflate.compress(body) + raw_deflate.flush(), headers={"Content-Encoding": "deflate"}),
    )
    server.route("/deflate", Reply(body=zlib.compress(body), headers={"Content-Encoding": "deflate"}))
    with fetcher() as f:
        for path in ("/gz", "/raw-deflate", "/deflate"):
            r = f.get(server.url(path), allowed_hosts=HOSTS)
            assert r.outcome == "fetched" and r.body == body, path
            assert r.sha256 == hashlib.sha256(body).hexdigest()
    assert "gzip" in server.requests_for("/gz")[0].headers["accept-encoding"]


def test_gzip_bomb_fails_cleanly_with_bounded_memory(server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * (64 * 2**20), compresslevel=9)  # ~64 KB on the wire, 64 MiB decoded
    assert len(bomb) < 100_000
    server.route("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/html"}))
    with fetcher(max_bytes=2**20) as f:
        tracemalloc.start()
        try:
            r = f.get(server.url("/bomb"), allowed_hosts=HOSTS)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert r.outcome == "failed" and "larger than" in (r.error or "") and r.attempts == 1
    assert peak < 8 * 2**20  # the cap plus a few chunks, never the decoded 64 MiB


def test_nested_content_encoding_is_refused(server: LocalServer) -> None:
    body = gzip.compress(gzip.compress(b"\0" * 2**20))
    server.route("/double", Reply(body=body, headers={"Content-Encoding": "gzip, gzip"}))
    server.route("/br", Reply(body=b"xx", headers={"Content-Encoding": "br"}))
    with fetcher() as f:
        r = f.get(server.url("/double"), allowed_hosts=HOSTS)
        assert r.outcome == "failed" and "Content-Encoding" in (r.error or "")
        r = f.get(server.url("/br"), allowed_hosts=HOSTS)
        assert r.outcome == "failed" and "Content-Encoding" in (r.error or "")


def test_body_cut_short_is_retried_then_failed(server: LocalServer) -> None:
    server.route("/cut", Reply(body=b"z" * 10_000, drop_after=1000))
    with fetcher(retries=2) as f:
        r = f.get(server.url("/cut"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and r.attempts == 3 and "cut short" in (r.error or "")
    assert server.count("/cut") == 3


def test_body_cut_short_then_complete(server: LocalServer) -> None:
    server.route("/cut", [Reply(body=b"z" * 10_000, drop_after=1000), Reply(body=b"z" * 10_000)])
    with fetcher() as f:
        r = f.get(server.url("/cut"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.attempts == 2 and len(r.body or b"") == 10_000


def test_trickled_body_of_known_length_ends_by_the_deadline(server: LocalServer) -> None:
    # 10 bytes every 20 ms of a 3,000-byte body: each read comes in time, the whole would take 6 s.
    server.route("/trickle", Reply(body=b"." * 3000, trickle=10, chunk_delay=0.02))
    with fetcher(timeout=0.3) as f:
        t0 = time.monotonic()
        r = f.get(server.url("/trickle"), allowed_hosts=HOSTS)
        took = time.monotonic() - t0
    assert r.outcome == "failed" and "not complete within" in (r.error or "") and r.attempts == 1
    assert took < 2.5


def test_endless_chunked_response_ends_by_the_deadline(server: LocalServer) -> None:
    # A chunk every 20 ms: the read timeout never fires, the size cap is far away; the deadline ends it.
    server.route("/endless", Reply(chunks=itertools.repeat(b"." * 10), chunk_delay=0.02))
    with fetcher(timeout=0.3, max_bytes=10 * 2**20) as f:
        t0 = time.monotonic()
        r = f.get(server.url("/endless"), allowed_hosts=HOSTS)
        took = time.monotonic() - t0
    assert r.outcome == "failed" and "not complete within" in (r.error or "") and r.attempts == 1
    assert 0.8 <= took < 2.5


def test_stalled_body_times_out(server: LocalServer) -> None:
    def stalled() -> Iterator[bytes]:
        yield b"start"
        time.sleep(3)
        yield b"never"

    server.route("/stall", Reply(chunks=stalled()))
    with fetcher(timeout=0.3, retries=0) as f:
        t0 = time.monotonic()
        r = f.get(server.url("/stall"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and "timed out" in (r.error or "") and time.monotonic() - t0 < 1.5


# -- robots.txt --------------------------------------------------------------------------------------


def test_robots_disallow(server: LocalServer) -> None:
    robots = "User-agent: *\nDisallow: /all-bots/\n\nUser-agent: govreports\nDisallow: /private/\n"
    server.route("/robots.txt", Reply(body=robots, headers={"Content-Type": "text/plain"}))
    server.route("/private/x", Reply(body=b"secret"))
    server.route("/public/x", Reply(body=b"open"))
    with fetcher() as f:
        r = f.get(server.url("/private/x"), allowed_hosts=HOSTS)
        assert r.outcome == "refused" and r.error == "disallowed by robots.txt" and r.attempts == 0
        assert f.get(server.url("/public/x"), allowed_hosts=HOSTS).outcome == "fetched"
        assert f.get(server.url("/public/x"), allowed_hosts=HOSTS).outcome == "fetched"
    assert server.count("/private/x") == 0
    assert server.count("/robots.txt") == 1  # once per host
    assert server.requests_for("/robots.txt")[0].headers["user-agent"] == DEFAULT_USER_AGENT


def test_robots_disallow_applies_to_redirect_targets(server: LocalServer) -> None:
    server.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /private/\n"))
    server.route("/a", Reply(302, b"", {"Location": "/private/x"}))
    with fetcher() as f:
        r = f.get(server.url("/a"), allowed_hosts=HOSTS)
    assert r.outcome == "refused" and r.error == "disallowed by robots.txt"
    assert server.count("/private/x") == 0


@pytest.mark.parametrize("robots", [Reply(404, b"no"), Reply(500, b"broken"), Reply(body=b"\xff\xfe garbage")])
def test_missing_or_failing_robots_allows_everything(server: LocalServer, robots: Reply) -> None:
    server.route("/robots.txt", robots)
    server.route("/x", Reply(body=b"ok"))
    with fetcher(retries=0) as f:
        assert f.get(server.url("/x"), allowed_hosts=HOSTS).outcome == "fetched"


def test_robots_can_be_ignored(server: LocalServer) -> None:
    server.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /\n"))
    server.route("/x", Reply(body=b"ok"))
    with fetcher(respect_robots=False) as f:
        assert f.get(server.url("/x"), allowed_hosts=HOSTS).outcome == "fetched"
    assert server.count("/robots.txt") == 0


# -- conditional requests ----------------------------------------------------------------------------


def test_etag_then_304(server: LocalServer) -> None:
    def page(req: Request) -> Reply:
        if req.headers.get("if-none-match") == '"v1"':
            return Reply(304, b"", {"ETag": '"v1"'})
        return Reply(body=b"report", headers={"ETag": '"v1"', "Last-Modified": "Mon, 06 Jan 2025 08:00:00 GMT"})

    server.route("/r", page)
    with fetcher() as f:
        first = f.get(server.url("/r"), allowed_hosts=HOSTS)
        assert first.outcome == "fetched" and first.etag == '"v1"'
        second = f.get(server.url("/r"), allowed_hosts=HOSTS, etag=first.etag, last_modified=first.last_modified)
    assert second.outcome == "not_modified" and second.status == 304 and second.body is None
    assert second.sha256 is None and second.etag == '"v1"'
    sent = server.requests_for("/r")[1].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == "Mon, 06 Jan 2025 08:00:00 GMT"
    assert "if-none-match" not in server.requests_for("/r")[0].headers


def test_a_validator_that_cannot_be_sent_makes_the_request_unconditional(server: LocalServer) -> None:
    # A stored ETag with characters an HTTP header cannot carry must not fail the fetch (nor the agency).
    server.route("/r", Reply(body=b"report", headers={"ETag": '"v2"'}))
    with fetcher() as f:
        r = f.get(server.url("/r"), allowed_hosts=HOSTS, etag='"版本1"', last_modified="Mon, 06 Jan 2025 08:00:00 GMT")
    assert r.outcome == "fetched" and r.body == b"report"
    sent = server.requests_for("/r")[0].headers
    assert "if-none-match" not in sent and sent["if-modified-since"] == "Mon, 06 Jan 2025 08:00:00 GMT"


def test_answers_without_a_wanted_body_keep_the_connection(server: LocalServer) -> None:
    # A nightly run is one conditional request per page: a 304 (or a 404) must leave its connection in
    # the pool. Closing it cost a TCP handshake per page and left a socket in TIME-WAIT per page.
    server.route("/r", lambda req: Reply(304, b"", {"ETag": '"v1"'}) if req.headers.get("if-none-match")
                 else Reply(body=b"report", headers={"ETag": '"v1"'}))
    server.route("/gone", Reply(404, b"not here"))
    with fetcher() as f:
        f.get(server.url("/r"), allowed_hosts=HOSTS)
        outcomes = [f.get(server.url("/r"), allowed_hosts=HOSTS, etag='"v1"').outcome for _ in range(5)]
        outcomes += [f.get(server.url("/gone"), allowed_hosts=HOSTS).outcome for _ in range(2)]
        f.get(server.url("/r"), allowed_hosts=HOSTS, etag='"v1"')
    assert outcomes == ["not_modified"] * 5 + ["failed"] * 2
    ports = {r.peer_port for r in server.requests_for("/r") + server.requests_for("/gone")}
    assert len(ports) == 1, f"{len(ports)} connections for 9 requests in a row"


def test_a_kept_connection_the_server_closed_is_replaced(server: LocalServer) -> None:
    # A keep-alive that ran out on the server's side while the connection sat in the pool: the next
    # request goes out on a new connection, in the same attempt.
    server.route("/r", Reply(body=b"report", close_after=True))
    with fetcher(retries=0) as f:
        results = [f.get(server.url("/r"), allowed_hosts=HOSTS) for _ in range(3)]
    assert [(r.outcome, r.attempts, r.body) for r in results] == [("fetched", 1, b"report")] * 3
    assert len({r.peer_port for r in server.requests_for("/r")}) == 3


def test_a_request_on_a_connection_closed_unseen_is_tried_again(server: LocalServer, monkeypatch) -> None:
    # The server may close an idle connection after the pool looked at it (a race a real server cannot
    # be made to lose on demand, hence the patched look): the request that found it closed is retried on
    # a new connection.
    server.route("/r", Reply(body=b"report", close_after=True))
    monkeypatch.setattr(httpcore.HTTP11Connection, "has_expired", lambda self: False)
    with fetcher(retries=1) as f:
        first = f.get(server.url("/r"), allowed_hosts=HOSTS)
        time.sleep(0.1)  # the server's close reaches the client
        second = f.get(server.url("/r"), allowed_hosts=HOSTS)
    assert (first.outcome, second.outcome, second.attempts, second.body) == ("fetched", "fetched", 2, b"report")
    assert server.count("/r") == 2


def test_no_cookie_is_kept_between_requests(server: LocalServer) -> None:
    # Every request stands alone: what a server answers never depends on what it set before.
    server.route("/r", Reply(body=b"report", headers={"Set-Cookie": "session=abc; Path=/"}))
    with fetcher() as f:
        f.get(server.url("/r"), allowed_hosts=HOSTS)
        f.get(server.url("/r"), allowed_hosts=HOSTS)
    assert [r.headers.get("cookie") for r in server.requests_for("/r")] == [None, None]


def test_a_url_with_chinese_spaces_and_dot_segments_is_sent_normalised(server: LocalServer) -> None:
    server.route("/%E5%B9%B4%E6%8A%A5/2021%20%E5%B9%B4.html", Reply(body=b"ok"))
    with fetcher() as f:
        r = f.get(server.url("/栏目/./../年报/2021 年.html?栏目=年报&id=%41"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.body == b"ok"
    # An escape already made stays as it is.
    assert server.requests[-1].query == "%E6%A0%8F%E7%9B%AE=%E5%B9%B4%E6%8A%A5&id=%41"


def test_an_interim_answer_is_not_the_page_and_leaves_nothing_behind() -> None:
    # A 103 Early Hints before the 200 on the same connection: the 200 is the page, and the next request
    # on that connection gets its own answer.
    answers = {b"/hints": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                          b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhints",
               b"/page": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"}
    with raw_server(answers) as port, fetcher(retries=0, respect_robots=False) as f:
        first = f.get(f"http://127.0.0.1:{port}/hints", allowed_hosts=HOSTS)
        second = f.get(f"http://127.0.0.1:{port}/page", allowed_hosts=HOSTS)
    assert (first.outcome, first.status, first.body) == ("fetched", 200, b"hints")
    assert second.outcome == "fetched" and second.body == b"fresh"


def test_transfer_codings_are_never_read_as_the_body() -> None:
    # "gzip, chunked" is not HTTP/1.1 framing a client must know: a clear failed attempt, never the
    # chunk sizes and gzip bytes handed on as the page. "chunked" in another case and spacing is chunked.
    page = "<html>年度报告</html>".encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(page), page)
    gz = gzip.compress(page)
    answers = {
        b"/gzip-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                          + b"%x\r\n%s\r\n0\r\n\r\n" % (len(gz), gz),
        b"/odd": b"HTTP/1.1 200 OK\r\nTransfer-Encoding:   Chunked  \r\n\r\n" + chunked,
    }
    with raw_server(answers) as port, fetcher(retries=0, respect_robots=False) as f:
        bad = f.get(f"http://127.0.0.1:{port}/gzip-chunked", allowed_hosts=HOSTS)
        odd = f.get(f"http://127.0.0.1:{port}/odd", allowed_hosts=HOSTS)
    assert bad.outcome == "failed" and bad.body is None and "Transfer-Encoding" in (bad.error or "")
    assert odd.outcome == "fetched" and odd.body == page


# -- responses that are not whole, or that would never end ----------------------------------------------

OK_PAGE = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npage"


@pytest.mark.parametrize("cut", [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Le",  # inside a header
    b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n",  # after the headers: a body with no framing
    b"HTTP/1.0 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n<html>half a pa",  # fewer bytes than announced
])
def test_a_response_cut_short_in_or_after_its_headers_is_a_failed_attempt_retried(cut: bytes) -> None:
    # Never "200 with an empty body": a closed connection before any body, or before the announced length,
    # is a failed attempt.
    with raw_server({b"/cut": lambda: [cut, CLOSE]}) as port, fetcher(retries=2, respect_robots=False) as f:
        r = f.get(f"http://127.0.0.1:{port}/cut", allowed_hosts=HOSTS)
    assert (r.outcome, r.status, r.body, r.sha256, r.attempts) == ("failed", None, None, None, 3)
    assert "gave up after 3 attempts" in (r.error or "")


def test_a_body_ended_by_closing_the_connection_is_a_page_as_http_1_0_allows() -> None:
    # No Content-Length, no chunked: the body ends with the connection (old servers answer so). Whether it
    # is whole is the parser's call: HTML that never reaches </html> is read as truncated.
    answer = [b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>a page</html>", CLOSE]
    with raw_server({b"/old": lambda: answer}) as port, fetcher(respect_robots=False) as f:
        r = f.get(f"http://127.0.0.1:{port}/old", allowed_hosts=HOSTS)
    assert (r.outcome, r.status, r.body, r.attempts) == ("fetched", 200, b"<html>a page</html>", 1)


def test_a_response_cut_in_its_headers_then_whole_is_fetched() -> None:
    answers = iter([[b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n", CLOSE], [OK_PAGE]])
    with raw_server({b"/cut": lambda: next(answers)}) as port, fetcher(respect_robots=False) as f:
        r = f.get(f"http://127.0.0.1:{port}/cut", allowed_hosts=HOSTS)
    assert (r.outcome, r.body, r.attempts) == ("fetched", b"page", 2)


def trickled_headers(ended: list[bool]) -> Iterator[bytes]:
    yield b"HTTP/1.1 200 OK\r\n"
    yield from itertools.repeat(b"X-Pad: a\r\n", 400)  # each line in time for the read timeout
    ended.append(True)  # the server asks for its last piece: the client waited that long
    yield b"Content-Length: 4\r\n\r\npage"


def continues(ended: list[bool]) -> Iterator[bytes]:
    yield from itertools.repeat(b"HTTP/1.1 100 Continue\r\n\r\n", 400)
    ended.append(True)
    yield OK_PAGE


@pytest.mark.parametrize("proxied", [False, True])
@pytest.mark.parametrize("answer", [trickled_headers, continues])
def test_headers_trickled_or_endless_interim_answers_end_at_the_deadline(answer, proxied: bool) -> None:
    # 400 pieces 20 ms apart: each read is in time (timeout 0.3 s), the whole would take 8 s. The
    # whole-response deadline (3 x timeout) covers the headers too: the client hangs up before the
    # server gets to the end, and does not try again. Proxied: the proxy is the one that trickles.
    ended: list[bool] = []
    path = b"http://127.0.0.1:1/slow" if proxied else b"/slow"
    with raw_server({path: lambda: answer(ended)}, pause=0.02) as port:
        origin, proxy = ("http://127.0.0.1:1", f"http://127.0.0.1:{port}") if proxied else (f"http://127.0.0.1:{port}",
                                                                                           None)
        with fetcher(timeout=0.3, respect_robots=False, proxy=proxy) as f:
            r = f.get(f"{origin}/slow", allowed_hosts=HOSTS)
    assert (r.outcome, r.status, r.body, r.attempts) == ("failed", None, None, 1)
    assert "whole-response deadline" in (r.error or "") and not ended


# -- DNS rebinding and proxies ------------------------------------------------------------------------


def resolver(monkeypatch: pytest.MonkeyPatch, name: str, answers: list[str]) -> list[str]:
    """`name` resolves to answers[0] on the first lookup, answers[1] on the second, and so on (the last
    repeats); other names as usual. A real resolver cannot be made to change its answer on demand."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host != name:
            return real(host, port, *args, **kwargs)
        addr = answers[min(len(asked), len(answers) - 1)]
        asked.append(addr)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


def test_the_connection_goes_to_the_address_checked(server: LocalServer, monkeypatch) -> None:
    # A name the policy checked and found on 127.0.0.1: the connection is made there, the request names
    # the host, and each connection's address is checked when it is made.
    server.route("/r", Reply(body=b"report"))
    asked = resolver(monkeypatch, "reports.example", ["127.0.0.1"])
    with fetcher(respect_robots=False) as f:
        r = f.get(f"http://reports.example:{server.port}/r", allowed_hosts=["reports.example"])
    assert r.outcome == "fetched" and r.body == b"report"
    assert server.requests_for("/r")[0].headers["host"] == f"reports.example:{server.port}"
    assert asked == ["127.0.0.1", "127.0.0.1"]  # check_url's lookup, then the connection's own


def test_a_name_that_rebinds_after_the_check_is_never_connected_to(server: LocalServer, monkeypatch) -> None:
    # Loopback (allowed here) for check_url, then 0.0.0.0 for the connection: refused. Connecting to
    # 0.0.0.0 reaches this machine, so a fetcher that connected to the second answer anyway would reach
    # the test server, and the test would see it.
    server.route("/r", Reply(body=b"report"))
    asked = resolver(monkeypatch, "rebind.example", ["127.0.0.1", "0.0.0.0"])
    with fetcher(respect_robots=False) as f:
        r = f.get(f"http://rebind.example:{server.port}/r", allowed_hosts=["rebind.example"])
    assert r.outcome == "refused" and r.attempts == 1 and "0.0.0.0, a unspecified address" in (r.error or "")
    assert r.body is None and server.count() == 0 and asked == ["127.0.0.1", "0.0.0.0"]


def test_a_proxy_carries_every_request(server: LocalServer) -> None:
    server.route("/robots.txt", Reply(body="User-agent: *\nDisallow: /private/\n"))
    server.route("/r", Reply(body=b"report"))
    with ProxyServer() as proxy, fetcher(proxy=proxy.url) as f:
        r = f.get(server.url("/r"), allowed_hosts=HOSTS)
        refused = f.get(server.url("/private/x"), allowed_hosts=HOSTS)
    assert r.outcome == "fetched" and r.body == b"report"
    assert refused.outcome == "refused"  # the URL policy and robots.txt hold through a proxy
    assert proxy.seen == [server.url("/robots.txt"), server.url("/r")]


def test_the_environments_proxy_only_with_trust_env(server: LocalServer, monkeypatch) -> None:
    server.route("/r", Reply(body=b"report"))
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with fetcher(respect_robots=False) as f:
            assert f.get(server.url("/r"), allowed_hosts=HOSTS).outcome == "fetched"
        assert proxy.seen == []  # off by default: a run does not depend on the shell it starts in
        with fetcher(respect_robots=False, trust_env=True) as f:
            assert f.get(server.url("/r"), allowed_hosts=HOSTS).outcome == "fetched"
        assert proxy.seen == [server.url("/r")]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with fetcher(respect_robots=False, trust_env=True) as f:
            assert f.get(server.url("/r"), allowed_hosts=HOSTS).outcome == "fetched"
    assert proxy.seen == [server.url("/r")] and server.count("/r") == 3


def test_roots_that_cannot_be_read_are_an_error_at_once(tmp_path) -> None:
    with pytest.raises(OSError):
        Fetcher(ca_certs=str(tmp_path / "missing.pem"))


@pytest.fixture
def tls_server(tmp_path) -> Iterator[tuple[LocalServer, str]]:
    """An HTTPS server on 127.0.0.1 with a certificate from a throwaway CA, and that CA's PEM file."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    roots = tmp_path / "roots.pem"
    ca.cert_pem.write_to_path(str(roots))
    with LocalServer("127.0.0.1", tls=context) as srv:
        srv.route("/r", Reply(body=b"secure report"))
        yield srv, str(roots)


def test_https_with_the_sites_roots_is_fetched_and_kept_alive(tls_server: tuple[LocalServer, str]) -> None:
    srv, roots = tls_server
    with fetcher(ca_certs=roots) as f:
        results = [f.get(srv.url("/r"), allowed_hosts=HOSTS) for _ in range(3)]
    assert [(r.outcome, r.body) for r in results] == [("fetched", b"secure report")] * 3
    assert len({r.peer_port for r in srv.requests_for("/r")}) == 1


def test_https_with_an_untrusted_certificate_fails_without_retries(tls_server: tuple[LocalServer, str]) -> None:
    srv, _ = tls_server
    with fetcher(retries=3) as f:  # certifi's roots do not include the throwaway CA
        r = f.get(srv.url("/r"), allowed_hosts=HOSTS)
    assert r.outcome == "failed" and r.attempts == 1 and "certificate not accepted" in (r.error or "")
    assert srv.count("/r") == 0


def test_https_to_a_pinned_address_verifies_the_name(tmp_path, monkeypatch) -> None:
    # The connection goes to the address checked, the certificate is still checked against the name.
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    roots = tmp_path / "roots.pem"
    ca.cert_pem.write_to_path(str(roots))
    resolver(monkeypatch, "reports.example", ["127.0.0.1"])
    outcomes = []
    for name in ("reports.example", "other.example"):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        with LocalServer("127.0.0.1", tls=context) as srv, fetcher(ca_certs=str(roots), retries=0) as f:
            srv.route("/r", Reply(body=b"secure report"))
            r = f.get(f"https://reports.example:{srv.port}/r", allowed_hosts=["reports.example"])
            outcomes.append((r.outcome, r.body, srv.count("/r"), "certificate not accepted" in (r.error or "")))
    assert outcomes == [("fetched", b"secure report", 1, False), ("failed", None, 0, True)]


# -- politeness --------------------------------------------------------------------------------------


def test_per_host_delay_between_request_starts(server: LocalServer) -> None:
    server.route("/a", Reply(body=b"a"))
    server.route("/b", Reply(body=b"b"))
    with fetcher(delay=0.3, per_host_concurrency=4, respect_robots=False) as f:
        threads = [
            threading.Thread(target=f.get, args=(server.url(p),), kwargs={"allowed_hosts": HOSTS})
            for p in ("/a", "/b", "/a")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    starts = sorted(r.at for r in server.requests)
    assert len(starts) == 3
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(starts))


def in_flight(server: LocalServer, path: str) -> dict[str, int]:
    """Route `path` to a slow page that records the most requests it had in flight at once."""
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow(req: Request) -> Reply:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.15)
        with lock:
            state["now"] -= 1
        return Reply(body=b"ok")

    server.route(path, slow)
    return state


def get_at_once(gets: list[tuple[Fetcher, str]]) -> None:
    """Each (fetcher, url) fetched on a thread of its own, all started together."""
    threads = [threading.Thread(target=f.get, args=(url,), kwargs={"allowed_hosts": HOSTS}) for f, url in gets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_per_host_concurrency_limit(server: LocalServer) -> None:
    state = in_flight(server, "/s")
    with fetcher(per_host_concurrency=2, respect_robots=False) as f:
        get_at_once([(f, server.url("/s"))] * 6)
    assert server.count("/s") == 6 and state["max"] == 2


def test_fetchers_sharing_gates_share_the_host_limits(server: LocalServer) -> None:
    # A run's fetch tasks each have a Fetcher: with one HostGates, two requests in flight per host in
    # all, and starts `delay` apart across both; without it, each Fetcher has limits of its own.
    state = in_flight(server, "/s")
    gates = HostGates()
    with fetcher(per_host_concurrency=2, respect_robots=False, gates=gates) as a, \
            fetcher(per_host_concurrency=2, respect_robots=False, gates=gates) as b:
        get_at_once([(a, server.url("/s"))] * 4 + [(b, server.url("/s"))] * 4)
    assert state["max"] == 2
    state["max"] = 0
    with fetcher(per_host_concurrency=2, respect_robots=False) as a, \
            fetcher(per_host_concurrency=2, respect_robots=False) as b:
        get_at_once([(a, server.url("/s"))] * 4 + [(b, server.url("/s"))] * 4)
    assert state["max"] == 4 and server.count("/s") == 16
    server.route("/a", Reply(body=b"a"))
    with fetcher(delay=0.3, respect_robots=False, gates=gates) as a, \
            fetcher(delay=0.3, respect_robots=False, gates=gates) as b:
        get_at_once([(a, server.url("/a")), (b, server.url("/a")), (a, server.url("/a"))])
    starts = sorted(r.at for r in server.requests_for("/a"))
    assert len(starts) == 3 and all(y - x >= 0.28 for x, y in itertools.pairwise(starts))


def test_crawl_delay_in_robots_slows_the_host(server: LocalServer) -> None:
    server.route("/robots.txt", Reply(body="User-agent: *\nCrawl-delay: 5\n"))
    server.route("/x", Reply(body=b"ok"))
    with fetcher(max_backoff=0.4) as f:  # the crawl delay is capped at max_backoff
        f.get(server.url("/x"), allowed_hosts=HOSTS)
        f.get(server.url("/x"), allowed_hosts=HOSTS)
    first, second = server.requests_for("/x")
    assert 0.38 <= second.at - first.at < 1.5
