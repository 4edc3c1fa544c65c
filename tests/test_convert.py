"""Word 97-2003, WPS and RTF reports read through LibreOffice (extract/convert.py): files that LibreOffice
itself wrote from a rendered DOCX (tests/filerender.py) read back to the same facts; without LibreOffice
they are refused with "needs converter" and how to install it; the Makefile installs it where it can."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from govreports.extract import convert
from govreports.extract.document import ParseFailure, read_document
from govreports.transform.report import parse_document
from tests import CLI
from tests.filerender import render_doc
from tests.render import expected, random_spec
from tests.test_pdf import assert_parsed

ROOT = Path(__file__).resolve().parent.parent
needs_soffice = pytest.mark.skipif(convert.converter() is None, reason=f"no LibreOffice on PATH: {convert.INSTALL}")


def _spec(seed: str, template: str = "2021"):
    return random_spec(random.Random(f"convert-{seed}"), template=template)


@needs_soffice
@pytest.mark.parametrize(("template", "to", "kind"), [("2019", "doc", "doc"), ("2021", "doc", "doc"),
                                                      ("2021", "rtf", "rtf")])
def test_converted_files_read_back_as_the_docx_did(template: str, to: str, kind: str, tmp_path, monkeypatch) -> None:
    spec = _spec(template, template)
    data = render_doc(spec, to, captions_as_paragraphs=template == "2021")
    assert data.startswith(b"\xd0\xcf\x11\xe0" if to == "doc" else b"{\\rtf")  # what LibreOffice really wrote
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    doc = read_document(data, f"report.{to}")
    assert (doc.kind, doc.source, doc.content_sha256) == (kind, f"report.{to}", hashlib.sha256(data).hexdigest())
    assert doc.title == f"{spec.agency}{spec.year}年政府信息公开工作年度报告"
    assert_parsed(spec, parse_document(doc))
    assert not list(tmp_path.iterdir()), "the conversion's directory and profile are removed"


@needs_soffice
def test_cli_parses_doc_and_wps(tmp_path) -> None:
    """A WPS Writer file is read by LibreOffice as a Word 97 file: the same bytes named .wps parse alike,
    since read_document goes by the first bytes, never by the name."""
    spec = _spec("cli")
    data = render_doc(spec)
    (tmp_path / "report.doc").write_bytes(data)
    (tmp_path / "report.wps").write_bytes(data)
    run = subprocess.run([*CLI, "parse", "--format", "csv", str(tmp_path / "report.doc"), str(tmp_path / "report.wps")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = run.stdout.splitlines()[1:]
    assert len(rows) == 2 * len(expected(spec)) and rows
    assert sum("report.wps" in row for row in rows) == len(expected(spec))


@needs_soffice
def test_two_conversions_at_once_do_not_collide() -> None:
    """Each has its own profile: LibreOffice would otherwise refuse the second while the first holds its lock."""
    specs = [_spec("twin-a"), _spec("twin-b")]
    files = [render_doc(spec) for spec in specs]
    with ThreadPoolExecutor(2) as pool:
        docs = list(pool.map(read_document, files))
    for spec, doc in zip(specs, docs, strict=True):
        assert_parsed(spec, parse_document(doc))


def test_without_a_converter_the_file_is_refused_with_how_to_install(tmp_path) -> None:
    """Not dropped: `govreports parse` says the file needs a converter and how to get one, exit 2."""
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    (tmp_path / "old.wps").write_bytes(ole)
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([*CLI, "parse", str(tmp_path / "old.wps")], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PATH": str(empty)})
    assert run.returncode == 2 and not run.stdout
    assert f"{tmp_path / 'old.wps'}: needs converter: " in run.stderr
    assert "apt-get install libreoffice-writer-nogui" in run.stderr


@needs_soffice
@pytest.mark.parametrize("damage", ["zeros", "truncated"])
def test_a_corrupt_ole_file_is_unreadable(damage: str) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)
    if damage == "truncated":
        whole = render_doc(_spec("truncated"))
        data = whole[:len(whole) // 2]
    with pytest.raises(ParseFailure) as info:
        read_document(data, "broken.doc")
    assert info.value.reason == "unreadable file"
    assert "LibreOffice could not convert it" in info.value.detail


def _ours() -> set[int]:
    """Live processes started for a conversion (their command lines name its temporary directory)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            state = (proc / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]  # after "pid (comm)"
            if b"govreports-convert-" in (proc / "cmdline").read_bytes() and state != b"Z":
                pids.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


@needs_soffice
def test_a_conversion_past_its_timeout_is_killed_with_its_children() -> None:
    """A long RTF keeps LibreOffice busy for many seconds: killing the launcher alone would leave its
    soffice.bin working on after the timeout; the whole process group goes."""
    long_rtf = "{\\rtf1\\ansi " + "".join(f"\\par line {i} of a long file" for i in range(150_000)) + "}"
    before, start = _ours(), time.monotonic()
    with pytest.raises(ParseFailure) as info:
        convert.convert(long_rtf.encode(), "report.rtf", timeout=1.5)
    # Killing only the launcher, the call would wait for the orphan's output pipe to close: for as long
    # as the whole conversion takes (several times this bound).
    assert time.monotonic() - start < 8
    assert info.value.reason == "unreadable file" and "took more than 1.5 s" in info.value.detail
    deadline = time.monotonic() + 2  # SIGKILL ends them at once; their reaping by init may lag a little
    while _ours() - before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _ours() - before, "soffice.bin outlived the timeout"


# -- the Makefile: `make install` says how to get LibreOffice, `make test` installs it where it can --------


def _make(tmp_path: Path, target: str, tools: dict[str, str], uid: int = 0,
          extra: tuple[str, ...] | list[str] = ()) -> tuple[str, list[str]]:
    """Run `make TARGET` with a PATH holding only sh and the given stand-in tools (name -> script), and
    `id` saying `uid`. Returns make's output and the apt-get command lines it ran (recorded, never run)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make")
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    (bin_dir / "sh").symlink_to("/bin/sh")
    scripts = {"id": f'echo {uid}', "apt-get": f'echo "$@" >> {log}', **tools}
    for name, body in scripts.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    run = subprocess.run([make, "--no-print-directory", "-C", str(ROOT), "-o", ".venv/.installed", target, *extra],
                         capture_output=True, text=True, timeout=60, env={"PATH": str(bin_dir)})
    assert run.returncode == 0, run.stderr
    return run.stdout + run.stderr, log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("target", ["install", "converter"])
def test_make_with_the_converter_present_says_and_installs_nothing(tmp_path, target: str) -> None:
    said, apt = _make(tmp_path, target, {"soffice": "exit 0"})
    assert "LibreOffice" not in said and apt == []


def test_make_install_without_the_converter_says_how_to_install_it(tmp_path) -> None:
    said, apt = _make(tmp_path, "install", {})
    notes = said.strip().splitlines()  # the site's browser test says the same of Chromium when it is missing
    assert notes[0] == "note: .doc/.wps reports need LibreOffice: " \
                       "apt-get install --no-install-recommends libreoffice-writer-nogui"
    assert all(n.startswith("note: ") for n in notes) and apt == []


def test_make_test_installs_the_converter_as_root_with_apt(tmp_path) -> None:
    said, apt = _make(tmp_path, "converter", {}, uid=0)
    assert apt == ["update -qq", "install -y -qq --no-install-recommends libreoffice-writer-nogui"]
    assert "installing LibreOffice" in said


def test_make_test_without_root_says_how_and_goes_on(tmp_path) -> None:
    said, apt = _make(tmp_path, "converter", {}, uid=1000)
    assert apt == [] and "apt-get install --no-install-recommends libreoffice-writer-nogui" in said
    assert "the tests that need it are skipped" in said


def test_make_test_sees_to_the_converter_before_the_suite(tmp_path) -> None:
    said, _ = _make(tmp_path, "-n", {}, uid=0, extra=["test"])
    assert "apt-get install" in said and said.index("apt-get install") < said.index("ruff check")
