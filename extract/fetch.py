"""Polite, bounded HTTP fetching of agency pages (httpx, synchronous, thread-safe).

One `Fetcher` serves every agency of a run: the URL policy (`check_url`) on every redirect hop and on the
address each connection is made to, robots.txt, per-host concurrency and spacing, retries with backoff,
caps on the decoded body and on the time a response may take, conditional requests. Network trouble is
never raised: every call ends in a `FetchResult` whose `outcome` says what happened.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import ipaddress
import random
import socket
import ssl
import threading
import time
import urllib.request
import urllib.robotparser
import zlib
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpcore
import httpx

from govreports.extract.decode import http_charset_from_content_type

__all__ = ["DEFAULT_USER_AGENT", "PROCESS_GATES", "FetchResult", "Fetcher", "HostGates", "UrlRefused", "check_url"]

DEFAULT_USER_AGENT = "govreports/0.1 (+https://example.invalid/govreports; open-government annual report research)"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DRAIN_BYTES = 64 * 1024  # an unwanted body (a 404 page) read this far to keep its connection
_ROBOTS_MAX_BYTES = 512 * 1024  # Google's limit; a larger robots.txt is treated as missing
_INFLATE_CHUNK = 64 * 1024  # decompressed output per step, so memory stays bounded whatever the ratio
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}  # by coding
_DEADLINE_FACTOR = 3.0  # whole-response deadline, as a multiple of the per-read timeout
# Requests in flight are bounded per host by the gates; idle connections kept for a run over many hosts.
_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=512)
# Why an address may not be contacted, most specific first (169.254.0.0/16 is also "private").
_IP_PROBLEMS = ("unspecified", "link_local", "multicast", "private", "reserved")


class UrlRefused(ValueError):
    """A URL the policy does not let us request; the message says why."""


def _norm_host(host: str) -> str:
    """Lower-case, no brackets or trailing dot, IDNA (punycode) form when the name is not ASCII."""
    host = host.strip().strip("[]").rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _ip_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> str | None:
    """Why an address must not be contacted, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    for name in _IP_PROBLEMS:
        if getattr(ip, f"is_{name}"):
            return f"{name.replace('_', '-')} address"
    return None if ip.is_global else "non-global address"


def check_url(url: str, allowed_hosts: Collection[str], allow_loopback: bool = False) -> None:
    """Raise `UrlRefused` unless `url` is http(s), names a host in `allowed_hosts`, and that host is not
    (and does not resolve to) an address `_ip_problem` refuses. Opens no connection; a name that does not
    resolve is let through: the request itself will fail."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused(f"scheme {scheme or '(none)'!r} is not http or https")
    host = _norm_host(parts.hostname or "")
    if not host:
        raise UrlRefused("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("URL carries credentials")
    if host not in {_norm_host(h) for h in allowed_hosts}:
        raise UrlRefused(f"host {host} is not among the agency's hosts")
    with suppress(OSError):  # a name that does not resolve
        _addresses(host, port or (443 if scheme == "https" else 80), allow_loopback)


def _addresses(host: str, port: int, allow_loopback: bool) -> list[str]:
    """The addresses `host` resolves to, each one checked (`UrlRefused` names the first that may not be
    contacted); OSError when the name does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    addrs = list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))  # no IPv6 zone id
    for addr in addrs:
        problem = _ip_problem(ipaddress.ip_address(addr), allow_loopback)
        if problem:
            where = "is" if addr == host else f"resolves to {addr},"
            raise UrlRefused(f"host {host} {where} a {problem}")
    return addrs


@functools.cache
def _certifi_tls() -> ssl.SSLContext:
    """certifi's roots, loaded once per process: loading them is slow, and a context can be shared."""
    return httpx.create_ssl_context(trust_env=False)


_deadline = threading.local()  # .at: time.monotonic() by which this thread's response must be complete


@contextmanager
def _deadline_in(seconds: float) -> Iterator[None]:
    """Every read and write of this thread's request, headers included, ends within `seconds` from now."""
    _deadline.at, _deadline.seconds = time.monotonic() + seconds, seconds
    try:
        yield
    finally:
        _deadline.at = None


def _within_deadline(timeout: float | None) -> float | None:
    """The socket timeout for the next read or write: `timeout`, shortened to what the deadline leaves."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        # Not retried: a server that trickles forever would do it again.
        raise _BodyError(f"response not complete within {_deadline.seconds:g} s (the whole-response deadline)")
    return left if timeout is None else min(timeout, left)


@dataclass
class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by the request's deadline: httpx's timeouts are per read,
    so headers trickled a byte at a time, or an endless run of `100 Continue`, would never end otherwise."""

    stream: httpcore.NetworkStream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            return self.stream.read(max_bytes, _within_deadline(timeout))
        except httpcore.ReadTimeout:
            _within_deadline(None)  # the deadline, not the read timeout, when it has passed
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _within_deadline(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self.stream.start_tls(ssl_context, server_hostname, _within_deadline(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.SyncBackend):
    """httpcore's sockets, each a `_DeadlineStream` (proxies: the proxy resolves the names)."""

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(super().connect_tcp(host, port, _within_deadline(timeout), local_address,
                                                   socket_options))


@dataclass
class _PinnedBackend(_DeadlineBackend):
    """Resolves the name once, here, checks every address, and connects to one of those: a name cannot
    resolve to a public address for `check_url` and to a private one for the connection (DNS rebinding).
    TLS still verifies the name."""

    allow_loopback: bool

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        try:
            addrs = _addresses(host, port, self.allow_loopback)
        except OSError as exc:
            raise httpcore.ConnectError(f"{type(exc).__name__}: {exc}") from exc
        for addr in addrs[:-1]:  # the next address when one does not answer, as socket.create_connection does
            with suppress(httpcore.ConnectError):
                return super().connect_tcp(addr, port, timeout, local_address, socket_options)
        return super().connect_tcp(addrs[-1], port, timeout, local_address, socket_options)


class _Stream(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream  # httpcore's body of a pooled response

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        self._stream.close()


@dataclass
class _PinnedTransport(httpx.BaseTransport):
    """httpx's transport over an httpcore pool on one of our backends (httpx.HTTPTransport takes no
    network backend; the pool under it does). Its errors are httpcore's."""

    pool: httpcore.ConnectionPool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        u = request.url
        resp = self.pool.handle_request(httpcore.Request(
            request.method, httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions))
        return httpx.Response(resp.status, headers=resp.headers, stream=_Stream(resp.stream),
                              extensions=resp.extensions)

    def close(self) -> None:
        self.pool.close()


def _with_scheme(proxy: str) -> str:
    return proxy if "://" in proxy else f"http://{proxy}"


def _pool(tls: ssl.SSLContext, backend: _DeadlineBackend, proxy: str | None = None) -> _PinnedTransport:
    """A transport, direct or through an HTTP(S) proxy, whose connections keep the request's deadline."""
    opts: dict[str, Any] = {
        "ssl_context": tls, "max_connections": _LIMITS.max_connections, "network_backend": backend,
        "max_keepalive_connections": _LIMITS.max_keepalive_connections, "keepalive_expiry": _LIMITS.keepalive_expiry}
    if proxy is None:
        return _PinnedTransport(httpcore.ConnectionPool(**opts))
    p = httpx.Proxy(_with_scheme(proxy))  # parses the URL and its credentials as httpx does
    url = httpcore.URL(scheme=p.url.raw_scheme, host=p.url.raw_host, port=p.url.port, target=p.url.raw_path)
    return _PinnedTransport(httpcore.HTTPProxy(proxy_url=url, proxy_auth=p.raw_auth, proxy_headers=p.headers.raw,
                                               **opts))


def _env_proxies(tls: ssl.SSLContext) -> dict[str, httpx.BaseTransport | None]:
    """HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY mounted as httpx mounts them itself, which it stops
    doing once handed a transport. A URL mounted to None goes direct, through the pinned transport."""
    env = urllib.request.getproxies()
    mounts: dict[str, httpx.BaseTransport | None] = {
        f"{scheme}://": _pool(tls, _DeadlineBackend(), env[scheme])
        for scheme in ("http", "https", "all") if env.get(scheme)}
    for host in filter(None, (h.strip() for h in env.get("no", "").split(","))):
        if host == "*":
            return {}
        try:  # an address or localhost is matched as it is, a domain with its subdomains
            host = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
        except ValueError:
            host = host if "://" in host or host.lower() == "localhost" else f"*{host}"
        mounts[host if "://" in host else f"all://{host}"] = None
    return mounts


@dataclass(slots=True)
class FetchResult:
    """What one `Fetcher.get` ended with."""

    url: str
    final_url: str
    status: int | None
    body: bytes | None
    content_type: str | None
    declared_charset: str | None  # from the Content-Type header, lower-case
    etag: str | None
    last_modified: str | None
    sha256: str | None
    outcome: str  # "fetched" (200 with a body) | "not_modified" (304) | "failed" | "refused"
    error: str | None
    attempts: int


@dataclass(slots=True)
class _Attempt:
    """One request: a response (status, headers, body) or an error."""

    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    refused: bool = False  # the address connected to is not one the policy lets us contact


class _BodyError(Exception):
    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def _decoded(chunks: Iterable[bytes], content_encoding: str | None) -> Iterator[bytes]:
    """The body decoded from its Content-Encoding, at most `_INFLATE_CHUNK` bytes a piece. httpx's own
    decoders inflate a whole read at once, and nested encodings multiply: a few KB could become gigabytes."""
    codings = [c for c in (x.strip().lower() for x in (content_encoding or "").split(",")) if c not in ("", "identity")]
    if not codings:
        yield from chunks
        return
    coding = codings[0]
    if len(codings) > 1 or coding not in _WBITS:
        raise _BodyError(f"unsupported Content-Encoding {content_encoding!r} (one of gzip or deflate is read)")
    z = zlib.decompressobj(_WBITS[coding])
    probe = coding == "deflate"  # should be zlib-wrapped; some servers send it raw
    for data in chunks:
        while True:
            try:
                out = z.decompress(data, _INFLATE_CHUNK)
            except zlib.error as exc:
                if not probe:
                    raise _BodyError(f"cannot decode {coding} body: {exc}") from None
                z, probe = zlib.decompressobj(-zlib.MAX_WBITS), False
                continue
            probe = False
            yield out
            data = z.unconsumed_tail
            # A full piece may leave output pending inside zlib: ask again until less comes out.
            if not data and len(out) < _INFLATE_CHUNK:
                break
    if coding != "deflate" and not z.eof:
        raise _BodyError(f"{coding} body cut short", retryable=True)
    yield z.flush()


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when.replace(tzinfo=when.tzinfo or UTC) - datetime.now(UTC)).total_seconds())


# What an exception means for the attempt: its label and whether it is retried; the first match wins. The
# direct transport raises httpcore's errors, the proxy transports httpx's.
_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str, bool], ...] = (
    ((httpx.TimeoutException, httpcore.TimeoutException, TimeoutError), "timed out", True),
    ((httpx.ConnectError, httpcore.ConnectError), "cannot connect", True),
    ((httpx.RemoteProtocolError, httpcore.RemoteProtocolError), "body cut short or bad response", True),
    ((httpx.LocalProtocolError, httpcore.LocalProtocolError, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol,
      httpx.InvalidURL, ValueError), "cannot send the request", False),
    ((httpx.TransportError, httpcore.NetworkError, OSError), "network error", True),
)


def _failed(exc: Exception) -> _Attempt:
    if isinstance(exc, UrlRefused):
        return _Attempt(error=f"connection refused by the URL policy: {exc}", refused=True)
    if isinstance(exc, _BodyError):
        return _Attempt(error=str(exc), retryable=exc.retryable)
    cause: BaseException | None = exc  # httpx wraps the socket's errors
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):  # the same certificate next time: not retried
        return _Attempt(error=f"TLS certificate not accepted: {cause.verify_message or cause}")
    for kinds, label, retryable in _FAILURES:
        if isinstance(exc, kinds):
            return _Attempt(error=f"{label} ({type(exc).__name__}: {exc})", retryable=retryable)
    raise exc


@dataclass
class _HostGate:
    """One host's politeness state: requests in flight, threads at work on its pages, and when the next
    request may start."""

    slots: threading.BoundedSemaphore
    lanes: threading.BoundedSemaphore
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_start: float = 0.0  # time.monotonic() before which no request to the host may start
    crawl_delay: float = 0.0  # robots.txt's Crawl-delay


class HostGates:
    """Per-host politeness state that several Fetchers can share. A run's fetch tasks each have a
    Fetcher: given one HostGates (`PROCESS_GATES`), a city portal hosting all its departments sees the
    limits of one crawler, not of one per task. A Fetcher given none has its own."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, int], _HostGate] = {}
        self._lock = threading.Lock()

    def gate(self, host: str, concurrency: int) -> _HostGate:
        with self._lock:
            if (host, concurrency) not in self._gates:
                self._gates[host, concurrency] = _HostGate(
                    threading.BoundedSemaphore(concurrency), threading.BoundedSemaphore(concurrency))
            return self._gates[host, concurrency]


PROCESS_GATES = HostGates()  # for the Fetchers of one run (flows.pipeline's fetch tasks)


@dataclass(kw_only=True, eq=False)
class Fetcher:
    """Fetches pages politely and within bounds; share one instance between threads, or share its
    politeness between instances with `gates`."""

    user_agent: str = DEFAULT_USER_AGENT
    timeout: float = 20.0
    max_bytes: int = 20 * 2**20
    max_file_bytes: int = 50 * 2**20  # a report file (PDF, Word): signed scans and embedded fonts make them large
    retries: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0
    per_host_concurrency: int = 2
    delay: float = 0.5
    respect_robots: bool = True
    allow_loopback: bool = False
    max_redirects: int = 5
    max_reports: int = 500  # report pages a crawl fetches per agency per run (extract.crawl)
    gates: HostGates | None = None
    ca_certs: str | None = None
    proxy: str | None = field(default=None, repr=False)  # may carry a password
    trust_env: bool = False

    def __post_init__(self) -> None:
        if self.per_host_concurrency < 1:
            raise ValueError("per_host_concurrency must be at least 1")
        self.retries, self.max_reports = max(0, self.retries), max(1, self.max_reports)
        # Redirects and retries are ours, so that every hop passes check_url; bodies are read raw and decoded
        # by _decoded, within bounds. No cookies are kept: every request stands alone, as a log can replay it.
        # TLS roots: certifi's (Mozilla's), SSL_CERT_FILE's with trust_env, or a PEM file of one's own.
        tls = (ssl.create_default_context(cafile=self.ca_certs) if self.ca_certs
               else httpx.create_ssl_context(trust_env=True) if self.trust_env else _certifi_tls())
        # Through a proxy, the proxy resolves the name: the policy has checked what it resolves to here.
        backend = _DeadlineBackend() if self.proxy else _PinnedBackend(self.allow_loopback)
        self._client = httpx.Client(
            transport=_pool(tls, backend, self.proxy or None),
            mounts=_env_proxies(tls) if self.trust_env and not self.proxy else None,
            timeout=self.timeout, cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": self.user_agent, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"})
        self._gates = self.gates if self.gates is not None else HostGates()
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    def get(
        self, url: str, *, allowed_hosts: Collection[str], etag: str | None = None, last_modified: str | None = None,
        file: bool = False
    ) -> FetchResult:
        """GET `url` (conditionally when `etag` / `last_modified` are given), following redirects
        only to URLs that pass `check_url` against `allowed_hosts`. A `file` may be `max_file_bytes` long."""
        # A validator that is not ASCII cannot be sent as it was received: the request goes without it.
        validators = (("If-None-Match", etag), ("If-Modified-Since", last_modified))
        headers = {name: value for name, value in validators if value and value.isascii()}
        return self._get(url, allowed_hosts, headers, robots=self.respect_robots,
                         max_bytes=self.max_file_bytes if file else self.max_bytes)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(
        self, url: str, allowed_hosts: Collection[str], headers: dict[str, str], *, robots: bool, max_bytes: int
    ) -> FetchResult:
        """The redirect chain, each hop checked against the policy and robots.txt, each with its retries."""
        attempts, current, a = 0, url, _Attempt()

        def result(outcome: str, error: str | None = None) -> FetchResult:
            body, ctype = (a.body if outcome == "fetched" else None), a.headers.get("content-type")
            return FetchResult(
                url=url, final_url=current, status=a.status, body=body, content_type=ctype,
                declared_charset=http_charset_from_content_type(ctype), etag=a.headers.get("etag"),
                last_modified=a.headers.get("last-modified"), outcome=outcome, error=error, attempts=attempts,
                sha256=hashlib.sha256(body).hexdigest() if body is not None else None)

        try:
            check_url(url, allowed_hosts, self.allow_loopback)
        except UrlRefused as exc:
            return result("refused", str(exc))
        seen = {urldefrag(url)[0]}
        while True:
            if robots and not self._robots_allow(current, allowed_hosts):
                return result("refused", "disallowed by robots.txt")
            a, n = self._with_retries(current, headers, max_bytes)
            attempts += n
            if a.error is not None:
                return result("refused" if a.refused else "failed", a.error)
            if a.status not in _REDIRECTS:
                outcome = {200: "fetched", 304: "not_modified"}.get(a.status or 0)
                return result(outcome) if outcome else result("failed", f"HTTP {a.status}")
            location = a.headers.get("location")
            if not location:
                return result("failed", f"HTTP {a.status} redirect without a Location header")
            nxt = urldefrag(urljoin(current, location.strip()))[0]
            if nxt in seen:
                return result("failed", f"redirect loop at {nxt}")
            if len(seen) > self.max_redirects:
                return result("failed", f"too many redirects (more than {self.max_redirects})")
            try:
                check_url(nxt, allowed_hosts, self.allow_loopback)
            except UrlRefused as exc:
                return result("refused", f"redirect to {nxt} refused: {exc}")
            seen.add(nxt)
            current = nxt

    def _with_retries(self, url: str, headers: Mapping[str, str], max_bytes: int) -> tuple[_Attempt, int]:
        for n in range(1, self.retries + 2):
            a = self._once(url, headers, max_bytes)
            if not a.retryable or n > self.retries:
                break
            time.sleep(self._pause(n, a.retry_after))
        if a.retryable and n > 1:
            a.error = f"{a.error} (gave up after {n} attempts)"
        return a, n

    def _pause(self, n: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        # Full jitter: spreads the retries of many threads instead of synchronising them.
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** (n - 1)))

    def _once(self, url: str, headers: Mapping[str, str], max_bytes: int) -> _Attempt:
        with self._slot(url), _deadline_in(_DEADLINE_FACTOR * self.timeout):
            try:
                # Closing the response keeps its connection when the body was read to its end, else closes it.
                with self._client.stream("GET", url, headers=headers) as resp:
                    return self._read(resp, max_bytes)
            except Exception as exc:
                return _failed(exc)

    def _read(self, resp: httpx.Response, max_bytes: int) -> _Attempt:
        status, hdrs = resp.status_code, resp.headers
        if status != 200:
            # The body of a redirect, 304, 4xx or 5xx is not needed: read to its end, it keeps the connection
            # for the next request; a long or slow one is abandoned with its connection.
            with suppress(_BodyError):
                for _ in resp.iter_raw():
                    if resp.num_bytes_downloaded > _DRAIN_BYTES:
                        break
                    _within_deadline(None)
            retryable = status == 429 or status >= 500
            return _Attempt(status=status, headers=hdrs, error=f"HTTP {status}" if retryable else None,
                            retryable=retryable,
                            retry_after=_retry_after(hdrs.get("retry-after")) if status in (429, 503) else None)
        length = hdrs.get("content-length", "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise _BodyError(f"body larger than {max_bytes} bytes (Content-Length {int(length)})")
        chunks: list[bytes] = []
        total = 0
        # The bytes as sent (a gzip bomb stays small here), decoded within bounds.
        for piece in _decoded(resp.iter_raw(), hdrs.get("content-encoding")):
            total += len(piece)
            if total > max_bytes or resp.num_bytes_downloaded > max_bytes:
                raise _BodyError(f"body larger than {max_bytes} bytes")
            chunks.append(piece)
            _within_deadline(None)  # pieces that come fast, a decoded body that keeps growing
        if not total and "content-length" not in hdrs and "chunked" not in hdrs.get("transfer-encoding", "").lower():
            # A body without framing ends when the connection closes, as HTTP/1.0 allows (old servers send
            # pages so); none at all is a connection closed after the headers, not an empty page.
            raise _BodyError("connection closed after the headers, no body", retryable=True)
        return _Attempt(status=status, headers=hdrs, body=b"".join(chunks))

    # -- politeness -------------------------------------------------------------------------------

    @contextmanager
    def lane(self, url: str) -> Iterator[None]:
        """Hold one of the host's `per_host_concurrency` lanes while a thread works through a series of
        its pages (an agency). The host never has more requests in flight than that anyway: a thread beyond
        it would only wait for a request slot between pages, taking the GIL from the threads that work."""
        with self._gate(url).lanes:
            yield

    def _gate(self, url: str) -> _HostGate:
        return self._gates.gate(_norm_host(urlsplit(url).hostname or ""), self.per_host_concurrency)

    @contextmanager
    def _slot(self, url: str) -> Iterator[None]:
        """At most `per_host_concurrency` requests in flight per host, starts at least `delay` apart."""
        gate = self._gate(url)
        with gate.slots:
            with gate.lock:
                now = time.monotonic()
                start = max(now, gate.next_start)
                gate.next_start = start + max(self.delay, gate.crawl_delay)
            time.sleep(start - now)
            yield

    def _robots_allow(self, url: str, allowed_hosts: Collection[str]) -> bool:
        """robots.txt's word on `url`, read once per host; a missing or failing file allows everything."""
        parts = urlsplit(url)
        key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._robots_locks.setdefault(key, threading.Lock()):  # one fetch per host, however many threads ask
            if key not in self._robots:
                r = self._get(f"{key}/robots.txt", allowed_hosts, {}, robots=False,
                              max_bytes=min(self.max_bytes, _ROBOTS_MAX_BYTES))
                parser: urllib.robotparser.RobotFileParser | None = None
                if r.body is not None:
                    parser = urllib.robotparser.RobotFileParser()
                    parser.parse(r.body.decode("utf-8", "replace").splitlines())
                    if crawl_delay := parser.crawl_delay(self.user_agent):
                        gate = self._gate(url)
                        gate.crawl_delay = max(gate.crawl_delay, min(float(crawl_delay), self.max_backoff))
                self._robots[key] = parser
        parser = self._robots[key]
        return parser is None or parser.can_fetch(self.user_agent, url)
