"""The direct Arrow read of a plain Parquet file gives the table the general (pandas)
path gives, on every kind of file it accepts; anything else goes the general way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alphadev.data import files
from alphadev.errors import DataError


def _frame(rng: np.random.Generator, zone: str | None, unit: str, n: int = 400) -> pd.DataFrame:
    offsets = pd.to_timedelta(rng.integers(0, 10**15, n), "ns").floor(
        {"s": "1s", "ms": "1ms", "us": "1us", "ns": "1ns"}[unit])  # sub-second parts kept
    stamps = (pd.Timestamp("2024-01-01") + offsets).as_unit(unit)
    if zone is not None:
        stamps = stamps.tz_localize("UTC").tz_convert(zone)
    symbols = rng.choice(["AAAUSDT", " BBBUSDT", "CCCUSDT ", "DDDUSDT"], n).astype(object)
    frame = pd.DataFrame({"timestamp": stamps, "symbol": symbols,
                          "close": rng.normal(100, 1, n), "other": rng.normal(0, 1, n)})
    frame.loc[rng.random(n) < 0.1, "close"] = np.nan
    return frame.drop_duplicates(["timestamp", "symbol"]).reset_index(drop=True)


def _table(path: Path, window, monkeypatch=None) -> files.Table:
    files.clear_cache()
    stat = files.stat_file(str(path), "test")
    return files.read_table(stat, "timestamp", "symbol", ["close"], "test", fmt="parquet",
                            window=window)


def _same(fast: files.Table, general: files.Table) -> None:
    assert np.array_equal(fast.timestamps, general.timestamps)
    assert list(fast.symbols.astype(object)) == list(general.symbols.astype(object))
    for column in ("close", "other"):
        assert np.array_equal(fast.values(column, "t"), general.values(column, "t"),
                              equal_nan=True)
    assert fast.file_columns == general.file_columns


@pytest.mark.parametrize("seed", range(12))
def test_direct_read_equals_the_general_path(tmp_path: Path, monkeypatch, seed: int) -> None:
    rng = np.random.default_rng(seed)
    zone = [None, "UTC", "Asia/Tokyo", "America/New_York"][seed % 4]
    unit = ["s", "ms", "us", "ns"][seed // 3 % 4]
    frame = _frame(rng, zone, unit)
    if seed % 2:
        frame = frame.sort_values("timestamp", kind="stable")
    if seed % 5 == 0:
        frame.loc[3, "symbol"] = None  # a row without a symbol
    path = tmp_path / "prices.parquet"
    frame.to_parquet(path, row_group_size=int(rng.integers(20, 200)), index=False)
    first, last = frame["timestamp"].min(), frame["timestamp"].max()
    windows = [None, (first.value, last.value + 1), (first.value - 10, last.value + 10),
               (int(first.value + (last.value - first.value) * 0.3), last.value)]
    for window in windows:
        fast = _table(path, window)
        assert files._parse_plain_parquet(str(path), "timestamp", "symbol", window) is not None
        monkeypatch.setattr(files, "_parse_plain_parquet", lambda *a: None)
        general = _table(path, window)
        monkeypatch.undo()
        _same(fast, general)


def test_unusual_files_take_the_general_path(tmp_path: Path) -> None:
    frame = _frame(np.random.default_rng(1), "UTC", "us")
    indexed = tmp_path / "indexed.parquet"
    frame.set_index(["timestamp", "symbol"]).to_parquet(indexed)  # index kept as columns
    assert files._parse_plain_parquet(str(indexed), "timestamp", "symbol", None) is not None
    padded = tmp_path / "padded.parquet"
    frame.rename(columns={"close": " close"}).to_parquet(padded)
    assert files._parse_plain_parquet(str(padded), "timestamp", "symbol", None) is None
    texts = tmp_path / "texts.parquet"
    frame.assign(timestamp=frame["timestamp"].astype(str)).to_parquet(texts)
    assert files._parse_plain_parquet(str(texts), "timestamp", "symbol", None) is None
    empty = tmp_path / "empty_stamp.parquet"
    table = pa.table({"timestamp": pa.array([None, 10**15], pa.timestamp("us", tz="UTC")),
                      "symbol": ["AAAUSDT", "AAAUSDT"], "close": [1.0, 2.0]})
    pq.write_table(table, empty)
    assert files._parse_plain_parquet(str(empty), "timestamp", "symbol", None) is None
    with pytest.raises(DataError, match="empty timestamp"):
        _table(empty, None)


def test_duplicates_are_still_refused_on_the_direct_path(tmp_path: Path) -> None:
    frame = _frame(np.random.default_rng(2), "UTC", "us")
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    path = tmp_path / "dup.parquet"
    frame.to_parquet(path, index=False)
    assert files._parse_plain_parquet(str(path), "timestamp", "symbol", None) is not None
    with pytest.raises(DataError, match="duplicate rows"):
        _table(path, None)
