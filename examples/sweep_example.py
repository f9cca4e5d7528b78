"""The bundled example sweep: a time-series momentum alpha on 30 synthetic perpetuals.

Run it with ``luigi --module pipelines Sweep`` from the repository root (luigi.cfg
points here), or ``luigi --module pipelines Sweep --spec examples/sweep_example.py
--save-dir runs/example --local-scheduler`` from anywhere.  The data (about 2 MB)
are generated deterministically next to this file on first use.

4 lookback windows x 2 quantile pairs x 3 fee levels = 24 configs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from alphadev import Alpha, BacktestConfig, Backtester, CSVDataLoader
from alphadev.synthetic import write_synthetic_market

DATA = Path(__file__).resolve().parent / "data"


class Momentum(Alpha):
    """Log return over the last ``window`` hourly bars, blended with the value signal."""

    version = 1

    def __init__(self, window: int = 24, signal_weight: float = 0.5) -> None:
        self.window = window
        self.signal_weight = signal_weight

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=self.window)

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        log_close = np.log(data["close"])
        trend = log_close - log_close.groupby(level="symbol").shift(self.window)
        score = trend / trend.groupby(level="timestamp").transform("std")
        signal = data["value"] / data["value"].groupby(level="timestamp").transform("std")
        alpha = (1 - self.signal_weight) * score + self.signal_weight * signal
        return alpha.rename("alpha").to_frame()


def sweep() -> Backtester:
    files = write_synthetic_market(DATA, n_symbols=30, days=60, seed=11)
    symbols = [f"S{k:03d}USDT" for k in range(30)]
    base = BacktestConfig(
        name="momentum",
        alpha_class=Momentum,
        alpha_kwargs={"signal_weight": 0.5},
        start_date=dt.date(2024, 1, 3),
        end_date=dt.date(2024, 2, 29),
        symbols=symbols,
        price_loader=CSVDataLoader(str(files["prices"]), "close"),
        alpha_loaders=[CSVDataLoader(str(files["values"]), "value")],
        beta_csv_path=str(files["beta"]),
    )
    bt = Backtester(notice="Synthetic data (alphadev.synthetic): a random walk with a planted "
                    "signal; the numbers show how the tool works, not a real edge.")
    bt.add_multiple_configs(
        base,
        param_grid={"window": [6, 12, 24, 48]},
        setting_grid={
            "quantile": [(0.1, 0.2), (0.2, 0.3)],
            "trading_fee_rate": [2e-4, 4.5e-4, 1e-3],
        },
    )
    return bt
