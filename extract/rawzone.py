"""The raw zone: every fetched body, stored once, content-addressed by its sha256.

Layout: `root/ab/cd/<sha256>` (two levels of fan-out keep directories small). The root is a local
directory or a filesystem URL that pyarrow understands (file://, s3://), read through pyarrow either
way. A file appears only complete: on a local disk it is written to a temporary file in the same
directory, fsynced, then linked into place, so a crash leaves at most a stray `.tmp` file that nothing
reads; elsewhere it is written aside and moved (an object store shows an object only once it is whole).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.fs as pafs

__all__ = ["RawZone"]

_SHA_RE = re.compile(r"[0-9a-f]{64}")
_KEY_RE = re.compile(r"([0-9a-f]{2})/([0-9a-f]{2})/(\1\2[0-9a-f]{60})")  # ab/cd/abcd…: strays do not match


def _valid(sha256: str) -> str:
    """The sha256 in lower case, or ValueError; checked before any path is built from it."""
    if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256.lower()):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256.lower()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable; not possible on every platform, and then skipped."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _put_local(dest: Path, body: bytes, sha: str, intact: Callable[[], bool]) -> bool:
    """Write `body` durably at `dest`; whether this call created it (`intact()`: a copy there is good)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{sha[:12]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; analysts' tools should be able to read the zone
        try:
            # link() fails if the file exists, so of two concurrent writers exactly one says "new".
            os.link(tmp, dest)
            created = True
        except FileExistsError:
            created = not intact()
            if created:  # a damaged copy: replace it with the good bytes
                os.replace(tmp, dest)
        except OSError:  # a filesystem without hard links
            created = not dest.exists()
            os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
    if created:
        _fsync_dir(dest.parent)
    return created


class RawZone:
    """Content-addressed store of raw page bodies."""

    def __init__(self, root: str | Path) -> None:
        self._fs, base = pafs.FileSystem.from_uri(str(root) if "://" in str(root) else str(Path(root).absolute()))
        self._base = base.rstrip("/")
        self.root = Path(self._base)

    def path(self, sha256: str) -> Path:
        sha = _valid(sha256)
        return self.root / sha[:2] / sha[2:4] / sha

    def has(self, sha256: str) -> bool:
        return self._fs.get_file_info(str(self.path(sha256))).type == pafs.FileType.File

    def _intact(self, sha: str) -> bool:
        """The file exists and its bytes hash to `sha` (a damaged copy is then rewritten by `put`)."""
        try:
            self.get(sha)
        except (OSError, ValueError):  # absent, a directory, or damaged
            return False
        return True

    def put(self, body: bytes) -> tuple[str, bool]:
        """Store `body`; return its sha256 and whether it was newly stored. Idempotent."""
        sha = hashlib.sha256(body).hexdigest()
        if self._intact(sha):
            return sha, False
        dest = self.path(sha)
        if isinstance(self._fs, pafs.LocalFileSystem):
            return sha, _put_local(dest, body, sha, lambda: self._intact(sha))
        self._fs.create_dir(str(dest.parent), recursive=True)
        tmp = f"{dest.parent}/.{sha[:12]}.{uuid.uuid4().hex}.tmp"
        with self._fs.open_output_stream(tmp) as out:
            out.write(body)
        self._fs.move(tmp, str(dest))
        return sha, True

    def get(self, sha256: str) -> bytes:
        """The stored bytes; ValueError if they no longer hash to `sha256`, FileNotFoundError if absent."""
        sha = _valid(sha256)
        with self._fs.open_input_stream(str(self.path(sha))) as f:
            data = f.read()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise ValueError(f"raw zone file {sha} is corrupt (its bytes hash to {actual})")
        return data

    def __iter__(self) -> Iterator[str]:
        """Every stored sha256 (temporary files and strays are skipped)."""
        selector = pafs.FileSelector(self._base, allow_not_found=True, recursive=True)
        keys = (info.path[len(self._base) + 1:] for info in self._fs.get_file_info(selector)
                if info.type == pafs.FileType.File)
        yield from sorted(m.group(3) for key in keys if (m := _KEY_RE.fullmatch(key)))
