"""A small sweep saved by alphadev before execution costs existed (tests/engine/test_costs.py).

``python -m tests.data.legacy_sweep.make`` wrote ``results/`` here with the code of
that time; the test copies this folder, restores the data files' recorded mtimes and
checks that the saved results are still DONE with the same numbers.  Never edit the
alpha below: its code is part of the saved fingerprints.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev.alpha import Alpha

HERE = Path(__file__).resolve().parent
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
MTIME_NS = 1_700_000_000 * 10**9  # the data files' mtime when the results were saved


class LegacyEchoAlpha(Alpha):
    """The alpha is the 'value' column."""

    lookback = 60

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return data[["value"]].rename(columns={"value": "alpha"})


def write_data(folder: Path) -> None:
    rng = np.random.default_rng(7)
    stamps = pd.date_range("2024-01-01", periods=24 * 4, freq="1h", tz="UTC")
    prices, values = [], []
    for k, symbol in enumerate(SYMBOLS):
        steps = rng.normal(0, 0.01, len(stamps))
        iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
        close = np.round(50.0 * (k + 1) * np.exp(np.cumsum(steps)), 6)
        value = np.round(np.append(steps[1:], 0.0) + rng.normal(0, 0.02, len(stamps)), 6)
        prices.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "close": close}))
        values.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "value": value}))
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(values).to_csv(folder / "values.csv", index=False)
    for name in ("prices.csv", "values.csv"):
        os.utime(folder / name, ns=(MTIME_NS, MTIME_NS))


def configs() -> list[BacktestConfig]:
    """The sweep, with paths relative to the folder holding the data (the cwd)."""
    base = dict(
        alpha_class=LegacyEchoAlpha,
        alpha_kwargs={},
        start_date=dt.date(2024, 1, 2),
        end_date=dt.date(2024, 1, 4),
        symbols=SYMBOLS,
        price_loader=CSVDataLoader("prices.csv", "close"),
        alpha_loaders=[CSVDataLoader("values.csv", "value")],
        beta_csv_path=None,
    )
    return [
        BacktestConfig(name="q20_batch", **base),
        BacktestConfig(name="q50_stream", quantile=(0.5, 0.5), mode="streaming",
                       chunk_days=1, **base),
    ]


def main() -> None:
    os.chdir(HERE)
    write_data(HERE)
    bt = Backtester()
    for config in configs():
        bt.add_config(config)
    bt.run_all(save_dir="results", num_processes=1)


if __name__ == "__main__":
    main()
