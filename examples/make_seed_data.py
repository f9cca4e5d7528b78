"""Write the three CSV files the seed example reads (deterministic, about 100 KB).

Usage: python examples/make_seed_data.py [DIR]   (default: the current directory)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]


def write_seed_data(folder: str | Path = ".", seed: int = 7) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2023-12-31", "2024-01-31 23:00", freq="1h", tz="UTC")
    prices, alphas = [], []
    for k, symbol in enumerate(SYMBOLS):
        steps = rng.normal(0.0, 0.01, len(stamps))
        close = 100.0 * (k + 1) * np.exp(np.cumsum(steps))
        # The alpha knows a little about the next bar: a noisy view of its return.
        next_return = np.append(np.exp(steps[1:]) - 1.0, 0.0)
        value = next_return + rng.normal(0.0, 0.05, len(stamps))
        iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
        prices.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "close": close.round(6)}))
        alphas.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "value": value.round(6)}))
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(alphas).to_csv(folder / "alphas.csv", index=False)
    pd.DataFrame(
        {"symbol": SYMBOLS, "beta": [1.1, 0.9, 1.3], "status": ["ok", "ok", "stale"]}
    ).to_csv(folder / "beta.csv", index=False)


if __name__ == "__main__":
    write_seed_data(sys.argv[1] if len(sys.argv) > 1 else ".")
