"""Walk-forward and PBO: the fast array versions against the literal ones
(tests/out_of_sample/literal.py) on random return matrices, and known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alphadev.out_of_sample.pbo import block_edges, probability_of_overfitting
from alphadev.out_of_sample.walk_forward import SELECTION_METRICS, walk_forward
from alphadev.validation import ParameterError
from tests.out_of_sample import literal

HOUR = 3_600 * 10**9


def _case(seed: int, n_bars: int, n_configs: int):
    """Random pnl on an hourly grid with a gap, plus the awkward configs: a duplicate
    (ties), a constant one, one with scattered missing bars, one starting late."""
    rng = np.random.default_rng(seed)
    hours = np.delete(np.arange(n_bars + 7), [40, 41, 42, 43, 44, 45, 46])  # a gap
    times = pd.DatetimeIndex(pd.to_datetime(hours * HOUR, utc=True))
    pnl = rng.normal(rng.normal(0, 2e-4, n_configs), 1e-2, (n_bars, n_configs))
    pnl[:, 1] = pnl[:, 0]                      # a tie with config 0
    pnl[:, 2] = 1e-3                           # constant: Sharpe undefined
    pnl[rng.random(n_bars) < 0.15, 3] = np.nan  # missing bars here and there
    pnl[: n_bars // 3, 4] = np.nan             # starts late: whole blocks without data
    names = [f"c{k:02d}" for k in range(n_configs)]
    returns = {
        name: {t: float(v) for t, v in zip(times, pnl[:, j]) if not np.isnan(v)}
        for j, name in enumerate(names)
    }
    return times, pnl, names, returns


def _same(fast: float, slow: float | None) -> bool:
    if slow is None:
        return bool(np.isnan(fast))
    return bool(fast == pytest.approx(slow, rel=1e-9, abs=1e-15))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(("metric", "anchored"), [("sharpe", False), ("sharpe", True),
                                                  ("max_drawdown", False), ("sortino", True)])
def test_walk_forward_matches_the_literal_text(seed: int, metric: str, anchored: bool) -> None:
    times, pnl, names, returns = _case(seed, 260, 8)
    train, test = pd.Timedelta("50h"), pd.Timedelta("30h")
    fn = SELECTION_METRICS[metric]
    folds, stitched = literal.walk_forward(list(times), returns, names, train, test,
                                           anchored, fn, 8760.0)
    fast = walk_forward(times.asi8, pnl, train.value, test.value, anchored, metric, 8760.0)
    assert len(folds) == len(fast.bounds) >= 6
    for k, fold in enumerate(folds):
        expected = [fold[c].value for c in ("train_start", "train_end", "test_start",
                                             "test_end")]
        assert list(fast.bounds[k]) == expected
        assert names[fast.chosen[k]] == fold["chosen"]
        for column in ("train_metric", "test_metric", "best_test_metric"):
            assert _same(getattr(fast, column)[k], fold[column]), (k, column)
    assert list(times[fast.bars]) == [t for t, _, _ in stitched]
    assert [names[j] for j in fast.bar_config] == [n for _, n, _ in stitched]
    np.testing.assert_array_equal(fast.pnl, [v for _, _, v in stitched])


@pytest.mark.parametrize("seed", range(6))
def test_pbo_matches_the_literal_text(seed: int) -> None:
    times, pnl, names, returns = _case(seed, 125 + seed, 9)
    blocks = 6
    slow = literal.pbo(list(times), returns, names, blocks)
    fast = probability_of_overfitting(pnl, blocks)
    assert len(slow) == len(fast.lambdas) == 20
    assert not fast.used[4] and fast.used[3]  # the late config is dropped, the gappy one kept
    for k, (best, is_sr, oos_sr, omega, lam) in enumerate(slow):
        assert names[fast.chosen[k]] == best
        assert _same(fast.is_sharpe[k], is_sr) and _same(fast.oos_sharpe[k], oos_sr)
        assert fast.omega[k] == pytest.approx(omega, rel=1e-12)
        assert fast.lambdas[k] == pytest.approx(lam, rel=1e-9, abs=1e-12)
    lambdas = np.array([s[4] for s in slow])
    assert fast.pbo == np.mean(lambdas <= 0)
    oos = np.array([np.nan if s[2] is None else s[2] for s in slow])
    assert fast.probability_of_loss == np.mean(np.nan_to_num(oos) < 0)
    is_ = np.array([np.nan if s[1] is None else s[1] for s in slow])
    ok = np.isfinite(is_) & np.isfinite(oos)
    slope, intercept = np.polyfit(is_[ok], oos[ok], 1)
    assert fast.degradation() == pytest.approx((slope, intercept), rel=1e-6)


def test_ties_rank_on_average_and_go_to_the_first_name() -> None:
    """Config 1 duplicates config 0: config 0 is chosen, and out of sample the two
    share rank (r + r + 1) / 2."""
    rng = np.random.default_rng(5)
    pnl = rng.normal(0, 1e-2, (80, 4))
    pnl[:, 0] += 0.02  # the best in every split
    pnl[:, 1] = pnl[:, 0]
    fast = probability_of_overfitting(pnl, 4)
    assert set(fast.chosen) == {0}
    np.testing.assert_allclose(fast.omega, 3.5 / 5)  # ranks 3 and 4 of 4, averaged


def test_configs_equal_out_of_sample_tie_there() -> None:
    """Config 1 is config 0 except in block 0: where block 0 is in-sample their
    out-of-sample Sharpe ratios are equal and share their average rank, as the literal
    text computes them (not split by rounding of the different whole-period means)."""
    for seed in range(20, 30):
        rng = np.random.default_rng(seed)
        pnl = rng.normal(0.0, 1e-2, (40, 5))
        pnl[:, 1] = pnl[:, 0]
        pnl[:10, 1] += rng.normal(3e-3, 1e-2, 10)
        times = list(pd.date_range("2024-01-01", periods=40, freq="h"))
        names = [f"c{k}" for k in range(5)]
        returns = {n: dict(zip(times, pnl[:, j].tolist())) for j, n in enumerate(names)}
        fast = probability_of_overfitting(pnl, 4)
        for k, (best, _, _, omega, _) in enumerate(literal.pbo(times, returns, names, 4)):
            assert names[fast.chosen[k]] == best
            assert fast.omega[k] == pytest.approx(omega, rel=1e-12), (seed, k)


def test_blocks_are_contiguous_and_the_first_ones_longer() -> None:
    assert list(block_edges(10, 4)) == [0, 3, 6, 8, 10]
    assert list(block_edges(16, 4)) == [0, 4, 8, 12, 16]


def test_pure_noise_gives_a_pbo_near_one_half() -> None:
    values = []
    for seed in range(24):
        pnl = np.random.default_rng(seed).normal(0, 1e-2, (400, 40))
        values.append(probability_of_overfitting(pnl, 8).pbo)
    assert 0.4 <= np.mean(values) <= 0.6


def test_a_real_edge_gives_a_pbo_near_zero_and_walk_forward_picks_it() -> None:
    rng = np.random.default_rng(2)
    pnl = rng.normal(0, 1e-2, (1200, 40))
    edge = [7, 19, 31]
    pnl[:, edge] += 4e-3  # Sharpe 0.4 per bar
    cscv = probability_of_overfitting(pnl, 10)
    assert cscv.pbo < 0.05 and cscv.probability_of_loss < 0.05
    assert set(cscv.chosen) <= set(edge)
    times = np.arange(1200, dtype=np.int64) * HOUR
    wf = walk_forward(times, pnl, 200 * HOUR, 100 * HOUR)
    assert len(wf.chosen) == 10 and set(wf.chosen) <= set(edge)
    assert wf.pnl.mean() > 2e-3


def test_bad_parameters_are_named() -> None:
    pnl = np.zeros((40, 3))
    with pytest.raises(ParameterError, match="blocks=5 must be even.*use 4 or 6"):
        probability_of_overfitting(pnl, 5)
    with pytest.raises(ParameterError, match="blocks=2 must be an integer >= 4"):
        probability_of_overfitting(pnl, 2)
    with pytest.raises(ParameterError, match="blocks=24 must be an integer >= 4 and <= 22"):
        probability_of_overfitting(np.zeros((400, 3)), 24)
    with pytest.raises(ParameterError, match="blocks=16 leaves fewer than 2 bars per block "
                       r"\(30 bars\); use at most 14 blocks"):
        probability_of_overfitting(np.zeros((30, 3)), 16)
    with pytest.raises(ParameterError, match="at least 2 configs, got 1"):
        probability_of_overfitting(np.zeros((40, 1)), 4)
    with pytest.raises(ParameterError, match="metric='sharp' is not a selection metric; "
                       "choose one of sharpe, sortino"):
        walk_forward(np.arange(40, dtype=np.int64), pnl, 10, 5, metric="sharp")
