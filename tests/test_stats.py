"""PSR, DSR, moments and break-even fee (alphadev.stats) against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from alphadev.results import BacktestResult, Sequences
from alphadev.stats import (
    SWEEP_STATISTICS_COLUMNS,
    breakeven_fee,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    norm_cdf,
    norm_ppf,
    probabilistic_sharpe_ratio,
    return_moments,
    sweep_statistics,
)


# ---------------------------------------------------------------------- normal law
@pytest.mark.parametrize(
    ("p", "x"),
    [
        (0.5, 0.0),
        (0.975, 1.959963984540054),
        (0.9, 1.2815515655446004),
        (0.99, 2.3263478740408408),
        (0.001, -3.090232306167813),  # lower tail branch
        (1e-10, -6.361340902404056),
        (1e-6, -4.753424308822899),
    ],
)
def test_norm_ppf_known_quantiles(p, x):
    assert norm_ppf(p) == pytest.approx(x, rel=1e-12, abs=1e-12)
    assert norm_cdf(x) == pytest.approx(p, rel=1e-12)


def test_norm_ppf_edges():
    assert norm_ppf(0.0) == -math.inf
    assert norm_ppf(1.0) == math.inf
    with pytest.raises(ValueError, match="p="):
        norm_ppf(1.5)
    # Upper tail by symmetry (p exact in binary, so 1 - p is too).
    assert norm_ppf(1 - 2.0**-40) == -norm_ppf(2.0**-40)
    assert norm_cdf(-norm_ppf(1 - 2.0**-20)) == pytest.approx(2.0**-20, rel=1e-13)
    grid = np.linspace(1e-6, 1 - 1e-6, 997)
    assert max(abs(norm_cdf(norm_ppf(p)) - p) for p in grid) < 1e-15


# ---------------------------------------------------------------------- moments
def test_return_moments_by_hand():
    # x = [1, -1, 1, -1]: mean 0, so Sharpe 0; m2 = 1, m3 = 0, m4 = 1 -> skew 0,
    # non-excess kurtosis m4 / m2^2 = 1.
    assert return_moments([1.0, -1.0, 1.0, -1.0]) == (0.0, 0.0, 1.0)
    # x = [0, 0, 3]: mean 1; std(ddof=1) = sqrt((1 + 1 + 4) / 2) = sqrt(3)
    # -> Sharpe 1/sqrt(3); deviations -1, -1, 2: m2 = 6/3 = 2, m3 = (-1 - 1 + 8)/3 = 2,
    # m4 = (1 + 1 + 16)/3 = 6 -> skew 2 / 2^1.5 = 0.70711, kurtosis 6 / 4 = 1.5.
    sharpe, skew, kurt = return_moments([0.0, 0.0, 3.0])
    assert sharpe == pytest.approx(1 / math.sqrt(3), rel=1e-14)
    assert skew == pytest.approx(1 / math.sqrt(2), rel=1e-14)
    assert kurt == pytest.approx(1.5, rel=1e-14)


def test_return_moments_undefined():
    assert return_moments([0.01]) == (None, None, None)
    assert return_moments([0.01, 0.01, 0.01]) == (None, None, None)
    assert return_moments([]) == (None, None, None)


# ---------------------------------------------------------------------- PSR / DSR
def test_psr_worked_example():
    # PSR(SR*) = Phi((SR - SR*) sqrt(T-1) / sqrt(1 - skew SR + (kurt - 1)/4 SR^2)).
    # Normal returns: SR = 0.1 per bar, T = 101, skew 0, kurt 3:
    #   denominator sqrt(1 + 2/4 * 0.01) = sqrt(1.005) = 1.0024969;
    #   z = 0.1 * 10 / 1.0024969 = 0.9975093;  Phi(z) = 0.8407413.
    assert probabilistic_sharpe_ratio(0.1, 101, 0.0, 3.0) == pytest.approx(0.8407413, abs=1e-7)
    # Fat left tail: skew -1, kurt 6: 1 + 0.1 + 5/4 * 0.01 = 1.1125;
    #   z = 1 / sqrt(1.1125) = 0.9480909;  Phi(z) = 0.8284584.
    assert probabilistic_sharpe_ratio(0.1, 101, -1.0, 6.0) == pytest.approx(0.8284584, abs=1e-7)
    # Against a benchmark equal to the estimate: exactly one half.
    assert probabilistic_sharpe_ratio(0.1, 101, -1.0, 6.0, benchmark=0.1) == 0.5


def test_dsr_worked_example():
    # N = 10 trials whose per-bar Sharpe ratios have variance V = 0.0025 (sd 0.05):
    #   SR0 = 0.05 * ((1 - g) * Phi^-1(0.9) + g * Phi^-1(1 - 1/(10 e)))
    #       = 0.05 * (0.4227843 * 1.2815516 + 0.5772157 * 1.7892350) = 0.0787299
    # For SR = 0.1, T = 101, normal returns:
    #   z = (0.1 - 0.0787299) * 10 / sqrt(1.005) = 0.2121773;  DSR = Phi(z) = 0.5840132.
    assert expected_max_sharpe(10, 0.0025) == pytest.approx(0.0787299, abs=1e-7)
    dsr = deflated_sharpe_ratio(0.1, 101, 0.0, 3.0, n_trials=10, sharpe_variance=0.0025)
    assert dsr == pytest.approx(0.5840132, abs=1e-7)


def test_dsr_matches_the_paper_example():
    # Bailey & Lopez de Prado (2014), section "A numerical example": annualised SR 2.5
    # from T = 1250 daily returns, skew -3, kurtosis 10, after N = 100 trials with
    # annualised Sharpe variance 1/2 -> SR0 = 0.1132 per day and DSR = 0.9004.
    daily = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    assert expected_max_sharpe(100, variance) == pytest.approx(0.1132, abs=1e-4)
    dsr = deflated_sharpe_ratio(daily, 1250, -3.0, 10.0, 100, variance)
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def test_dsr_equals_psr_for_one_trial_and_falls_with_more_trials():
    args = (0.08, 500, -0.4, 5.0)
    assert deflated_sharpe_ratio(*args, n_trials=1, sharpe_variance=0.01) == (
        probabilistic_sharpe_ratio(*args, benchmark=0.0)
    )
    values = [
        deflated_sharpe_ratio(*args, n_trials=n, sharpe_variance=0.0004)
        for n in (1, 2, 5, 10, 100, 1000, 10_000)
    ]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_psr_undefined_inputs():
    assert probabilistic_sharpe_ratio(None, 100, 0.0, 3.0) is None
    assert probabilistic_sharpe_ratio(0.1, 1, 0.0, 3.0) is None
    # 1 - skew * SR + (kurt - 1)/4 * SR^2 <= 0 has no meaning as a variance.
    assert probabilistic_sharpe_ratio(1.0, 100, 3.0, 1.0) is None


# ---------------------------------------------------------------------- break-even fee
def test_breakeven_fee_by_hand():
    # gross [0.02, 0.01], turnover [0.5, 0.5]: traded notional 2 * 0.5 = 1 per bar, so
    # (1.02 - f)(1.01 - f) = 1  <=>  f^2 - 2.03 f + 0.0302 = 0
    #   f = (2.03 - sqrt(2.03^2 - 4 * 0.0302)) / 2 = (2.03 - sqrt(4.0001)) / 2 = 0.0149875.
    fee = breakeven_fee([0.02, 0.01], [0.5, 0.5])
    assert fee == pytest.approx((2.03 - math.sqrt(4.0001)) / 2, rel=1e-10)
    assert (1.02 - fee) * (1.01 - fee) == pytest.approx(1.0, abs=1e-12)


def test_breakeven_fee_solves_the_net_equation():
    rng = np.random.default_rng(5)
    gross = rng.normal(0.0004, 0.004, 2000)
    turnover = rng.uniform(0.0, 0.3, 2000)
    fee = breakeven_fee(gross, turnover)
    assert fee is not None and fee > 0
    assert np.prod(1 + gross - fee * 2 * turnover) == pytest.approx(1.0, abs=1e-9)
    # Below the break-even fee the config makes money, above it loses.
    assert np.prod(1 + gross - 0.9 * fee * 2 * turnover) > 1
    assert np.prod(1 + gross - 1.1 * fee * 2 * turnover) < 1


def test_breakeven_fee_none_cases():
    assert breakeven_fee([0.01, -0.02], [0.1, 0.1]) is None  # gross already losing
    assert breakeven_fee([0.0, 0.0], [0.1, 0.1]) is None  # gross exactly flat
    assert breakeven_fee([0.01, 0.02], [0.0, 0.0]) is None  # never trades: no crossing
    assert breakeven_fee([], []) is None
    with pytest.raises(ValueError, match="differ"):
        breakeven_fee([0.01], [0.1, 0.2])


# ---------------------------------------------------------------------- sweep table
def _result(name: str, pnl: np.ndarray, turnover: np.ndarray, rate: float) -> BacktestResult:
    index = pd.date_range("2024-01-01", periods=len(pnl), freq="1h", tz="UTC", name="timestamp")
    fees = rate * 2 * turnover
    returns = pd.DataFrame(
        {
            "pnl": pnl, "gross": pnl + fees, "fees": fees, "turnover": turnover,
            "long_return": pnl, "short_return": pnl, "ic": 0.0, "equity": np.cumprod(1 + pnl),
        },
        index=index,
    )
    empty = pd.DataFrame()
    return BacktestResult(
        config=None, metrics={}, config_dict={"name": name},
        sequences=Sequences(returns=returns, positions=empty, trades=empty),
    )


def test_sweep_statistics_table():
    rng = np.random.default_rng(11)
    turnover = rng.uniform(0, 0.2, 500)
    results = [
        _result(f"c{k}", rng.normal(0.0002 * k, 0.002, 500), turnover, 4.5e-4) for k in range(4)
    ]
    table = sweep_statistics([results[0], None, *results[1:]])
    assert list(table.columns) == list(SWEEP_STATISTICS_COLUMNS)
    assert list(table["name"]) == ["c0", "c1", "c2", "c3"]
    assert table.attrs["n_trials"] == 4
    pnl = results[3].pnl.to_numpy()
    sharpe, skew, kurt = return_moments(pnl)
    row = table.iloc[3]
    assert row["sharpe_per_period"] == pytest.approx(sharpe)
    assert row["kurtosis"] == pytest.approx(kurt)
    assert row["psr"] == pytest.approx(probabilistic_sharpe_ratio(sharpe, 500, skew, kurt))
    variance = np.var(table["sharpe_per_period"], ddof=1)
    assert table.attrs["sharpe_variance"] == pytest.approx(variance)
    assert row["dsr"] == pytest.approx(deflated_sharpe_ratio(sharpe, 500, skew, kurt, 4, variance))
    assert (table["dsr"] <= table["psr"]).all()
    # The break-even fee of a profitable config lies above the rate it paid.
    assert row["breakeven_fee"] > 4.5e-4
    # More trials deflate more.
    assert (sweep_statistics(results, n_trials=400)["dsr"] < table["dsr"]).all()


def test_sweep_statistics_single_config_dsr_is_psr():
    rng = np.random.default_rng(2)
    table = sweep_statistics([_result("only", rng.normal(1e-4, 1e-3, 300), np.full(300, 0.1), 0)])
    assert table.loc[0, "dsr"] == table.loc[0, "psr"]
    assert table.attrs["expected_max_sharpe"] == 0.0


def test_sweep_statistics_of_saved_results_equal_those_in_memory(market, tmp_path) -> None:
    """A sweep's summary reads each saved result's returns as plain arrays; the table
    must be the in-memory one, also for configs over different periods (the bars' union
    is an outer join, NaN where a config has no bar)."""
    import datetime as dt

    from alphadev import Backtester
    from alphadev.results import load_result
    from alphadev.stats import _returns_columns, _union_columns
    from tests.conftest import make_config

    configs = [make_config(market, name=f"c{k}", alpha_kwargs={"scale": s}, **period)
               for k, (s, period) in enumerate([
                   (1.0, {}), (-2.0, {}), (0.5, {"start_date": dt.date(2024, 1, 4)}),
                   (3.0, {"end_date": dt.date(2024, 1, 6), "trading_fee_rate": 1e-3})])]
    bt = Backtester()
    for config in configs:
        bt.add_config(config)
    in_memory = bt.run_all(verbose=False)
    bt.run_all(verbose=False, save_dir=tmp_path / "out")
    saved = [load_result(tmp_path / "out" / c.name) for c in configs]
    assert all(getattr(r, "_sequences", None) is None for r in saved)  # read from disk
    pd.testing.assert_frame_equal(sweep_statistics(saved), sweep_statistics(in_memory))

    joined = pd.concat([r.sequences["pnl"] for r in in_memory], axis=1, ignore_index=True,
                       sort=True)
    union = _union_columns([_returns_columns(r, ["pnl"]) for r in saved], "pnl")
    np.testing.assert_array_equal(union, joined.to_numpy(dtype=np.float64))
    assert np.isnan(union).any()
