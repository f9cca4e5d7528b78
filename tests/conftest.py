"""Shared fixtures: small deterministic data sets written as CSV files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader
from alphadev import cache as panel_cache
from alphadev.data import files as parsed_files
from tests.alphas import EchoAlpha

SYMBOLS = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"]


def write_market(folder: Path, symbols=SYMBOLS, days: int = 10, seed: int = 3) -> Path:
    """Hourly prices and a weakly predictive value column from 2024-01-01."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-01-01", periods=24 * days, freq="1h", tz="UTC")
    prices, values = [], []
    for k, symbol in enumerate(symbols):
        steps = rng.normal(0, 0.01, len(stamps))
        close = 50.0 * (k + 1) * np.exp(np.cumsum(steps))
        signal = np.append(steps[1:], 0.0) + rng.normal(0, 0.02, len(stamps))
        iso = stamps.strftime("%Y-%m-%dT%H:%M:%SZ")
        prices.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "close": close}))
        values.append(pd.DataFrame({"timestamp": iso, "symbol": symbol, "value": signal}))
    pd.concat(prices).to_csv(folder / "prices.csv", index=False)
    pd.concat(values).to_csv(folder / "values.csv", index=False)
    pd.DataFrame(
        {"symbol": symbols, "beta": np.linspace(0.8, 1.2, len(symbols)), "status": "ok"}
    ).to_csv(folder / "beta.csv", index=False)
    return folder


def make_config(folder: Path, name: str = "base", alpha_class=EchoAlpha, **overrides):
    fields = dict(
        name=name,
        alpha_class=alpha_class,
        alpha_kwargs={},
        start_date=dt.date(2024, 1, 2),
        end_date=dt.date(2024, 1, 9),
        symbols=list(SYMBOLS),
        price_loader=CSVDataLoader(str(folder / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(folder / "values.csv"), "value")],
        beta_csv_path=str(folder / "beta.csv"),
    )
    fields.update(overrides)
    return BacktestConfig(**fields)


ECHO_SPEC = """
from pathlib import Path
from tests.conftest import make_config

configs = [make_config(Path({market!r}), name=f"echo{{k}}", alpha_kwargs={{"scale": s}})
           for k, s in enumerate({scales!r})]
"""


def write_echo_spec(path: Path, market: Path, scales: list[float]) -> Path:
    """A sweep spec file of EchoAlpha configs ``echo0``, ``echo1``, ... on ``market``,
    one per scale (a negative scale is a config that fails)."""
    path.write_text(ECHO_SPEC.format(market=str(market), scales=list(scales)))
    return path


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return write_market(tmp_path / "data")


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """Load (or compile) the kernels once, so the cold compile lands on no single test."""
    from alphadev.engine.simulate import warm_up

    warm_up()


@pytest.fixture(autouse=True)
def fresh_process_caches():
    """Each test starts as a fresh process would: no parsed files, no panels in memory."""
    parsed_files.clear_cache()
    panel_cache.clear_memory()
    yield
    parsed_files.clear_cache()
    panel_cache.clear_memory()
