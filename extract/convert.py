"""Word 97-2003 (.doc), WPS Writer (.wps) and RTF files -> DOCX with LibreOffice headless, then read_docx.

LibreOffice is a system package, not a pip one: without it such a file is refused with "needs converter"
and how to install it, never dropped. Each conversion runs in a temporary directory of its own, with a
throwaway LibreOffice profile there (two conversions at once would otherwise fight over the profile's
lock, and nothing is left in HOME), in its own process group so that a timeout kills soffice.bin too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from govreports.extract.cells import ParseFailure
from govreports.extract.docx import read_docx
from govreports.extract.page import Document

__all__ = ["CONVERTERS", "INSTALL", "KINDS", "convert", "converter", "read_converted"]

CONVERTERS = ("soffice", "libreoffice")  # the names LibreOffice's launcher goes by on PATH
INSTALL = "install LibreOffice: apt-get install libreoffice-writer-nogui"
TIMEOUT = 120.0  # seconds for one file, LibreOffice's start included
MAX_OUTPUT = 64 * 1024 * 1024  # bytes of converted file read back

# First bytes -> (the name LibreOffice is given, Document.kind). A WPS Writer file is an OLE file that
# LibreOffice reads as Word 97, so .doc and .wps are one row.
KINDS = {b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ("report.doc", "doc"), b"{\\rtf": ("report.rtf", "rtf")}


def converter() -> str | None:
    """The LibreOffice launcher on PATH, or None."""
    return next(filter(None, map(shutil.which, CONVERTERS)), None)


def convert(data: bytes, name: str = "report.doc", to: str = "docx", timeout: float = TIMEOUT) -> bytes:
    """Convert one file (`name` says what it is) to format `to` (DOCX; the tests also make DOC and RTF).
    Raises ParseFailure ("needs converter", "unreadable file")."""
    exe = converter()
    if exe is None:
        raise ParseFailure("needs converter", f"a Word 97-2003, WPS or RTF file: {INSTALL}")
    with tempfile.TemporaryDirectory(prefix="govreports-convert-") as tmp:
        src, out = Path(tmp, name), Path(tmp, "out")
        src.write_bytes(data)
        cmd = [exe, f"-env:UserInstallation={Path(tmp, 'profile').as_uri()}", "--headless", "--norestore",
               "--convert-to", to, "--outdir", str(out), str(src)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "HOME": tmp}, start_new_session=True)
        try:
            said, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # the group may have ended meanwhile
                os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the soffice.bin it started
            proc.communicate()
            raise ParseFailure("unreadable file", f"LibreOffice took more than {timeout:g} s") from None
        result = out / f"{src.stem}.{to}"
        if proc.returncode or not result.is_file():
            # LibreOffice exits 0 on a file it cannot load, and says why on a line of its own.
            lines = said.decode(errors="replace").strip().splitlines() or ["no output"]
            why = next((line for line in lines if line.startswith("Error")), lines[-1])
            raise ParseFailure("unreadable file", f"LibreOffice could not convert it ({why})")
        if result.stat().st_size > MAX_OUTPUT:
            raise ParseFailure("unreadable file", f"converted to more than {MAX_OUTPUT // 2**20} MB")
        return result.read_bytes()


def read_converted(data: bytes, source: str = "<bytes>") -> Document:
    """Read a .doc/.wps/.rtf file through its DOCX conversion; provenance is the original file's."""
    name, kind = next((v for head, v in KINDS.items() if data.lstrip().startswith(head)), ("report.doc", "doc"))
    doc = read_docx(convert(data, name), source)
    doc.kind, doc.content_sha256 = kind, hashlib.sha256(data).hexdigest()
    return doc
