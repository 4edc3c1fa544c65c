"""flows.memory: a run's flow process hands freed memory back to the operating system."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Many small Arrow buffers, as reading thousands of fetch-log files makes, then freed.
_SCRIPT = """
import json
import pyarrow as pa
from govreports.flows import memory

def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))

memory.use_system_allocator()
arrays = [pa.array([i, i + 1, i + 2]) for i in range(300_000)]
del arrays
freed = rss_mb()
memory.give_back()
print(json.dumps({"pool": pa.default_memory_pool().backend_name, "freed": freed, "given_back": rss_mb()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_freed_arrow_memory_goes_back_to_the_system() -> None:
    # In a fresh interpreter: the allocator is chosen per process, and RSS must be the script's own.
    out = subprocess.run([sys.executable, "-c", _SCRIPT], cwd=ROOT, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["pool"] == "system"
    assert got["given_back"] < got["freed"] - 100, got  # ~180 MB held after the free, before the trim
