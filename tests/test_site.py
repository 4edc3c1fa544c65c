"""`govreports site`: the static site written from a real warehouse, checked as HTML and, in the system's
Chromium (headless, driven by playwright without its own browsers), as rendered pages: the charts drew, the
Chinese text has its font, every link resolves, and hostile names and URLs stay text."""

import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from govreports.extract.rawzone import RawZone
from govreports.load.lake import Lake
from govreports.load.site import region_page
from govreports.load.warehouse import build
from tests import CLI
from tests.loadhelp import bundle, page

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert("x")</script>局 & "引号" $\\frac{$'  # HTML, and bad math for matplotlib
EVIL_URL = "javascript:alert(document.domain)"
# agency_id, name, region, {year: licensing}: 海曙 has no 2020 report; 江东 is in the registry only.
UNITS = [("330212-jtj", "鄞州区交通运输局", "浙江省/宁波市/鄞州区", {2019: 23285, 2020: 16363, 2021: 12000}),
         ("330203-jtj", "海曙区交通运输局", "浙江省/宁波市/海曙区", {2019: 1000, 2021: 1500}),
         ("330299-evil", HOSTILE, "浙江省/宁波市/江北区", {2019: 50, 2020: 40, 2021: 30})]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site") / "wh"
    lake, raw = Lake(str(root / "parquet")), RawZone(root / "raw")
    bundles = []
    for aid, name, region, values in UNITS:
        for year, licensing in values.items():
            template = "2019" if year < 2021 else "2021"
            raw.put(page(name, year, template, licensing, 5))
            b = bundle(aid, name, year, template, licensing, 5, region=region)
            if aid.endswith("evil"):
                b.report["url"] = EVIL_URL
            bundles.append(b)
    lake.write(bundles)
    registry = [{"agency_id": aid, "agency": name, "region": region, "level": "county", "kind": "department"}
                for aid, name, region, _ in UNITS]
    registry.append({"agency_id": "330204-jtj", "agency": "江东区交通运输局", "region": "浙江省/宁波市/江东区",
                     "level": "county", "kind": "department"})
    build(lake, root / "govreports.duckdb", sources=registry)
    return root


def site(warehouse: Path, out: Path, *args: str) -> Path:
    run = subprocess.run([*CLI, "site", str(out), "--warehouse", str(warehouse), *args], capture_output=True,
                         cwd=ROOT, timeout=300, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"site: {out / 'index.html'}"
    return out


@pytest.fixture(scope="module")
def inside(warehouse) -> Path:
    """The site written inside the warehouse folder, as `make demo` does."""
    return site(warehouse, warehouse / "site")


def test_region_page_orders_declines_and_marks_missing_reports(inside):
    html = (inside / region_page("浙江省/宁波市")).read_text()
    assert "<h1>浙江省/宁波市 2019–2021</h1>" in html
    licensing = html.split("<h2>")[1]
    rows = re.findall(r"<tr>(.*?)</tr>", licensing)[1:]
    assert [re.search(r'href="agency-([^"]+)\.html"', r)[1] for r in rows] == ["330212-jtj", "330299-evil",
                                                                               "330203-jtj"]
    # 海曙's 2020 is not a zero and not a decline: a marked gap, with coverage's reason
    assert '<td class="missing" title="no report found, or none readable">not_found</td>' in rows[2]
    assert rows[0].count('class="num"') == 7 and ">-11285<" in rows[0]
    missing = html.split("<h2>")[-1]  # 江东 (registry only) is missing every year, 海曙 in 2020
    assert re.findall(r"<tr><td>(\d+)</td>.*?>(\d+)</td></tr>", missing) == [("2019", "1"), ("2020", "2"),
                                                                               ("2021", "1")]
    assert (inside / "charts" / (region_page("浙江省/宁波市")[:-5] + "-licensing.svg")).stat().st_size > 1000


def test_hostile_names_and_urls_stay_text(inside):
    for path in inside.glob("*.html"):
        html = path.read_text()
        assert "<script" not in html and "javascript:" not in re.sub(r">[^<]*<", "><", html), path.name
    agency = (inside / "agency-330299-evil.html").read_text()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;局 &amp; &#34;引号&#34; $\\frac{$" in agency
    assert f"<td>{EVIL_URL}</td>" in agency  # shown, never a link


def test_raw_copy_linked_inside_the_warehouse_sha256_elsewhere(warehouse, inside, tmp_path):
    agency = (inside / "agency-330212-jtj.html").read_text()
    links = re.findall(r'<a href="(\.\./raw/[^"]+)">raw copy</a>', agency)
    assert len(links) == 3
    for link in links:
        body = (inside / link).read_bytes()
        assert hashlib.sha256(body).hexdigest() == Path(link).name
    elsewhere = site(warehouse, tmp_path / "pub", "--years", "2020-2021")
    agency = (elsewhere / "agency-330212-jtj.html").read_text()
    assert ">raw copy</a>" not in agency and agency.count("sha256 ") == 2  # two years: --years 2020-2021
    assert "<th>2019</th>" not in agency and "<th>2021</th>" in agency


def test_site_without_a_warehouse_is_one_line(tmp_path):
    run = subprocess.run([*CLI, "site", str(tmp_path / "out"), "--warehouse", str(tmp_path)], capture_output=True,
                         cwd=ROOT, timeout=120, text=True)
    assert run.returncode == 1 and run.stderr.startswith("govreports site: no warehouse at")
    assert len(run.stderr.splitlines()) == 1


def chromium() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found is None:
        pytest.skip("no Chromium on PATH (apt-get install chromium, or `make browser`)")
    return found


def test_site_renders_in_a_real_browser(inside):
    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (a dev dependency) is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        tab = browser.new_page()
        tab.goto((inside / "index.html").as_uri())
        # from the index to a region, to an agency, by clicking as a reader does
        tab.get_by_role("link", name="宁波市", exact=True).click()
        assert tab.locator("h1").inner_text() == "浙江省/宁波市 2019–2021"
        tab.get_by_role("link", name="鄞州区交通运输局").first.click()
        assert tab.locator("h1").inner_text() == "鄞州区交通运输局 (浙江省/宁波市/鄞州区)"
        seen, charts = set(), 0
        for path in sorted(inside.glob("*.html")):
            tab.goto(path.as_uri())
            assert tab.evaluate("document.querySelectorAll('script').length") == 0
            # every chart drew: an SVG the browser decoded, with a size
            sizes = tab.evaluate("Promise.all([...document.images].map(i => i.decode().then(() => "
                                 "[i.naturalWidth, i.naturalHeight], () => [0, 0])))")
            assert all(w > 100 and h > 100 for w, h in sizes), (path.name, sizes)
            charts += len(sizes)
            # the Chinese text is drawn with the site's own font (the machine may have none)
            assert tab.evaluate("document.fonts.ready.then(() => document.fonts.check('16px \"govreports CJK\"', "
                                "document.querySelector('h1').innerText))")
            assert tab.evaluate("[...document.fonts].some(f => f.family.includes('govreports CJK') && "
                                "f.status === 'loaded')"), path.name
            seen.update(tab.evaluate("[...document.querySelectorAll('a[href]')].map(a => a.href)"))
        browser.close()
    assert charts == 3 * 5  # licensing, penalties, requests: 浙江省, 宁波市 and each district but 江东 (no data)
    local = {unquote(urlsplit(h).path) for h in seen if h.startswith("file:")}
    assert {h for h in seen if not h.startswith("file:")} == {f"http://127.0.0.1/{a}/{y}.html"
                                                              for a, _, _, v in UNITS[:2] for y in v}
    assert all(Path(p).is_file() for p in local), [p for p in local if not Path(p).is_file()]
    assert {Path(p).name for p in local if p.endswith(".html")} == {p.name for p in inside.glob("*.html")}
