"""Helpers for tests/test_hostile.py: run a parse in a forked child under a time limit and a memory
cap, summarise what it gave, mutate rendered report pages, and build the hostile pages.

Every parse of a hostile page runs in a child made with os.fork: the child inherits the imported
modules (no interpreter start-up, ~10 ms a call); it is stopped when it has used its CPU-time budget
(SIGPROF: a machine shared with other jobs slows the wall clock, not the CPU time), so a hang fails
its test instead of freezing the suite; and a memory bomb hits the child's address-space cap instead
of the machine. The child reports its own CPU time and the growth of its peak resident set (VmHWM
after resetting it through /proc/self/clear_refs), which counts lxml's C allocations too.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import os
import pickle
import random
import re
import resource
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import charset_normalizer.constant

from govreports.flows.parse import parse_report
from govreports.transform.frame import FACT_COLUMNS, VALUE_STATUSES
from govreports.transform.report import ParseFailure
from tests.render import NO_EMPTY_CELLS, random_spec, render

MB = 1_000_000

# charset_normalizer looks codecs up lazily: import them here once, not again in every forked child.
for _name in charset_normalizer.constant.IANA_SUPPORTED:
    with contextlib.suppress(LookupError):
        codecs.lookup(_name)


def time_budget(n_bytes: int) -> float:
    """CPU seconds a page of n_bytes may take: 2 s for an ordinary page, plus 1 s per MB (the parser
    reads a clean page at well under 1 s per MB, so a linear path stays far inside)."""
    return 2.0 + n_bytes / MB


def memory_budget(n_bytes: int) -> float:
    """MB of peak resident growth a page may cost: 200 MB, plus 10x its size for the huge ones."""
    return 200.0 + 10 * n_bytes / MB


# -- running a function in a forked child ------------------------------------------------------------


@dataclass
class Run:
    status: str  # "ok" | "raised" | "timeout" | "died"
    value: Any = None  # what the function returned ("ok")
    error: str = ""  # "Type: message" ("raised"), or how the child ended ("timeout", "died")
    traceback: str = ""
    seconds: float = 0.0  # CPU time of the call, measured in the child
    wall: float = 0.0  # wall-clock time of the call (the machine may be shared: not asserted on)
    peak_mb: float | None = None  # growth of the child's peak RSS during the call


def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _limit(cpu_seconds: float, cap_mb: float) -> None:
    """The child's CPU time (SIGPROF ends it, RLIMIT_CPU's SIGXCPU as a backstop) and address-space
    growth (MemoryError past it)."""
    signal.signal(signal.SIGPROF, signal.SIG_DFL)  # the default action terminates the process
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    soft = math.ceil(cpu_seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard == resource.RLIM_INFINITY or hard > soft + 2:
        hard = soft + 2
    resource.setrlimit(resource.RLIMIT_CPU, (min(soft, hard), hard))
    size_kb = _status_kb("VmSize")
    if size_kb is not None:
        limit = size_kb * 1024 + int(cap_mb * MB)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _child(w: int, fn: Callable[..., Any], args: tuple, kwargs: dict, cpu_seconds: float, cap_mb: float) -> None:
    payload = b""
    try:
        _limit(cpu_seconds, cap_mb)
        reset_ok = _reset_peak()
        base = _status_kb("VmRSS")
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            result: tuple = ("ok", fn(*args, **kwargs), "", "")
        except BaseException as exc:  # every exception goes back to the parent
            result = ("raised", None, f"{type(exc).__name__}: {exc}"[:2000], traceback.format_exc()[-6000:])
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        signal.setitimer(signal.ITIMER_PROF, 0)
        peak = _status_kb("VmHWM") if reset_ok else None
        peak_mb = (peak - base) * 1024 / MB if peak is not None and base is not None else None
        try:
            payload = pickle.dumps((*result, cpu, wall, peak_mb))
        except BaseException as exc:  # e.g. MemoryError while pickling
            payload = pickle.dumps(("raised", None, f"cannot pickle the result: {exc!r}", "", cpu, wall, peak_mb))
    finally:
        with contextlib.suppress(BaseException):
            view = memoryview(payload)
            while view:
                view = view[os.write(w, view):]
        os._exit(0)


def run_forked(fn: Callable[..., Any], *args: Any, cpu_seconds: float, cap_mb: float = 1500,
               **kwargs: Any) -> Run:
    """Call fn(*args, **kwargs) in a forked child. The child is stopped after `cpu_seconds` of CPU
    time (SIGPROF), or of wall-clock time 4x that plus 10 s (a loaded machine slows it, a blocked one
    never uses its CPU): both give status "timeout". Its address space may grow by `cap_mb` MB;
    beyond, allocations fail (MemoryError: status "raised")."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(r)
        _child(w, fn, args, kwargs, cpu_seconds, cap_mb)
    os.close(w)
    wall_limit = 4 * cpu_seconds + 10
    start = time.monotonic()
    chunks: list[bytes] = []
    timed_out = False
    try:
        while True:
            remaining = wall_limit - (time.monotonic() - start)
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(r, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(r)
        if timed_out:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, wait_status = os.waitpid(pid, 0)
    wall = time.monotonic() - start
    if timed_out:
        return Run("timeout", error=f"killed after {wall:.1f} s of wall-clock time", wall=wall)
    if not chunks:
        if os.WIFSIGNALED(wait_status) and os.WTERMSIG(wait_status) in (signal.SIGPROF, signal.SIGXCPU,
                                                                            signal.SIGKILL):
            return Run("timeout", error=f"stopped after {cpu_seconds:.1f} s of CPU time "
                       f"({signal.Signals(os.WTERMSIG(wait_status)).name})", seconds=cpu_seconds, wall=wall)
        return Run("died", error=f"child ended without a result (wait status {wait_status})", wall=wall)
    status, value, error, tb, cpu, took, peak_mb = pickle.loads(b"".join(chunks))
    return Run(status, value, error, tb, cpu, took, peak_mb)


# -- one parse, summarised in the child -----------------------------------------------------------


@dataclass
class Summary:
    kind: str  # "report" | "failure"
    reason: str | None = None  # ParseFailure.reason
    detail: str = ""
    n_facts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # broken invariants of the facts frame
    facts: list[tuple] | None = None  # (metric, applicant, status, value, raw) of the named facts
    found: list[str] = field(default_factory=list)  # needles that occur in the output
    meta: dict[str, Any] = field(default_factory=dict)


def _nan_to_none(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


def summarise(data: bytes, needles: tuple[str, ...] = (), want_facts: bool = False, **kwargs: Any) -> Summary:
    """parse_report(data), and what a hostile-input test needs to know about the result. Any
    exception other than ParseFailure propagates (the contract forbids it)."""
    try:
        parsed = parse_report(data, **kwargs)
    except ParseFailure as exc:
        return Summary("failure", reason=exc.reason, detail=exc.detail[:500],
                       found=[n for n in needles if n in str(exc)])
    facts = parsed.facts
    bad: list[str] = []
    if list(facts.columns) != list(FACT_COLUMNS):
        bad.append(f"fact columns {list(facts.columns)}")
    if not all(isinstance(p, str) for p in parsed.meta.problems):
        bad.append("a problem that is not a string")
    for status, value, raw in zip(facts["value_status"], facts["value"], facts["raw"], strict=True):
        if status not in VALUE_STATUSES:
            bad.append(f"value_status {status!r} (raw {str(raw)[:40]!r})")
        elif status == "number" and not (isinstance(value, float) and math.isfinite(value)):
            bad.append(f"status number with value {value!r} (raw {str(raw)[:40]!r}, {len(str(raw))} chars)")
        elif status != "number" and not (isinstance(value, float) and math.isnan(value)):
            bad.append(f"status {status} with value {value!r}")
    out = Summary("report", n_facts=len(facts), statuses=dict(facts["value_status"].value_counts()), bad=bad[:20])
    m = parsed.meta
    out.meta = {"agency": m.agency, "year": m.year, "template": m.template, "kind": m.kind,
                "encoding": m.encoding, "truncated": m.truncated, "n_problems": len(m.problems),
                "problems": [p[:200] for p in m.problems[:5]]}
    if want_facts:
        out.facts = sorted(
            (metric, applicant if isinstance(applicant, str) else "", status, _nan_to_none(value), raw)
            for metric, applicant, status, value, raw in zip(
                facts["metric"], facts["applicant"], facts["value_status"], facts["value"], facts["raw"], strict=True)
            if isinstance(metric, str)
        )
    if needles:
        blob = "\n".join([facts.to_csv(), parsed.checks.to_csv(), repr(m)])
        out.found = [n for n in needles if n in blob]
    return out


def parse_forked(data: bytes, *, seconds: float | None = None, cap_mb: float | None = None, **kwargs: Any) -> Run:
    """summarise(data) in a forked child, stopped at the time budget of its size by default, with
    room for 4x its memory budget (so that a memory bomb fails the test, not the machine)."""
    seconds = time_budget(len(data)) if seconds is None else seconds
    cap = max(1000.0, 4 * memory_budget(len(data))) if cap_mb is None else cap_mb
    return run_forked(summarise, data, cpu_seconds=seconds, cap_mb=cap, **kwargs)


def describe(run: Run) -> str:
    head = f"{run.status} after {run.seconds:.2f} s CPU ({run.wall:.2f} s wall), peak +{run.peak_mb or 0:.0f} MB"
    if run.status == "ok":
        s: Summary = run.value
        return f"{head}: {s.kind} {s.reason or ''} {s.n_facts} facts {s.statuses} {s.bad[:3]} {s.meta}"
    return f"{head}: {run.error}\n{run.traceback}"


def assert_contract(run: Run, n_bytes: int, *, seconds: float | None = None, mem_mb: float | None = None) -> Summary:
    """A ParsedReport or a ParseFailure, within time and memory, with sound facts."""
    seconds = time_budget(n_bytes) if seconds is None else seconds
    mem_mb = memory_budget(n_bytes) if mem_mb is None else mem_mb
    assert run.status == "ok", describe(run)
    assert run.seconds < seconds, f"took {run.seconds:.2f} s CPU for {n_bytes} bytes (bound {seconds:.1f} s)"
    if run.peak_mb is not None:
        assert run.peak_mb < mem_mb, f"peak grew by {run.peak_mb:.0f} MB for {n_bytes} bytes (bound {mem_mb:.0f})"
    summary: Summary = run.value
    assert summary.kind in ("report", "failure")
    if summary.kind == "failure":
        assert summary.reason in ParseFailure.REASONS, summary.reason
    assert not summary.bad, summary.bad
    return summary


# -- base pages -----------------------------------------------------------------------------------


@cache
def spec(seed: int = 1, template: str | None = None, empty_cells: bool = True):
    return random_spec(random.Random(seed), template=template, empty_cells=empty_cells)


@cache
def page(style: str, seed: int = 1, template: str | None = None) -> bytes:
    return render(spec(seed, template, style not in NO_EMPTY_CELLS), style)


def html(seed: int = 1) -> str:
    return page("html_plain", seed).decode("utf-8")


def pipe(seed: int = 1) -> str:
    return page("text_pipe", seed).decode("utf-8")


def with_cell(seed: int, key: tuple[str, str], text: str, style: str = "html_plain", template: str = "2021") -> bytes:
    """The page of spec(seed, template) with one cell printed as `text`."""
    base = spec(seed, template)
    return render(replace(base, cells={**base.cells, key: text}), style)


def before_tables(text: str, insert: str) -> str:
    i = text.index("<table")
    return text[:i] + insert + text[i:]


def after_tables(text: str, insert: str) -> str:
    i = text.rindex("</table>") + len("</table>")
    return text[:i] + insert + text[i:]


def tables_of(text: str) -> str:
    return text[text.index("<table"): text.rindex("</table>") + len("</table>")]


def row_with(text: str, label: str) -> re.Match[str]:
    m = re.search(r"<tr>(?:(?!</tr>).)*" + re.escape(label) + r"(?:(?!</tr>).)*</tr>", text, re.S)
    assert m, label
    return m


def pipe_line_with(text: str, label: str) -> str:
    return next(line for line in text.split("\n") if label in line)


# -- mutations (fuzz) -----------------------------------------------------------------------------

# Inserted by the fuzz: markup that changes the table structure, text-rendering separators, things
# parsers special-case, report words out of place and odd cell values (text, encoded like the page)...
TOKENS: tuple[str, ...] = (
    "<td>", "</td>", "<tr>", "</tr>", "<table>", "</table>", "<th>", "<tbody>", "</tbody>",
    "<td colspan=1000000>", "<td rowspan=1000000>", "<td colspan=-3 rowspan=0>", '<td colspan="2;">',
    "<td rowspan=99999999999999999999>", "|", "||", " | ", "\t", "\n", "\n\n", "\r", "\r\n",
    "<br>", "<p>", "</p>", "<div>", "</div>", "<span>", "<o:p></o:p>", "<!--", "-->",
    "<![CDATA[", "]]>", "<?php x ?>", "<script>", "</script>", "<style>", "</style>", "<template>",
    "<?xml version='1.0' encoding='utf-16'?>", "<meta charset=gbk>", "<meta charset=utf-16>",
    "&#0;", "&#xD800;", "&#1114112;", "&nbsp;", "&lol;", "&", "<", ">", "\ufeff", "\u200b", "\u3000",
    "（", "）", "（（（", "）））", "一、", "（三）", "1.", "第二十条第（五）项", "信息内容", "总计", "其他",
    "本年新收政府信息公开申请数量", "行政复议", "结果维持", "三、收到和处理政府信息公开申请情况",
    "四、政府信息公开行政复议、行政诉讼情况", "/", "—", "无", "-0", "1,000", "3.5", "１２", "+461", "减6",
    "5万元", "0x10", "1e308", "NaN", "inf", "٣", "①", "9" * 40, "2020年", "政府信息公开",
)
# ... and raw bytes: invalid or truncated sequences, BOMs, NUL and other control characters.
BYTE_TOKENS: tuple[bytes, ...] = (
    b"\xef\xbb\xbf", b"\xe4\xb8", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff\xfe", b"\x81", b"\xb0",
    b"\x00", b"\x0b", b"\x85",
)
# Charsets a slice of the page is re-encoded in.
CHARSETS = ("gbk", "gb18030", "big5", "utf-16-le", "utf-16-be", "utf-32-le", "shift_jis", "euc-kr",
            "latin-1", "cp1252", "utf-7", "koi8-r")
# Structural operations act on the page's text (cut at character boundaries, so that the page still
# decodes); "flip", "bytes" and "reencode" break the byte stream.
OPS = ("flip", "delete", "duplicate", "truncate", "insert", "bytes", "swap", "reencode")


def mutate(data: bytes, encoding: str, ops: list[tuple]) -> bytes:
    """Apply drawn operations to a page; positions are fractions (0..1) of the current length."""
    text = data.decode(encoding, "surrogateescape")  # lossless: invalid bytes survive as escapes

    def raw(b: bytes) -> str:
        return b.decode(encoding, "surrogateescape")

    for op in ops:
        n = len(text)

        def at(frac: float, n: int = n) -> int:
            return min(n, int(frac * n))

        kind = op[0]
        if kind == "flip":
            buf = text.encode(encoding, "surrogateescape")
            if buf:
                i = min(len(buf) - 1, int(op[1] * len(buf)))
                text = raw(buf[:i] + bytes([buf[i] ^ op[2]]) + buf[i + 1:])
        elif kind == "delete":
            i = at(op[1])
            text = text[:i] + text[i + op[2]:]
        elif kind == "duplicate":
            i, j = at(op[1]), at(op[3])
            text = text[:j] + text[i:i + op[2]] + text[j:]
        elif kind == "truncate":
            text = text[:at(op[1])]
        elif kind == "insert":
            i = at(op[1])
            text = text[:i] + op[2] * op[3] + text[i:]
        elif kind == "bytes":
            i = at(op[1])
            text = text[:i] + raw(op[2]) + text[i:]
        elif kind == "swap":
            i, j, k, m = sorted((at(op[1]), at(op[2]), at(op[3]), at(op[4])))
            text = text[:i] + text[k:m] + text[j:k] + text[i:j] + text[m:]
        elif kind == "reencode":
            i, j = sorted((at(op[1]), at(op[2])))
            text = text[:i] + raw(text[i:j].encode(op[3], "replace")) + text[j:]
        else:  # pragma: no cover
            raise ValueError(kind)
    return text.encode(encoding, "surrogateescape")


def base_encoding(style: str) -> str:
    return "gb18030" if style == "html_gbk" else "utf-8"


# -- pages for the specific cases -----------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{k} "{f"&lol{k - 1};" * 10}">' for k in range(1, levels + 1)
    ]
    return "<!DOCTYPE html [" + "".join(entities) + "]>"


def random_bytes(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


# -- pages past a whole page's budget (tests/test_hostile.py and benchmarks/parser_memory.py) --------


def span_bomb(n_tables: int = 500, then: str = "") -> bytes:
    """n small tables, each of 500 empty rows under one cell spanning 500 rows and 64 columns (the
    per-table caps), then `then`, before the report: about 2 KB a table, 32,000 grid positions each."""
    table = '<table><tr><td rowspan="500" colspan="64">x</td></tr>' + "<tr>" * 499 + "</table>"
    return before_tables(html(), table * n_tables + then).encode()


def ordinary_rows(n_bytes: float) -> bytes:
    """The report after a table of ordinary numeric rows (eight cells each), n_bytes in all."""
    row = "<tr><td>第{0}行</td>" + "<td>{0}</td>" * 7 + "</tr>"
    base = html()
    n_rows = int(max(0, n_bytes - len(base.encode())) // len(row.format(100_000).encode()))
    rows = "".join(row.format(100_000 + r) for r in range(n_rows))
    return before_tables(base, "<table>" + rows + "</table>").encode()
