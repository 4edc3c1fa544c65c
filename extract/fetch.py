"""Polite, bounded HTTP fetching of agency pages (httpx, synchronous, thread-safe).

One `Fetcher` serves every agency of a run. It enforces the URL policy (`check_url`) on the first URL
and on every redirect hop before any request is sent, and again on the address each connection is
made to; honours robots.txt, keeps per-host concurrency and spacing, retries transient failures with
backoff, caps the decoded body size and the time a response may take, and makes conditional requests.
It never raises for network trouble: every call ends in a `FetchResult` whose `outcome` says what
happened.
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
from types import TracebackType
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
    # Order matters: 169.254.0.0/16 is also "private", and the more specific reason helps the reader.
    checks = (
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("non-global", not ip.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def check_url(url: str, allowed_hosts: Collection[str], allow_loopback: bool = False) -> None:
    """Raise `UrlRefused` unless `url` may be requested; never opens a connection.

    The URL must be http(s), name a host in `allowed_hosts`, and that host must not be (or resolve to)
    a private, link-local, multicast, reserved or unspecified address, nor loopback unless
    `allow_loopback`. A name that does not resolve is let through: the request itself will fail.
    """
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
    allowed = {_norm_host(h) for h in allowed_hosts}
    if host not in allowed:
        raise UrlRefused(f"host {host} is not among the agency's hosts")
    try:
        _addresses(host, port or (443 if scheme == "https" else 80), allow_loopback)
    except OSError:  # a name that does not resolve
        return


def _addresses(host: str, port: int, allow_loopback: bool) -> list[str]:
    """The addresses `host` resolves to, each one checked: `UrlRefused` names the first that may not be
    contacted; OSError when the name does not resolve."""
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


class _PinnedBackend(httpcore.SyncBackend):
    """Connects to an address that passed the URL policy: the name is resolved once, here, and the
    connection made to the address checked, so that a name cannot resolve to a public address for
    `check_url` and to a private one for the connection (DNS rebinding). TLS still verifies the name."""

    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback

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
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        getattr(self._stream, "close", lambda: None)()


class _PinnedTransport(httpx.BaseTransport):
    """httpx's direct transport on `_PinnedBackend` (httpx.HTTPTransport takes no network backend; the
    httpcore pool under it does). Its errors are httpcore's."""

    def __init__(self, tls: ssl.SSLContext, allow_loopback: bool) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls, max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections, keepalive_expiry=_LIMITS.keepalive_expiry,
            network_backend=_PinnedBackend(allow_loopback))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        u = request.url
        resp = self._pool.handle_request(httpcore.Request(
            request.method, httpcore.URL(scheme=u.raw_scheme, host=u.raw_host, port=u.port, target=u.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions))
        return httpx.Response(resp.status, headers=resp.headers, stream=_Stream(resp.stream),  # type: ignore[arg-type]
                              extensions=resp.extensions)

    def close(self) -> None:
        self._pool.close()


def _proxy_mounts(proxy: str | None, trust_env: bool, tls: ssl.SSLContext) -> dict[str, httpx.BaseTransport | None]:
    """Which requests go through a proxy: every one (`proxy`), those the environment's HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY and NO_PROXY send there, read as httpx reads them (`trust_env`), or none. A
    URL mounted to None goes direct, through the pinned transport. Through a proxy, the proxy resolves
    the name: the policy has checked what it resolves to here."""
    def via(url: str) -> httpx.BaseTransport:
        return httpx.HTTPTransport(proxy=url if "://" in url else f"http://{url}", verify=tls, limits=_LIMITS)

    if proxy:
        return {"all://": via(proxy)}
    if not trust_env:
        return {}
    env = urllib.request.getproxies()
    mounts: dict[str, httpx.BaseTransport | None] = {f"{s}://": via(env[s]) for s in ("http", "https", "all")
                                                     if env.get(s)}
    for host in filter(None, (h.strip() for h in env.get("no", "").split(","))):
        if host == "*":
            return {}
        try:  # an address or localhost is matched as it is, a domain with its subdomains
            pattern = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
        except ValueError:
            pattern = host if host.lower() == "localhost" or "://" in host else f"*{host}"
        mounts[pattern if "://" in pattern else f"all://{pattern}"] = None
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
    elapsed: float


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


class _Inflater:
    """Content-Encoding decoding with bounded output per step (a client's own decoders inflate a whole
    read at once, and nested encodings multiply: a few KB could become gigabytes in memory)."""

    def __init__(self, content_encoding: str | None) -> None:
        codings = [c for c in (x.strip().lower() for x in (content_encoding or "").split(","))
                   if c not in ("", "identity")]
        if len(codings) > 1 or (codings and codings[0] not in _WBITS):
            raise _BodyError(f"unsupported Content-Encoding {content_encoding!r} (one of gzip or deflate is read)")
        self.coding = codings[0] if codings else None
        self._z = zlib.decompressobj(_WBITS[self.coding]) if self.coding else None
        self._probe = self.coding == "deflate"  # should be zlib-wrapped; some servers send it raw

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._z is None:
            if data:
                yield data
            return
        buf = data
        while True:
            try:
                out = self._z.decompress(buf, _INFLATE_CHUNK)
            except zlib.error as exc:
                if self._probe:
                    self._probe = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise _BodyError(f"cannot decode {self.coding} body: {exc}") from None
            self._probe = False
            if out:
                yield out
            buf = self._z.unconsumed_tail
            # A full chunk may leave output pending inside zlib: ask again until less comes out.
            if not buf and len(out) < _INFLATE_CHUNK:
                return

    def finish(self) -> bytes:
        if self._z is None:
            return b""
        if self.coding != "deflate" and not self._z.eof:
            raise _BodyError(f"{self.coding} body cut short", retryable=True)
        return self._z.flush()


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _drain(resp: httpx.Response, deadline: float) -> None:
    """Read an unwanted body (a 304's, a 404 page) to its end, so that its connection is kept for the next
    request instead of closed; a long or slow body is abandoned with its connection."""
    read = 0
    for raw in resp.iter_raw():
        read += len(raw)
        if read > _DRAIN_BYTES or time.monotonic() > deadline:
            return


def _cause(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """`exc` or the first exception of `kind` in its chain (httpx and httpcore wrap the socket's errors)."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, kind):
        seen = seen.__cause__ or seen.__context__
    return seen


# What an exception means for the attempt: its label and whether it is retried; the first match wins. The
# direct transport raises httpcore's errors, the proxy transports httpx's.
_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str, bool], ...] = (
    ((httpx.TimeoutException, httpcore.TimeoutException, TimeoutError), "timed out", True),
    ((httpx.ConnectError, httpcore.ConnectError), "cannot connect", True),
    ((httpx.RemoteProtocolError, httpcore.RemoteProtocolError), "body cut short or bad response", True),
    ((httpx.LocalProtocolError, httpcore.LocalProtocolError, httpx.UnsupportedProtocol, httpcore.UnsupportedProtocol,
      httpx.InvalidURL, ValueError), "cannot send the request", False),
    ((httpx.TransportError, httpcore.NetworkError, httpcore.ProxyError, OSError), "network error", True),
)


def _failed(exc: Exception) -> _Attempt:
    if isinstance(exc, UrlRefused):
        return _Attempt(error=f"connection refused by the URL policy: {exc}", refused=True)
    if isinstance(exc, _BodyError):
        return _Attempt(error=str(exc), retryable=exc.retryable)
    cert = _cause(exc, ssl.SSLCertVerificationError)
    if isinstance(cert, ssl.SSLCertVerificationError):  # the same certificate next time: not retried
        return _Attempt(error=f"TLS certificate not accepted: {cert.verify_message or cert}")
    for kinds, label, retryable in _FAILURES:
        if isinstance(exc, kinds):
            return _Attempt(error=f"{label} ({type(exc).__name__}: {exc})", retryable=retryable)
    raise exc


class _HostGate:
    """One host's politeness state: requests in flight, and when the next one may start."""

    def __init__(self, concurrency: int) -> None:
        self.slots = threading.BoundedSemaphore(concurrency)
        self.lanes = threading.BoundedSemaphore(concurrency)  # threads working through the host's pages
        self.lock = threading.Lock()
        self.next_start = 0.0  # time.monotonic() before which no request to the host may start


class HostGates:
    """Per-host politeness state that several Fetchers can share. A run's fetch tasks each have a
    Fetcher: given one HostGates (`PROCESS_GATES`), a city portal hosting all its departments sees the
    limits of one crawler, not of one per task. A Fetcher given none has its own."""

    def __init__(self) -> None:
        self._gates: dict[tuple[str, int], _HostGate] = {}
        self._lock = threading.Lock()

    def gate(self, host: str, concurrency: int) -> _HostGate:
        with self._lock:
            gate = self._gates.get((host, concurrency))
            if gate is None:
                gate = self._gates[(host, concurrency)] = _HostGate(concurrency)
            return gate


PROCESS_GATES = HostGates()  # for the Fetchers of one run (flows.pipeline's fetch tasks)


class Fetcher:
    """Fetches pages politely and within bounds; share one instance between threads, or share its
    politeness between instances with `gates`."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout: float = 20.0,
        max_bytes: int = 20 * 2**20,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        per_host_concurrency: int = 2,
        delay: float = 0.5,
        respect_robots: bool = True,
        allow_loopback: bool = False,
        max_redirects: int = 5,
        gates: HostGates | None = None,
        ca_certs: str | None = None,
        proxy: str | None = None,
        trust_env: bool = False,
    ) -> None:
        if per_host_concurrency < 1:
            raise ValueError("per_host_concurrency must be at least 1")
        self.user_agent = user_agent
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.retries = max(0, retries)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.per_host_concurrency = per_host_concurrency
        self.delay = delay
        self.respect_robots = respect_robots
        self.allow_loopback = allow_loopback
        self.max_redirects = max_redirects
        # Redirects and retries are ours, so that every hop passes check_url; bodies are read raw and inflated
        # by _Inflater, within bounds. No cookies are kept: every request stands alone, as a log can replay it.
        # TLS roots: certifi's (Mozilla's), SSL_CERT_FILE's with trust_env, or a PEM file of one's own.
        tls = (ssl.create_default_context(cafile=ca_certs) if ca_certs
               else httpx.create_ssl_context(trust_env=True) if trust_env else _certifi_tls())
        self._client = httpx.Client(
            transport=_PinnedTransport(tls, allow_loopback), mounts=_proxy_mounts(proxy, trust_env, tls),
            headers={"User-Agent": user_agent, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"},
            timeout=timeout, trust_env=False, cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])))
        self._gates = gates if gates is not None else HostGates()
        self._lock = threading.Lock()
        self._host_delay: dict[str, float] = {}  # robots.txt Crawl-delay, when longer than `delay`
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}

    # -- public -----------------------------------------------------------------------------------

    def get(
        self,
        url: str,
        *,
        allowed_hosts: Collection[str],
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> FetchResult:
        """GET `url` (conditionally when `etag` / `last_modified` are given), following redirects
        only to URLs that pass `check_url` against `allowed_hosts`."""
        headers: dict[str, str] = {}
        # A validator that is not ASCII cannot be sent as it was received: the request goes without it.
        if etag and etag.isascii():
            headers["If-None-Match"] = etag
        if last_modified and last_modified.isascii():
            headers["If-Modified-Since"] = last_modified
        return self._get(url, allowed_hosts, headers, robots=self.respect_robots, max_bytes=self.max_bytes)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the redirect chain -----------------------------------------------------------------------

    def _get(
        self, url: str, allowed_hosts: Collection[str], headers: dict[str, str], *, robots: bool, max_bytes: int
    ) -> FetchResult:
        started = time.monotonic()
        attempts = 0
        current = url

        def result(outcome: str, error: str | None = None, a: _Attempt | None = None) -> FetchResult:
            a = a or _Attempt()
            body, ctype = (a.body if outcome == "fetched" else None), a.headers.get("content-type")
            return FetchResult(
                url=url, final_url=current, status=a.status, body=body, content_type=ctype,
                declared_charset=http_charset_from_content_type(ctype), etag=a.headers.get("etag"),
                last_modified=a.headers.get("last-modified"),
                sha256=hashlib.sha256(body).hexdigest() if body is not None else None, outcome=outcome,
                error=error, attempts=attempts, elapsed=time.monotonic() - started)

        try:
            check_url(url, allowed_hosts, self.allow_loopback)
        except UrlRefused as exc:
            return result("refused", str(exc))
        seen = {urldefrag(url)[0]}
        hops = 0
        while True:
            if robots and not self._robots_allow(current, allowed_hosts):
                return result("refused", "disallowed by robots.txt")
            a, n = self._with_retries(current, headers, max_bytes)
            attempts += n
            if a.error is not None:
                return result("refused" if a.refused else "failed", a.error, a)
            status = a.status
            if status in _REDIRECTS:
                location = a.headers.get("location")
                if not location:
                    return result("failed", f"HTTP {status} redirect without a Location header", a)
                nxt = urldefrag(urljoin(current, location.strip()))[0]
                if nxt in seen:
                    return result("failed", f"redirect loop at {nxt}", a)
                if hops >= self.max_redirects:
                    return result("failed", f"too many redirects (more than {self.max_redirects})", a)
                try:
                    check_url(nxt, allowed_hosts, self.allow_loopback)
                except UrlRefused as exc:
                    return result("refused", f"redirect to {nxt} refused: {exc}", a)
                seen.add(nxt)
                hops += 1
                current = nxt
                continue
            if status == 200:
                return result("fetched", None, a)
            if status == 304:
                return result("not_modified", None, a)
            return result("failed", f"HTTP {status}", a)

    # -- retries ----------------------------------------------------------------------------------

    def _with_retries(self, url: str, headers: Mapping[str, str], max_bytes: int) -> tuple[_Attempt, int]:
        n = 0
        while True:
            a = self._once(url, headers, max_bytes)
            n += 1
            if not a.retryable or n > self.retries:
                if a.retryable and a.error is not None and n > 1:
                    a.error = f"{a.error} (gave up after {n} attempts)"
                return a, n
            time.sleep(self._pause(n, a.retry_after))

    def _pause(self, n: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        # Full jitter: spreads the retries of many threads instead of synchronising them.
        return random.uniform(0.0, min(self.max_backoff, self.backoff * 2 ** (n - 1)))

    # -- one request ------------------------------------------------------------------------------

    def _once(self, url: str, headers: Mapping[str, str], max_bytes: int) -> _Attempt:
        with self._slot(_norm_host(urlsplit(url).hostname or "")):
            deadline = time.monotonic() + _DEADLINE_FACTOR * self.timeout
            resp = None
            try:
                resp = self._client.send(self._client.build_request("GET", url, headers=headers), stream=True)
                return self._read(resp, deadline, max_bytes)
            except Exception as exc:
                return _failed(exc)
            finally:
                if resp is not None:
                    resp.close()  # its connection is kept when the body was read to its end, else closed

    def _read(self, resp: httpx.Response, deadline: float, max_bytes: int) -> _Attempt:
        status, hdrs = resp.status_code, resp.headers
        if status != 200:
            _drain(resp, deadline)  # the body of a redirect, 304, 4xx or 5xx is not needed
        if status == 429 or status >= 500:
            wait = _retry_after(hdrs.get("retry-after")) if status in (429, 503) else None
            return _Attempt(status=status, headers=hdrs, error=f"HTTP {status}", retryable=True, retry_after=wait)
        if status != 200:
            return _Attempt(status=status, headers=hdrs)
        length = hdrs.get("content-length")
        if length and length.strip().isdigit() and int(length) > max_bytes:
            raise _BodyError(f"body larger than {max_bytes} bytes (Content-Length {int(length)})")
        inflater = _Inflater(hdrs.get("content-encoding"))
        chunks: list[bytes] = []
        total = 0
        # The bytes as sent (a gzip bomb stays small here), decoded by our bounded inflater.
        for raw in resp.iter_raw():
            for piece in inflater.feed(raw):
                total += len(piece)
                if total > max_bytes:
                    raise _BodyError(f"body larger than {max_bytes} bytes")
                chunks.append(piece)
            if resp.num_bytes_downloaded > max_bytes:
                raise _BodyError(f"body larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                # Not retried: a server that trickles forever would do it again.
                raise _BodyError(f"response not complete within {_DEADLINE_FACTOR * self.timeout:g} s")
        tail = inflater.finish()
        if total + len(tail) > max_bytes:
            raise _BodyError(f"body larger than {max_bytes} bytes")
        chunks.append(tail)
        return _Attempt(status=status, headers=hdrs, body=b"".join(chunks))

    # -- politeness -------------------------------------------------------------------------------

    @contextmanager
    def lane(self, url: str) -> Iterator[None]:
        """Hold one of the host's `per_host_concurrency` lanes while a thread works through a series of
        its pages (an agency). The host never has more requests in flight than that anyway: a thread
        beyond it would only wait for a request slot between pages, and taking the GIL from the threads
        that work made a nothing-changed crawl of one host about 11% slower (16 threads against 2).
        Waiting for a lane costs nothing."""
        host = _norm_host(urlsplit(url).hostname or "")
        lanes = self._gates.gate(host, self.per_host_concurrency).lanes
        lanes.acquire()
        try:
            yield
        finally:
            lanes.release()

    @contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        """At most `per_host_concurrency` requests in flight per host, starts at least `delay` apart."""
        gate = self._gates.gate(host, self.per_host_concurrency)
        with self._lock:
            delay = self._host_delay.get(host, self.delay)
        gate.slots.acquire()
        try:
            with gate.lock:
                now = time.monotonic()
                start = max(now, gate.next_start)
                gate.next_start = start + delay
            if start > now:
                time.sleep(start - now)
            yield
        finally:
            gate.slots.release()

    # -- robots.txt -------------------------------------------------------------------------------

    def _robots_allow(self, url: str, allowed_hosts: Collection[str]) -> bool:
        parts = urlsplit(url)
        key = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        with self._lock:
            lock = self._robots_locks.setdefault(key, threading.Lock())
        with lock:  # one fetch per host, even when many threads ask at once
            if key not in self._robots:
                self._robots[key] = self._load_robots(key, parts.hostname or "", allowed_hosts)
            parser = self._robots[key]
        return parser is None or parser.can_fetch(self.user_agent, url)

    def _load_robots(
        self, key: str, hostname: str, allowed_hosts: Collection[str]
    ) -> urllib.robotparser.RobotFileParser | None:
        """The parsed robots.txt of `key`, or None (allow everything) when it is missing or fails."""
        cap = min(self.max_bytes, _ROBOTS_MAX_BYTES)
        r = self._get(f"{key}/robots.txt", allowed_hosts, {}, robots=False, max_bytes=cap)
        if r.outcome != "fetched" or r.body is None:
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(r.body.decode("utf-8", "replace").splitlines())
        crawl_delay = parser.crawl_delay(self.user_agent)
        if crawl_delay:
            with self._lock:
                host = _norm_host(hostname)
                self._host_delay[host] = max(self.delay, min(float(crawl_delay), self.max_backoff))
        return parser
