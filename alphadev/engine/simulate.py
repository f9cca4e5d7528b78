"""One stretch of bars on aligned arrays: returns, alpha order, IC and the book.

The engine's entry point for the runner.  It takes plain ``(T, N)`` arrays, the rows
of the bar before them and four portfolio scalars, and knows nothing of configs,
pandas or files, so a benchmark or a test can call it on arrays alone.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from alphadev import _threads
from alphadev.engine.ic import rank_ic
from alphadev.engine.kernel import (
    BookArrays,
    BookSettings,
    KernelOutput,
    Prepared,
    PreviousBar,
    alpha_argsort,
    chained_returns,
    run_book,
    run_kernel,
)


class PanelDerived(NamedTuple):
    """Values that depend on the arrays alone, not on the settings: shared across configs."""

    order: np.ndarray  # (T, N) alpha_argsort(alpha)
    returns: np.ndarray  # (T, N) chained_returns(prices, previous.prices)
    ic: np.ndarray  # (T,) rank IC
    order_before: np.ndarray | None = None  # alpha_argsort(alpha_before), when delayed
    returns_order: np.ndarray | None = None  # (T, N) np.argsort(returns, axis=1)
    # (T, N) the book's returns between prices at close + lag (docs/semantics.md#execution-lag);
    # None: the book earns ``returns``.
    trade_returns: np.ndarray | None = None

    @property
    def book_returns(self) -> np.ndarray:
        return self.returns if self.trade_returns is None else self.trade_returns


class Simulated(NamedTuple):
    """What ``simulate_arrays`` returns: the book and the settings-free values it used."""

    book: KernelOutput
    derived: PanelDerived


def simulate_arrays(
    prices: np.ndarray,
    alpha: np.ndarray,
    universe: np.ndarray,
    betas: np.ndarray,
    previous: PreviousBar,
    settings: BookSettings,
    derived: PanelDerived | None = None,
    alpha_before: np.ndarray | None = None,
    funding: np.ndarray | None = None,
    impact_scale: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    trade_prices: np.ndarray | None = None,
) -> Simulated:
    """Kernel and IC on aligned arrays.

    The two row-wise sorts, and then IC and the kernel, run on two threads (all release
    the GIL), so a single backtest uses two cores.

    Parameters
    ----------
    prices, alpha, universe
        (T, N) close prices, alpha values and universe flags; bars in time order,
        symbols sorted by name.
    betas
        (N,) or (T, N) betas for the leg sizing.
    previous
        The rows of bar t = -1 (``PreviousBar.start`` for a new backtest).
    settings
        Quantiles, gross exposure and costs (``BookSettings``).
    derived
        Values computed before for the same arrays from the same ``previous`` rows
        (shared across configs); computed here when None.
    alpha_before
        The alpha rows of the d bars before the first one (d = ``execution_delay``):
        the book trades on the alpha of d bars earlier; IC keeps measuring ``alpha``.
    funding
        (T, N) funding rates per bar, or None.
    impact_scale, volume
        (T, N) sigma / sqrt(ADV) and bar volumes (``BookArrays``), or None.
    trade_prices
        (T, N) the prices the book trades at when they are not the closes (an
        ``execution_lag``), chained from ``previous.trade_prices``; the book earns their
        returns, IC keeps the closes'.

    Returns
    -------
    Simulated
        The book (``KernelOutput``) and the settings-free values it used.
    """
    if derived is not None:
        order, returns, ic, order_before = derived.order, derived.returns, derived.ic, \
            derived.order_before
        returns_order, trade_returns = derived.returns_order, derived.trade_returns
        ic_result = None
    else:
        returns = chained_returns(prices, previous.prices)
        sorting = _threads.start(np.argsort, returns, 1)
        order = alpha_argsort(alpha)
        returns_order = sorting()
        ic_result = _threads.start(
            rank_ic, alpha, returns, universe, previous.alpha, previous.universe, order,
            returns_order,
        )
        order_before = alpha_argsort(alpha_before) if alpha_before is not None else None
        trade_returns = None
        if trade_prices is not None:
            before = (np.full(prices.shape[1], np.nan) if previous.trade_prices is None
                      else previous.trade_prices)
            trade_returns = chained_returns(trade_prices, before)
    arrays = BookArrays(prices, alpha, universe, betas, funding, alpha_before, impact_scale,
                        volume)
    book_returns = returns if trade_returns is None else trade_returns
    book = run_book(arrays, previous, settings, Prepared(order, book_returns, order_before))
    if ic_result is not None:
        ic = ic_result()
    return Simulated(book, PanelDerived(order, returns, ic, order_before, returns_order,
                                        trade_returns))


def next_bar_book(
    prices: np.ndarray,
    alpha: np.ndarray,
    universe: np.ndarray,
    betas: np.ndarray,
    previous: PreviousBar,
    settings: BookSettings,
    derived: PanelDerived,
    alpha_before: np.ndarray,
    funding: np.ndarray | None = None,
    impact_scale: np.ndarray | None = None,
    volume: np.ndarray | None = None,
) -> KernelOutput:
    """The same book traded one bar later (docs/semantics.md#next-bar).

    ``alpha_before`` holds the d + 1 alpha rows before the first bar, so the book at bar
    t trades on the alpha of bar t - d - 1; ``previous`` is this book's own bar t = -1
    (its weights and ruin differ from the main book's).  The order and returns come
    from ``derived``: only the small order of ``alpha_before`` is computed here.
    """
    arrays = BookArrays(prices, alpha, universe, betas, funding, alpha_before, impact_scale,
                        volume)
    return run_book(arrays, previous, settings, Prepared(derived.order, derived.book_returns))


def warm_up() -> None:
    """Load the compiled kernels now (e.g. before forking task processes)."""
    n = 2
    prices = np.ones((2, n))
    flags = np.ones((2, n), dtype=bool)
    out = run_kernel(prices, prices, flags, np.ones(n), np.full(n, np.nan), np.zeros(n),
                     0.5, 0.5, 1.0, 0.0)
    rank_ic(prices, out.returns, flags, np.full(n, np.nan), np.zeros(n, dtype=bool))
