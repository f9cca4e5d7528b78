"""docs/semantics.md#side-data: funding and beta files must serve the configured symbols.

A file whose symbols match none of the config's (``aaa`` for ``AAAUSDT``, ``AAA-USDT``)
is an error naming the file, its symbols and the configured ones; a file that leaves
some symbols out, or whose rows all fall outside the period, is reported in
``metadata["symbols_without_funding"]`` / ``["symbols_without_beta"]`` and warned
about, the same in batch and in streaming.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import CSVDataLoader, ParquetDataLoader
from alphadev.errors import DataError
from alphadev.runner import run_backtest
from tests.conftest import SYMBOLS, make_config


def _funding(folder: Path, symbols, start="2024-01-01", days=10, name="funding.csv",
             rate=1e-4) -> Path:
    stamps = pd.date_range(start, periods=3 * days, freq="8h", tz="UTC")
    rows = [{"timestamp": s.isoformat(), "symbol": sym, "rate": rate}
            for s in stamps for sym in symbols]
    path = folder / name
    frame = pd.DataFrame(rows, columns=["timestamp", "symbol", "rate"])
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def _betas(folder: Path, symbols, name="betas_over_time.csv") -> Path:
    rows = [{"timestamp": "2023-12-31T00:00:00Z", "symbol": s, "beta": 1.2} for s in symbols]
    path = folder / name
    pd.DataFrame(rows, columns=["timestamp", "symbol", "beta"]).to_csv(path, index=False)
    return path


def _beta_file(folder: Path, symbols, status="ok", name="beta.csv") -> Path:
    path = folder / name
    pd.DataFrame({"symbol": list(symbols), "beta": 1.1, "status": status},
                 columns=["symbol", "beta", "status"]).to_csv(path, index=False)
    return path


def _run(market, **fields):
    return run_backtest(make_config(market, **{"beta_csv_path": None, **fields}))


def _funding_loader(path: Path):
    loader = ParquetDataLoader if path.suffix == ".parquet" else CSVDataLoader
    return loader(str(path), "rate")


# ---------------------------------------------------------------- no symbol matches
@pytest.mark.parametrize("spelled", [
    [s.lower() for s in SYMBOLS],
    [s.replace("USDT", "-USDT") for s in SYMBOLS],
])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_funding_matching_no_symbol_is_an_error(market, spelled, suffix):
    path = _funding(market, spelled, name="funding" + suffix)
    with pytest.raises(DataError) as info:
        _run(market, funding_loader=_funding_loader(path))
    message = str(info.value)
    for part in ("config 'base'", "funding_loader", str(path), spelled[0], SYMBOLS[0],
                 "case and separators"):
        assert part in message, (part, message)


def test_beta_loader_matching_no_symbol_is_an_error(market):
    path = _betas(market, ["BTC-USDT", "ETH-USDT"])
    with pytest.raises(DataError) as info:
        _run(market, beta_loader=CSVDataLoader(str(path), "beta"))
    message = str(info.value)
    for part in ("beta_loader", str(path), "BTC-USDT", SYMBOLS[0]):
        assert part in message, (part, message)


def test_beta_file_matching_no_symbol_is_an_error(market):
    path = _beta_file(market, [s.lower() for s in SYMBOLS])
    with pytest.raises(DataError) as info:
        _run(market, beta_csv_path=str(path))
    message = str(info.value)
    for part in ("beta_csv_path", str(path), SYMBOLS[0].lower(), SYMBOLS[0], "case"):
        assert part in message, (part, message)


@pytest.mark.parametrize("field", ["funding_loader", "beta_loader", "beta_csv_path"])
def test_a_header_only_file_is_an_error(market, field):
    if field == "beta_csv_path":
        path = _beta_file(market, [])
        fields = {field: str(path)}
    else:
        path = _funding(market, [], name="empty.csv")
        fields = {field: CSVDataLoader(str(path), "rate")}
    with pytest.raises(DataError) as info:
        _run(market, **fields)
    assert field in str(info.value) and "no rows" in str(info.value)


# ---------------------------------------------------------------- partly covered
def test_symbols_without_funding_are_listed_and_warned(market, caplog):
    path = _funding(market, SYMBOLS[:3] + [SYMBOLS[3].lower()])
    result = _run(market, funding_loader=_funding_loader(path))
    assert result.metadata["symbols_without_funding"] == SYMBOLS[3:]
    warning = next(w for w in result.metadata["warnings"] if "funding" in w)
    assert SYMBOLS[3] in warning and SYMBOLS[4] in warning
    assert repr(SYMBOLS[3].lower()) in warning  # the spelling hint
    assert warning in caplog.text
    assert result.metrics["total_funding"] != 0.0


def test_funding_all_outside_the_period_is_warned(market):
    path = _funding(market, SYMBOLS, start="2023-01-01", days=30)
    result = _run(market, funding_loader=_funding_loader(path))
    assert result.metadata["symbols_without_funding"] == SYMBOLS
    warning = next(w for w in result.metadata["warnings"] if "funding" in w)
    assert "span" in warning and "2023-01-01" in warning
    assert result.metrics["total_funding"] == 0.0


def test_full_funding_and_betas_report_nothing(market):
    funding = _funding(market, SYMBOLS)
    betas = _betas(market, SYMBOLS)
    result = _run(market, funding_loader=_funding_loader(funding),
                  beta_loader=CSVDataLoader(str(betas), "beta"))
    assert result.metadata["symbols_without_funding"] == []
    assert result.metadata["symbols_without_beta"] == []
    # A random alpha may be fragile (docs/semantics.md#next-bar); side data say nothing.
    side = [w for w in result.metadata["warnings"] if "funding" in w or "beta" in w]
    assert side == []


def test_no_side_files_no_keys(market):
    result = _run(market)
    assert "symbols_without_funding" not in result.metadata
    assert "symbols_without_beta" not in result.metadata


def test_symbols_without_beta_from_a_beta_loader(market):
    path = _betas(market, SYMBOLS[:2])
    result = _run(market, beta_loader=CSVDataLoader(str(path), "beta"))
    assert result.metadata["symbols_without_beta"] == SYMBOLS[2:]
    assert any("beta 1.0" in w or "beta is 1.0" in w for w in result.metadata["warnings"])


def test_symbols_without_beta_from_a_beta_file(market):
    path = _beta_file(market, SYMBOLS[:4])
    frame = pd.read_csv(path)
    frame.loc[0, "status"] = "stale"  # named but not usable: beta 1.0
    frame.to_csv(path, index=False)
    result = _run(market, beta_csv_path=str(path))
    assert result.metadata["symbols_without_beta"] == [SYMBOLS[0], SYMBOLS[4]]
    assert any("beta_csv_path" in w for w in result.metadata["warnings"])


@pytest.mark.parametrize("chunk_days", [1, 3])
def test_streaming_reports_what_batch_reports(market, chunk_days):
    # funding only inside the first days: later chunks see none, the run as a whole does
    funding = _funding(market, SYMBOLS[:3], start="2024-01-02", days=2)
    betas = _betas(market, SYMBOLS[1:])
    fields = dict(funding_loader=_funding_loader(funding),
                  beta_loader=CSVDataLoader(str(betas), "beta"))
    batch = _run(market, **fields)
    stream = _run(market, mode="streaming", chunk_days=chunk_days, **fields)
    for key in ("symbols_without_funding", "symbols_without_beta", "warnings"):
        assert stream.metadata[key] == batch.metadata[key], key
    assert batch.metadata["symbols_without_funding"] == SYMBOLS[3:]
    np.testing.assert_allclose(stream.sequences["funding"], batch.sequences["funding"])
