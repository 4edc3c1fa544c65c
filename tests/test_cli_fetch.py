"""`govreports fetch` against the demo site on 127.0.0.1: summary, a second run with nothing changed,
and exit 1 when every agency fails."""

import subprocess
from pathlib import Path

import pytest

from govreports.flows.config import DATA_DIR
from tests import CLI
from tests.proxyserver import ProxyServer

ROOT = Path(__file__).resolve().parent.parent
SOURCES = str(DATA_DIR / "sample_site" / "sources.csv")


@pytest.fixture(scope="module")
def site(demo_site_url):
    return demo_site_url


def fetch(warehouse, site, *extra, quiet=True):
    return subprocess.run([*CLI, "--warehouse", str(warehouse), "fetch", "--sources", SOURCES, "--site", site,
                           "--allow-loopback", "--delay", "0", *(["--quiet"] if quiet else []), *extra],
                          capture_output=True, cwd=ROOT, timeout=300)


def test_fetch_twice(site, tmp_path):
    first = fetch(tmp_path, site, "--agency", "330212-jtj", "--agency", "321323-fgj", quiet=False)
    assert first.returncode == 0, first.stderr.decode()
    out = first.stdout.decode()
    assert "330212-jtj" in out and "321323-fgj" in out and "330203-jtj" not in out
    assert "13 changed" in out  # 6 + 6 reports (泗阳县's as pages and files) + the .doc its 2023 page links
    # The bar (printed once at the end: not a terminal) counts agencies done and every document seen, files too.
    bar = [line for line in first.stderr.decode().splitlines() if "━" in line]
    assert len(bar) == 1 and "2/2 agencies, 13 pages" in bar[0], bar
    second = fetch(tmp_path, site, "--agency", "330212-jtj", "--agency", "321323-fgj")
    assert second.returncode == 0
    assert "0 changed" in second.stdout.decode()
    stored = {p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()}
    third = fetch(tmp_path, site, "--agency", "330212-jtj")
    assert {p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()} == stored
    assert third.returncode == 0


def test_every_agency_failing_exits_1(tmp_path):
    out = fetch(tmp_path, "http://127.0.0.1:9", "--timeout", "2")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr.decode()


def test_fetch_through_a_proxy(site, tmp_path):
    # --proxy sends every request through the proxy: it sees the listing and the report pages.
    with ProxyServer() as proxy:
        out = fetch(tmp_path, site, "--agency", "330212-jtj", "--proxy", proxy.url)
    assert out.returncode == 0, out.stderr.decode()
    assert "6 changed" in out.stdout.decode()
    assert any(url.startswith(site) and url.endswith("index.html") for url in proxy.seen), proxy.seen
    assert sum(url.startswith(f"{site}/330212-jtj/") for url in proxy.seen) >= 7  # listing + 6 reports
