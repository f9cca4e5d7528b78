"""Signal series recorded by the run (docs/semantics.md#signal-series): the engine's
kernels against the slow reference on random panels, windows that continue exactly,
streaming equal to batch, the on-demand analysis equal to what the run saved, and a
report with the IC-decay and quantile panels without running the alpha again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.engine.signal import (
    lagged_rank_ic,
    quantile_bar_returns,
    quantile_turnover,
    rank_autocorrelation,
)
from alphadev.research import ic_decay, quantile_returns, write_factor_sequences
from alphadev.signal_series import (
    SIGNAL_LAGS,
    SIGNAL_QUANTILES,
    SignalSeries,
    SignalTail,
)
from tests.alphas import EchoAlpha
from tests.conftest import make_config, write_market
from tests.reference import reference_quantile_turnover, reference_signal_series


def _panel(rng: np.random.Generator, n_bars: int, n_sym: int):
    alpha = rng.normal(size=(n_bars, n_sym))
    alpha[:, : n_sym // 3] = np.round(alpha[:, : n_sym // 3])  # ties
    alpha[rng.random(alpha.shape) < 0.15] = np.nan
    returns = rng.normal(0.0, 0.01, (n_bars, n_sym))
    returns[rng.random(returns.shape) < 0.1] = np.nan
    returns[0] = np.nan
    universe = rng.random((n_bars, n_sym)) > 0.1
    return alpha, universe, returns


@pytest.mark.parametrize("seed", range(12))
def test_kernels_equal_the_reference_on_random_panels(seed):
    rng = np.random.default_rng(seed)
    alpha, universe, returns = _panel(rng, int(rng.integers(30, 60)), int(rng.integers(5, 12)))
    lags = (1, 2, 3, 5, 8)
    n_q = int(rng.integers(1, 5))
    ic, buckets, autocorrelation = reference_signal_series(alpha, universe, returns, lags, n_q)
    history = 8
    ext_alpha = np.concatenate([np.full((history, alpha.shape[1]), np.nan), alpha])
    ext_universe = np.concatenate([np.zeros((history, alpha.shape[1]), bool), universe])
    np.testing.assert_allclose(
        lagged_rank_ic(ext_alpha, ext_universe, returns, history, np.array(lags)), ic,
        rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        quantile_bar_returns(ext_alpha, ext_universe, returns, history, n_q), buckets,
        rtol=0, atol=1e-15)
    np.testing.assert_allclose(rank_autocorrelation(ext_alpha, ext_universe, history),
                               autocorrelation, rtol=0, atol=1e-12)
    assert np.isfinite(ic).any() and np.isfinite(buckets).any()
    turnover = reference_quantile_turnover(alpha, universe, n_q)
    np.testing.assert_allclose(quantile_turnover(ext_alpha, ext_universe, history, n_q),
                               turnover, rtol=0, atol=1e-15)
    assert np.isfinite(turnover).any()


@pytest.mark.parametrize("seed", range(6))
def test_windows_continue_exactly(seed):
    """Any split into windows gives the series of one window, bit for bit."""
    rng = np.random.default_rng(100 + seed)
    alpha, universe, returns = _panel(rng, 90, 7)
    whole = SignalSeries.of_window(alpha, universe, returns, SignalTail.start(7))
    sorted_ = SignalSeries.of_window(alpha, universe, returns, SignalTail.start(7), None,
                                     np.argsort(alpha, axis=1), np.argsort(returns, axis=1))
    np.testing.assert_array_equal(sorted_.ic_by_lag, whole.ic_by_lag)  # the run's argsorts
    cuts = sorted(rng.choice(np.arange(1, 90), size=int(rng.integers(1, 6)), replace=False))
    tail, parts = SignalTail.start(7), []
    for lo, hi in zip([0, *cuts], [*cuts, 90]):
        parts.append(SignalSeries.of_window(alpha[lo:hi], universe[lo:hi], returns[lo:hi], tail))
        tail = tail.after(alpha[lo:hi], universe[lo:hi])
    joined = SignalSeries.joined(parts)
    for field in ("ic_by_lag", "quantile_returns", "rank_autocorrelation", "quantile_turnover",
                  "market"):
        np.testing.assert_array_equal(getattr(joined, field), getattr(whole, field))


def _files(folder: Path) -> list[pd.DataFrame]:
    return [pd.read_parquet(folder / "sequences" / name)
            for name in ("ic_decay.parquet", "quantile_returns.parquet",
                         "factor_sequences.parquet")]


@pytest.mark.parametrize("delay", [0, 2])
def test_streaming_equals_batch_and_the_analysis(tmp_path, delay):
    market = write_market(tmp_path / "data")
    configs = [make_config(market, name="batch", execution_delay=delay)] + [
        make_config(market, name=f"stream{days}", mode="streaming", chunk_days=days,
                    execution_delay=delay) for days in (1, 3)
    ]
    bt = Backtester()
    for config in configs:
        bt.add_config(config)
    results = bt.run_all(verbose=False, save_dir=tmp_path / "runs")
    batch = _files(tmp_path / "runs" / "batch")
    for config in configs[1:]:
        for mine, theirs in zip(_files(tmp_path / "runs" / config.name), batch):
            pd.testing.assert_frame_equal(mine, theirs)
    decay, means, factor = batch
    assert list(decay["lag"]) == list(SIGNAL_LAGS)
    assert decay["ic"].iloc[0] == pytest.approx(results[0].metrics["ic_mean"], abs=1e-12)
    expected = ic_decay(configs[0], max(SIGNAL_LAGS)).loc[list(SIGNAL_LAGS)]
    np.testing.assert_allclose(decay["ic"], expected, rtol=0, atol=1e-12)
    assert len(means) == SIGNAL_QUANTILES
    np.testing.assert_allclose(means["mean_forward_return"], quantile_returns(configs[0]),
                               rtol=0, atol=1e-15)
    written = write_factor_sequences(tmp_path / "analysis", configs[0])
    pd.testing.assert_frame_equal(factor, pd.read_parquet(written), rtol=0, atol=1e-15)
    assert factor.index.equals(results[0].sequences.index)


def test_configs_sharing_a_panel_record_the_same_series(tmp_path):
    market = write_market(tmp_path / "data")
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="fee"), {},
                            {"trading_fee_rate": [0.0, 4.5e-4], "quantile": [(0.2, 0.2),
                                                                             (0.4, 0.4)]})
    bt.run_all(verbose=False, save_dir=tmp_path / "runs")
    folders = sorted(p for p in (tmp_path / "runs").iterdir() if (p / "sequences").is_dir())
    assert len(folders) == 4
    for folder in folders[1:]:
        for mine, theirs in zip(_files(folder), _files(folders[0])):
            pd.testing.assert_frame_equal(mine, theirs)


class ExplodesAfterTheRun(EchoAlpha):
    """An alpha that can no longer run (as when the report runs without the user's code)."""

    def compute(self, data):
        if Path(self.marker).exists():
            raise RuntimeError("the report ran the alpha again")
        return super().compute(data)

    def __init__(self, marker: str = "", scale: float = 1.0) -> None:
        super().__init__(scale)
        self.marker = marker


def test_the_report_shows_signal_panels_without_running_the_alpha(tmp_path):
    market = write_market(tmp_path / "data")
    marker = tmp_path / "no-more-runs"
    bt = Backtester()
    bt.add_multiple_configs(
        make_config(market, name="x", alpha_class=ExplodesAfterTheRun,
                    alpha_kwargs={"marker": str(marker)}),
        {"scale": [1.0, -1.0]})
    bt.run_all(verbose=False, save_dir=tmp_path / "runs")
    marker.write_text("stop")
    done = subprocess.run([sys.executable, "-m", "alphadev", "report", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "runs" / "report.html").read_text(encoding="utf-8")
    for alt in ("IC decay", "quantile returns", "factor rank autocorrelation",
                "cumulative returns per alpha quantile"):
        assert f"<img alt='{alt}'" in html, alt
    assert "results saved by an alphadev older" not in html
    assert "ic-decay=2 factor=2" in html
