"""The per-bar portfolio loop (docs/semantics.md#per-bar-book), on plain numpy arrays.

The loops are numba-compiled (``cache=True`` keeps the machine code on disk, so a
fresh process does not recompile).  The module knows nothing of pandas, files or
configs: it takes aligned ``(T, N)`` arrays, one row per bar and one column per symbol
(symbols sorted by name), plus the rows of the bar before them so that streaming
chunks chain exactly like one batch run.

Naming, here and in ``engine/ic.py``: every compiled function is private and ends in
``_nb`` (``_run_kernel_nb``); the public functions are plain Python wrappers without
the suffix (``run_kernel``) that fix dtypes and memory layout before calling it.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import numpy.typing as npt


class KernelOutput(NamedTuple):
    weights: np.ndarray  # (T, N) w[t]: weights held from bar t to bar t+1
    returns: np.ndarray  # (T, N) r[t] = P[t] / P[t-1] - 1, NaN where missing
    gross: np.ndarray  # (T,) sum_i w[t-1, i] r[t, i]
    fees: np.ndarray  # (T,)
    slippage: np.ndarray  # (T,) sum_i slippage_rate_i |w[t, i] - w[t-1, i]|
    funding: np.ndarray  # (T,) -sum_i w[t-1, i] F[t, i]: received (+) or paid (-)
    turnover: np.ndarray  # (T,)
    pnl: np.ndarray  # (T,) gross - fees [- slippage] [- impact] [+ funding]; -1 at ruin
    long_return: np.ndarray  # (T,)
    short_return: np.ndarray  # (T,)
    forced_closes: int
    ruined_at: int  # row of the bar whose net return took equity to <= 0; -1: none here
    impact: np.ndarray  # (T,) sum_i Y sigma_i sqrt(|dw_i| capital / ADV_i) |dw_i|
    participation: Participation  # |dw| * capital / bar volume over the trades
    impact_scale: np.ndarray  # (N,) each symbol's last defined sigma / sqrt(ADV)


class Participation(NamedTuple):
    """|dw| * capital / V[t, i] summed over the trades of bars with a positive volume."""

    total: float
    trades: int
    largest: float  # 0 without such trades
    without_volume: int  # trades at bars with no (or zero) volume

    def joined(self, other: Participation) -> Participation:
        """Two stretches of bars as one (streaming chunks)."""
        return Participation(self.total + other.total, self.trades + other.trades,
                             max(self.largest, other.largest),
                             self.without_volume + other.without_volume)


NO_PARTICIPATION = Participation(0.0, 0, 0.0, 0)


class CostSettings(NamedTuple):
    """The trading costs the loop charges, normalised once by ``cost_settings``
    (docs/semantics.md#execution-and-costs)."""

    fee_rate: float
    slippage_rates: np.ndarray  # (N,) float64, contiguous; all zero when not has_slippage
    has_slippage: bool
    impact_factor: float = 0.0  # Y * sqrt(capital); 0 when not has_impact
    has_impact: bool = False
    capital: float = 1.0  # the book's notional at gross 1 (participation)


def cost_settings(
    fee_rate: float, slippage_rates: npt.ArrayLike | None, n_sym: int,
    impact_coefficient: float = 0.0, capital: float = 1.0,
) -> CostSettings:
    """The one place that decides "no slippage" (rates None or all zero) and "no
    impact" (a zero coefficient)."""
    rates = (np.zeros(n_sym) if slippage_rates is None
             else np.ascontiguousarray(slippage_rates, dtype=np.float64))
    has_slippage = bool(np.any(rates))
    has_impact = float(impact_coefficient) > 0.0
    factor = float(impact_coefficient) * float(np.sqrt(capital)) if has_impact else 0.0
    return CostSettings(float(fee_rate), rates if has_slippage else np.zeros(n_sym),
                        has_slippage, factor, has_impact, float(capital))


class BookSettings(NamedTuple):
    """The portfolio settings the per-bar book uses (docs/semantics.md#per-bar-book)."""

    open_quantile: float
    close_quantile: float
    gross_exposure: float
    costs: CostSettings


class PreviousBar(NamedTuple):
    """The rows of bar t = -1: what a stretch of bars continues from."""

    prices: np.ndarray  # (N,) NaN at the start of a backtest
    weights: np.ndarray  # (N,) zero at the start
    alpha: np.ndarray  # (N,) NaN at the start
    universe: np.ndarray  # (N,) bool, False at the start
    ruined: bool = False  # equity reached 0 at or before this bar: the book stays flat
    impact_scale: np.ndarray | None = None  # (N,) last defined sigma / sqrt(ADV); None: NaN
    trade_prices: np.ndarray | None = None  # (N,) last price at close + lag; None: NaN

    @classmethod
    def start(cls, n_sym: int) -> PreviousBar:
        """Before the first bar: no prices, no positions, no alpha, nothing in the universe."""
        return cls(
            prices=np.full(n_sym, np.nan),
            weights=np.zeros(n_sym),
            alpha=np.full(n_sym, np.nan),
            universe=np.zeros(n_sym, dtype=bool),
        )


class BookArrays(NamedTuple):
    """One stretch of aligned bars: what the book is computed from.

    ``beta`` is one row per symbol, or one per bar and symbol (betas that change over
    time); ``funding`` (T, N) the summed funding rates of the events inside each bar, or
    None; ``alpha_before`` (d, N), the alpha of the d bars before the first (d =
    ``execution_delay``), makes the book at bar t trade on the alpha of bar t - d (the
    loop reads those rows where they are: no shifted copy of the panel).
    ``impact_scale`` (T, N) sigma / sqrt(ADV) of the trailing window, NaN where either is
    undefined (the symbol cannot be traded into); ``volume`` (T, N) each bar's traded
    volume, NaN without rows (docs/semantics.md#market-impact).
    """

    prices: np.ndarray
    alpha: np.ndarray
    universe: np.ndarray
    beta: np.ndarray
    funding: np.ndarray | None = None
    alpha_before: np.ndarray | None = None
    impact_scale: np.ndarray | None = None
    volume: np.ndarray | None = None


class Prepared(NamedTuple):
    """Values of the arrays alone that a caller may have already: ``alpha_argsort`` of
    ``alpha`` and of ``alpha_before``, and ``chained_returns``."""

    alpha_order: np.ndarray | None = None
    returns: np.ndarray | None = None
    order_before: np.ndarray | None = None


def run_book(
    arrays: BookArrays, previous: PreviousBar, settings: BookSettings,
    prepared: Prepared | None = None,
) -> KernelOutput:
    """Simulate the long/short book bar by bar.

    ``previous`` describes bar t = -1: NaN prices and zero weights at the start of a
    backtest, the last processed bar's values when a streaming chunk continues a
    previous one.  Ruin (docs/semantics.md#ruin): at the first bar whose net return is
    <= -1 the book is closed and stays flat; ``previous.ruined`` says an earlier chunk
    was already ruined, so every bar here is flat.
    """
    prices = np.ascontiguousarray(arrays.prices, dtype=np.float64)
    alpha = np.ascontiguousarray(arrays.alpha, dtype=np.float64)
    n_sym = prices.shape[1]
    alpha_order, returns, order_before = prepared if prepared is not None else Prepared()
    if returns is None:
        returns = chained_returns(prices, np.asarray(previous.prices, dtype=np.float64))
    if alpha_order is None:
        alpha_order = alpha_argsort(alpha)
    alpha_before = arrays.alpha_before
    if alpha_before is None:
        alpha_before = np.zeros((0, n_sym))
    alpha_before = np.ascontiguousarray(alpha_before, dtype=np.float64)
    if order_before is None:
        order_before = alpha_argsort(alpha_before)
    order_before = np.ascontiguousarray(order_before, dtype=alpha_order.dtype)
    beta = np.asarray(arrays.beta, dtype=np.float64)
    beta = np.ascontiguousarray(beta.reshape(1, n_sym) if beta.ndim == 1 else beta)
    costs = settings.costs
    has_funding = arrays.funding is not None
    funding_rates = (
        np.ascontiguousarray(arrays.funding, dtype=np.float64) if has_funding
        else np.zeros((0, n_sym))
    )
    has_impact = costs.has_impact
    if has_impact and arrays.impact_scale is None:
        raise ValueError("run_kernel: impact is on (impact_factor > 0) but impact_scale is None")
    scale = _optional_rows(arrays.impact_scale if has_impact else None, n_sym)
    has_volume = arrays.volume is not None
    volume = _optional_rows(arrays.volume, n_sym)
    prev_scale = (np.full(n_sym, np.nan) if previous.impact_scale is None
                  else np.ascontiguousarray(previous.impact_scale, dtype=np.float64))
    _check_shapes(prices.shape, alpha=alpha, universe=arrays.universe, beta=beta,
                  returns=returns, alpha_order=alpha_order,
                  funding=funding_rates if has_funding else None,
                  slippage_rates=costs.slippage_rates, prev_weights=previous.weights,
                  alpha_before=alpha_before, order_before=order_before,
                  impact_scale=scale if has_impact else None,
                  volume=volume if has_volume else None, prev_scale=prev_scale)
    (weights, gross, fees, slippage, paid, turnover, pnl, long_return, short_return,
     forced, ruined_at, impact, participation, last_scale) = _run_kernel_nb(
        prices,
        alpha,
        np.ascontiguousarray(arrays.universe, dtype=np.bool_),
        beta,
        returns,
        np.ascontiguousarray(alpha_order),
        np.ascontiguousarray(previous.weights, dtype=np.float64),
        float(settings.open_quantile),
        float(settings.close_quantile),
        float(settings.gross_exposure),
        costs.fee_rate,
        costs.slippage_rates,
        costs.has_slippage,
        funding_rates,
        has_funding,
        alpha_before,
        order_before,
        bool(previous.ruined),
        scale,
        has_impact,
        costs.impact_factor,
        prev_scale,
        volume,
        has_volume,
        costs.capital,
    )
    return KernelOutput(
        weights=weights,
        returns=returns,
        gross=gross,
        fees=fees,
        slippage=slippage,
        funding=paid,
        turnover=turnover,
        pnl=pnl,
        long_return=long_return,
        short_return=short_return,
        forced_closes=int(forced),
        ruined_at=int(ruined_at),
        impact=impact,
        participation=Participation(float(participation[0]), int(participation[1]),
                                    float(participation[2]), int(participation[3])),
        impact_scale=last_scale,
    )


def _optional_rows(values: np.ndarray | None, n_sym: int) -> np.ndarray:
    """A (T, N) float array, or an empty (0, N) one standing for "not given"."""
    if values is None:
        return np.zeros((0, n_sym))
    return np.ascontiguousarray(values, dtype=np.float64)


def run_kernel(
    prices: np.ndarray,
    alpha: np.ndarray,
    universe: np.ndarray,
    beta: np.ndarray,
    prev_prices: np.ndarray,
    prev_weights: np.ndarray,
    open_quantile: float,
    close_quantile: float,
    gross_exposure: float,
    fee_rate: float,
    alpha_order: np.ndarray | None = None,
    returns: np.ndarray | None = None,
    slippage_rates: np.ndarray | None = None,
    funding: np.ndarray | None = None,
    alpha_before: np.ndarray | None = None,
    order_before: np.ndarray | None = None,
    ruined: bool = False,
    impact_coefficient: float = 0.0,
    capital: float = 1.0,
    impact_scale: np.ndarray | None = None,
    volume: np.ndarray | None = None,
    prev_scale: np.ndarray | None = None,
) -> KernelOutput:
    """``run_book`` from loose arrays and numbers, for array-level callers (tests,
    research); the library builds the records once and calls ``run_book``."""
    n_sym = np.shape(prices)[1]
    previous = PreviousBar(np.asarray(prev_prices), np.asarray(prev_weights),
                           np.full(n_sym, np.nan), np.zeros(n_sym, dtype=bool), ruined,
                           prev_scale)
    settings = BookSettings(open_quantile, close_quantile, gross_exposure,
                            cost_settings(fee_rate, slippage_rates, n_sym,
                                          impact_coefficient, capital))
    arrays = BookArrays(prices, alpha, universe, beta, funding, alpha_before, impact_scale,
                        volume)
    return run_book(arrays, previous, settings, Prepared(alpha_order, returns, order_before))


def _check_shapes(shape: tuple[int, ...], **named: np.ndarray | None) -> None:
    """The compiled loop does not check bounds: a misaligned array must not reach it."""
    n_bars, n_sym = shape
    wanted = {
        "alpha": shape, "universe": shape, "returns": shape, "alpha_order": shape,
        "funding": shape, "slippage_rates": (n_sym,), "prev_weights": (n_sym,),
        "impact_scale": shape, "volume": shape, "prev_scale": (n_sym,),
    }
    for name, array in named.items():
        if array is None:
            continue
        if name == "beta":
            ok = array.shape in ((1, n_sym), shape)
        elif name in ("alpha_before", "order_before"):
            ok = array.ndim == 2 and array.shape[1] == n_sym
        else:
            ok = np.shape(array) == wanted[name]
        if not ok:
            raise ValueError(
                f"run_kernel: {name} has shape {np.shape(array)}, prices {shape}; "
                "align every array on the same bars and symbols"
            )


def chained_returns(prices: np.ndarray, prev_prices: np.ndarray) -> np.ndarray:
    """r[t] = P[t] / P[t-1] - 1, NaN where either price is missing or r is not finite.

    Row 0 divides by ``prev_prices`` (the carried row of bar -1, NaN at the start), so
    a chunk's returns continue the previous chunk's.
    """
    return _chained_returns_nb(
        np.ascontiguousarray(prices, dtype=np.float64),
        np.ascontiguousarray(prev_prices, dtype=np.float64),
    )


@numba.njit(cache=True, nogil=True)
def _chained_returns_nb(prices, prev_prices):
    n_bars, n_sym = prices.shape
    returns = np.empty((n_bars, n_sym))
    for t in range(n_bars):
        previous = prev_prices if t == 0 else prices[t - 1]
        for i in range(n_sym):
            r = prices[t, i] / previous[i] - 1.0
            returns[t, i] = r if np.isfinite(r) else np.nan
    return returns


def alpha_argsort(alpha: np.ndarray) -> np.ndarray:
    """Per-bar order of symbols by alpha, NaN last.

    numpy's vectorised sort is several times faster than sorting row by row in the
    loop; it is not stable, so the loop restores symbol order among tied alphas.
    """
    return np.argsort(alpha, axis=1)


@numba.njit(cache=True)
def _sort_ties_by_index_nb(members, values, m):
    """Within runs of equal ``values[members[k]]``, put members in index order."""
    start = 0
    while start < m:
        stop = start + 1
        while stop < m and values[members[stop]] == values[members[start]]:
            stop += 1
        if stop - start > 1:
            members[start:stop] = np.sort(members[start:stop])
        start = stop


@numba.njit(cache=True)
def _eligible_by_alpha_nb(p_row, a_row, u_row, order_row, by_alpha):
    """Step 1 and the sort of step 3: E in ascending alpha, ties in symbol order.

    Fills ``by_alpha[:n]`` and returns n = |E|.
    """
    n = 0
    for k in range(order_row.shape[0]):
        i = order_row[k]
        if not np.isfinite(a_row[i]):
            break  # NaN alphas sort last: nobody after this is eligible
        if np.isfinite(p_row[i]) and u_row[i]:
            by_alpha[n] = i
            n += 1
    _sort_ties_by_index_nb(by_alpha, a_row, n)
    return n


@numba.njit(cache=True)
def _first_rank_at_least_nb(level, n):
    """Smallest k in [0, n] with k / (n - 1) >= level (float division, as the rule is written)."""
    k = max(0, min(n, int(np.floor(level * (n - 1))) - 1))
    while k > 0 and (k - 1) / (n - 1) >= level:
        k -= 1
    while k < n and k / (n - 1) < level:
        k += 1
    return k


@numba.njit(cache=True)
def _first_rank_above_nb(level, n):
    """Smallest k in [0, n] with k / (n - 1) > level."""
    k = max(0, min(n, int(np.floor(level * (n - 1))) - 1))
    while k > 0 and (k - 1) / (n - 1) > level:
        k -= 1
    while k < n and k / (n - 1) <= level:
        k += 1
    return k


@numba.njit(cache=True)
def _choose_sides_nb(by_alpha, n, held, open_q, close_q, side):
    """Steps 3-5: ``side[i]`` = +1 long, -1 short, 0 flat; returns (n_long, n_short).

    ``side`` must be all zero on entry; held symbols outside E stay 0 (closed).
    """
    n_long = 0
    n_short = 0
    # 3-4. Percentile rank q = k / (n - 1); keep positions that have not crossed.
    # The thresholds are found once per bar as ranks, with the same float division.
    keep_long_from = _first_rank_at_least_nb(1.0 - close_q, n)
    keep_short_to = _first_rank_above_nb(close_q, n)
    # A symbol in both ranges (small n) is held on one side only: one of += and -=.
    for k in range(keep_long_from, n):
        i = by_alpha[k]
        keep = held[i] > 0.0
        side[i] += keep
        n_long += keep
    for k in range(keep_short_to):
        i = by_alpha[k]
        keep = held[i] < 0.0
        side[i] -= keep
        n_short += keep
    # 5. Top up each leg to K from its candidates, strongest first, flat symbols only.
    n_open = max(1, int(np.floor(n * open_q)))
    for k in range(n - 1, n - 1 - n_open, -1):
        if n_long >= n_open:
            break
        i = by_alpha[k]
        if side[i] == 0:
            side[i] = 1
            n_long += 1
    for k in range(n_open):
        if n_short >= n_open:
            break
        i = by_alpha[k]
        if side[i] == 0:
            side[i] = -1
            n_short += 1
    return n_long, n_short


@numba.njit(cache=True)
def _leg_notionals_nb(side, beta, n_long, n_short, gross_exposure):
    """Step 6: L + S = gross and L * mean beta(long) = S * mean beta(short).

    Betas are summed in symbol order, so an unchanged book gets bit-identical weights.
    """
    beta_long = 0.0
    beta_short = 0.0
    for i in range(side.shape[0]):
        beta_long += beta[i] if side[i] > 0 else 0.0
        beta_short += beta[i] if side[i] < 0 else 0.0
    beta_long /= n_long
    beta_short /= n_short
    if beta_long <= 0.0 or beta_short <= 0.0:
        return 0.5 * gross_exposure, 0.5 * gross_exposure
    total = beta_long + beta_short
    return gross_exposure * beta_short / total, gross_exposure * beta_long / total


@numba.njit(cache=True, nogil=True)
def _run_kernel_nb(
    prices, alpha, universe, beta, returns, alpha_order, prev_weights,
    open_q, close_q, gross_exposure, fee_rate,
    slippage_rates, has_slippage, funding_rates, has_funding, alpha_before, order_before,
    ruined, impact_scale, has_impact, impact_factor, prev_scale, volume, has_volume, capital,
):
    n_bars, n_sym = prices.shape
    delay = alpha_before.shape[0]
    beta_by_bar = beta.shape[0] > 1
    weights = np.zeros((n_bars, n_sym))
    gross = np.zeros(n_bars)
    fees = np.zeros(n_bars)
    slippage = np.zeros(n_bars)
    funding = np.zeros(n_bars)
    turnover = np.zeros(n_bars)
    pnl = np.zeros(n_bars)
    long_return = np.zeros(n_bars)
    short_return = np.zeros(n_bars)
    forced_closes = 0
    ruined_at = -1
    impact = np.zeros(n_bars)
    # participation: sum, count, max, trades without volume
    participation = np.zeros(4)
    last_scale = prev_scale.copy()
    if ruined:
        return (weights, gross, fees, slippage, funding, turnover, pnl, long_return,
                short_return, forced_closes, ruined_at, impact, participation, last_scale)

    held = prev_weights.copy()
    tradable = np.zeros(n_sym, dtype=np.bool_)
    by_alpha = np.empty(n_sym, dtype=alpha_order.dtype)
    side = np.zeros(n_sym, dtype=np.int8)

    for t in range(n_bars):
        # Mark to market the book held over (t-1, t]; a missing return counts as 0.
        long_pnl = 0.0
        short_pnl = 0.0
        for i in range(n_sym):
            r = returns[t, i] if np.isfinite(returns[t, i]) else 0.0
            long_pnl += max(held[i], 0.0) * r
            short_pnl += min(held[i], 0.0) * r
        # Funding of the events inside bar t, paid by the book held through it.
        long_funding = 0.0
        short_funding = 0.0
        if has_funding:
            for i in range(n_sym):
                long_funding -= max(held[i], 0.0) * funding_rates[t, i]
                short_funding -= min(held[i], 0.0) * funding_rates[t, i]

        # The impact scale a trade of bar t pays: the last one defined (a held symbol
        # whose window lost its data still closes at a cost, never at zero); with impact
        # on, a symbol without one at bar t is not in the book's universe.
        u_row = universe[t]
        if has_impact:
            for i in range(n_sym):
                defined = np.isfinite(impact_scale[t, i])
                last_scale[i] = impact_scale[t, i] if defined else last_scale[i]
                tradable[i] = universe[t, i] & defined
            u_row = tradable

        # Steps 1-6: the new book (flat when fewer than two symbols are eligible).
        side[:] = 0
        if t < delay:  # the alpha of bar t - delay, before the panel's first bar
            alpha_row = alpha_before[t]
            order_row = order_before[t]
        else:
            alpha_row = alpha[t - delay]
            order_row = alpha_order[t - delay]
        n = _eligible_by_alpha_nb(prices[t], alpha_row, u_row, order_row, by_alpha)
        long_weight = 0.0
        short_weight = 0.0
        if n >= 2:
            n_long, n_short = _choose_sides_nb(by_alpha, n, held, open_q, close_q, side)
            if n_long > 0 and n_short > 0:
                long_notional, short_notional = _leg_notionals_nb(
                    side, beta[t if beta_by_bar else 0], n_long, n_short, gross_exposure
                )
                long_weight = long_notional / n_long
                short_weight = -short_notional / n_short

        # Trades, fees split by leg, turnover, and closes the alpha did not ask for.
        traded = 0.0
        long_traded = 0.0
        short_traded = 0.0
        slipped = 0.0
        long_slipped = 0.0
        short_slipped = 0.0
        impacted = 0.0
        long_impacted = 0.0
        short_impacted = 0.0
        long_before = 0.0
        short_before = 0.0
        long_after = 0.0
        short_after = 0.0
        for i in range(n_sym):
            before = held[i]
            after = long_weight if side[i] > 0 else short_weight if side[i] < 0 else 0.0
            change = abs(after - before)
            long_change = abs(max(after, 0.0) - max(before, 0.0))
            short_change = abs(min(after, 0.0) - min(before, 0.0))
            traded += change
            long_traded += long_change
            short_traded += short_change
            if change > 0.0:
                if has_impact:
                    # The symbol's impact, split by leg in proportion to what each traded.
                    cost = impact_factor * last_scale[i] * change * np.sqrt(change)
                    impacted += cost
                    long_impacted += cost * (long_change / change)
                    short_impacted += cost * (short_change / change)
                if has_volume:
                    if volume[t, i] > 0.0:
                        share = change * capital / volume[t, i]
                        participation[0] += share
                        participation[1] += 1.0
                        participation[2] = max(participation[2], share)
                    else:
                        participation[3] += 1.0
            if has_slippage:
                slipped += slippage_rates[i] * abs(after - before)
                long_slipped += slippage_rates[i] * abs(max(after, 0.0) - max(before, 0.0))
                short_slipped += slippage_rates[i] * abs(min(after, 0.0) - min(before, 0.0))
            long_before += max(before, 0.0)
            short_before -= min(before, 0.0)
            long_after += max(after, 0.0)
            short_after -= min(after, 0.0)
            eligible = (
                np.isfinite(prices[t, i]) & np.isfinite(alpha_row[i]) & u_row[i] & (n >= 2)
            )
            forced_closes += (before != 0.0) & (after == 0.0) & ~eligible
            weights[t, i] = after
            held[i] = after

        fees[t] = fee_rate * traded
        gross[t] = long_pnl + short_pnl
        turnover[t] = 0.5 * traded
        # Each cost enters only when it is on: without it the numbers stay bit for bit
        # those of a run without costs.
        long_net = long_pnl - fee_rate * long_traded
        short_net = short_pnl - fee_rate * short_traded
        if has_slippage:
            slippage[t] = slipped
            long_net -= long_slipped
            short_net -= short_slipped
        if has_impact:
            impact[t] = impacted
            long_net -= long_impacted
            short_net -= short_impacted
        if has_funding:
            funding[t] = long_funding + short_funding
            long_net += long_funding
            short_net += short_funding
        long_notional = long_before if long_before > 0.0 else long_after
        short_notional = short_before if short_before > 0.0 else short_after
        if long_notional > 0.0:
            long_return[t] = long_net / long_notional
        if short_notional > 0.0:
            short_return[t] = short_net / short_notional

        # Net return; a cost that is off is not even added, so a run without costs
        # keeps its numbers bit for bit.
        net = gross[t] - fees[t]
        if has_slippage:
            net -= slippage[t]
        if has_impact:
            net -= impact[t]
        if has_funding:
            net += funding[t]
        pnl[t] = net
        if 1.0 + net <= 0.0:
            # Ruin: the account cannot lose more than it has; the book is closed.
            pnl[t] = -1.0
            ruined_at = t
            weights[t, :] = 0.0
            break

    return (weights, gross, fees, slippage, funding, turnover, pnl, long_return, short_return,
            forced_closes, ruined_at, impact, participation, last_scale)


class BookChanges(NamedTuple):
    """Long-format positions (the non-zero w[t, i]) and trades (w[t, i] != w[t-1, i])."""

    pos_time: np.ndarray
    pos_symbol: np.ndarray
    pos_weight: np.ndarray
    trade_time: np.ndarray
    trade_symbol: np.ndarray
    trade_previous: np.ndarray
    trade_weight: np.ndarray


def book_changes(weights: np.ndarray, prev_weights: np.ndarray, times: np.ndarray) -> BookChanges:
    """Positions and trades of a weight matrix, in (bar, symbol) order.

    ``times`` holds one int64 stamp per bar; symbols are returned as column numbers.
    """
    return BookChanges(*_book_changes_nb(
        np.ascontiguousarray(weights),
        np.ascontiguousarray(prev_weights),
        np.ascontiguousarray(times, dtype=np.int64),
    ))


@numba.njit(cache=True, nogil=True)
def _book_changes_nb(weights, prev_weights, times):
    n_bars, n_sym = weights.shape
    n_pos = 0
    n_trade = 0
    for t in range(n_bars):
        previous = prev_weights if t == 0 else weights[t - 1]
        for i in range(n_sym):
            n_pos += weights[t, i] != 0.0
            n_trade += weights[t, i] != previous[i]
    # Branch-free compaction: every cell is written at the next free slot, which only
    # advances past a kept cell; the spare last slot absorbs the cells after the last.
    pos_time = np.empty(n_pos + 1, dtype=np.int64)
    pos_symbol = np.empty(n_pos + 1, dtype=np.int16)
    pos_weight = np.empty(n_pos + 1)
    trade_time = np.empty(n_trade + 1, dtype=np.int64)
    trade_symbol = np.empty(n_trade + 1, dtype=np.int16)
    trade_previous = np.empty(n_trade + 1)
    trade_weight = np.empty(n_trade + 1)
    p = 0
    q = 0
    for t in range(n_bars):
        previous = prev_weights if t == 0 else weights[t - 1]
        for i in range(n_sym):
            w = weights[t, i]
            pos_time[p] = times[t]
            pos_symbol[p] = i
            pos_weight[p] = w
            p += w != 0.0
            trade_time[q] = times[t]
            trade_symbol[q] = i
            trade_previous[q] = previous[i]
            trade_weight[q] = w
            q += w != previous[i]
    return (
        pos_time[:n_pos], pos_symbol[:n_pos], pos_weight[:n_pos],
        trade_time[:n_trade], trade_symbol[:n_trade], trade_previous[:n_trade],
        trade_weight[:n_trade],
    )
