"""Effective number of trials: fee variants count as one, different alphas apart, and
the DSR deflates over N_eff with the Sharpe variance across clusters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphadev.results import BacktestResult, Sequences
from alphadev.stats import expected_max_sharpe, sweep_statistics
from alphadev.trials import cluster_trials, correlation_matrix
from alphadev.validation import ParameterError
from tests.out_of_sample import literal

FEES = (2e-4, 4.5e-4, 1e-3)


def _fee_sweep(seed: int, n_alphas: int = 8, n_bars: int = 1500):
    """n_alphas independent gross series, each net of three fee rates (columns grouped
    by alpha), with their gross and turnover."""
    rng = np.random.default_rng(seed)
    gross = rng.normal(rng.normal(3e-4, 2e-4, n_alphas), 4e-3, (n_bars, n_alphas))
    turnover = rng.uniform(0.1, 0.6, (n_bars, n_alphas))
    columns = [(a, f) for a in range(n_alphas) for f in FEES]
    pnl = np.column_stack([gross[:, a] - f * 2 * turnover[:, a] for a, f in columns])
    return pnl, gross, turnover, columns


def test_fee_variants_count_as_one_trial() -> None:
    pnl, *_ = _fee_sweep(0)
    clusters = cluster_trials(pnl)
    assert 6 <= clusters.n_effective <= 10
    assert clusters.n_effective == 8
    assert list(clusters.labels) == [a for a in range(8) for _ in FEES]


def test_independent_alphas_count_apart() -> None:
    pnl = np.random.default_rng(1).normal(0, 1e-2, (1500, 8))
    assert cluster_trials(pnl).n_effective == 8


def test_a_chain_of_similar_alphas_is_not_one_trial() -> None:
    """Alpha k sums noise sources k..k+19: each correlates ~0.95 with its neighbour,
    the ends not at all.  Complete linkage keeps them apart (single linkage would chain
    all 40 into one trial)."""
    noise = np.random.default_rng(4).normal(0, 1, (3000, 60))
    chain = np.column_stack([noise[:, k:k + 20].sum(axis=1) for k in range(40)])
    corr = correlation_matrix(chain)
    assert corr[0, 1] > 0.9 and abs(corr[0, -1]) < 0.1
    assert cluster_trials(chain).n_effective >= 10


@pytest.mark.parametrize("seed", range(5))
def test_clusters_match_the_literal_complete_linkage(seed: int) -> None:
    rng = np.random.default_rng(seed)
    base = rng.normal(0, 1, (600, 6))
    mix = rng.integers(0, 6, 20)
    pnl = base[:, mix] + rng.uniform(0.05, 0.6, 20) * rng.normal(0, 1, (600, 20))
    pnl[:, 5] = 0.0  # no spread: a trial of its own
    pnl[rng.random(600) < 0.2, 7] = np.nan
    distance = np.sqrt(0.5 * (1 - correlation_matrix(pnl)))
    slow = literal.complete_linkage(distance.tolist(), np.sqrt(0.05))
    fast = cluster_trials(pnl, 0.9)
    assert fast.n_effective == len(slow)
    assert {frozenset(np.flatnonzero(fast.labels == k)) for k in range(fast.n_effective)} == {
        frozenset(c) for c in slow}


def test_threshold_is_checked() -> None:
    with pytest.raises(ParameterError, match="threshold=1.5 must be a finite number >= -1"):
        cluster_trials(np.zeros((10, 2)), 1.5)


def _result(name: str, gross: np.ndarray, turnover: np.ndarray, fee: float) -> BacktestResult:
    index = pd.date_range("2024-01-01", periods=len(gross), freq="1h", tz="UTC",
                          name="timestamp")
    fees = fee * 2 * turnover
    pnl = gross - fees
    returns = pd.DataFrame({
        "pnl": pnl, "gross": gross, "fees": fees, "turnover": turnover, "long_return": pnl,
        "short_return": pnl, "ic": 0.0, "equity": np.cumprod(1 + pnl)}, index=index)
    return BacktestResult(config=None, metrics={}, config_dict={"name": name},
                          sequences=Sequences(returns=returns, positions=pd.DataFrame(),
                                              trades=pd.DataFrame()))


def test_the_dsr_deflates_over_the_effective_trials() -> None:
    _, gross, turnover, columns = _fee_sweep(2)
    results = [_result(f"a{a}_f{f}", gross[:, a], turnover[:, a], f) for a, f in columns]
    table = sweep_statistics(results, n_trials=26)  # 2 configs without results
    assert table.attrs["n_trials"] == 26
    assert table.attrs["n_effective_trials"] == 8 + 2
    assert list(table["trial_cluster"]) == [a for a in range(8) for _ in FEES]
    cluster_means = table.groupby("trial_cluster")["sharpe_per_period"].mean()
    variance = float(np.var(cluster_means, ddof=1))
    assert table.attrs["sharpe_variance"] == pytest.approx(variance, rel=1e-12)
    assert table.attrs["expected_max_sharpe"] == pytest.approx(expected_max_sharpe(10, variance))
    every_config = np.var(table["sharpe_per_period"], ddof=1)
    assert table.attrs["expected_max_sharpe"] < expected_max_sharpe(26, every_config)


def test_above_the_limit_every_config_is_its_own_trial(caplog: pytest.LogCaptureFixture) -> None:
    """No N x N matrix past ``max_configs``: N_eff = N, the conservative deflation."""
    pnl, *_ = _fee_sweep(0)
    assert cluster_trials(pnl, max_configs=pnl.shape[1]).n_effective == 8
    with caplog.at_level("WARNING", logger="alphadev.trials"):
        clusters = cluster_trials(pnl, max_configs=pnl.shape[1] - 1)
    assert clusters.n_effective == pnl.shape[1]
    assert list(clusters.labels) == list(range(pnl.shape[1]))
    assert "24 configs are more than the 23" in caplog.text


def test_max_configs_is_checked() -> None:
    with pytest.raises(ParameterError, match="max_configs=0 must be an integer >= 1"):
        cluster_trials(np.zeros((10, 2)), max_configs=0)
