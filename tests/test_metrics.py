"""Tests for alphadev.metrics: hand-checked examples, edge cases and properties."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alphadev import metrics as m

# ---------------------------------------------------------------- hand-checked examples


def test_cumulative_return_example():
    # 1.1 * 0.8 * 1.05 = 0.924  ->  0.924 - 1 = -0.076
    assert m.cumulative_return([0.1, -0.2, 0.05]) == pytest.approx(-0.076, abs=1e-15)


def test_annualized_return_example():
    # cum = 1.1 * 1.1 - 1 = 0.21; (1.21) ** (4 / 2) - 1 = 1.4641 - 1 = 0.4641
    assert m.annualized_return([0.1, 0.1], 4.0) == pytest.approx(0.4641, abs=1e-14)
    # cum = 1.44 * 1 - 1 = 0.44; 1.44 ** (1 / 2) - 1 = 1.2 - 1 = 0.2
    assert m.annualized_return([0.44, 0.0], 1.0) == pytest.approx(0.2, abs=1e-14)


def test_annualized_return_wiped_out_and_negative_equity():
    # equity 1 * 0 * 1.5 = 0 exactly -> -1.0
    assert m.annualized_return([-1.0, 0.5], 4.0) == -1.0
    # equity 1 * (-0.5) * 1.1 = -0.55 < 0 -> no real root -> None
    assert m.annualized_return([-1.5, 0.1], 4.0) is None


def test_annualized_volatility_example():
    # mean 0.03; deviations -0.02, 0, 0.02; var = (4e-4 + 0 + 4e-4) / (3 - 1) = 4e-4
    # std = 0.02; * sqrt(9) = 0.06
    assert m.annualized_volatility([0.01, 0.03, 0.05], 9.0) == pytest.approx(0.06, abs=1e-15)


def test_sharpe_example():
    # mean 0.03 / std 0.02 (see above) * sqrt(9) = 1.5 * 3 = 4.5
    assert m.sharpe_ratio([0.01, 0.03, 0.05], 9.0) == pytest.approx(4.5, abs=1e-12)
    # mean 0 -> sharpe 0: [0.01, -0.01] has std sqrt(2e-4) > 0
    assert m.sharpe_ratio([0.01, -0.01], 9.0) == pytest.approx(0.0, abs=1e-15)


def test_sortino_example_means_over_all_bars():
    # mean = (0.04 - 0.02 + 0 + 0) / 4 = 0.005
    # downside = sqrt((0 + 0.02**2 + 0 + 0) / 4) = sqrt(1e-4) = 0.01  (all 4 bars, empyrical)
    # sortino = 0.005 / 0.01 * sqrt(4) = 1.0  (over losing bars only it would be 0.5)
    assert m.sortino_ratio([0.04, -0.02, 0.0, 0.0], 4.0) == pytest.approx(1.0, abs=1e-12)


def test_max_drawdown_example():
    # equity 1.1, 0.88, 0.924, 1.2012; peak 1.1, 1.1, 1.1, 1.2012
    # equity/peak - 1 = 0, -0.2, -0.16, 0 -> -0.2
    assert m.max_drawdown([0.1, -0.2, 0.05, 0.3]) == pytest.approx(-0.2, abs=1e-15)


def test_max_drawdown_measured_from_initial_equity():
    # equity 0.9, 0.945; the peak is the initial 1, not 0.9 -> 0.9 / 1 - 1 = -0.1
    assert m.max_drawdown([-0.1, 0.05]) == pytest.approx(-0.1, abs=1e-15)
    # equity 0.9, 0.81, 1.215; peak 1, 1, 1.215 -> min(-0.1, -0.19, 0) = -0.19
    assert m.max_drawdown([-0.1, -0.1, 0.5]) == pytest.approx(-0.19, abs=1e-15)


def test_calmar_example():
    # cum = 1.1 * 0.8 * 1.05 * 1.3 - 1 = 0.2012; ann = 1.2012 ** (4 / 4) - 1 = 0.2012
    # max_drawdown = -0.2 (above) -> calmar = 0.2012 / 0.2 = 1.006
    assert m.calmar_ratio([0.1, -0.2, 0.05, 0.3], 4.0) == pytest.approx(1.006, abs=1e-12)


def test_hit_rate_example():
    # nonzero bars: 0.01, -0.02, 0.03 -> 2 positive of 3 = 0.666...
    assert m.hit_rate([0.01, -0.02, 0.0, 0.03, 0.0]) == pytest.approx(2 / 3, abs=1e-15)


def test_num_periods():
    assert m.num_periods([0.1, 0.2, 0.3]) == 3
    assert m.num_periods(np.array([])) == 0


def test_periods_per_year():
    hour = 3_600 * 10**9
    assert m.periods_per_year(hour) == 8760.0  # 365 * 24
    assert m.periods_per_year(24 * hour) == 365.0
    assert m.periods_per_year(5 * 60 * 10**9) == pytest.approx(105_120.0)  # 365 * 288
    with pytest.raises(ValueError):
        m.periods_per_year(0)


def test_ic_metrics_example():
    # finite entries 0.1, 0.3, 0.2: mean 0.2; var = (0.01 + 0.01 + 0) / 2 = 0.01, std 0.1
    # ir = 0.2 / 0.1 = 2.0
    out = m.ic_metrics([0.1, np.nan, 0.3, 0.2, np.inf])
    assert out["ic_mean"] == pytest.approx(0.2, abs=1e-15)
    assert out["ic_std"] == pytest.approx(0.1, abs=1e-15)
    assert out["ic_ir"] == pytest.approx(2.0, abs=1e-12)
    assert out["ic_count"] == 3


def test_ic_metrics_undefined():
    assert m.ic_metrics([np.nan, np.nan]) == {
        "ic_mean": None,
        "ic_std": None,
        "ic_ir": None,
        "ic_count": 0,
    }
    one = m.ic_metrics([np.nan, 0.4])
    assert one == {"ic_mean": pytest.approx(0.4), "ic_std": None, "ic_ir": None, "ic_count": 1}
    const = m.ic_metrics([0.3, 0.3, 0.3])
    assert const["ic_std"] == 0.0 and const["ic_ir"] is None
    assert m.ic_metrics([])["ic_count"] == 0


def test_return_metrics_keys_and_values():
    pnl = [0.1, -0.2, 0.05, 0.3]
    out = m.return_metrics(pnl, 4.0)
    assert list(out) == [
        "cumulative_return",
        "annualized_return",
        "annualized_volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "hit_rate",
        "num_periods",
    ]
    assert out["cumulative_return"] == pytest.approx(0.2012)
    assert out["max_drawdown"] == pytest.approx(-0.2)
    assert out["calmar"] == pytest.approx(1.006)
    assert out["hit_rate"] == pytest.approx(0.75)
    assert out["num_periods"] == 4
    assert out["sharpe"] == m.sharpe_ratio(pnl, 4.0)
    assert out["sortino"] == m.sortino_ratio(pnl, 4.0)


# ------------------------------------------------------------------------ edge cases


def test_empty():
    assert m.return_metrics(np.array([], dtype=float), 365.0) == {
        "cumulative_return": 0.0,
        "annualized_return": None,
        "annualized_volatility": None,
        "sharpe": None,
        "sortino": None,
        "max_drawdown": 0.0,
        "calmar": None,
        "hit_rate": None,
        "num_periods": 0,
    }


def test_single_bar():
    out = m.return_metrics([0.05], 4.0)
    assert out["cumulative_return"] == pytest.approx(0.05)
    # 1.05 ** 4 - 1 = 1.21550625 - 1
    assert out["annualized_return"] == pytest.approx(0.21550625, abs=1e-14)
    assert out["annualized_volatility"] is None
    assert out["sharpe"] is None
    assert out["sortino"] is None  # no losing bar
    assert out["max_drawdown"] == 0.0
    assert out["calmar"] is None  # max_drawdown 0
    assert out["hit_rate"] == 1.0
    # a single losing bar: mean -0.01 / downside 0.01 * sqrt(4) = -2
    assert m.sortino_ratio([-0.01], 4.0) == pytest.approx(-2.0)


@pytest.mark.parametrize("c", [0.0, 1e-3, 1 / 3, -0.0123, 0.1, 7e-9])
@pytest.mark.parametrize("n", [2, 3, 1000, 100_003])
def test_constant_pnl_sharpe_undefined(c, n):
    pnl = np.full(n, c)
    assert m.sharpe_ratio(pnl, 8760.0) is None
    assert m.annualized_volatility(pnl, 8760.0) == 0.0


def test_constant_pnl_rounding_noise_is_snapped():
    # numpy's std of a constant array is rounding noise, not 0: the tolerance must absorb it
    pnl = np.full(1000, 0.1)
    assert np.std(pnl, ddof=1) > 0.0
    assert m.sharpe_ratio(pnl, 365.0) is None


def test_tiny_but_real_spread_is_kept():
    # spread far below 1e-15 absolute but large relative to the values: still defined
    pnl = np.array([1e-20, 3e-20, 5e-20])
    # mean 3e-20 / std 2e-20 * sqrt(9) = 4.5
    assert m.sharpe_ratio(pnl, 9.0) == pytest.approx(4.5)
    assert m.sharpe_ratio([1.0, -1.0], 1.0) == pytest.approx(0.0)


def test_no_losing_bars_sortino_undefined():
    assert m.sortino_ratio([0.01, 0.0, 0.02], 365.0) is None
    assert m.sortino_ratio([0.0, 0.0], 365.0) is None


def test_all_flat_hit_rate_undefined():
    assert m.hit_rate([0.0, 0.0, -0.0]) is None


def test_calmar_undefined_without_drawdown_or_annualized():
    assert m.calmar_ratio([0.01, 0.02], 365.0) is None  # never below peak
    assert m.calmar_ratio([-1.5, 0.1], 365.0) is None  # annualized undefined
    # wiped out: ann -1, mdd -1 -> -1
    assert m.calmar_ratio([-1.0, 0.5], 365.0) == -1.0


def test_overflow_gives_none_not_inf():
    out = m.return_metrics([1e300, 1e300, -0.5], 8760.0)
    assert out["cumulative_return"] is None
    assert out["annualized_return"] is None
    json.dumps(out, allow_nan=False)
    # finite growth whose annualization overflows
    assert m.annualized_return([1.0, 1.0], 1e6) is None


def test_rejects_2d():
    with pytest.raises(ValueError):
        m.sharpe_ratio(np.zeros((2, 2)), 365.0)


# -------------------------------------------------------------- json_safe / finite_or_none


def test_finite_or_none():
    assert m.finite_or_none(None) is None
    assert m.finite_or_none(float("nan")) is None
    assert m.finite_or_none(np.inf) is None
    assert m.finite_or_none(-np.inf) is None
    out = m.finite_or_none(np.float32(1.5))
    assert out == 1.5 and type(out) is float
    assert type(m.finite_or_none(np.float64(2.0))) is float
    assert m.finite_or_none(3) == 3.0


def test_json_safe():
    obj = {
        "a": float("nan"),
        "b": [np.inf, -np.inf, 1.5, np.float64(np.nan)],
        "c": {"d": np.float32(2.5), "e": np.int64(7), "f": np.bool_(True), "g": None},
        "h": (1, "x"),
        "i": np.array([1.0, np.nan]),
        "j": True,
    }
    out = m.json_safe(obj)
    assert out == {
        "a": None,
        "b": [None, None, 1.5, None],
        "c": {"d": 2.5, "e": 7, "f": True, "g": None},
        "h": [1, "x"],
        "i": [1.0, None],
        "j": True,
    }
    assert type(out["c"]["e"]) is int and type(out["c"]["f"]) is bool
    assert type(out["c"]["d"]) is float
    json.dumps(out, allow_nan=False)


# ------------------------------------------------------------ cross-checks against numpy


@pytest.mark.parametrize("seed", range(5))
def test_cross_check_numpy(seed):
    rng = np.random.default_rng(seed)
    pnl = rng.normal(0.0005, 0.01, size=500)
    ppy = 8760.0
    std = np.std(pnl, ddof=1)
    assert m.annualized_volatility(pnl, ppy) == pytest.approx(std * np.sqrt(ppy), rel=1e-12)
    assert m.sharpe_ratio(pnl, ppy) == pytest.approx(pnl.mean() / std * np.sqrt(ppy), rel=1e-12)
    downside = np.sqrt(np.mean(np.clip(pnl, None, 0.0) ** 2))
    assert m.sortino_ratio(pnl, ppy) == pytest.approx(
        pnl.mean() / downside * np.sqrt(ppy), rel=1e-12
    )
    # max drawdown by an explicit loop
    equity, peak, worst = 1.0, 1.0, 0.0
    for r in pnl:
        equity *= 1.0 + r
        peak = max(peak, equity)
        worst = min(worst, equity / peak - 1.0)
    assert m.max_drawdown(pnl) == pytest.approx(worst, rel=1e-12, abs=1e-15)
    growth = np.prod(1.0 + pnl)
    assert m.cumulative_return(pnl) == pytest.approx(growth - 1.0, rel=1e-12)
    assert m.annualized_return(pnl, ppy) == pytest.approx(
        growth ** (ppy / pnl.size) - 1.0, rel=1e-12
    )


# -------------------------------------------------------------------- property tests

returns = arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.floats(-0.99, 5.0, allow_nan=False, allow_infinity=False),
)
any_finite = arrays(
    np.float64,
    st.integers(0, 30),
    elements=st.floats(allow_nan=False, allow_infinity=False),
)


@given(returns)
def test_max_drawdown_in_range(pnl):
    mdd = m.max_drawdown(pnl)
    assert mdd is not None and -1.0 <= mdd <= 0.0


@given(returns, returns)
def test_cumulative_return_of_concatenation(a, b):
    ca, cb = m.cumulative_return(a), m.cumulative_return(b)
    cab = m.cumulative_return(np.concatenate([a, b]))
    if ca is None or cb is None or cab is None:
        return
    # 1 + c loses ~1e-16 absolute when the growth is tiny, so scale abs by the factors
    tol = 1e-12 * (1.0 + abs(ca)) * (1.0 + abs(cb))
    assert 1.0 + cab == pytest.approx((1.0 + ca) * (1.0 + cb), rel=1e-9, abs=tol)


@given(returns)
def test_hit_rate_in_unit_interval(pnl):
    hr = m.hit_rate(pnl)
    assert hr is None or 0.0 <= hr <= 1.0


@given(returns, st.floats(1e-3, 1e3))
def test_sharpe_scale_invariant(pnl, k):
    nonzero = np.abs(pnl[pnl != 0.0])
    assume(nonzero.size == 0 or nonzero.min() * k > 1e-100)  # squares must not underflow
    s1, s2 = m.sharpe_ratio(pnl, 365.0), m.sharpe_ratio(pnl * k, 365.0)
    if s1 is None or s2 is None:
        # the tolerance is relative to scale, so scaling does not change definedness
        # unless scaling under/overflows
        return
    assert s2 == pytest.approx(s1, rel=1e-6, abs=1e-9)


@given(st.floats(-0.5, 0.5, allow_nan=False), st.integers(2, 5000))
def test_constant_sharpe_none_property(c, n):
    assert m.sharpe_ratio(np.full(n, c), 8760.0) is None


@given(returns)
def test_calmar_sign_follows_annualized(pnl):
    cal, ann = m.calmar_ratio(pnl, 365.0), m.annualized_return(pnl, 365.0)
    if cal is not None:
        assert ann is not None and math.copysign(1.0, cal) == math.copysign(1.0, ann)


@settings(max_examples=200)
@given(any_finite, st.sampled_from([1.0, 365.0, 8760.0, 105_120.0]))
def test_metrics_never_nan_or_inf(pnl, ppy):
    out = m.return_metrics(pnl, ppy)
    for value in out.values():
        assert value is None or math.isfinite(value)
    json.dumps(out, allow_nan=False)
    ic = m.ic_metrics(pnl)
    for value in ic.values():
        assert value is None or math.isfinite(value)
    json.dumps(ic, allow_nan=False)


# ---------------------------------------------------------------- tear-sheet series
def test_drawdown_periods_hand_checked():
    # equity 1.1, 0.99, 0.9405, 1.22265, 0.97812, 0.98790: two episodes.
    periods = m.drawdown_periods([0.1, -0.1, -0.05, 0.3, -0.2, 0.01])
    assert [(p.peak, p.trough, p.recovery) for p in periods] == [(3, 4, None), (0, 2, 3)]
    assert periods[0].depth == pytest.approx(-0.2)
    assert periods[1].depth == pytest.approx(0.9405 / 1.1 - 1)
    # A loss on the first bar is a drawdown from the initial equity (peak -1).
    (first,) = m.drawdown_periods([-0.1, 0.2])
    assert first == m.DrawdownPeriod(-1, 0, 1, pytest.approx(-0.1))
    assert m.drawdown_periods([0.01, 0.02]) == []
    assert len(m.drawdown_periods([0.1, -0.1, 0.2, -0.1, 0.2, -0.1, 0.2], top=2)) == 2


def test_drawdown_periods_deepest_matches_max_drawdown():
    pnl = np.random.default_rng(1).normal(0.0, 0.01, 500)
    periods = m.drawdown_periods(pnl, top=100)
    assert periods[0].depth == pytest.approx(m.max_drawdown(pnl))
    depths = [p.depth for p in periods]
    assert depths == sorted(depths)
    spans = sorted((p.peak, p.recovery if p.recovery is not None else 10**9) for p in periods)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # no overlap


def test_rolling_sharpe_and_volatility_match_the_window_metrics():
    pnl = np.random.default_rng(2).normal(0.001, 0.01, 40)
    sharpe = m.rolling_sharpe(pnl, 10, 8760.0)
    vol = m.rolling_volatility(pnl, 10, 8760.0)
    assert np.isnan(sharpe[:9]).all() and np.isnan(vol[:9]).all()
    for end in (10, 25, 40):
        window = pnl[end - 10:end]
        assert sharpe[end - 1] == pytest.approx(m.sharpe_ratio(window, 8760.0), rel=1e-12)
        assert vol[end - 1] == pytest.approx(m.annualized_volatility(window, 8760.0), rel=1e-12)
    flat = m.rolling_sharpe(np.full(5, 0.01), 3, 1.0)
    assert np.isnan(flat).all()  # std 0: undefined, not inf


def test_the_metric_records_are_typed_dicts() -> None:
    """metrics.json's parts are TypedDicts (mypy checks the modules that pass them)."""
    import typing

    from alphadev.metrics import CostBreakdown, ICMetrics, Metrics, ReturnMetrics

    for record in (Metrics, ReturnMetrics, ICMetrics, CostBreakdown):
        assert typing.is_typeddict(record), record
    assert typing.get_type_hints(Metrics)["total"] is ReturnMetrics
