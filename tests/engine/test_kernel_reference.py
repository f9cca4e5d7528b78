"""The numba kernel and rank IC against the literal reference of the per-bar book.

Random small panels: late listings, delistings, gaps, tied alphas (drawn from a small
set), universe masks, negative / zero / positive betas, any quantile pair with
0 < open <= close <= 0.5, any fee and gross exposure.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from alphadev.engine.ic import rank_ic
from alphadev.engine.kernel import run_kernel
from tests.reference import reference_weights_and_accounting

ATOL = 1e-12
RTOL = 1e-12  # equity and gross can be large (prices jump 1 -> 1000): relative there

PRICE = st.sampled_from([1.0, 1.25, 2.0, 0.8, 3.0, 100.0]) | st.floats(
    0.01, 1000.0, allow_nan=False, allow_infinity=False
)
ALPHA = st.sampled_from([math.nan, -1.0, 0.0, 0.5, 1.0, 2.0]) | st.floats(
    -5.0, 5.0, allow_nan=False, allow_infinity=False
)
BETA = st.sampled_from([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0]) | st.floats(
    -2.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False
)


@st.composite
def quantiles(draw):
    close_q = draw(
        st.sampled_from([0.5, 0.25, 0.2, 1 / 3, 0.1]) | st.floats(0.001, 0.5, exclude_min=False)
    )
    open_q = draw(
        st.sampled_from([close_q, close_q / 2, 0.1 if close_q >= 0.1 else close_q])
        | st.floats(0.001, close_q)
    )
    assert 0 < open_q <= close_q <= 0.5
    return open_q, close_q


@st.composite
def panels(draw):
    n_bars = draw(st.integers(1, 40))
    n_sym = draw(st.integers(1, 8))
    prices = draw(arrays(np.float64, (n_bars, n_sym), elements=PRICE))
    # lifetimes: late listings and delistings
    for j in range(n_sym):
        listing = draw(st.just(0) | st.integers(0, n_bars))
        delisting = draw(st.just(n_bars) | st.integers(listing, n_bars))
        prices[:listing, j] = np.nan
        prices[delisting:, j] = np.nan
    # gaps inside a lifetime
    gaps = draw(
        arrays(np.bool_, (n_bars, n_sym), elements=st.sampled_from([False] * 6 + [True]))
    )
    prices[gaps] = np.nan
    alpha = draw(arrays(np.float64, (n_bars, n_sym), elements=ALPHA))
    if draw(st.booleans()):
        universe = np.ones((n_bars, n_sym), dtype=bool)
    else:
        universe = draw(
            arrays(np.bool_, (n_bars, n_sym), elements=st.sampled_from([True] * 4 + [False]))
        )
    beta = draw(arrays(np.float64, (n_sym,), elements=BETA))
    open_q, close_q = draw(quantiles())
    # up to the validator's bound: prices jump 0.01 -> 1000, so many books are ruined
    gross = draw(st.sampled_from([1.0, 2.0, 0.5, 100.0]) | st.floats(0.1, 3.0))
    fee = draw(st.sampled_from([0.0, 4.5e-4, 1e-3]) | st.floats(0.0, 0.01))
    return prices, alpha, universe, beta, open_q, close_q, gross, fee


def _engine(prices, alpha, universe, beta, open_q, close_q, gross, fee):
    n_sym = prices.shape[1]
    out = run_kernel(
        prices, alpha, universe, beta, np.full(n_sym, np.nan), np.zeros(n_sym),
        open_q, close_q, gross, fee,
    )
    ic = rank_ic(alpha, out.returns, universe, np.full(n_sym, np.nan), np.zeros(n_sym, bool))
    return out, ic


def _close(actual, expected, what):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), expected, rtol=RTOL, atol=ATOL, err_msg=what
    )


@settings(max_examples=300, deadline=None)
@given(panels())
def test_kernel_matches_reference(panel):
    prices, alpha, universe, beta, open_q, close_q, gross, fee = panel
    out, ic = _engine(*panel)
    ref = reference_weights_and_accounting(
        prices, alpha, universe, beta, open_q, close_q, gross, fee
    )
    _close(out.weights, ref.weights, "weights")
    _close(out.returns, ref.returns, "returns")
    _close(out.gross, ref.gross, "gross")
    _close(out.fees, ref.fees, "fees")
    _close(out.turnover, ref.turnover, "turnover")
    _close(out.long_return, ref.long_return, "long_return")
    _close(out.short_return, ref.short_return, "short_return")
    _close(ic, ref.ic, "ic")
    _close(out.pnl, ref.pnl, "pnl")
    _close(np.cumprod(1.0 + out.pnl), ref.equity, "equity")
    assert out.forced_closes == ref.forced_closes
    assert (None if out.ruined_at < 0 else out.ruined_at) == ref.ruined_at


@settings(max_examples=100, deadline=None)
@given(panels(), st.data())
def test_kernel_chains_across_a_split(panel, data):
    """Running [0, s) then [s, T) with the carried state equals one run (streaming)."""
    prices, alpha, universe, beta, open_q, close_q, gross, fee = panel
    n_bars, n_sym = prices.shape
    split = data.draw(st.integers(0, n_bars))
    full, full_ic = _engine(*panel)
    args = (beta,)
    tail = (open_q, close_q, gross, fee)
    first = run_kernel(
        prices[:split], alpha[:split], universe[:split], *args,
        np.full(n_sym, np.nan), np.zeros(n_sym), *tail,
    )
    prev_p = prices[split - 1] if split > 0 else np.full(n_sym, np.nan)
    prev_w = first.weights[-1] if split > 0 else np.zeros(n_sym)
    second = run_kernel(
        prices[split:], alpha[split:], universe[split:], *args, prev_p, prev_w, *tail,
        ruined=first.ruined_at >= 0,
    )
    for name in ("weights", "returns", "gross", "fees", "turnover", "pnl", "long_return",
                 "short_return"):
        joined = np.concatenate([getattr(first, name), getattr(second, name)])
        _close(joined, getattr(full, name), name)
    assert first.forced_closes + second.forced_closes == full.forced_closes
    ruin_bars = [first.ruined_at] if first.ruined_at >= 0 else []
    ruin_bars += [split + second.ruined_at] if second.ruined_at >= 0 else []
    assert ruin_bars == ([full.ruined_at] if full.ruined_at >= 0 else [])

    prev_a = alpha[split - 1] if split > 0 else np.full(n_sym, np.nan)
    prev_u = universe[split - 1] if split > 0 else np.zeros(n_sym, bool)
    ic_first = rank_ic(
        alpha[:split], first.returns, universe[:split], np.full(n_sym, np.nan),
        np.zeros(n_sym, bool),
    ) if split > 0 else np.empty(0)
    ic_second = rank_ic(alpha[split:], second.returns, universe[split:], prev_a, prev_u) \
        if split < n_bars else np.empty(0)
    _close(np.concatenate([ic_first, ic_second]), full_ic, "ic")
