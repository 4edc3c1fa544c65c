"""Where things live. One warehouse root holds the raw zone, the fetch log, the lake and the database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from govreports.transform.dictionary import DATA_DIR

__all__ = ["DATA_DIR", "DEFAULT_WAREHOUSE", "HOME", "Warehouse"]

DEFAULT_WAREHOUSE = os.environ.get("GOVREPORTS_WAREHOUSE", "data/warehouse")
# Per-user state that is not data (Prefect's local database): never inside the installed package.
HOME = Path(os.environ.get("GOVREPORTS_HOME") or Path.home() / ".govreports")


@dataclass(frozen=True, slots=True)
class Warehouse:
    """The warehouse layout under one root (a local path; the lake may also be an s3:// or file:// URL)."""

    root: str
    database: str | None = None  # default: <root>/govreports.duckdb (always a local file)

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts]) if "://" in self.root else str(Path(self.root, *parts))

    @property
    def raw(self) -> str:
        return self._join("raw")

    @property
    def fetch_log(self) -> str:
        return self._join("fetch_log")

    @property
    def lake(self) -> str:
        return self._join("parquet")

    @property
    def local_root(self) -> Path | None:
        """The root as a local directory: a path, or a file:// URL; None for an object store."""
        if self.root.startswith("file://"):
            return Path(urlsplit(self.root).path)
        return None if "://" in self.root else Path(self.root)

    @property
    def db(self) -> Path:
        """The DuckDB file, always local: beside the lake when that is local, else data/warehouse/."""
        if self.database:
            return Path(self.database)
        local = self.local_root
        return Path(local, "govreports.duckdb") if local else Path("data/warehouse/govreports.duckdb")

    @property
    def lock_dir(self) -> Path:
        """Where the run lock lives: the local root, else beside the database."""
        return self.local_root or self.db.parent
