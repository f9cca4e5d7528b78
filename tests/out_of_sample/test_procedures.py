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


def _check_against_literal(times, pnl, names, returns, blocks):
    """The fast PBO equals the literal text's, combination by combination."""
    slow = literal.pbo(list(times), returns, names, blocks)
    fast = probability_of_overfitting(pnl, blocks)
    assert [names[j] for j in np.flatnonzero(~fast.used)] == slow["left_out"]
    assert [names[j] for j in np.flatnonzero(fast.used & ~fast.defined)] == slow["undefined"]
    assert {names[j]: names[d] for j, d in enumerate(fast.duplicate_of) if d >= 0} == \
        slow["duplicates"]
    assert [names[j] for j in np.flatnonzero(fast.ranked)] == slow["trials"]
    assert fast.n_trials == len(slow["trials"])
    assert (fast.undefined_reason is None) == (len(slow["trials"]) >= 3)
    assert fast.pbo == slow["pbo"]
    assert len(slow["rows"]) == len(fast.lambdas)
    for k, (best, is_sr, oos_sr, omega, lam, tie) in enumerate(slow["rows"]):
        assert (names[fast.chosen[k]] if fast.chosen[k] >= 0 else None) == best
        assert _same(fast.is_sharpe[k], is_sr) and _same(fast.oos_sharpe[k], oos_sr)
        assert _same(fast.omega[k], omega) and _same(fast.lambdas[k], lam)
        assert bool(fast.tie_decides[k]) == tie, k
    oos = np.array([np.nan if s[2] is None else s[2] for s in slow["rows"]])
    if slow["trials"]:
        assert fast.probability_of_loss == np.mean(np.nan_to_num(oos) < 0)
    else:
        assert fast.probability_of_loss is None
    if fast.pbo is not None:
        assert fast.pbo_from_ties == np.mean([s[5] for s in slow["rows"]])
    return fast, slow


@pytest.mark.parametrize("seed", range(6))
def test_pbo_matches_the_literal_text(seed: int) -> None:
    times, pnl, names, returns = _case(seed, 125 + seed, 9)
    fast, slow = _check_against_literal(times, pnl, names, returns, 6)
    assert len(slow["rows"]) == 20
    assert not fast.used[4] and fast.used[3]  # the late config is dropped, the gappy one kept
    assert slow["duplicates"] == {"c01": "c00"} and slow["undefined"] == ["c02"]
    oos = np.array([np.nan if s[2] is None else s[2] for s in slow["rows"]])
    is_ = np.array([np.nan if s[1] is None else s[1] for s in slow["rows"]])
    ok = np.isfinite(is_) & np.isfinite(oos)
    slope, intercept = np.polyfit(is_[ok], oos[ok], 1)
    assert fast.degradation() == pytest.approx((slope, intercept), rel=1e-6)


def _tie_panel(seed: int):
    """A random panel from few base series: exact copies, copies differing in one block
    only (ties out of sample in some splits), configs that never trade, gaps; 1 to 7
    configs, so every count of distinct trials around 3 comes up."""
    rng = np.random.default_rng(seed)
    n_bars, n_configs = 48, int(rng.integers(1, 8))
    times = pd.date_range("2024-01-01", periods=n_bars, freq="h")
    bases = rng.normal(rng.normal(0, 3e-3, 3), 1e-2, (n_bars, 3))
    pnl = np.empty((n_bars, n_configs))
    for j in range(n_configs):
        kind = rng.integers(5) if n_configs > 2 else 2 * rng.integers(2)
        pnl[:, j] = bases[:, rng.integers(3)]
        if kind == 1:  # differs from its base in one block only
            b = int(rng.integers(4))
            pnl[b * 12:(b + 1) * 12, j] += rng.normal(0, 1e-2, 12)
        elif kind == 2:  # never trades
            pnl[:, j] = 0.0
        elif kind == 3:  # a missing bar
            pnl[int(rng.integers(n_bars)), j] = np.nan
    names = [f"c{k}" for k in range(n_configs)]
    returns = {n: {t: float(v) for t, v in zip(times, pnl[:, j]) if not np.isnan(v)}
               for j, n in enumerate(names)}
    return times, pnl, names, returns


def test_random_panels_with_ties_and_idle_configs_match_the_literal_text() -> None:
    counts, decided_by_ties = set(), 0
    for seed in range(60):
        fast, slow = _check_against_literal(*_tie_panel(seed), blocks=4)
        counts.add(min(fast.n_trials, 3))
        assert fast.pbo_from_ties is None or 0.0 <= fast.pbo_from_ties <= fast.pbo
        decided_by_ties += bool(fast.tie_decides.any())
    assert counts == {0, 1, 2, 3} and decided_by_ties > 0


def test_identical_configs_are_one_trial() -> None:
    """Configs whose alpha ignores the swept kwarg have the same pnl: one trial, so PBO
    is that of the distinct configs (not 1.0 from every split being a tie)."""
    rng = np.random.default_rng(3)
    distinct = rng.normal(0, 1e-2, (400, 5))
    pnl = np.column_stack([distinct[:, :1]] * 4 + [distinct[:, 1:]])
    fast = probability_of_overfitting(pnl, 8)
    alone = probability_of_overfitting(distinct, 8)
    assert fast.n_trials == 5 and list(fast.duplicate_of) == [-1, 0, 0, 0, -1, -1, -1, -1]
    assert fast.pbo == alone.pbo < 1.0
    np.testing.assert_array_equal(fast.lambdas, alone.lambdas)
    same = probability_of_overfitting(np.column_stack([distinct[:, 0]] * 6), 8)
    assert same.pbo is None and same.n_trials == 1
    assert "at least 3 distinct trials with a defined Sharpe, got 1 of 6 configs (5 " \
           "duplicate another config's pnl exactly)" in same.undefined_reason


def test_configs_that_never_trade_are_not_ranked() -> None:
    """One losing config and two that never trade: PBO is undefined (1 trial), not 0.00
    from the loser outranking two undefined Sharpes; it still loses in most splits."""
    rng = np.random.default_rng(4)
    pnl = np.zeros((400, 3))
    pnl[:, 0] = rng.normal(-1e-3, 1e-2, 400)
    fast = probability_of_overfitting(pnl, 8)
    assert fast.pbo is None and fast.n_trials == 1 and list(fast.defined) == [True, False,
                                                                               False]
    assert "(2 have zero spread, so no Sharpe: they never trade)" in fast.undefined_reason
    assert fast.probability_of_loss > 0.5 and set(fast.chosen) == {0}
    assert np.isnan(fast.lambdas).all()
    noise = rng.normal(0, 1e-2, (400, 4))
    with_idle = probability_of_overfitting(np.column_stack([noise, np.zeros((400, 2))]), 8)
    assert with_idle.pbo == probability_of_overfitting(noise, 8).pbo
    idle = probability_of_overfitting(np.zeros((400, 3)), 8)
    assert idle.pbo is None and idle.probability_of_loss is None and set(idle.chosen) == {-1}


def test_two_configs_leave_pbo_undefined() -> None:
    """Sharpe 54 against 49 (annualized): which of two wins out of sample is not a
    measure of overfitting."""
    rng = np.random.default_rng(6)
    pnl = rng.normal(0, 1e-2, (400, 2)) + [5.8e-3, 5.2e-3]
    fast = probability_of_overfitting(pnl, 8)
    assert fast.pbo is None and fast.pbo_from_ties is None and fast.n_trials == 2
    assert "got 2 of 2 configs;" in fast.undefined_reason
    assert fast.probability_of_loss == 0.0 and fast.degradation()[0] is not None


def test_a_duplicate_is_one_trial_with_the_first_name() -> None:
    """Config 1 duplicates config 0: one trial, config 0 chosen, ranked among 3."""
    rng = np.random.default_rng(5)
    pnl = rng.normal(0, 1e-2, (80, 4))
    pnl[:, 0] += 0.02  # the best in every split
    pnl[:, 1] = pnl[:, 0]
    fast = probability_of_overfitting(pnl, 4)
    assert set(fast.chosen) == {0} and list(fast.duplicate_of) == [-1, 0, -1, -1]
    np.testing.assert_allclose(fast.omega, 3 / 4)  # rank 3 of 3 trials


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
        for k, (best, _, _, omega, _, _) in enumerate(
                literal.pbo(times, returns, names, 4)["rows"]):
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
    assert "got 1 of 1 configs" in probability_of_overfitting(
        np.random.default_rng(0).normal(size=(40, 1)), 4).undefined_reason
    with pytest.raises(ParameterError, match="metric='sharp' is not a selection metric; "
                       "choose one of sharpe, sortino"):
        walk_forward(np.arange(40, dtype=np.int64), pnl, 10, 5, metric="sharp")
