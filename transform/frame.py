"""The long frame and the checks frame: their typed rows, and frames built from many rows at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa

from govreports.data.schema import CHECKS, FACTS, Column, pandas_types

# name -> pandas dtype, in the frame's column order (data/schema.py declares them).
FACT_COLUMNS: dict[str, str] = pandas_types(FACTS)
CHECK_COLUMNS: dict[str, str] = pandas_types(CHECKS)
_PYTHON = {"string": str, "Int64": int, "float64": float}


def _record(name: str, columns: tuple[Column, ...]) -> type:
    return NamedTuple(name, [(c.name, _PYTHON[c.pandas] | None) for c in columns])  # type: ignore[misc]


Fact = _record("Fact", FACTS)  # one long-frame row
Check = _record("Check", CHECKS)  # one evaluated identity
VALUE_STATUSES = ("number", "blank", "na", "unparsed")
_ARROW_STRINGS = pd.array([], dtype="string").dtype == pd.StringDtype("pyarrow")


def _column(values: list, dtype: str) -> Any:
    if dtype == "float64":  # a plain float column: null is NaN
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    # Through Arrow: faster than pd.array for the same array (pandas' string dtype is Arrow-backed),
    # and this runs for every column of every batch. Anything Arrow will not take goes the long way.
    try:
        if dtype == "string" and _ARROW_STRINGS:
            return pd.arrays.ArrowStringArray(pa.array(values, pa.large_string()))
        if dtype == "Int64":
            return pd.Int64Dtype().__from_arrow__(pa.array(values, pa.int64()))
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        pass
    return pd.array(values, dtype=dtype)


def frame_from_rows(rows: Sequence[Sequence[Any]], columns: Mapping[str, str]) -> pd.DataFrame:
    """A typed frame from row tuples in the columns' order. The parser hands over rows, not frames:
    building a frame has a fixed cost per call (BENCHMARKS.md), so it is built once per batch of pages."""
    cols: Iterable[Sequence[Any]] = zip(*rows, strict=True) if rows else [()] * len(columns)
    return pd.DataFrame({name: _column(list(col), dtype) for (name, dtype), col in zip(columns.items(), cols,
                                                                                        strict=True)},
                        copy=False)
