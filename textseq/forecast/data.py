"""Numeric series from CSV files: column choice, strict number parsing, explicit missing-value policy.

Every cell of a chosen column must be a finite number. Text is always an error naming the row and
column; empty / NaN cells are "missing" and handled by the ``fill`` policy (``none`` = error).
Rows are numbered from 1 (data rows, the header excluded); "line" is the line of the file.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from textseq.errors import TextseqError, check_choice
from textseq.io import check_input_file

FILL_POLICIES = ("none", "ffill", "interpolate", "drop")
MISSING_TOKENS = {"", "na", "nan", "n/a", "null", "none", "-"}
SEASON_BY_FREQ = {"h": 24, "H": 24, "D": 7, "B": 5, "W": 52, "M": 12, "Q": 4, "A": 1, "Y": 1}


@dataclass
class SeriesData:
    """A table of aligned numeric columns in time order, plus what to forecast from it."""

    values: np.ndarray  # [T, C] float64, finite
    columns: list[str]
    target: str
    inputs: list[str]
    dates: list[str] | None = None
    freq: str | None = None
    name: str = "series"

    def __len__(self) -> int:
        return len(self.values)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    @property
    def target_values(self) -> np.ndarray:
        return self.column(self.target)

    @property
    def input_values(self) -> np.ndarray:
        return np.stack([self.column(name) for name in self.inputs], axis=1)

    def head(self, n: int) -> SeriesData:
        """The first ``n`` rows (what was known at time ``n``)."""
        dates = self.dates[:n] if self.dates else None
        return SeriesData(self.values[:n], self.columns, self.target, self.inputs, dates, self.freq, self.name)

    def select(self, target: str | None = None, inputs: list[str] | None = None) -> SeriesData:
        """The same table with another target / input choice (validated)."""
        target = target or self.target
        inputs = list(inputs) if inputs else ([target] if target != self.target else list(self.inputs))
        for name in [target, *inputs]:
            if name not in self.columns:
                raise TextseqError(f"no column {name!r} in {self.name}; available: {', '.join(self.columns)}")
        return SeriesData(self.values, self.columns, target, inputs, self.dates, self.freq, self.name)


def season_from_freq(freq: str | None) -> int:
    """Seasonal period implied by a pandas frequency ('MS', 'QE-DEC', 'W-SAT', 'h', ...); 1 if unknown."""
    if not freq:
        return 1
    code = freq.split("-")[0].lstrip("0123456789")
    if len(code) > 1 and code[0] == "B":  # business month / quarter / year
        code = code[1:]
    if len(code) > 1 and code[-1] in "ES":  # period end / start
        code = code[:-1]
    return SEASON_BY_FREQ.get(code, 1)


def _parse_cell(text: str, column: str, row: int) -> float:
    token = text.strip()
    if token.lower() in MISSING_TOKENS:
        return math.nan
    try:
        value = float(token)
    except ValueError:
        raise TextseqError(
            f"non-numeric value {token[:30]!r} in column {column!r} at row {row} (line {row + 1})"
        ) from None
    if math.isinf(value):
        raise TextseqError(f"infinite value {token!r} in column {column!r} at row {row} (line {row + 1})")
    return value


def parse_columns(table, columns: list[str]) -> np.ndarray:
    """Strictly parse the chosen string columns of a DataFrame into floats (NaN = missing)."""
    out = np.empty((len(table), len(columns)))
    for j, name in enumerate(columns):
        for i, cell in enumerate(table[name].tolist()):
            out[i, j] = _parse_cell(cell, name, i + 1)
    return out


def fill_missing(values: np.ndarray, columns: list[str], policy: str, rows: np.ndarray | None = None):
    """Apply the missing-value policy; returns (values, kept_row_mask)."""
    check_choice("fill policy", policy, FILL_POLICIES)
    missing = np.isnan(values)
    keep = np.ones(len(values), dtype=bool)
    if not missing.any():
        return values, keep
    first_row, first_col = (int(i) for i in np.argwhere(missing)[0])
    where = f"column {columns[first_col]!r} at row {first_row + 1} (line {first_row + 2})"
    if policy == "none":
        raise TextseqError(f"missing value in {where}; choose --fill ffill|interpolate|drop")
    if policy == "drop":
        keep = ~missing.any(axis=1)
        if not keep.any():
            raise TextseqError(f"every row has a missing value (first: {where}); nothing is left after --fill drop")
        return values[keep], keep
    import pandas as pd

    frame = pd.DataFrame(values)
    if policy == "ffill":
        if missing[0].any():
            raise TextseqError(f"cannot forward-fill: the first row has a missing value in {where}; use --fill drop")
        return frame.ffill().to_numpy(), keep
    if (~missing).sum(axis=0).min() < 2:
        raise TextseqError(f"cannot interpolate: a column has fewer than 2 values ({where})")
    return frame.interpolate(method="linear", limit_direction="both").to_numpy(), keep


def _read_table(path: Path, encoding: str):
    import pandas as pd

    check_input_file(path, "data file")
    try:
        # blank lines are kept (as missing rows): skipping them would silently shift the time axis;
        # index_col=False + ParserWarning as an error: rows longer than the header would otherwise
        # silently turn the first column into the index and shift every value one column over
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding, skipinitialspace=True,
                                skip_blank_lines=False, index_col=False).fillna("")
    except LookupError:
        raise TextseqError(f"unknown or non-text encoding {encoding!r}") from None
    except UnicodeError:  # UnicodeDecodeError, and UTF-16 without a byte-order mark
        raise TextseqError(f"cannot decode {path} as {encoding}; try --encoding gb18030 or latin-1") from None
    except pd.errors.ParserWarning:
        raise TextseqError(f"cannot parse {path} as CSV: data rows have more fields than the header") from None
    except pd.errors.EmptyDataError:
        raise TextseqError(f"data file {path} is empty") from None
    except pd.errors.ParserError as exc:
        raise TextseqError(f"cannot parse {path} as CSV: {' '.join(str(exc).split())}") from None
    table.columns = [str(c).strip() for c in table.columns]
    duplicates = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if duplicates:
        raise TextseqError(f"{path} has duplicate column names: {', '.join(map(repr, duplicates))}")
    filled = (table.apply(lambda column: column.str.strip()) != "").any(axis=1).to_numpy()
    table = table.iloc[: int(np.flatnonzero(filled)[-1]) + 1 if filled.any() else 0]  # trailing blank lines
    if table.empty:
        raise TextseqError(f"data file {path} has a header but no rows")
    return table


def _parse_dates(table, date_column: str) -> tuple[list[str], str | None]:
    import pandas as pd

    try:
        dates = pd.to_datetime(table[date_column].str.strip(), format="mixed")
    except (ValueError, TypeError) as exc:
        raise TextseqError(f"cannot parse dates in column {date_column!r}: {' '.join(str(exc).split())}") from None
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0]) + 1
        raise TextseqError(f"missing date in column {date_column!r} at row {row} (line {row + 1})")
    outside = np.flatnonzero(((dates.dt.year < 1) | (dates.dt.year > 9999)).to_numpy())
    if len(outside):
        row = int(outside[0]) + 1
        raise TextseqError(f"date outside years 1-9999 in column {date_column!r} at row {row} (line {row + 1})")
    # in the dates' own unit (not cast to ns, which silently overflows outside 1677-2262)
    bad = np.flatnonzero((dates.diff().iloc[1:] <= pd.Timedelta(0)).to_numpy())
    if len(bad):
        row = int(bad[0]) + 2
        raise TextseqError(f"dates in column {date_column!r} are not strictly increasing at row {row} (line {row + 1})")
    freq = pd.infer_freq(dates) if len(dates) >= 3 else None
    return [str(d.date()) if d == d.normalize() else str(d) for d in dates], freq


def _choose_columns(available: list[str], target: str | None, inputs: list[str] | None, date_column: str | None):
    for name in [target, date_column, *(inputs or [])]:
        if name is not None and name not in available:
            raise TextseqError(f"no column {name!r} in the CSV; available: {', '.join(available)}")
    if target is None:
        candidates = [c for c in (inputs or available) if c != date_column]
        if not candidates or (len(candidates) != 1 and not inputs):
            raise TextseqError(f"choose the column to forecast with --target (one of: {', '.join(candidates)})")
        target = candidates[0]
    return target, list(inputs) if inputs else [target]


def load_csv(path: str | os.PathLike, target: str | None = None, inputs: list[str] | None = None,
             date_column: str | None = None, fill: str = "none", encoding: str = "utf-8") -> SeriesData:
    """Load a CSV series: ``target`` is forecast from ``inputs`` (default: the target alone).

    With several ``inputs`` the model gets a multivariate input; the first input is the target
    when it is listed, but it need not be (e.g. sin -> cos).
    """
    path = Path(path)
    table = _read_table(path, encoding)
    target, inputs = _choose_columns(list(table.columns), target, inputs, date_column)
    columns = list(dict.fromkeys([target, *inputs]))
    values, keep = fill_missing(parse_columns(table, columns), columns, fill)
    check_finite(values, columns)
    table = table[keep].reset_index(drop=True)
    dates, freq = _parse_dates(table, date_column) if date_column else (None, None)
    return SeriesData(values, columns, target, inputs, dates, freq, name=path.name)


# Scaling squares the values (a variance): beyond this magnitude the squares overflow to inf and every metric
# turns into NaN, so such values are refused where they are read.
MAX_MAGNITUDE = 1e150


def check_finite(values: np.ndarray, columns: list[str]) -> None:
    """NaN/inf (or values so large that scaling overflows) reaching the model is always a bug in the data:
    name the first bad cell."""
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = (int(i) for i in bad[0])
        raise TextseqError(f"non-finite value {values[row, col]} in column {columns[col]!r} at row {row + 1}")
    huge = np.argwhere(np.abs(values) > MAX_MAGNITUDE)
    if len(huge):
        row, col = (int(i) for i in huge[0])
        raise TextseqError(f"value {values[row, col]:g} in column {columns[col]!r} at row {row + 1} is too large "
                           f"to model (beyond {MAX_MAGNITUDE:g} scaling overflows); rescale the column, e.g. "
                           "express it in millions")


def future_labels(series: SeriesData, steps: int) -> list[str]:
    """Dates of the next ``steps`` rows when the frequency is known, else ``t+1, t+2, ...``."""
    fallback = [f"t+{i}" for i in range(1, steps + 1)]
    if not (series.dates and series.freq):
        return fallback
    import pandas as pd

    if not series.freq.startswith(("B", "C")):  # business-day periods are deprecated in pandas: use timestamps
        try:
            last = pd.Period(series.dates[-1], freq=series.freq)
            return [str(last + i) for i in range(1, steps + 1)]
        except (ValueError, TypeError):  # not a period frequency ("MS", "W-SAT"): step timestamps
            pass
    try:
        stamps = pd.date_range(series.dates[-1], periods=steps + 1, freq=series.freq)[1:]
    except (ValueError, TypeError):
        return fallback
    return [str(d.date()) if d == d.normalize() else str(d) for d in stamps]
