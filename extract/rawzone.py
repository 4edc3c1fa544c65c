"""The raw zone: every fetched body, stored once, content-addressed by its sha256.

Layout: `root/ab/cd/<sha256>` (two levels of fan-out keep directories small). A file appears only
complete: it is written to a temporary file in the same directory, fsynced, then moved into place, so
a crash leaves at most a stray `.tmp` file that nothing reads. The root may also be a filesystem URL
(file://, s3://) that pyarrow understands: an object store shows an object only once it is whole.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs

__all__ = ["RawZone"]

_SHA_RE = re.compile(r"[0-9a-f]{64}")


def _valid(sha256: str) -> str:
    """The sha256 in lower case, or ValueError; checked before any path is built from it."""
    if not isinstance(sha256, str) or not _SHA_RE.fullmatch(sha256.lower()):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return sha256.lower()


def _fsync_dir(path: Path) -> None:
    """Make a rename durable; not possible on every platform, and then skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _intact(path: Path, sha: str) -> bool:
    """The file exists and its bytes hash to `sha` (a damaged copy is then rewritten by `put`)."""
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except (FileNotFoundError, IsADirectoryError):
        return False
    return h.hexdigest() == sha


class RawZone:
    """Content-addressed store of raw page bodies."""

    def __init__(self, root: str | Path) -> None:
        self._fs: pafs.FileSystem | None = None
        if "://" in str(root):
            self._fs, base = pafs.FileSystem.from_uri(str(root))
            self._base = base.rstrip("/")
        self.root = Path(root) if self._fs is None else Path(self._base)

    def path(self, sha256: str) -> Path:
        sha = _valid(sha256)
        return self.root / sha[:2] / sha[2:4] / sha

    def _url_path(self, sha256: str) -> str:
        sha = _valid(sha256)
        return f"{self._base}/{sha[:2]}/{sha[2:4]}/{sha}"

    def has(self, sha256: str) -> bool:
        if self._fs is not None:
            return self._fs.get_file_info(self._url_path(sha256)).type == pafs.FileType.File
        return self.path(sha256).is_file()

    def _url_put(self, body: bytes, sha: str) -> tuple[str, bool]:
        dest = self._url_path(sha)
        if self.has(sha):
            return sha, False
        self._fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
        tmp = f"{dest.rsplit('/', 1)[0]}/.{sha[:12]}.{os.getpid()}.tmp"
        with self._fs.open_output_stream(tmp) as out:
            out.write(body)
        self._fs.move(tmp, dest)
        return sha, True

    def put(self, body: bytes) -> tuple[str, bool]:
        """Store `body`; return its sha256 and whether it was newly stored. Idempotent."""
        sha = hashlib.sha256(body).hexdigest()
        if self._fs is not None:
            return self._url_put(body, sha)
        dest = self.path(sha)
        if _intact(dest, sha):
            return sha, False
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
                if _intact(dest, sha):
                    created = False
                else:  # a damaged copy: replace it with the good bytes
                    os.replace(tmp, dest)
                    created = True
            except OSError:  # a filesystem without hard links
                created = not dest.exists()
                os.replace(tmp, dest)
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        if created:
            _fsync_dir(dest.parent)
        return sha, created

    def get(self, sha256: str) -> bytes:
        """The stored bytes; ValueError if they no longer hash to `sha256`, FileNotFoundError if absent."""
        sha = _valid(sha256)
        if self._fs is not None:
            with self._fs.open_input_stream(self._url_path(sha)) as f:
                data = f.read()
        else:
            data = self.path(sha).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha:
            raise ValueError(f"raw zone file {sha} is corrupt (its bytes hash to {actual})")
        return data

    def __iter__(self) -> Iterator[str]:
        """Every stored sha256 (temporary files and strays are skipped)."""
        if self._fs is not None:
            selector = pafs.FileSelector(self._base, allow_not_found=True, recursive=True)
            yield from sorted(i.base_name for i in self._fs.get_file_info(selector)
                              if i.type == pafs.FileType.File and _SHA_RE.fullmatch(i.base_name))
            return
        if not self.root.is_dir():
            return
        for first in sorted(self.root.iterdir()):
            if not (first.is_dir() and len(first.name) == 2):
                continue
            for second in sorted(first.iterdir()):
                if not (second.is_dir() and len(second.name) == 2):
                    continue
                for f in sorted(second.iterdir()):
                    name = f.name
                    if _SHA_RE.fullmatch(name) and name[:2] == first.name and name[2:4] == second.name:
                        yield name
