"""Notebook and data conveniences: betas default to none, and the bundled example keeps
the lookback contract (its value at a bar depends only on data within its lookback)."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from tests.alphas import EchoAlpha
from tests.conftest import SYMBOLS, write_market

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep_example.py"


def test_beta_csv_path_defaults_to_no_betas(tmp_path: Path) -> None:
    market = write_market(tmp_path / "data")
    fields = dict(
        name="nobeta", alpha_class=EchoAlpha, alpha_kwargs={},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 9), symbols=list(SYMBOLS),
        price_loader=CSVDataLoader(str(market / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(market / "values.csv"), "value")],
    )
    default = BacktestConfig(**fields)
    explicit = BacktestConfig(**fields, beta_csv_path=None)
    assert default.beta_csv_path is None and default.fingerprint() == explicit.fingerprint()
    bt = Backtester()
    bt.add_config(default)
    (result,) = bt.run_all(verbose=False)
    assert result is not None and np.isfinite(result.metrics["total"]["sharpe"])


def _example_alpha():
    spec = importlib.util.spec_from_file_location("bundled_sweep_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CrossSectionalMomentum(window=3, signal_weight=0.0)


def test_the_bundled_example_shifts_by_time_not_rows() -> None:
    """A symbol with a gap: its value at a bar is the same whether or not the data hold
    rows from before the lookback (a shift by rows would reach across the gap)."""
    stamps = pd.date_range("2024-01-01", periods=30, freq="1h", tz="UTC")
    index = pd.MultiIndex.from_product([stamps, ["A", "B", "C"]], names=["timestamp", "symbol"])
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"close": np.exp(rng.normal(0, 0.01, len(index)).cumsum()),
                         "value": rng.normal(size=len(index))}, index=index)
    gap = (data.index.get_level_values("symbol") == "B") & (
        (data.index.get_level_values("timestamp") >= stamps[10])
        & (data.index.get_level_values("timestamp") < stamps[20]))
    data = data[~gap]
    alpha = _example_alpha()
    whole = alpha.compute(data)["alpha"]
    for t in (stamps[21], stamps[22], stamps[25]):
        window = data[(data.index.get_level_values("timestamp") >= t - alpha.lookback)
                      & (data.index.get_level_values("timestamp") <= t)]
        alone = alpha.compute(window)["alpha"]
        pd.testing.assert_series_equal(whole.xs(t, level="timestamp"),
                                       alone.xs(t, level="timestamp"))
    # B has no bar 3 hours before 21:00 and 22:00 (inside its gap): no value there.
    assert np.isnan(whole.loc[(stamps[21], "B")]) and np.isnan(whole.loc[(stamps[22], "B")])
