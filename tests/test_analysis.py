"""IC decay and quantile returns (alphadev.analysis) on planted signals and by hand."""

from __future__ import annotations

import importlib.util
import math
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader
from alphadev.alpha import Alpha
from alphadev.analysis import (
    ic_by_lag_from_arrays,
    ic_decay_from_arrays,
    panel_returns,
    quantile_returns_from_arrays,
)
from alphadev.research import ic_decay, quantile_returns, signal_analysis, write_ic_decay
from alphadev.runner import run_backtest

ROOT = Path(__file__).resolve().parents[1]


def expected_spearman(rho: float, n: int) -> float:
    """E[sample Spearman] of n bivariate normal pairs with Pearson correlation rho.

    (6 / (pi (n + 1))) * (arcsin(rho) + (n - 2) arcsin(rho / 2)); tends to the
    population value (6 / pi) arcsin(rho / 2) as n grows.
    """
    return 6 / (math.pi * (n + 1)) * (math.asin(rho) + (n - 2) * math.asin(rho / 2))


@pytest.fixture(scope="module")
def planted():
    """Returns r ~ N(0, 1%) i.i.d.; alpha A[t] = 0.4 z[t+1] + 0.2 z[t+2] + 0.894 e[t].

    z = r / 1% is the standardised return, e independent noise, and
    0.4^2 + 0.2^2 + 0.894^2 = 1, so corr(A[t], r[t+1]) = 0.4, corr(A[t], r[t+2]) = 0.2
    and 0 at every later lag.
    """
    rng = np.random.default_rng(2024)
    n_bars, n_sym, sigma = 3000, 40, 0.01
    z = rng.normal(size=(n_bars + 2, n_sym))
    alpha = 0.4 * z[1:-1] + 0.2 * z[2:] + math.sqrt(1 - 0.2) * rng.normal(size=(n_bars, n_sym))
    returns = sigma * z[:n_bars]
    prices = 100 * np.cumprod(1 + returns, axis=0)  # so P[t]/P[t-1] - 1 = r[t] = sigma z[t]
    return alpha, prices, np.ones((n_bars, n_sym), dtype=bool)


def test_ic_decay_of_a_planted_signal(planted):
    alpha, prices, universe = planted
    decay = ic_decay_from_arrays(alpha, prices, universe, max_lag=6)
    assert list(decay.index) == [1, 2, 3, 4, 5, 6] and decay.index.name == "lag"
    # n = 40 symbols per bar: E[IC(1)] = expected_spearman(0.4, 40) = 0.3756 and
    # E[IC(2)] = expected_spearman(0.2, 40) = 0.1866; per-bar sd ~0.14, 3000 bars
    # -> standard error ~0.0026, so 0.012 is ~5 standard errors.
    assert decay[1] == pytest.approx(expected_spearman(0.4, 40), abs=0.012)
    assert decay[2] == pytest.approx(expected_spearman(0.2, 40), abs=0.012)
    for lag in (3, 4, 5, 6):
        assert abs(decay[lag]) < 0.012
    assert decay[1] > decay[2] > abs(decay[3])


def test_quantile_returns_of_a_planted_signal(planted):
    alpha, prices, universe = planted
    q1 = quantile_returns_from_arrays(alpha, prices, universe, n_quantiles=5, horizon=1)
    assert list(q1.index) == [1, 2, 3, 4, 5] and q1.index.name == "quantile"
    assert np.all(np.diff(q1.to_numpy()) > 0)
    # Buckets of 8 of 40 symbols.  The mean of the top 8 of 40 standard normals is
    # 1.364 (population limit phi(0.8416) / 0.2 = 1.400), so with corr 0.4 and
    # sigma 1%: E[top - bottom] = 2 * 0.4 * 0.01 * 1.364 = 0.01091 (s.e. ~1.3e-4).
    assert q1[5] - q1[1] == pytest.approx(0.01091, rel=0.05)
    # Horizon 2 sees the 0.2 correlation: half the spread; horizon 3 sees none.
    q2 = quantile_returns_from_arrays(alpha, prices, universe, n_quantiles=5, horizon=2)
    assert q2[5] - q2[1] == pytest.approx(0.01091 / 2, rel=0.1)
    q3 = quantile_returns_from_arrays(alpha, prices, universe, n_quantiles=5, horizon=3)
    assert abs(q3[5] - q3[1]) < 0.0007


def test_small_example_by_hand():
    # Bar 0: alpha [1, 1, 3, 4, 9] (symbol 4 outside the universe), prices all 1.
    # Bar 1: prices [1.01, 1.02, 1.03, 1.04, 2] -> r[1] = [.01, .02, .03, .04, 1].
    # Bar 2: prices unchanged except symbol 1 missing.
    alpha = np.array([[1, 1, 3, 4, 9], [2, 1, 4, 3, 0], [0, 0, 0, 0, 0]], dtype=float)
    prices = np.array(
        [[1, 1, 1, 1, 1], [1.01, 1.02, 1.03, 1.04, 2], [1.01, np.nan, 1.03, 1.04, 2]]
    )
    universe = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1]], dtype=bool)
    returns = panel_returns(prices)
    assert np.isnan(returns[0]).all() and np.isnan(returns[2, 1])
    ics = ic_by_lag_from_arrays(alpha, prices, universe, max_lag=2)
    # Lag 1, t = 0: average ranks of alpha [1.5, 1.5, 3, 4] against returns [1, 2, 3, 4]
    # (symbol 4 is outside the universe) -> centred [-1, -1, .5, 1.5] and
    # [-1.5, -.5, .5, 1.5]: sum of products 4.5, sums of squares 4.5 and 5,
    # IC = 4.5 / sqrt(4.5 * 5) = 0.9486833.
    assert ics[0, 0] == pytest.approx(4.5 / math.sqrt(22.5), rel=1e-14)
    # Lag 1, t = 1: symbol 1 has no return at bar 2 (missing price); over symbols
    # 0, 2, 3, 4 every return is 0 -> constant side -> no IC.  t = 2: no bar 3.
    assert np.isnan(ics[0, 1]) and np.isnan(ics[0, 2])
    # Lag 2, t = 0 pairs A[0] with r[2] = [0, nan, 0, 0, ..]: constant -> no IC.
    assert np.isnan(ics[1]).all()
    # Quantiles, Q = 2, bar 0 over 4 eligible symbols: bucket = ceil(rank * 2 / 4):
    # ranks [1.5, 1.5, 3, 4] -> [1, 1, 2, 2]; means [0.015, 0.035].  Bar 1's
    # returns r[2] are all 0 for symbols 0, 2, 3, 4 (symbol 1 has none, m = 4): alpha
    # [2, 4, 3, 0] ranks [2, 4, 3, 1] -> buckets [1, 2, 2, 1] -> means [0, 0].
    # Average over the two bars: [0.0075, 0.0175].
    q = quantile_returns_from_arrays(alpha, prices, universe, n_quantiles=2)
    assert q.to_numpy() == pytest.approx([0.0075, 0.0175])


def _reference_ic(alpha, prices, universe, lag):
    """Slow reference: one pandas Spearman per bar."""
    r = panel_returns(prices)
    out = []
    for t in range(alpha.shape[0] - lag):
        a, x = alpha[t], r[t + lag]
        keep = np.isfinite(a) & np.isfinite(x) & universe[t]
        if keep.sum() < 2:
            continue
        ra = pd.Series(a[keep]).rank()
        rx = pd.Series(x[keep]).rank()
        if ra.nunique() < 2 or rx.nunique() < 2:
            continue
        out.append(np.corrcoef(ra, rx)[0, 1])
    return np.mean(out)


def test_matches_a_per_bar_reference_with_gaps_and_ties():
    rng = np.random.default_rng(8)
    n_bars, n_sym = 300, 12
    alpha = rng.integers(0, 5, size=(n_bars, n_sym)).astype(float)  # many ties
    alpha[rng.random((n_bars, n_sym)) < 0.1] = np.nan
    prices = 50 * np.cumprod(1 + rng.normal(0, 0.01, (n_bars, n_sym)), axis=0)
    prices[rng.random((n_bars, n_sym)) < 0.1] = np.nan
    universe = rng.random((n_bars, n_sym)) > 0.15
    decay = ic_decay_from_arrays(alpha, prices, universe, max_lag=4)
    for lag in (1, 2, 4):
        assert decay[lag] == pytest.approx(_reference_ic(alpha, prices, universe, lag), abs=1e-12)
    # Without a universe every symbol is eligible.
    everyone = ic_decay_from_arrays(alpha, prices, None, max_lag=1)
    assert everyone[1] == pytest.approx(
        _reference_ic(alpha, prices, np.ones_like(universe), 1), abs=1e-12
    )


def test_argument_errors():
    a = np.zeros((5, 3))
    with pytest.raises(ValueError, match="max_lag"):
        ic_decay_from_arrays(a, a + 1, None, max_lag=0)
    with pytest.raises(ValueError, match="shape"):
        ic_decay_from_arrays(a, np.ones((4, 3)), None, max_lag=1)
    with pytest.raises(ValueError, match="n_quantiles"):
        quantile_returns_from_arrays(a, a + 1, None, n_quantiles=0)
    with pytest.raises(ValueError, match="horizon"):
        quantile_returns_from_arrays(a, a + 1, None, horizon=0)


# ---------------------------------------------------------------------- from a config
class EchoAlpha(Alpha):
    @property
    def lookback(self):
        return 1

    def reset(self):
        pass

    def compute(self, data):
        return data.rename(columns={"value": "alpha"})[["alpha"]]


@pytest.fixture(scope="module")
def seed_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seed")
    script = ROOT / "examples" / "make_seed_data.py"
    spec = importlib.util.spec_from_file_location("make_seed_data", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_seed_data(folder)
    return BacktestConfig(
        name="seed",
        alpha_class=EchoAlpha,
        alpha_kwargs={},
        start_date=date(2024, 1, 1),
        end_date=date(2024, 1, 31),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT"],
        price_loader=CSVDataLoader(str(folder / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(folder / "alphas.csv"), "value")],
        beta_csv_path=str(folder / "beta.csv"),
    )


def test_config_level_ic_at_lag_one_is_the_backtest_ic(seed_config, tmp_path):
    result = run_backtest(seed_config)
    decay = ic_decay(seed_config, max_lag=5)
    assert decay[1] == pytest.approx(result.metrics["ic_mean"], abs=1e-12)
    # The seed alpha is a noisy view of the next bar's return only.
    assert decay[1] > 0.1 and (decay.loc[2:].abs() < 0.06).all()

    both = signal_analysis(seed_config, horizons=range(1, 6), quantiles=3)
    pd.testing.assert_series_equal(both.ic_decay, decay)
    pd.testing.assert_series_equal(
        both.quantile_returns[1], quantile_returns(seed_config, 3), check_names=False
    )
    assert both.quantile_returns.loc[3, 1] > both.quantile_returns.loc[1, 1]

    path = write_ic_decay(tmp_path, seed_config, max_lag=5, n_quantiles=3)
    assert path == tmp_path / "sequences" / "ic_decay.parquet"
    saved = pd.read_parquet(path)
    assert list(saved.columns) == ["lag", "ic", "ic_std", "ic_count"]
    assert saved["ic"].to_numpy() == pytest.approx(decay.to_numpy())
    assert saved.loc[0, "ic_count"] == result.metrics["ic_count"]
    quantiles = pd.read_parquet(tmp_path / "sequences" / "quantile_returns.parquet")
    assert list(quantiles.columns) == ["quantile", "mean_forward_return"]
    assert [p.name for p in (tmp_path / "sequences").iterdir() if p.name.startswith(".")] == []


# ---------------------------------------------------------------- factor sequences
def test_quantile_returns_by_bar_average_to_quantile_returns():
    from alphadev.analysis import quantile_returns_by_bar_from_arrays

    rng = np.random.default_rng(4)
    alpha = rng.normal(size=(60, 9))
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (60, 9)), axis=0))
    alpha[5, :3] = np.nan
    universe = np.ones_like(alpha, dtype=bool)
    universe[10:20, 4] = False
    by_bar = quantile_returns_by_bar_from_arrays(alpha, prices, universe, 3)
    assert by_bar.shape == (60, 3) and np.isnan(by_bar[0]).all()
    means = quantile_returns_from_arrays(alpha, prices, universe, 3)
    assert np.allclose(np.nanmean(by_bar, axis=0), means.to_numpy(), rtol=1e-12)
    # Bar 1 by hand: buckets of A[0] (3 symbols each), returns of bar 1.
    returns = prices[1] / prices[0] - 1
    order = np.argsort(alpha[0])
    for k in range(3):
        assert by_bar[1, k] == pytest.approx(returns[order[3 * k:3 * k + 3]].mean())


def test_rank_autocorrelation_is_spearman_of_consecutive_bars():
    from alphadev.analysis import rank_autocorrelation_from_arrays

    rng = np.random.default_rng(5)
    alpha = rng.normal(size=(30, 7))
    alpha[1:] = 0.7 * alpha[:-1] + 0.3 * alpha[1:]
    alpha[8, 2] = np.nan
    out = rank_autocorrelation_from_arrays(alpha, None)
    assert np.isnan(out[0])
    for t in (1, 8, 9, 29):
        both = np.isfinite(alpha[t - 1]) & np.isfinite(alpha[t])
        expected = pd.Series(alpha[t - 1][both]).rank().corr(pd.Series(alpha[t][both]).rank())
        assert out[t] == pytest.approx(expected, rel=1e-12)


def test_monthly_table():
    from alphadev.analysis import monthly_table

    stamps = pd.to_datetime(["2024-01-31 23:00", "2024-01-31 23:30", "2024-02-01 00:00",
                             "2025-03-05 00:00"], utc=True)
    values = pd.Series([0.1, -0.5, 0.2, 0.03], index=stamps)
    table = monthly_table(values)
    assert list(table.index) == [2024, 2025] and list(table.columns) == list(range(1, 13))
    assert table.loc[2024, 1] == pytest.approx(1.1 * 0.5 - 1)
    assert table.loc[2024, 2] == pytest.approx(0.2)
    assert table.loc[2025, 3] == pytest.approx(0.03)
    assert np.isnan(table.loc[2024, 3])
    assert monthly_table(values, "mean").loc[2024, 1] == pytest.approx(-0.2)
    with pytest.raises(ValueError, match="how="):
        monthly_table(values, "sum")
    empty = monthly_table(pd.Series([np.nan], index=stamps[:1]), "mean")
    assert empty.empty and list(empty.columns) == list(range(1, 13))
