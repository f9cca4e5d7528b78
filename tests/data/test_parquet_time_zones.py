"""docs/semantics.md#data-conventions: tz-aware Parquet timestamps of any zone and unit.

Every built-in loader (prices, alpha inputs, universe, funding, betas) reads a Parquet
file whose timestamp column is ``timestamp[unit, tz=Asia/Kolkata]`` for each unit s, ms,
us and ns as the same UTC instants as the CSV it was written from: the run's numbers
equal the all-CSV run's, in batch and in streaming (whose chunks read windows).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from alphadev import CSVDataLoader, ParquetDataLoader
from alphadev.runner import run_backtest
from tests.conftest import SYMBOLS, make_config

ZONE = "Asia/Kolkata"  # UTC+05:30: a wrong conversion moves rows across bars


def _side_files(folder: Path) -> None:
    stamps = pd.date_range("2023-12-25", "2024-01-10", freq="8h", tz="UTC")
    rows = [(s, sym, 1e-4 * (k + 1) * (-1) ** i) for i, s in enumerate(stamps)
            for k, sym in enumerate(SYMBOLS)]
    funding = pd.DataFrame(rows, columns=["timestamp", "symbol", "rate"])
    funding.assign(timestamp=funding["timestamp"].map(pd.Timestamp.isoformat)).to_csv(
        folder / "funding.csv", index=False)
    days = pd.date_range("2023-12-31", "2024-01-10", freq="1D", tz="UTC")
    rows = [(d, sym, 0.8 + 0.1 * ((k + j) % 5)) for j, d in enumerate(days)
            for k, sym in enumerate(SYMBOLS)]
    beta = pd.DataFrame(rows, columns=["timestamp", "symbol", "beta"])
    beta.assign(timestamp=beta["timestamp"].map(pd.Timestamp.isoformat)).to_csv(
        folder / "betas.csv", index=False)
    rows = [(d, sym, float((k + j) % 4 != 0)) for j, d in enumerate(days)
            for k, sym in enumerate(SYMBOLS)]
    universe = pd.DataFrame(rows, columns=["timestamp", "symbol", "in_universe"])
    universe.assign(timestamp=universe["timestamp"].map(pd.Timestamp.isoformat)).to_csv(
        folder / "universe.csv", index=False)


def _as_parquet(csv: Path, unit: str) -> Path:
    frame = pd.read_csv(csv)
    stamps = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_convert(ZONE)
    if unit == "s":
        stamps = stamps.dt.floor("s")
    columns = {
        "timestamp": pa.array(stamps, type=pa.timestamp(unit, tz=ZONE)),
        **{c: pa.array(frame[c]) for c in frame.columns if c != "timestamp"},
    }
    path = csv.with_name(f"{csv.stem}_{unit}.parquet")
    pq.write_table(pa.table(columns), path)
    stored = pq.read_schema(path).field("timestamp").type
    # Parquet has no unit of seconds: a seconds column is stored in milliseconds
    assert stored == pa.timestamp("ms" if unit == "s" else unit, tz=ZONE)
    return path


FIELDS = {  # field -> (CSV file, column)
    "price_loader": ("prices.csv", "close"),
    "alpha_loaders": ("values.csv", "value"),
    "universe_loader": ("universe.csv", "in_universe"),
    "funding_loader": ("funding.csv", "rate"),
    "beta_loader": ("betas.csv", "beta"),
}


def _fields(folder: Path, parquet_field: str | None = None, unit: str = "ns") -> dict:
    fields = {}
    for field, (name, column) in FIELDS.items():
        if field == parquet_field:
            loader = ParquetDataLoader(str(_as_parquet(folder / name, unit)), column)
        else:
            loader = CSVDataLoader(str(folder / name), column)
        fields[field] = [loader] if field == "alpha_loaders" else loader
    return fields


@pytest.fixture
def side_market(market: Path) -> Path:
    _side_files(market)
    return market


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("field", list(FIELDS))
def test_non_utc_parquet_reads_as_the_csv(side_market, field, unit):
    base = dict(beta_csv_path=None, frequency="1h")
    expected = run_backtest(make_config(side_market, **base, **_fields(side_market)))
    got = run_backtest(make_config(side_market, **base, **_fields(side_market, field, unit)))
    pd.testing.assert_frame_equal(got.sequences, expected.sequences)
    assert got.metrics == expected.metrics
    stream = run_backtest(make_config(
        side_market, **base, mode="streaming", chunk_days=2,
        **_fields(side_market, field, unit),
    ))
    pd.testing.assert_frame_equal(stream.sequences, expected.sequences)
