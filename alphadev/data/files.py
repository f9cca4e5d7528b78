"""Parse a long-format data file once per process.

Parsing a CSV and its timestamps dominates a small backtest, and a sweep reads the same
files for every config.  Parsed tables are cached per process, keyed on the file's path,
size and modification time, so an edited file is parsed again and an unchanged one never.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alphadev.errors import DataError


@dataclass(frozen=True)
class FileStat:
    path: str
    size: int
    mtime_ns: int


def stat_file(path: str, owner: str) -> FileStat:
    """Size and mtime of ``path``; a missing file is an error naming ``owner``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(
            f"{owner}: data file {path!r} does not exist "
            f"(working directory {os.getcwd()!r}); check the path or pattern"
        ) from None
    return FileStat(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@dataclass
class Table:
    """A parsed file: rows sorted by time, timestamps as int64 UTC nanoseconds.

    The arrays are shared by every loader and config of the process, so they are
    read-only: nothing downstream (an alpha included) can change them in place.
    """

    path: str
    timestamps: np.ndarray
    symbols: pd.Categorical
    raw: pd.DataFrame
    file_columns: list[str] = field(default_factory=list)
    _floats: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timestamps = _frozen(self.timestamps)

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.raw.columns]

    def values(self, col: str, owner: str) -> np.ndarray:
        """Column ``col`` as float64 (NaN = no observation), converted once."""
        if col not in self._floats:
            self._floats[col] = _frozen(_to_float(self.raw[col], self.path, col, owner))
        return self._floats[col]


def _frozen(array: np.ndarray) -> np.ndarray:
    """A read-only copy backed by immutable bytes: no view of it can be made writeable.

    (A plain ``flags.writeable = False`` is advisory: a view can switch it back on.)
    """
    return np.frombuffer(array.tobytes(), dtype=array.dtype)


_CACHE: dict[tuple, Table] = {}
_WINDOW_CACHE: OrderedDict[tuple, Table] = OrderedDict()
WINDOW_SLOTS = 2  # windowed Parquet reads kept per process (streaming reads many)
PARSE_COUNT: dict[str, int] = {}  # path -> times parsed in this process (tests read it)


def read_table(
    stat: FileStat,
    timestamp_col: str,
    symbol_col: str,
    value_cols: Sequence[str],
    owner: str,
    default_symbol: str | None = None,
    fmt: str = "csv",
    window: tuple[int, int] | None = None,
    timestamp_format: str | None = None,
    names: tuple[str, ...] | None = None,
) -> Table:
    """The parsed table of a CSV or Parquet file, from the cache when unchanged.

    Every value column of the file is parsed, so a second loader reading another
    column of the same file does not parse it again.  With ``window`` (UTC ns, end
    exclusive) a Parquet file with a timestamp-typed column is read only for that
    window, using the file's row-group statistics; such reads are kept in a small LRU,
    so streaming chunk by chunk never holds the whole file.  ``names``: the column names
    of a CSV file without a header row.
    """
    if window is not None and not (fmt == "parquet" and _has_timestamp_type(stat, timestamp_col)):
        window = None
    key = (stat, fmt, timestamp_col, symbol_col, default_symbol, window, timestamp_format,
           names)
    cache = _CACHE if window is None else _WINDOW_CACHE
    table = cache.get(key)
    if table is None:
        for store in (_CACHE, _WINDOW_CACHE):
            for old in [k for k in store if k[0].path == stat.path and k[0] != stat]:
                del store[old]  # the file changed: drop its previous parse
        table = _parse(
            stat.path, fmt, timestamp_col, symbol_col, owner, default_symbol, window,
            timestamp_format, names,
        )
        cache[key] = table
        PARSE_COUNT[stat.path] = PARSE_COUNT.get(stat.path, 0) + 1
        if window is not None:
            _release_arrow_memory()
        while len(_WINDOW_CACHE) > WINDOW_SLOTS:
            _WINDOW_CACHE.popitem(last=False)
    for col in value_cols:
        if col not in table.raw.columns:
            hint = (
                f"set column_name (or source_column) to one of {table.columns}"
                if table.columns else
                f"it has no value column besides {timestamp_col!r} and {symbol_col!r}"
            )
            raise DataError(
                f"{owner}: file {stat.path!r} has no column {col!r} "
                f"(its columns are {table.file_columns}); {hint}"
            )
    return table


def _release_arrow_memory() -> None:
    """Give Arrow's freed buffers back to the system after a windowed read."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def clear_cache() -> None:
    _CACHE.clear()
    _WINDOW_CACHE.clear()


def _has_timestamp_type(stat: FileStat, column: str) -> bool:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(stat.path)
    except Exception:  # noqa: BLE001 - unreadable files are reported by the full read
        return False
    return column in schema.names and pa.types.is_timestamp(schema.field(column).type)


def _read_parquet_window(path: str, column: str, window: tuple[int, int]) -> pd.DataFrame:
    """Rows with window[0] <= timestamp < window[1] (UTC ns), for any unit and time zone.

    The bounds are built in the column's own type (unit and zone), since pyarrow does
    not compare timestamps of different zones; in a coarser unit they are rounded up,
    so ``>=`` and ``<`` keep exactly the rows a nanosecond comparison would.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    kind = pq.read_schema(path).field(column).type
    per_unit = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[kind.unit]
    lo, hi = (pa.scalar(-(-bound // per_unit), type=pa.int64()).cast(kind) for bound in window)
    table = pq.read_table(path, filters=(pc.field(column) >= lo) & (pc.field(column) < hi))
    return table.to_pandas()


def _parse(
    path: str,
    fmt: str,
    timestamp_col: str,
    symbol_col: str,
    owner: str,
    default_symbol: str | None,
    window: tuple[int, int] | None = None,
    timestamp_format: str | None = None,
    names: tuple[str, ...] | None = None,
) -> Table:
    if fmt == "parquet" and default_symbol is None:
        fast = _parse_plain_parquet(path, timestamp_col, symbol_col, window)
        if fast is not None:
            return _sorted_table(path, owner, *fast)
    try:
        if window is not None:
            frame = _read_parquet_window(path, timestamp_col, window)
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            dtypes = {symbol_col: "category"}
            if timestamp_format is not None:  # digits such as 20240102 are text here
                dtypes[timestamp_col] = "str"
            if names is None:
                frame = pd.read_csv(path, dtype=dtypes)
            else:
                frame = pd.read_csv(path, dtype=dtypes, header=None, names=list(names),
                                    index_col=False)
    except Exception as exc:
        raise DataError(f"{owner}: cannot read {path!r}: {exc}") from exc
    if names is not None and len(frame) and timestamp_col in frame.columns and str(
        frame[timestamp_col].iloc[0]
    ).strip() in names:
        raise DataError(
            f"{owner}: file {path!r} has a header row ({list(frame.iloc[0].astype(str))}) "
            "although column_names says it has none; leave column_names out and name the "
            "columns the header uses"
        )
    frame = _strip_column_names(frame, path, owner)

    required = [timestamp_col] + ([] if default_symbol is not None else [symbol_col])
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{owner}: file {path!r} has no column {missing[0]!r} (its columns are "
            f"{list(frame.columns)}); rename the column or pass "
            f"{'timestamp_col' if missing[0] == timestamp_col else 'symbol_col'}="
        )
    timestamps = _parse_timestamps(
        frame[timestamp_col], path, timestamp_col, owner, timestamp_format
    )
    if symbol_col in frame.columns:
        categorical = _stripped_symbols(frame[symbol_col])
    else:
        categorical = pd.Categorical.from_codes(
            np.zeros(len(frame), dtype=np.int8), categories=[default_symbol]
        )

    file_columns = [str(c) for c in frame.columns]
    raw = frame.drop(columns=[c for c in (timestamp_col, symbol_col) if c in frame.columns])
    return _sorted_table(path, owner, timestamps, categorical, raw, file_columns)


def _sorted_table(path: str, owner: str, timestamps: np.ndarray, categorical: pd.Categorical,
                  raw: pd.DataFrame, file_columns: list[str]) -> Table:
    """The table in time order, after the duplicate check."""
    if not _non_decreasing(timestamps):  # most files are written in time order already
        order = np.argsort(timestamps, kind="stable")
        timestamps = timestamps[order]
        categorical = pd.Categorical.from_codes(
            categorical.codes[order], categories=categorical.categories
        )
        raw = raw.iloc[order].reset_index(drop=True)
    _check_duplicates(timestamps, categorical, path, owner)
    return Table(path, timestamps, categorical, raw, file_columns)


def _parse_plain_parquet(
    path: str, timestamp_col: str, symbol_col: str, window: tuple[int, int] | None
) -> tuple[np.ndarray, pd.Categorical, pd.DataFrame, list[str]] | None:
    """The common Parquet file read straight from Arrow: a timestamp-typed time column
    without nulls, a string symbol column read dictionary-encoded (so each symbol is
    converted once, not once per row), clean column names.  None for anything else,
    which the general path reads (and reports on) as before."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # noqa: BLE001 - the general path reports an unreadable file
        return None
    names = list(schema.names)
    if (timestamp_col not in names or symbol_col not in names
            or any(not isinstance(n, str) or n != n.strip() or n.startswith("__index_level_")
                   for n in names)
            or len(set(names)) != len(names)
            or not pa.types.is_timestamp(schema.field(timestamp_col).type)
            or not (pa.types.is_string(schema.field(symbol_col).type)
                    or pa.types.is_large_string(schema.field(symbol_col).type))):
        return None
    kind = schema.field(timestamp_col).type
    try:
        parquet = pq.ParquetFile(path, read_dictionary=[symbol_col])
        if window is None:
            table = parquet.read()
        else:  # only the row groups whose time statistics reach into the window
            groups = _row_groups_in(parquet.metadata, names.index(timestamp_col), window)
            table = parquet.read_row_groups(groups) if groups else (
                parquet.read_row_groups([0]).slice(0, 0) if parquet.num_row_groups
                else parquet.read())
        stamps = table.column(timestamp_col)
        if stamps.null_count:
            return None  # the general path names the empty timestamp
        # Arrow keeps UTC instants whatever the zone (naive ones are read as UTC).
        ns = pc.cast(stamps, pa.timestamp("ns", tz=kind.tz)).cast(pa.int64())
        timestamps = np.ascontiguousarray(ns.to_numpy(), dtype=np.int64)
        if window is not None:
            inside = (timestamps >= window[0]) & (timestamps < window[1])
            if not inside.all():
                table = table.filter(pa.array(inside))
                timestamps = timestamps[inside]
        table = table.unify_dictionaries()
        symbols = table.column(symbol_col)
        if symbols.num_chunks:
            codes = np.concatenate([
                chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
                for chunk in symbols.chunks]).astype(np.int32)
            categories = symbols.chunks[0].dictionary.to_pylist()
        else:
            codes, categories = np.zeros(0, dtype=np.int32), []
        raw = table.drop_columns([timestamp_col, symbol_col]).to_pandas()
    except (pa.ArrowException, ValueError, OverflowError):
        return None  # out-of-range instants and the like: the general path says what
    categorical = _stripped_symbols(pd.Series(
        pd.Categorical.from_codes(codes, categories=pd.Index(categories, dtype=object))))
    return timestamps, categorical, raw, names


def _row_groups_in(metadata: Any, column: int, window: tuple[int, int]) -> list[int]:
    """The row groups whose time statistics reach into ``window`` (UTC ns, end
    exclusive); a group without statistics is read too."""
    groups = []
    for k in range(metadata.num_row_groups):
        stats = metadata.row_group(k).column(column).statistics
        if (stats is None or not stats.has_min_max
                or not isinstance(stats.min, dt.datetime)):  # no usable statistics
            groups.append(k)
            continue
        low, high = pd.Timestamp(stats.min), pd.Timestamp(stats.max)
        if low.tzinfo is None:  # a naive instant means UTC
            low, high = low.tz_localize("UTC"), high.tz_localize("UTC")
        if high.value >= window[0] and low.value < window[1]:
            groups.append(k)
    return groups


def _strip_column_names(frame: pd.DataFrame, path: str, owner: str) -> pd.DataFrame:
    """Column names without surrounding spaces (``timestamp, symbol, close`` headers).

    A Parquet file written with its (timestamp, symbol) index keeps those as columns.
    """
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    names = [c.strip() if isinstance(c, str) else c for c in frame.columns]
    if names == list(frame.columns):
        return frame
    clash = sorted({str(n) for n in names if names.count(n) > 1})
    if clash:
        raise DataError(
            f"{owner}: file {path!r} has columns {list(frame.columns)}, which name "
            f"{clash[0]!r} twice once surrounding spaces are removed; rename one of them"
        )
    return frame.set_axis(names, axis=1)


def _stripped_symbols(column: pd.Series) -> pd.Categorical:
    """Symbols as a categorical of str without surrounding spaces (`` BTCUSDT`` is BTCUSDT).

    Works on the categories (few), not on every row.
    """
    categorical = pd.Categorical(column.astype("category"))
    names = pd.Index([str(c).strip() for c in categorical.categories], dtype=object)
    if not names.has_duplicates:
        return categorical.rename_categories(list(names))
    unique = names.unique()
    recode = unique.get_indexer(names)
    codes = categorical.codes
    new_codes = np.where(codes >= 0, recode[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(new_codes, categories=list(unique))


TIMESTAMP_HELP = (
    "write ISO 8601 such as 2024-01-02T00:00:00Z (any offset; no offset means UTC) or "
    "epoch numbers, or pass the loader a strptime format, e.g. "
    "timestamp_format='%d/%m/%Y %H:%M' for 02/01/2024 00:00 meaning 2 January"
)


def _parse_timestamps(
    raw: pd.Series, path: str, col: str, owner: str, timestamp_format: str | None = None
) -> np.ndarray:
    """UTC nanoseconds; text is ISO 8601 only, unless ``timestamp_format`` says otherwise.

    No guessing: a parser that tries several conventions reads 02/01/2024 as 1 February
    and 13/01/2024 as 13 January in the same file.
    """
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = pd.to_datetime(raw, utc=True)
        problem = "an empty timestamp"
    elif timestamp_format is not None:
        text = raw.astype("string").str.strip()
        parsed = pd.to_datetime(text, utc=True, format=timestamp_format, errors="coerce")
        problem = f"a timestamp that does not match timestamp_format={timestamp_format!r}"
    elif pd.api.types.is_numeric_dtype(raw):
        parsed = _parse_epoch(raw)
        problem = "an empty or unusable epoch timestamp"
    else:
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        problem = "a timestamp that is not ISO 8601"
    bad = parsed.isna()
    if bad.any():
        first = raw[bad].iloc[0]
        raise DataError(
            f"{owner}: file {path!r} column {col!r} has {problem}: {first!r} (row "
            f"{int(np.flatnonzero(bad.to_numpy())[0]) + 2} of the file); {TIMESTAMP_HELP}"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns").asi8.copy()


def _parse_epoch(raw: pd.Series) -> pd.Series:
    """Epoch numbers, unit inferred from magnitude (s, ms, us or ns)."""
    magnitude = float(np.nanmax(np.abs(raw.to_numpy(dtype=float)))) if len(raw) else 0.0
    unit = "s" if magnitude < 1e11 else "ms" if magnitude < 1e14 else "us"
    if magnitude >= 1e17:
        unit = "ns"
    return pd.to_datetime(raw, unit=unit, utc=True, errors="coerce")


def _to_float(raw: pd.Series, path: str, col: str, owner: str) -> np.ndarray:
    """A value column as float64; empty cells are NaN.

    ``true``/``false`` (any case) count as 1/0 only in a column holding nothing else
    (a universe flag column); next to numbers they are a typo, not a value.
    """
    if pd.api.types.is_bool_dtype(raw):
        return raw.to_numpy(dtype=np.float64)
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=np.float64, na_value=np.nan)
    text = raw.astype("string").str.strip()
    present = (text != "").fillna(False).to_numpy(dtype=bool)
    lower = text.str.lower()
    is_true = (lower == "true").fillna(False).to_numpy(dtype=bool)
    is_false = (lower == "false").fillna(False).to_numpy(dtype=bool)
    if present.any() and np.array_equal(is_true | is_false, present):
        values = np.full(len(raw), np.nan)
        values[is_true] = 1.0
        values[is_false] = 0.0
        return values
    values = pd.to_numeric(text, errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
    bad = np.isnan(values) & present
    if bad.any():
        first = raw[bad].iloc[0]
        note = (
            " (true/false are read only in a column of nothing but true/false)"
            if str(first).strip().lower() in ("true", "false") else ""
        )
        raise DataError(
            f"{owner}: file {path!r} column {col!r} has a non-numeric value {first!r}"
            f"{note}; clean the file or leave the cell empty for 'no observation'"
        )
    return values


def _non_decreasing(values: np.ndarray) -> bool:
    return bool(np.all(values[1:] >= values[:-1]))


def _check_duplicates(
    timestamps: np.ndarray, symbols: pd.Categorical, path: str, owner: str
) -> None:
    if len(timestamps) < 2:
        return
    codes = symbols.codes.astype(np.int64)
    same_time = timestamps[1:] == timestamps[:-1]
    if not np.any(same_time & (codes[1:] <= codes[:-1])):
        return  # time-sorted, symbols strictly increasing within a stamp: all unique
    order = np.lexsort((codes, timestamps))
    ts_sorted = timestamps[order]
    codes_sorted = codes[order]
    dup = (ts_sorted[1:] == ts_sorted[:-1]) & (codes_sorted[1:] == codes_sorted[:-1])
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        stamp = pd.Timestamp(ts_sorted[k], tz="UTC")
        symbol = symbols.categories[codes_sorted[k]]
        raise DataError(
            f"{owner}: file {path!r} has duplicate rows for ({stamp}, {symbol!r}) "
            f"({int(dup.sum())} duplicates in all); keep one row per (timestamp, symbol)"
        )
