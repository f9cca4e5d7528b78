"""Alphas used by the benchmarks (importable, so configs pickle).

Not the example's ``CrossSectionalMomentum`` on purpose: the benchmark rows are compared
across releases, so their alpha must not change when the example is improved (it has a
``version`` and z-scores with pandas group-bys that would dominate the sweep rows).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from alphadev import Alpha


class Momentum(Alpha):
    """Log return over ``window`` bars plus the value column: a typical vectorised alpha."""

    def __init__(self, window: int = 24) -> None:
        self.window = window

    @property
    def lookback(self) -> dt.timedelta:
        return dt.timedelta(hours=self.window)

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        log_close = np.log(data["close"])
        trend = log_close - log_close.groupby(level="symbol").shift(self.window)
        return (trend + data["value"]).rename("alpha").to_frame()


class HeavyAlpha(Alpha):
    """Burns CPU in ``compute`` (repeated rolling statistics) to measure pool speed-up."""

    def __init__(self, rounds: int = 40) -> None:
        self.rounds = rounds

    lookback = 24 * 60

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        values = data["value"].unstack("symbol").to_numpy()
        score = np.zeros_like(values)
        for k in range(self.rounds):
            kernel = np.ones(3 + k % 7) / (3 + k % 7)
            smoothed = np.apply_along_axis(np.convolve, 0, values, kernel, mode="same")
            score += np.tanh(smoothed * (k + 1))
        frame = pd.DataFrame(score, index=data["value"].unstack("symbol").index,
                             columns=data["value"].unstack("symbol").columns)
        return frame.stack().rename("alpha").to_frame()
