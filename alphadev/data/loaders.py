"""Data loaders: long-format files in, a (timestamp, symbol) frame out."""

from __future__ import annotations

import datetime as dt
import glob
import logging
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from alphadev._jsonable import jsonable, qualified_name
from alphadev.data.files import Table, read_table, stat_file
from alphadev.errors import DataError

log = logging.getLogger(__name__)

INDEX_NAMES = ["timestamp", "symbol"]


def day_bounds(start_date: Any, end_date: Any) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start 00:00 UTC, end + 1 day 00:00 UTC): inclusive UTC calendar days."""
    start = pd.Timestamp(start_date)
    end = pd.Timestamp(end_date)
    start = start.tz_convert("UTC") if start.tzinfo else start.tz_localize("UTC")
    end = end.tz_convert("UTC") if end.tzinfo else end.tz_localize("UTC")
    return start.normalize(), end.normalize() + pd.Timedelta(days=1)


def make_index(ts: np.ndarray, codes: np.ndarray, symbols: Sequence[str]) -> pd.MultiIndex:
    """(timestamp, symbol) index from sorted UTC nanoseconds and positions in ``symbols``.

    Built from levels and codes directly: factorizing millions of strings again would
    cost more than the whole backtest.
    """
    new = np.empty(len(ts), dtype=bool)  # ts is sorted: a new stamp starts a run
    new[:1] = True
    np.not_equal(ts[1:], ts[:-1], out=new[1:])
    stamps = ts[new]
    ts_codes = np.cumsum(new) - 1
    return pd.MultiIndex(
        levels=[pd.DatetimeIndex(stamps.view("datetime64[ns]")).tz_localize("UTC"),
                pd.Index(list(symbols), dtype=object)],
        codes=[ts_codes, codes],
        names=INDEX_NAMES,
        verify_integrity=False,
    )


def empty_frame(columns: Sequence[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex([], tz="UTC"), pd.Index([], dtype=object)], names=INDEX_NAMES
    )
    return pd.DataFrame({c: np.array([], dtype=np.float64) for c in columns}, index=index)


class DataLoader(ABC):
    """Serves one or more value columns on a (timestamp, symbol) MultiIndex.

    Subclasses describe themselves through ``params()`` (constructor arguments), which
    feeds ``to_dict``, equality and config fingerprints; ``files()`` lists the files
    read so their size and mtime enter the fingerprint.
    """

    @abstractmethod
    def load_date_range(
        self, start_date: dt.date, end_date: dt.date, symbols: Sequence[str]
    ) -> pd.DataFrame:
        """Rows with start_date <= day <= end_date (UTC), for ``symbols``."""

    @abstractmethod
    def get_columns(self) -> list[str]:
        """Names of the columns ``load_date_range`` returns."""

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def files(self, symbols: Sequence[str]) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": qualified_name(type(self)),
            "params": jsonable(self.params(), type(self).__name__),
        }

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class _FileLoader(DataLoader):
    """Shared logic of the CSV and Parquet loaders (path, glob or ``{symbol}`` pattern)."""

    _format = "csv"
    # Class defaults for instances pickled before these existed.
    timestamp_format: str | None = None
    source_column: str | None = None
    column_names: tuple[str, ...] | None = None

    def __init__(
        self,
        file_pattern: str | os.PathLike,
        column_name: str,
        timestamp_col: str = "timestamp",
        symbol_col: str = "symbol",
        timestamp_format: str | None = None,
        source_column: str | None = None,
        column_names: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(file_pattern, (str, os.PathLike)) or not str(file_pattern):
            raise TypeError(
                f"{type(self).__name__}: file_pattern must be a non-empty path or glob, "
                f"got {file_pattern!r}"
            )
        for field, value in (
            ("column_name", column_name),
            ("timestamp_col", timestamp_col),
            ("symbol_col", symbol_col),
        ):
            if not isinstance(value, str) or not value:
                raise TypeError(
                    f"{type(self).__name__}: {field} must be a non-empty string, got {value!r}"
                )
        if timestamp_format is not None and (
            not isinstance(timestamp_format, str) or "%" not in timestamp_format
        ):
            raise TypeError(
                f"{type(self).__name__}: timestamp_format must be None or a strptime format "
                f"such as '%d/%m/%Y %H:%M', got {timestamp_format!r}"
            )
        if source_column is not None and (not isinstance(source_column, str)
                                          or not source_column):
            raise TypeError(
                f"{type(self).__name__}: source_column must be None or the file's column to "
                f"read (served as column_name={column_name!r}), got {source_column!r}"
            )
        names = None
        if column_names is not None and not isinstance(column_names, str):
            names = tuple(column_names)
        if column_names is not None and (
            names is None or not names or len(set(names)) != len(names)
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise TypeError(
                f"{type(self).__name__}: column_names must be None or the distinct names "
                "of a header-less file's columns in order, e.g. ['open_time', 'open', "
                f"'high', 'low', 'close'], got {column_names!r}"
            )
        if names is not None and self._format != "csv":
            raise TypeError(
                f"{type(self).__name__}: column_names is for CSV files without a header "
                "row; a Parquet file names its columns"
            )
        self.file_pattern = str(file_pattern)
        self.column_name = column_name
        self.timestamp_col = timestamp_col
        self.symbol_col = symbol_col
        self.timestamp_format = timestamp_format
        self.source_column = source_column
        self.column_names = names

    def params(self) -> dict[str, Any]:
        """Constructor arguments; ``timestamp_format``, ``source_column`` and
        ``column_names`` only when set.

        Leaving out the defaults keeps ``to_dict()`` (and so the fingerprints of saved
        results) of loaders that do not use them as they were before they existed.
        """
        params = super().params()
        for key in ("timestamp_format", "source_column", "column_names"):
            if params.get(key) is None:
                params.pop(key, None)
        return params

    @property
    def file_column(self) -> str:
        """The column read from the file (served under ``column_name``)."""
        return self.source_column or self.column_name

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__}(file_pattern={self.file_pattern!r})"

    def get_columns(self) -> list[str]:
        return [self.column_name]

    def _per_symbol(self) -> bool:
        return "{symbol}" in self.file_pattern

    def _symbol_files(self, symbols: Sequence[str]) -> list[tuple[str, str]]:
        """(path, symbol) of a ``{symbol}`` pattern, which may also be a glob
        (``{symbol}-1h-2024-*.csv``: one file per symbol and month)."""
        found: dict[str, str] = {}
        for symbol in symbols:
            path = self.file_pattern.format(symbol=symbol)
            matches = sorted(glob.glob(path)) if glob.has_magic(path) else (
                [path] if os.path.exists(path) else [])
            for match in matches:
                if match in found:
                    raise DataError(
                        f"{self._owner}: file {match!r} matches the pattern for both "
                        f"{found[match]!r} and {symbol!r}; make the pattern name one "
                        "symbol per file (e.g. '{symbol}-1h-*.csv', not '{symbol}*.csv')"
                    )
                found[match] = symbol
        return list(found.items())

    def files(self, symbols: Sequence[str]) -> list[str]:
        """Files read for ``symbols``; an error when nothing matches."""
        if self._per_symbol():
            paths = [path for path, _ in self._symbol_files(symbols)]
        elif glob.has_magic(self.file_pattern):
            paths = sorted(glob.glob(self.file_pattern))
        else:
            paths = [self.file_pattern]
        if not paths:
            raise DataError(
                f"{self._owner}: data file missing, nothing matches the pattern for symbols "
                f"{list(symbols)} (working directory {os.getcwd()!r}); check the path or pattern"
            )
        return paths

    def _tables(
        self, symbols: Sequence[str], window: tuple[int, int] | None = None
    ) -> list[Table]:
        owners = dict(self._symbol_files(symbols)) if self._per_symbol() else {}
        tables = []
        for path in self.files(symbols):
            default_symbol = owners.get(path)
            tables.append(
                read_table(
                    stat_file(path, self._owner),
                    self.timestamp_col,
                    self.symbol_col,
                    [self.file_column],
                    self._owner,
                    default_symbol=default_symbol,
                    fmt=self._format,
                    window=window,
                    timestamp_format=self.timestamp_format,
                    names=self.column_names,
                )
            )
        return tables

    def file_tables(self, symbols: Sequence[str]) -> list[Table]:
        """Every file read for ``symbols``, parsed whole (for what a file holds)."""
        return self._tables(symbols)

    def file_of(self, stamp: pd.Timestamp, symbol: str, symbols: Sequence[str]) -> str | None:
        """The file holding the row (stamp, symbol), for error messages."""
        window = (stamp.value, stamp.value + 1)
        for table in self._tables(list(symbols), window):
            lo, hi = np.searchsorted(table.timestamps, [stamp.value, stamp.value + 1])
            names = np.asarray(table.symbols.categories, dtype=object)
            codes = table.symbols.codes[lo:hi]
            if np.any(names[codes[codes >= 0]] == symbol):
                return table.path
        return None

    def load_range(
        self, start: pd.Timestamp, end: pd.Timestamp, symbols: Sequence[str]
    ) -> pd.DataFrame:
        """Rows with start <= timestamp < end (UTC) for ``symbols``, sorted by time."""
        wanted = list(symbols)
        parts_ts, parts_sym, parts_val = [], [], []
        for table in self._tables(wanted, (start.value, end.value)):
            lo, hi = np.searchsorted(table.timestamps, [start.value, end.value])
            if hi <= lo:
                continue
            categories = np.asarray(table.symbols.categories, dtype=object)
            # position of each file symbol in ``wanted`` (-1: not requested)
            position = pd.Index(wanted).get_indexer(categories)
            codes = table.symbols.codes[lo:hi]
            sym = np.where(codes >= 0, position[np.maximum(codes, 0)], -1)
            mask = sym >= 0
            if not mask.any():
                continue
            parts_ts.append(table.timestamps[lo:hi][mask])
            parts_sym.append(sym[mask])
            parts_val.append(table.values(self.file_column, self._owner)[lo:hi][mask])
        if not parts_ts:
            return empty_frame([self.column_name])
        ts = np.concatenate(parts_ts)
        sym = np.concatenate(parts_sym)
        val = np.concatenate(parts_val)
        if len(parts_ts) > 1:
            order = np.lexsort((sym, ts))
            ts, sym, val = ts[order], sym[order], val[order]
            same = (ts[1:] == ts[:-1]) & (sym[1:] == sym[:-1])
            if same.any():
                k = int(np.flatnonzero(same)[0])
                raise DataError(
                    f"{self._owner}: two files hold a row for "
                    f"({pd.Timestamp(ts[k], tz='UTC')}, {wanted[sym[k]]!r}); keep one row "
                    "per (timestamp, symbol) across the files of a pattern"
                )
        return pd.DataFrame({self.column_name: val}, index=make_index(ts, sym, wanted))

    def load_date_range(
        self, start_date: dt.date, end_date: dt.date, symbols: Sequence[str]
    ) -> pd.DataFrame:
        start, end = day_bounds(start_date, end_date)
        return self.load_range(start, end, symbols)


class CSVDataLoader(_FileLoader):
    """Long-format CSV: one row per (timestamp, symbol), a column per value.

    Parameters
    ----------
    file_pattern
        A path, a glob (``data/*.csv``) or a pattern with ``{symbol}`` (one file per
        symbol; such files may omit the symbol column).
    column_name
        The column this loader provides (``close`` for a price loader).
    timestamp_col, symbol_col
        The file's timestamp and symbol columns.
    timestamp_format
        A strptime format such as ``'%d/%m/%Y %H:%M'`` for timestamps that are neither
        ISO 8601 text (naive means UTC) nor epoch numbers: guessing the convention
        silently swaps day and month.
    source_column
        Read this column of the file under ``column_name`` (an exchange's ``Close`` as
        ``close``).
    column_names
        The columns of files without a header row, in order (Binance klines, see the
        README's recipe).

    Notes
    -----
    ``load_date_range(start_date, end_date, symbols)`` returns a frame on a
    ``(timestamp, symbol)`` index with the one column ``column_name``; each file is
    parsed once per process.
    """


class ParquetDataLoader(_FileLoader):
    """The same as :class:`CSVDataLoader` for Parquet files (recommended for big data).

    Parameters
    ----------
    file_pattern, column_name, timestamp_col, symbol_col, timestamp_format, source_column
        As for :class:`CSVDataLoader` (``column_names`` applies to CSV only).
    """

    _format = "parquet"


class CompositeDataLoader(DataLoader):
    """Outer join of several loaders; each distinct loader is read once.

    Parameters
    ----------
    loaders
        DataLoaders whose columns differ (a column provided twice is an error naming
        both loaders).
    """

    def __init__(self, loaders: Sequence[DataLoader]) -> None:
        unique: list[DataLoader] = []
        for loader in loaders:
            if not isinstance(loader, DataLoader):
                raise TypeError(
                    f"CompositeDataLoader: {loader!r} is not a DataLoader "
                    "(subclass alphadev.data.DataLoader)"
                )
            if loader not in unique:
                unique.append(loader)
        owners: dict[str, DataLoader] = {}
        for loader in unique:
            for col in loader.get_columns():
                if col in owners:
                    raise ValueError(
                        f"CompositeDataLoader: column {col!r} is provided by both "
                        f"{owners[col]!r} and {loader!r}; rename one of them (column_name=)"
                    )
                owners[col] = loader
        self.loaders = unique

    def get_columns(self) -> list[str]:
        return [c for loader in self.loaders for c in loader.get_columns()]

    def files(self, symbols: Sequence[str]) -> list[str]:
        return [f for loader in self.loaders for f in loader.files(symbols)]

    def load_range(
        self, start: pd.Timestamp, end: pd.Timestamp, symbols: Sequence[str]
    ) -> pd.DataFrame:
        frames = [load_range(loader, start, end, symbols) for loader in self.loaders]
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, axis=1, join="outer", sort=True)

    def load_date_range(
        self, start_date: dt.date, end_date: dt.date, symbols: Sequence[str]
    ) -> pd.DataFrame:
        start, end = day_bounds(start_date, end_date)
        return self.load_range(start, end, symbols)


def load_range(
    loader: DataLoader, start: pd.Timestamp, end: pd.Timestamp, symbols: Sequence[str]
) -> pd.DataFrame:
    """Rows of any loader with start <= timestamp < end, validated and UTC.

    Built-in loaders filter precisely; a user's loader only knows calendar days, so its
    output is trimmed here and its index checked.
    """
    own = getattr(loader, "load_range", None)
    if own is not None:
        return own(start, end, symbols)
    last_day = (end - pd.Timedelta(1, "ns")).date()
    frame = loader.load_date_range(start.date(), last_day, list(symbols))
    frame = normalize_frame(frame, repr(loader), "load_date_range()")
    stamps = frame.index.get_level_values(0)
    return frame[(stamps >= start) & (stamps < end)]


def normalize_frame(frame: Any, owner: str, what: str) -> pd.DataFrame:
    """Check a (timestamp, symbol) frame from user code and make its timestamps UTC."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{owner}: {what} must return a pandas DataFrame, got {type(frame)}")
    index = frame.index
    if not isinstance(index, pd.MultiIndex) or index.nlevels != 2:
        raise DataError(
            f"{owner}: {what} must return a frame indexed by a (timestamp, symbol) "
            f"MultiIndex, got an index with levels {list(index.names)}"
        )
    # Work on the levels (few values), not on every row.
    stamps = index.levels[0]
    if not isinstance(stamps, pd.DatetimeIndex):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                stamps = pd.DatetimeIndex(pd.to_datetime(stamps, utc=True))
        except (ValueError, TypeError) as exc:
            raise DataError(
                f"{owner}: {what} returned a first index level that is not timestamps "
                f"({exc}); the index must be (timestamp, symbol)"
            ) from exc
    stamps = stamps.tz_convert("UTC") if stamps.tz is not None else stamps.tz_localize("UTC")
    symbols = pd.Index(index.levels[1].astype(str), dtype=object)
    if stamps.has_duplicates or symbols.has_duplicates:  # levels that merge on conversion
        return frame.set_axis(
            pd.MultiIndex.from_arrays(
                [stamps[index.codes[0]], symbols[index.codes[1]]], names=INDEX_NAMES
            ),
            axis=0,
        )
    fixed = index.set_levels([stamps, symbols], verify_integrity=False).set_names(INDEX_NAMES)
    return frame.set_axis(fixed, axis=0)
