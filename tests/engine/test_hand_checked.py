"""Hand-checked cases for every rule of the per-bar book (docs/semantics.md#per-bar-book).

Each expected number is a literal worked out by hand (arithmetic in the comments).
Every case runs on the numba kernel and on the slow reference (tests/reference.py), so
a mistake in either shows up here against numbers a person checked.

Columns are symbols A, B, C, D, (E) in name order; betas are 1 unless stated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from alphadev.engine.ic import rank_ic
from alphadev.engine.kernel import run_kernel
from tests.reference import reference_weights_and_accounting, spearman

nan = math.nan
T, F = True, False


def _run(impl, prices, alpha, universe=None, beta=None, oq=0.2, cq=0.2, gross=1.0, fee=0.0):
    prices = np.array(prices, dtype=float)
    alpha = np.array(alpha, dtype=float)
    n_sym = prices.shape[1]
    universe = np.ones_like(prices, dtype=bool) if universe is None else np.array(universe)
    beta = np.ones(n_sym) if beta is None else np.array(beta, dtype=float)
    if impl == "engine":
        return run_kernel(
            prices, alpha, universe, beta, np.full(n_sym, nan), np.zeros(n_sym),
            oq, cq, gross, fee,
        )
    return reference_weights_and_accounting(prices, alpha, universe, beta, oq, cq, gross, fee)


@pytest.fixture(params=["engine", "reference"])
def impl(request):
    return request.param


def _eq(actual, expected):
    np.testing.assert_allclose(np.asarray(actual, float), expected, rtol=0, atol=1e-15)


# ---------------------------------------------------------------- 1. eligibility


def test_eligibility_needs_price_alpha_and_universe(impl):
    # B has no price, C is outside the universe, so E = {A, D} although B and C have the
    # biggest alphas. n = 2, K = max(1, floor(2 * 0.2)) = 1: long A (alpha 2), short D.
    out = _run(impl, [[1, nan, 1, 1]], [[2, 9, 9, 1]], universe=[[T, T, F, T]])
    _eq(out.weights, [[0.5, 0, 0, -0.5]])


def test_missing_alpha_is_not_eligible(impl):
    # A has no alpha: E = {B, C}; long C, short B.
    out = _run(impl, [[1, 1, 1]], [[nan, 1, 2]])
    _eq(out.weights, [[0, -0.5, 0.5]])


# ---------------------------------------------------------------- 2. n < 2 is flat


def test_fewer_than_two_eligible_is_flat_and_counts_forced_closes(impl):
    # bar 0: n = 3, K = max(1, floor(0.6)) = 1: long C, short A.
    # bar 1: only A is eligible (B, C have no price) -> n = 1 -> flat. Closing C (not
    #   eligible) and A (eligible, but n < 2) are both forced: 2.
    #   turnover = 0.5 * (0.5 + 0.5) = 0.5; fee = 0.001 * 1.0 = 0.001 at both bars.
    out = _run(impl, [[1, 1, 1], [1, nan, nan]], [[1, 2, 3], [1, 2, 3]], fee=0.001)
    _eq(out.weights, [[-0.5, 0, 0.5], [0, 0, 0]])
    _eq(out.turnover, [0.5, 0.5])
    _eq(out.fees, [0.001, 0.001])
    assert out.forced_closes == 2


def test_single_symbol_never_trades(impl):
    out = _run(impl, [[1], [2], [3]], [[1], [2], [3]], fee=0.001)
    _eq(out.weights, [[0], [0], [0]])
    _eq(out.fees, [0, 0, 0])
    assert out.forced_closes == 0


# ---------------------------------------------------------------- 3. percentile ranks, ties


def test_all_tied_alphas_rank_by_symbol_order(impl):
    # All alphas equal: ascending order is A, B, C, D (k = 0..3). K = floor(4 * 0.25) = 1:
    # long the top (D), short the bottom (A).
    out = _run(impl, [[1, 1, 1, 1]], [[1, 1, 1, 1]], oq=0.25, cq=0.25)
    _eq(out.weights, [[-0.5, 0, 0, 0.5]])


def test_partial_ties_rank_by_symbol_order(impl):
    # alpha [2, 1, 2, 1]: ascending B(1), D(1), A(2), C(2) -> k: B 0, D 1, A 2, C 3.
    # long C (k = 3), short B (k = 0).
    out = _run(impl, [[1, 1, 1, 1]], [[2, 1, 2, 1]], oq=0.25, cq=0.25)
    _eq(out.weights, [[0, -0.5, 0.5, 0]])


def test_close_thresholds_are_inclusive_keeps(impl):
    # 5 symbols, open 0.2 (K = 1), close 0.25. q = k / 4 in {0, .25, .5, .75, 1}.
    # bar 0 alpha 1..5: long E, short A.
    # bar 1 alpha [2, 1, 3, 5, 4]: order B, A, C, E, D. E has q = 0.75, not < 1 - 0.25,
    #   so it stays long; A has q = 0.25, not > 0.25, so it stays short. Legs are full.
    # bar 2 alpha [2, 1, 4, 5, 3]: order B, A, E, C, D. E has q = 0.5 < 0.75: closed;
    #   long top-up: D. A (q = 0.25) stays short.
    prices = [[1] * 5] * 3
    alpha = [[1, 2, 3, 4, 5], [2, 1, 3, 5, 4], [2, 1, 4, 5, 3]]
    out = _run(impl, prices, alpha, oq=0.2, cq=0.25)
    _eq(out.weights, [[-0.5, 0, 0, 0, 0.5], [-0.5, 0, 0, 0, 0.5], [-0.5, 0, 0, 0.5, 0]])
    # turnover: bar 0 0.5 * 1 = 0.5; bar 1 0; bar 2 0.5 * (0.5 + 0.5) = 0.5
    _eq(out.turnover, [0.5, 0, 0.5])


# ---------------------------------------------------------------- 4. close rule (hysteresis)


@pytest.mark.parametrize(
    "close_q, expected_bar1",
    [
        # close 0.5: D slipped to q = 2/3 >= 1 - 0.5, kept; long leg full, C not added.
        (0.5, [-0.5, 0, 0, 0.5]),
        # close 0.25: q = 2/3 < 0.75, D closed, C (the new top) opened.
        (0.25, [-0.5, 0, 0.5, 0]),
    ],
)
def test_long_that_slips_is_kept_above_threshold(impl, close_q, expected_bar1):
    # open 0.25 -> K = 1. bar 0 alpha 1..4: long D, short A.
    # bar 1 alpha [1, 2, 4, 3]: order A, B, D, C -> D has q = 2/3, A q = 0.
    out = _run(impl, [[1] * 4] * 2, [[1, 2, 3, 4], [1, 2, 4, 3]], oq=0.25, cq=close_q)
    _eq(out.weights, [[-0.5, 0, 0, 0.5], expected_bar1])
    assert out.forced_closes == 0


def test_short_that_rises_is_closed_past_threshold(impl):
    # open = close = 0.25, K = 1. bar 0: short A, long D.
    # bar 1 alpha [3, 1, 2, 4]: order B, C, A, D: A has q = 2/3 > 0.25 -> closed;
    #   short top-up: B (weakest). D stays long.
    out = _run(impl, [[1] * 4] * 2, [[1, 2, 3, 4], [3, 1, 2, 4]], oq=0.25, cq=0.25)
    _eq(out.weights, [[-0.5, 0, 0, 0.5], [0, -0.5, 0, 0.5]])


# ---------------------------------------------------------------- 5. K and the top-up


def test_k_is_at_least_one(impl):
    # n = 3, open 0.2: floor(0.6) = 0 -> K = max(1, 0) = 1.
    out = _run(impl, [[1, 1, 1]], [[3, 1, 2]])
    _eq(out.weights, [[0.5, -0.5, 0]])


def test_k_is_floor_of_n_times_open(impl):
    # n = 4, open 0.5: K = 2: long C, D at 0.25; short A, B at -0.25.
    # n = 4, open 0.49: floor(1.96) = 1.
    out = _run(impl, [[1] * 4], [[1, 2, 3, 4]], oq=0.5, cq=0.5)
    _eq(out.weights, [[-0.25, -0.25, 0.25, 0.25]])
    out = _run(impl, [[1] * 4], [[1, 2, 3, 4]], oq=0.49, cq=0.5)
    _eq(out.weights, [[-0.5, 0, 0, 0.5]])


def test_never_remove_to_get_down_to_k(impl):
    # open = close = 0.5. bar 0: n = 4, K = 2: longs C, D; shorts A, B (weights 0.25).
    # bar 1: A has no price (forced close). n = 3, K = max(1, floor(1.5)) = 1.
    #   q: B 0, C 0.5, D 1. C (0.5 >= 0.5) and D stay long: 2 longs > K, none removed.
    #   B (0 <= 0.5) stays short, alone: L = S = 0.5 -> C, D 0.25; B -0.5.
    #   turnover = 0.5 * (0.25 [A] + 0.25 [B]) = 0.25
    out = _run(impl, [[1] * 4, [nan, 1, 1, 1]], [[1, 2, 3, 4]] * 2, oq=0.5, cq=0.5)
    _eq(out.weights, [[-0.25, -0.25, 0.25, 0.25], [0, -0.5, 0.25, 0.25]])
    _eq(out.turnover, [0.5, 0.25])
    assert out.forced_closes == 1


def test_top_up_strongest_first_and_long_flipped_to_short(impl):
    # 5 symbols, open 0.4 -> K = floor(2) = 2, close 0.5. q = k / 4.
    # bar 0 alpha 1..5: longs D, E; shorts A, B (0.25 each).
    # bar 1 alpha [1, 4, 5, 3, 0]: order E(0) A(1) D(3) B(4) C(5), q: E 0, A .25, D .5,
    #   B .75, C 1.
    #   step 4: E long, q 0 < 0.5 -> closed; D long, q .5 -> kept;
    #           A short, q .25 -> kept; B short, q .75 > .5 -> closed.
    #   step 5: long candidates C, B (strongest first): C flat -> added; leg = 2 = K, so B
    #           (flat, also a candidate) is NOT added. Short candidates E, A: E is flat
    #           (closed long this bar) -> opened short; leg = 2.
    #   w1: A -0.25, B 0, C 0.25, D 0.25, E -0.25.
    #   turnover = 0.5 * (0 + 0.25 + 0.25 + 0 + 0.5) = 0.5; nothing forced.
    alpha = [[1, 2, 3, 4, 5], [1, 4, 5, 3, 0]]
    out = _run(impl, [[1] * 5] * 2, alpha, oq=0.4, cq=0.5)
    _eq(out.weights, [[-0.25, -0.25, 0, 0.25, 0.25], [-0.25, 0, 0.25, 0.25, -0.25]])
    _eq(out.turnover, [0.5, 0.5])
    assert out.forced_closes == 0


def test_long_pushed_to_bottom_closes_and_opens_short_same_bar(impl):
    # 3 symbols, open = close = 0.2, K = 1, fee 0.001.
    # bar 0 alpha [1, 2, 3]: long C 0.5, short A -0.5.   fee = 0.001 * 1 = 0.001
    # bar 1 alpha [2, 3, 1]: order C, A, B. C q = 0 < 0.8 -> closed, then opened short
    #   (bottom candidate, flat). A q = 0.5 > 0.2 -> closed. Long top-up: B.
    #   w1 = [0, 0.5, -0.5]; traded = 0.5 + 0.5 + 1.0 = 2 -> turnover 1, fee 0.002.
    out = _run(impl, [[1] * 3] * 2, [[1, 2, 3], [2, 3, 1]], fee=0.001)
    _eq(out.weights, [[-0.5, 0, 0.5], [0, 0.5, -0.5]])
    _eq(out.turnover, [0.5, 1.0])
    _eq(out.fees, [0.001, 0.002])


# ---------------------------------------------------------------- 6. leg sizes


def test_beta_neutral_sizing_single_names(impl):
    # K = 1: long D (beta 2), short A (beta 0.5). L + S = 1, 2 L = 0.5 S
    #   -> L = 0.5 / 2.5 = 0.2, S = 2 / 2.5 = 0.8.
    out = _run(impl, [[1] * 4], [[1, 2, 3, 4]], beta=[0.5, 1, 1, 2], oq=0.25, cq=0.25)
    _eq(out.weights, [[-0.8, 0, 0, 0.2]])


def test_beta_neutral_sizing_uses_leg_means_and_gross(impl):
    # K = 2: longs C, D (betas 1, 2: mean 1.5); shorts A, B (betas 0.5, 1: mean 0.75).
    # gross 2: L = 2 * 0.75 / 2.25 = 2/3, S = 2 * 1.5 / 2.25 = 4/3.
    #   longs 1/3 each, shorts -2/3 each.
    out = _run(
        impl, [[1] * 4], [[1, 2, 3, 4]], beta=[0.5, 1, 1, 2], oq=0.5, cq=0.5, gross=2.0
    )
    _eq(out.weights, [[-2 / 3, -2 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize(
    "beta",
    [
        [1, 1, -1, 1],  # long mean beta (C -1, D 1) = 0 -> equal split
        [-3, 1, 2, 2],  # short mean beta (A -3, B 1) = -1 -> equal split
        [0, 0, 0, 0],  # both zero
    ],
)
def test_equal_split_when_a_mean_beta_is_not_positive(impl, beta):
    # K = 2; L = S = 1 / 2 -> 0.25 per name.
    out = _run(impl, [[1] * 4], [[1, 2, 3, 4]], beta=beta, oq=0.5, cq=0.5)
    _eq(out.weights, [[-0.25, -0.25, 0.25, 0.25]])


def test_unchanged_membership_means_zero_turnover(impl):
    # Same members on both bars (long D, short A) and prices moving: weights are
    # re-targeted to the same numbers, so bar 1 trades nothing.
    out = _run(impl, [[1, 1, 1, 1], [2, 1, 1, 3]], [[1, 2, 3, 4], [1, 3, 2, 4]], fee=0.01,
               oq=0.25, cq=0.25)
    _eq(out.turnover, [0.5, 0])
    _eq(out.fees, [0.01, 0])


# ---------------------------------------------------------------- accounting


def test_fee_at_bar_zero(impl):
    # Opening trades pay: fee = 4.5e-4 * (0.5 + 0.5) = 4.5e-4; pnl = -4.5e-4.
    # Leg fees: long 4.5e-4 * 0.5, short likewise; N_L falls back to w[0] (0.5):
    #   long_return = -2.25e-4 / 0.5 = -4.5e-4.
    out = _run(impl, [[1, 1]], [[1, 2]], fee=4.5e-4)
    _eq(out.gross, [0])
    _eq(out.fees, [4.5e-4])
    _eq(out.turnover, [0.5])
    _eq(out.long_return, [-4.5e-4])
    _eq(out.short_return, [-4.5e-4])


def test_accounting_and_leg_returns_over_two_bars(impl):
    # 3 symbols, K = 1, fee 0.001.
    # bar 0: prices 10, 10, 10; alpha 1, 2, 3 -> long C 0.5, short A -0.5.
    #   r[0] missing, gross 0, fee 0.001 * 1 = 0.001, pnl -0.001, equity 0.999.
    #   long fee 0.0005 / N_L (w[0]: 0.5) -> long_return -0.001; short likewise.
    # bar 1: prices 9, 10, 11 -> r = -0.1, 0, 0.1. alpha 2, 3, 1 -> w1 = [0, 0.5, -0.5].
    #   gross = 0.5 * 0.1 + (-0.5)(-0.1) = 0.1.
    #   traded: A 0.5, B 0.5, C 1.0 = 2 -> fee 0.002, turnover 1; pnl 0.098.
    #   long parts: B 0.5 + C |0 - 0.5| = 1 -> long fee 0.001; short parts: A 0.5 +
    #   C 0.5 = 1 -> short fee 0.001.
    #   long_return = (0.05 - 0.001) / 0.5 = 0.098; short_return = (0.05 - 0.001) / 0.5.
    #   equity = 0.999 * 1.098 = 1.096902.
    out = _run(impl, [[10, 10, 10], [9, 10, 11]], [[1, 2, 3], [2, 3, 1]], fee=0.001)
    _eq(out.returns, [[nan, nan, nan], [-0.1, 0.0, 0.1]])
    _eq(out.gross, [0, 0.1])
    _eq(out.fees, [0.001, 0.002])
    _eq(out.turnover, [0.5, 1.0])
    _eq(out.long_return, [-0.001, 0.098])
    _eq(out.short_return, [-0.001, 0.098])
    pnl = np.asarray(out.gross) - np.asarray(out.fees)
    _eq(pnl, [-0.001, 0.098])
    _eq(np.cumprod(1 + pnl), [0.999, 1.096902])


def test_missing_return_counts_as_zero(impl):
    # bar 0: long B, short A. bar 1: B has no price (r missing -> 0; forced close) and
    # A fell 10%: gross = -0.5 * -0.1 = 0.05. n = 2 (A, C) -> C long, A kept short.
    out = _run(impl, [[10, 10, 10], [9, nan, 10]], [[1, 3, 2], [1, 3, 2]])
    _eq(out.gross, [0, 0.05])
    _eq(out.weights, [[-0.5, 0.5, 0], [-0.5, 0, 0.5]])
    assert out.forced_closes == 1


def test_leg_return_notional_fallbacks(impl):
    # open = close = 0.5, fee 0.01, beta [1, 1, 1]: 3 symbols, K = 1.
    # bar 0: long C, short A (0.5 each). fee 0.01; legs -0.005 / 0.5 = -0.01.
    # bar 1: only A eligible (B no price, C out of the universe) -> flat.
    #   r = [0.1, -, -0.2] (prices 11, -, 8).
    #   long: (0.5 * -0.2 - 0.01 * 0.5) / N_L(w[0] = 0.5) = -0.105 / 0.5 = -0.21
    #   short: (-0.5 * 0.1 - 0.005) / 0.5 = -0.11
    # bar 2: still flat, both notionals zero -> 0 and 0.
    # bar 3: reopen (all prices 8, 10, 8; alpha 1, 2, 3): long C, short A; w[2] legs are
    #   zero, N falls back to w[3] (0.5): -0.005 / 0.5 = -0.01 each.
    prices = [[10, 10, 10], [11, nan, 8], [11, nan, nan], [8, 10, 8]]
    alpha = [[1, 2, 3], [1, 2, 3], [1, 2, 3], [1, 2, 3]]
    universe = [[T, T, T], [T, T, F], [T, T, T], [T, T, T]]
    out = _run(impl, prices, alpha, universe=universe, oq=0.5, cq=0.5, fee=0.01)
    _eq(out.weights, [[-0.5, 0, 0.5], [0, 0, 0], [0, 0, 0], [-0.5, 0, 0.5]])
    _eq(out.long_return, [-0.01, -0.21, 0, -0.01])
    _eq(out.short_return, [-0.01, -0.11, 0, -0.01])
    assert out.forced_closes == 2  # bar 1: A (n < 2) and C (left the universe)


def test_leg_fee_split_with_asymmetric_legs(impl):
    # Beta-neutral: long D 0.2, short A -0.8 (see sizing test), fee 0.001.
    # long fee = 0.001 * 0.2 = 2e-4 -> long_return = -2e-4 / 0.2 = -0.001
    # short fee = 0.001 * 0.8 = 8e-4 -> short_return = -8e-4 / 0.8 = -0.001
    # fee = 0.001 * 1.0 = 0.001, turnover 0.5.
    out = _run(impl, [[1] * 4], [[1, 2, 3, 4]], beta=[0.5, 1, 1, 2], oq=0.25, cq=0.25,
               fee=0.001)
    _eq(out.fees, [0.001])
    _eq(out.long_return, [-0.001])
    _eq(out.short_return, [-0.001])
    # bar 1: betas make long D -> 0.2 and short A -> 0.8 again: no trade, but prices
    # move: D +10%, A +10%: long = 0.2 * 0.1 / 0.2 = 0.1; short = -0.8 * 0.1 / 0.8 = -0.1.
    out = _run(impl, [[1] * 4, [1.1, 1, 1, 1.1]], [[1, 2, 3, 4]] * 2, beta=[0.5, 1, 1, 2],
               oq=0.25, cq=0.25, fee=0.001)
    _eq(out.long_return, [-0.001, 0.1])
    _eq(out.short_return, [-0.001, -0.1])
    _eq(out.gross, [0, 0.2 * 0.1 - 0.8 * 0.1])


# ---------------------------------------------------------------- forced closes


def test_forced_closes_counted_and_alpha_closes_not(impl):
    # open = close = 0.25.
    # bar 0: alpha 1..4 -> long D, short A.
    # bar 1: D delisted (no price): forced #1. E = {A, B, C}, K = 1: A stays short,
    #        C opened long.
    # bar 2: A's alpha missing: forced #2. E = {B, C}: C stays long, B short.
    # bar 3: B leaves the universe: forced #3. E = {A, C}: C long, A short.
    # bar 4: alpha A 3, B 2, C 1 (B back): C (q 0) and A (q 1) closed by the alpha (not
    #        forced) and flipped: long A, short C.
    prices = [[1, 1, 1, 1], [1, 1, 1, nan], [1, 1, 1, nan], [1, 1, 1, nan], [1, 1, 1, nan]]
    alpha = [[1, 2, 3, 4], [1, 2, 3, 4], [nan, 2, 3, 4], [1, 2, 3, 4], [3, 2, 1, 4]]
    universe = [[T] * 4, [T] * 4, [T] * 4, [T, F, T, T], [T] * 4]
    out = _run(impl, prices, alpha, universe=universe, oq=0.25, cq=0.25)
    _eq(
        out.weights,
        [
            [-0.5, 0, 0, 0.5],
            [-0.5, 0, 0.5, 0],
            [0, -0.5, 0.5, 0],
            [-0.5, 0, 0.5, 0],
            [0.5, 0, -0.5, 0],
        ],
    )
    assert out.forced_closes == 3


# ---------------------------------------------------------------- IC


def _ic_both(alpha_prev, returns, universe_prev):
    """IC at bar 1 from the engine and from the reference's Spearman."""
    alpha_prev = np.array(alpha_prev, float)
    returns = np.array(returns, float)
    universe_prev = np.array(universe_prev, bool)
    n = alpha_prev.shape[0]
    alpha = np.vstack([alpha_prev, np.full(n, nan)])
    rets = np.vstack([np.full(n, nan), returns])
    uni = np.vstack([universe_prev, np.ones(n, bool)])
    engine = rank_ic(alpha, rets, uni, np.full(n, nan), np.zeros(n, bool))
    assert math.isnan(engine[0])
    keep = [
        i for i in range(n)
        if universe_prev[i] and math.isfinite(alpha_prev[i]) and math.isfinite(returns[i])
    ]
    ref = spearman([alpha_prev[i] for i in keep], [returns[i] for i in keep])
    return engine[1], ref


def test_ic_with_ties_uses_average_ranks():
    # alpha [1, 1, 2, 3] -> ranks [1.5, 1.5, 3, 4]; returns [.1, .2, .2, -.1] -> ranks
    # [2, 3.5, 3.5, 1]. Centered (mean 2.5): dx = [-1, -1, .5, 1.5], dy = [-.5, 1, 1, -1.5]
    # cov = .5 - 1 + .5 - 2.25 = -2.25; var x = 4.5; var y = 4.5 -> ic = -0.5.
    engine, ref = _ic_both([1, 1, 2, 3], [0.1, 0.2, 0.2, -0.1], [T] * 4)
    assert engine == pytest.approx(-0.5, abs=1e-15)
    assert ref == pytest.approx(-0.5, abs=1e-15)


def test_ic_drops_symbols_outside_previous_universe_or_missing():
    # D out of the universe at t-1, E has no return: left with alpha [1, 1, 2],
    # returns [.1, .2, .2] -> ranks [1.5, 1.5, 3] and [1, 2.5, 2.5]; dx = [-.5, -.5, 1],
    # dy = [-1, .5, .5]; cov = .5 - .25 + .5 = .75; var 1.5 and 1.5 -> ic = 0.5.
    engine, ref = _ic_both(
        [1, 1, 2, 3, 7], [0.1, 0.2, 0.2, -0.1, nan], [T, T, T, F, T]
    )
    assert engine == pytest.approx(0.5, abs=1e-15)
    assert ref == pytest.approx(0.5, abs=1e-15)


@pytest.mark.parametrize(
    "alpha_prev, returns, universe_prev",
    [
        ([1, 1, 1], [0.1, 0.2, 0.3], [T, T, T]),  # constant alpha
        ([1, 2, 3], [0.1, 0.1, 0.1], [T, T, T]),  # constant returns
        ([1, 2, 3], [0.1, nan, nan], [T, T, T]),  # one usable symbol
        ([1, 2, nan], [0.1, 0.2, 0.3], [T, F, T]),  # one usable symbol
    ],
)
def test_ic_missing_when_constant_or_too_few(alpha_prev, returns, universe_prev):
    engine, ref = _ic_both(alpha_prev, returns, universe_prev)
    assert math.isnan(engine)
    assert math.isnan(ref)


def test_ic_perfect_rank_agreement():
    # Same order on both sides (not linear): ic = 1.
    engine, ref = _ic_both([1, 2, 10], [-0.5, 0.0, 0.01], [T] * 3)
    assert engine == pytest.approx(1.0, abs=1e-15)
    assert ref == pytest.approx(1.0, abs=1e-15)
