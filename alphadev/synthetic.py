"""Deterministic synthetic markets for examples, tests and benchmarks.

Prices follow a random walk whose returns carry a little momentum, so trend alphas
have something to find; the 'value' column is a noisy view of the next bar's return.
Funding events come every 8 hours (00:00, 08:00, 16:00 UTC), as on most perpetual
futures exchanges: small rates around a persistent per-symbol bias.
Files are published with a hard link, so concurrent writers (several processes or
machines creating the same example data) never replace a file another has used.
A folder the generator wrote holds ``SYNTHETIC.txt``: a sweep whose prices come from
such a folder is marked synthetic in its report (``data_are_synthetic``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alphadev.store import atomic_write

SYNTHETIC_MARKER = "SYNTHETIC.txt"


def synthetic_market(
    n_symbols: int, days: int, seed: int = 0, start: str = "2024-01-01", freq: str = "1h",
    momentum: float = 0.05, signal_noise: float = 25.0, symbols: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Long-format frame: timestamp, symbol, close, value, quote_volume.

    Symbols are ``S000USDT``, ``S001USDT``, ... unless ``symbols`` names them.
    ``quote_volume`` (traded volume in quote currency per bar) has a level per symbol
    spread over three orders of magnitude (1e7 to 1e10 a day, as between small and large
    perpetuals), grows with the bar's absolute return and is noisy; it is drawn from its
    own generator, so the prices and values of a seed do not depend on it.
    """
    if symbols is not None and len(symbols) != n_symbols:
        raise ValueError(f"symbols={list(symbols)!r} must name exactly n_symbols={n_symbols}")
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(start, periods=int(days * pd.Timedelta("1D") / pd.Timedelta(freq)),
                           freq=freq, tz="UTC")
    n_bars = len(stamps)
    shocks = rng.normal(0.0, 0.01, (n_bars, n_symbols))
    returns = np.empty_like(shocks)
    returns[0] = shocks[0]
    for t in range(1, n_bars):
        returns[t] = momentum * returns[t - 1] + shocks[t]
    close = 100.0 * np.exp(np.cumsum(returns, axis=0)) * rng.uniform(0.5, 2.0, n_symbols)
    upcoming = np.vstack([returns[1:], np.zeros((1, n_symbols))])
    value = upcoming + rng.normal(0.0, 0.01 * signal_noise, (n_bars, n_symbols))
    volume_rng = np.random.default_rng(seed + 3)
    daily = 10.0 ** volume_rng.uniform(7.0, 10.0, n_symbols)
    per_bar = daily * (pd.Timedelta(freq) / pd.Timedelta("1D"))
    volume = per_bar * (1.0 + 50.0 * np.abs(returns)) * volume_rng.lognormal(
        -0.125, 0.5, (n_bars, n_symbols))
    if symbols is None:
        symbols = [f"S{k:03d}USDT" for k in range(n_symbols)]
    return pd.DataFrame(
        {
            "timestamp": np.repeat(stamps, n_symbols),
            "symbol": np.tile(symbols, n_bars),
            "close": close.ravel().round(8),
            "value": value.ravel().round(8),
            "quote_volume": volume.ravel().round(2),
        }
    )


FUNDING_HOURS = (0, 8, 16)


def synthetic_funding(
    symbols: Sequence[str], days: int, seed: int = 0, start: str = "2024-01-01",
    mean: float = 1e-4, bias: float = 1e-4, noise: float = 5e-5,
) -> pd.DataFrame:
    """Long-format frame: timestamp, symbol, rate; one event per symbol at 00:00, 08:00
    and 16:00 UTC.

    Each symbol's rate is ``mean`` plus its own persistent bias (drawn once, spread
    ``bias``) plus noise (spread ``noise``): crowded longs keep paying, as in real books.
    """
    rng = np.random.default_rng(seed)
    first = pd.Timestamp(start, tz="UTC").normalize()
    stamps = pd.DatetimeIndex(
        [first + pd.Timedelta(days=d, hours=h) for d in range(days) for h in FUNDING_HOURS]
    )
    per_symbol = mean + rng.normal(0.0, bias, len(symbols))
    rates = per_symbol + rng.normal(0.0, noise, (len(stamps), len(symbols)))
    return pd.DataFrame(
        {
            "timestamp": np.repeat(stamps, len(symbols)),
            "symbol": np.tile(list(symbols), len(stamps)),
            "rate": rates.ravel().round(8),
        }
    )


def publish_once(
    frame: pd.DataFrame, path: Path, fmt: str = "csv", row_group_size: int | None = None
) -> Path:
    """Write ``frame`` to ``path`` unless it exists; atomic, and first writer wins.

    Parquet files get row groups of ``row_group_size`` rows: time-sorted groups of about
    a week let windowed reads (streaming) skip everything outside their window.
    """
    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, first_wins=True) as tmp:
        if fmt == "parquet":
            frame.to_parquet(tmp, index=False, row_group_size=row_group_size)
        else:
            frame.to_csv(tmp, index=False)
    return path


def write_synthetic_market(
    folder: str | os.PathLike, n_symbols: int = 20, days: int = 60, seed: int = 0,
    fmt: str = "csv", symbols: Sequence[str] | None = None, start: str = "2024-01-01",
    signal_noise: float = 25.0, momentum: float = 0.05,
) -> dict[str, Path]:
    """prices.<ext>, values.<ext>, volume.<ext> (quote_volume), funding.<ext> and beta.csv
    in ``folder`` (created if missing).

    ``symbols`` names the symbols (then ``n_symbols`` is their number); ``signal_noise``
    is how much noise hides the next bar's return in 'value' (more: a weaker signal),
    ``momentum`` the autocorrelation of hourly returns (``synthetic_market``).
    Files that exist are kept, so give each set of parameters its own folder. The data
    are synthetic and mean nothing about real markets.
    """
    if symbols is not None:
        n_symbols = len(symbols)
    folder = Path(folder)
    ext = "parquet" if fmt == "parquet" else "csv"
    paths = {
        "prices": folder / f"prices.{ext}",
        "values": folder / f"values.{ext}",
        "beta": folder / "beta.csv",
        "funding": folder / f"funding.{ext}",
        "volume": folder / f"volume.{ext}",
    }
    if all(p.exists() for p in paths.values()):
        return paths
    market = synthetic_market(n_symbols, days, seed, start=start, symbols=symbols,
                              momentum=momentum, signal_noise=signal_noise)
    if fmt == "csv":
        market["timestamp"] = market["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    week = n_symbols * 24 * 7
    publish_once(market[["timestamp", "symbol", "close"]], paths["prices"], fmt, week)
    publish_once(market[["timestamp", "symbol", "value"]], paths["values"], fmt, week)
    publish_once(market[["timestamp", "symbol", "quote_volume"]], paths["volume"], fmt, week)
    rng = np.random.default_rng(seed + 1)
    symbols = sorted(market["symbol"].unique())
    betas = pd.DataFrame(
        {"symbol": symbols, "beta": rng.uniform(0.6, 1.6, len(symbols)).round(4), "status": "ok"}
    )
    publish_once(betas, paths["beta"])
    funding = synthetic_funding(symbols, days, seed + 2, start=start)
    if fmt == "csv":
        funding["timestamp"] = funding["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    publish_once(funding, paths["funding"], fmt, n_symbols * len(FUNDING_HOURS) * 7)
    with atomic_write(folder / SYNTHETIC_MARKER) as tmp:
        tmp.write_text("written by alphadev.synthetic: these data mean nothing about a real "
                       "market\n", encoding="utf-8")
    return paths


def data_are_synthetic(configs: Sequence[Any]) -> bool:
    """Whether any config's prices come from a folder this module wrote. Prices decide
    the pnl, so synthetic prices make the results synthetic whatever the alpha reads."""
    for config in configs:
        try:
            files = config.price_loader.files(config.symbols)
        except (OSError, ValueError, TypeError, AttributeError):
            continue  # the run itself names what is wrong with the loader
        if any((Path(f).parent / SYNTHETIC_MARKER).is_file() for f in files):
            return True
    return False
