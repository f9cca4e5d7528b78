"""A slow, literal reference implementation of docs/semantics.md (data, book, accounting).

Written from the text of the semantics (plus the documented choices where the text is
silent), with plain Python loops over plain lists and numpy arrays. It shares no code
with ``alphadev`` and must never import from it: its only job is to be obviously right,
so that the fast engine can be checked against it.

Two entry points:

- :func:`reference_weights_and_accounting` runs the book and accounting on aligned ``(T, N)``
  arrays (columns are symbols in name order), starting flat.
- :func:`reference_backtest` does the data conventions (resampling, causal limited forward
  fill, bar grid, universe, beta) from raw long-format frames, then the book and accounting.

Both take the execution and cost settings (docs/semantics.md#execution-and-costs):
execution delay, slippage rates, funding events and betas that change over time, and
the square-root market impact with its ADV and volatility (docs/semantics.md#market-impact).
"""

from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- book and accounting


def _finite(x) -> bool:
    return x is not None and math.isfinite(float(x))


def eligible_symbols(p_row, a_row, u_row) -> list[int]:
    """Step 1: E = symbols with finite price, finite alpha and a true universe flag."""
    return [
        i
        for i in range(len(p_row))
        if _finite(p_row[i]) and _finite(a_row[i]) and bool(u_row[i])
    ]


def target_weights(p_row, a_row, u_row, beta, held, open_q, close_q, gross_exposure):
    """Steps 1-6 of the per-bar book for one bar. Returns (weights list, n = |E|)."""
    n_sym = len(p_row)
    weights = [0.0] * n_sym

    # 1. eligible set
    elig = eligible_symbols(p_row, a_row, u_row)
    n = len(elig)
    # 2. held symbols outside E are closed (they simply are not carried over);
    #    with fewer than 2 eligible symbols the whole book is flat.
    if n < 2:
        return weights, n

    # 3. percentile ranks: E sorted by alpha ascending, ties by symbol order.
    by_alpha = sorted(elig, key=lambda i: (float(a_row[i]), i))
    q = {}
    for k, i in enumerate(by_alpha):
        q[i] = k / (n - 1)

    # 4. a held long stays unless q < 1 - close_q; a held short stays unless q > close_q.
    longs = []
    shorts = []
    for i in elig:
        if held[i] > 0 and not (q[i] < 1 - close_q):
            longs.append(i)
        if held[i] < 0 and not (q[i] > close_q):
            shorts.append(i)

    # 5. K = max(1, floor(n * open_q)); top K are long candidates (strongest first),
    #    bottom K short candidates (weakest first); add flat candidates until the leg
    #    holds K, never removing anything.
    k_open = max(1, math.floor(n * open_q))
    long_candidates = list(reversed(by_alpha))[:k_open]
    short_candidates = by_alpha[:k_open]
    for i in long_candidates:
        if len(longs) >= k_open:
            break
        if i not in longs and i not in shorts:
            longs.append(i)
    for i in short_candidates:
        if len(shorts) >= k_open:
            break
        if i not in longs and i not in shorts:
            shorts.append(i)
    assert not set(longs) & set(shorts)
    if not longs or not shorts:  # cannot happen for n >= 2, kept for clarity
        return weights, n

    # 6. leg notionals: L + S = G and L * mean(beta_long) = S * mean(beta_short);
    #    equal split if either mean beta is <= 0. Equal weights within a leg.
    mean_beta_long = sum(float(beta[i]) for i in longs) / len(longs)
    mean_beta_short = sum(float(beta[i]) for i in shorts) / len(shorts)
    if mean_beta_long <= 0 or mean_beta_short <= 0:
        long_notional = gross_exposure / 2
        short_notional = gross_exposure / 2
    else:
        long_notional = gross_exposure * mean_beta_short / (mean_beta_long + mean_beta_short)
        short_notional = gross_exposure * mean_beta_long / (mean_beta_long + mean_beta_short)
    for i in longs:
        weights[i] = long_notional / len(longs)
    for i in shorts:
        weights[i] = -short_notional / len(shorts)
    return weights, n


def average_ranks(values) -> list[float]:
    """1-based ranks, ties get the mean of the ranks they span."""
    ranks = []
    for v in values:
        less = sum(1 for u in values if u < v)
        equal = sum(1 for u in values if u == v)
        ranks.append(less + (equal + 1) / 2)
    return ranks


def spearman(x, y) -> float:
    """Spearman correlation with average ranks; NaN if < 2 points or a side is constant."""
    if len(x) < 2 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")
    rx = average_ranks(x)
    ry = average_ranks(y)
    mx = sum(rx) / len(rx)
    my = sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / math.sqrt(vx * vy)


@dataclass
class ReferenceRun:
    weights: np.ndarray  # (T, N)
    returns: np.ndarray  # (T, N), NaN where missing
    gross: np.ndarray
    fees: np.ndarray
    long_fees: np.ndarray
    short_fees: np.ndarray
    turnover: np.ndarray
    long_return: np.ndarray
    short_return: np.ndarray
    slippage: np.ndarray
    funding: np.ndarray
    ic: np.ndarray
    pnl: np.ndarray
    equity: np.ndarray
    forced_closes: int
    n_eligible: list = field(default_factory=list)
    ruined_at: int | None = None  # the bar whose net return took equity to <= 0
    impact: np.ndarray | None = None
    participation: list = field(default_factory=list)  # |dw| capital / V per trade, V > 0
    trades_without_volume: int = 0


def reference_weights_and_accounting(
    prices, alpha, universe, beta, open_q, close_q, gross_exposure, fee_rate,
    traded_alpha=None, slippage_rates=None, funding=None,
    impact_coefficient=0.0, capital=1.0, adv=None, sigma=None, volume=None,
    trade_prices=None,
) -> ReferenceRun:
    """The book and accounting on (T, N) arrays, starting flat (w[-1] = 0, r[0] missing).

    ``traded_alpha``: the alpha the book is decided from (A[t - delay]); ``alpha`` is
    what IC measures. ``beta``: one per symbol, or (T, N). ``slippage_rates``: one per
    symbol. ``funding``: (T, N) summed funding rates of the events inside each bar.
    ``adv``, ``sigma``: (T, N) the impact estimates of each bar (NaN: undefined; with a
    positive ``impact_coefficient`` the symbol cannot be traded into); ``volume``: (T, N)
    each bar's volume (NaN: no rows), for participation. ``trade_prices``: (T, N) the
    prices the book trades at (an execution lag); the book earns their returns, IC keeps
    measuring the returns of ``prices``.
    """
    prices = np.asarray(prices, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    universe = np.asarray(universe, dtype=bool)
    n_bars, n_sym = prices.shape
    book_alpha = alpha if traded_alpha is None else np.asarray(traded_alpha, dtype=float)
    beta = np.asarray(beta, dtype=float)
    betas = [beta[t] if beta.ndim == 2 else beta for t in range(n_bars)]
    rates = [0.0] * n_sym if slippage_rates is None else [float(x) for x in slippage_rates]
    funding = np.zeros((n_bars, n_sym)) if funding is None else np.asarray(funding, float)
    slippage = np.zeros(n_bars)
    funding_paid = np.zeros(n_bars)
    impact = np.zeros(n_bars)
    participation = []
    trades_without_volume = 0
    impact_on = impact_coefficient > 0
    last_adv = [math.nan] * n_sym  # the last bar's defined estimates, per symbol
    last_sigma = [math.nan] * n_sym

    weights = np.zeros((n_bars, n_sym))
    returns = np.full((n_bars, n_sym), np.nan)
    traded_at = prices if trade_prices is None else np.asarray(trade_prices, dtype=float)
    book_returns = np.full((n_bars, n_sym), np.nan)
    gross = np.zeros(n_bars)
    fees = np.zeros(n_bars)
    long_fees = np.zeros(n_bars)
    short_fees = np.zeros(n_bars)
    turnover = np.zeros(n_bars)
    long_return = np.zeros(n_bars)
    short_return = np.zeros(n_bars)
    ic = np.full(n_bars, np.nan)
    pnl = np.zeros(n_bars)
    equity = np.zeros(n_bars)
    forced_closes = 0
    n_eligible = []

    prev_w = [0.0] * n_sym
    prev_equity = 1.0
    ruined_at = None
    for t in range(n_bars):
        # returns: r[t] = P[t] / P[t-1] - 1, missing if either is missing; r[0] missing
        if t > 0:
            for i in range(n_sym):
                if _finite(prices[t, i]) and _finite(prices[t - 1, i]):
                    returns[t, i] = prices[t, i] / prices[t - 1, i] - 1
                if _finite(traded_at[t, i]) and _finite(traded_at[t - 1, i]):
                    book_returns[t, i] = traded_at[t, i] / traded_at[t - 1, i] - 1
        if ruined_at is not None:
            # after ruin the book is flat and every column is 0; IC still measures alpha
            ic[t] = _reference_ic(alpha, universe, returns, t)
            n_eligible.append(0)
            continue

        # with impact on, a symbol without both estimates at bar t is not tradable
        book_universe = [bool(universe[t, i]) for i in range(n_sym)]
        if impact_on:
            for i in range(n_sym):
                if _finite(adv[t, i]) and _finite(sigma[t, i]):
                    last_adv[i], last_sigma[i] = float(adv[t, i]), float(sigma[t, i])
                else:
                    book_universe[i] = False
        w, n = target_weights(
            prices[t], book_alpha[t], book_universe, betas[t], prev_w, open_q, close_q,
            gross_exposure,
        )
        n_eligible.append(n)
        weights[t] = w

        # gross[t] = sum_i w[t-1,i] r[t,i], missing r counts as 0
        g = 0.0
        long_pnl = 0.0
        short_pnl = 0.0
        for i in range(n_sym):
            r = book_returns[t, i] if _finite(book_returns[t, i]) else 0.0
            g += prev_w[i] * r
            if prev_w[i] > 0:
                long_pnl += prev_w[i] * r
            if prev_w[i] < 0:
                short_pnl += prev_w[i] * r
        gross[t] = g

        traded = sum(abs(w[i] - prev_w[i]) for i in range(n_sym))
        fees[t] = fee_rate * traded
        turnover[t] = 0.5 * traded
        long_part = sum(abs(max(w[i], 0.0) - max(prev_w[i], 0.0)) for i in range(n_sym))
        short_part = sum(abs(min(w[i], 0.0) - min(prev_w[i], 0.0)) for i in range(n_sym))
        long_fees[t] = fee_rate * long_part
        short_fees[t] = fee_rate * short_part

        # slippage: per-symbol rate times traded notional, split by leg like the fees
        slippage[t] = sum(rates[i] * abs(w[i] - prev_w[i]) for i in range(n_sym))
        long_slip = sum(
            rates[i] * abs(max(w[i], 0.0) - max(prev_w[i], 0.0)) for i in range(n_sym)
        )
        short_slip = sum(
            rates[i] * abs(min(w[i], 0.0) - min(prev_w[i], 0.0)) for i in range(n_sym)
        )
        # funding: the book held through bar t (w[t-1]) pays w * F; positive F: longs pay
        long_fund = -sum(prev_w[i] * funding[t, i] for i in range(n_sym) if prev_w[i] > 0)
        short_fund = -sum(prev_w[i] * funding[t, i] for i in range(n_sym) if prev_w[i] < 0)
        funding_paid[t] = long_fund + short_fund

        # impact: Y sigma sqrt(|dw| capital / ADV) |dw| per symbol, split by leg in
        # proportion to what each leg traded of that symbol
        long_imp = 0.0
        short_imp = 0.0
        for i in range(n_sym):
            dw = abs(w[i] - prev_w[i])
            if dw == 0:
                continue
            if volume is not None:
                if _finite(volume[t, i]) and volume[t, i] > 0:
                    participation.append(dw * capital / volume[t, i])
                else:
                    trades_without_volume += 1
            if not impact_on:
                continue
            cost = impact_coefficient * last_sigma[i] * math.sqrt(
                dw * capital / last_adv[i]) * dw
            impact[t] += cost
            long_imp += cost * abs(max(w[i], 0.0) - max(prev_w[i], 0.0)) / dw
            short_imp += cost * abs(min(w[i], 0.0) - min(prev_w[i], 0.0)) / dw

        pnl[t] = gross[t] - fees[t] - slippage[t] - impact[t] + funding_paid[t]
        equity[t] = prev_equity * (1 + pnl[t])
        prev_equity = equity[t]

        # leg returns: divide by the leg notional of w[t-1], or of w[t] if that is zero
        long_before = sum(x for x in prev_w if x > 0)
        long_after = sum(x for x in w if x > 0)
        short_before = sum(-x for x in prev_w if x < 0)
        short_after = sum(-x for x in w if x < 0)
        n_long = long_before if long_before != 0 else long_after
        n_short = short_before if short_before != 0 else short_after
        long_net = long_pnl - long_fees[t] - long_slip - long_imp + long_fund
        short_net = short_pnl - short_fees[t] - short_slip - short_imp + short_fund
        long_return[t] = long_net / n_long if n_long != 0 else 0.0
        short_return[t] = short_net / n_short if n_short != 0 else 0.0

        ic[t] = _reference_ic(alpha, universe, returns, t)

        # forced closes: a held symbol closed because it left E, or because n < 2
        elig = set(eligible_symbols(prices[t], book_alpha[t], book_universe))
        for i in range(n_sym):
            if prev_w[i] != 0 and w[i] == 0 and (i not in elig or n < 2):
                forced_closes += 1

        # ruin: the bar that takes equity to <= 0 ends at exactly 0, the book closed
        if 1 + pnl[t] <= 0:
            ruined_at = t
            pnl[t] = -1.0
            equity[t] = 0.0
            weights[t] = 0.0
            w = [0.0] * n_sym
        prev_w = list(w)

    return ReferenceRun(
        weights=weights,
        returns=returns,
        gross=gross,
        fees=fees,
        long_fees=long_fees,
        short_fees=short_fees,
        turnover=turnover,
        long_return=long_return,
        short_return=short_return,
        slippage=slippage,
        funding=funding_paid,
        ic=ic,
        pnl=pnl,
        equity=equity,
        forced_closes=forced_closes,
        n_eligible=n_eligible,
        ruined_at=ruined_at,
        impact=impact,
        participation=participation,
        trades_without_volume=trades_without_volume,
    )


def _reference_ic(alpha, universe, returns, t) -> float:
    """Spearman of A[t-1] vs r[t] where both are finite and U[t-1] is true."""
    if t == 0:
        return math.nan
    xs = []
    ys = []
    for i in range(alpha.shape[1]):
        if universe[t - 1, i] and _finite(alpha[t - 1, i]) and _finite(returns[t, i]):
            xs.append(float(alpha[t - 1, i]))
            ys.append(float(returns[t, i]))
    return spearman(xs, ys)


def reference_signal_series(alpha, universe, returns, lags, n_quantiles):
    """docs/semantics.md#signal-series on whole ``(T, N)`` arrays, from a fresh start.

    Returns (ic_by_lag (L, T): Spearman of A[t-lag] and r[t] over U[t-lag] with both
    finite; quantile bar returns (T, Q) of the buckets formed on A[t-1]; the rank
    autocorrelation (T,) of A[t-1] and A[t] over symbols in the universe at both)."""
    n_bars, n_sym = returns.shape
    ic = np.full((len(lags), n_bars), np.nan)
    for k, lag in enumerate(lags):
        for t in range(lag, n_bars):
            xs, ys = [], []
            for i in range(n_sym):
                if universe[t - lag, i] and _finite(alpha[t - lag, i]) and _finite(returns[t, i]):
                    xs.append(float(alpha[t - lag, i]))
                    ys.append(float(returns[t, i]))
            ic[k, t] = spearman(xs, ys)
    buckets = np.full((n_bars, n_quantiles), np.nan)
    for t in range(1, n_bars):
        members = [i for i in range(n_sym) if universe[t - 1, i] and _finite(alpha[t - 1, i])
                   and _finite(returns[t, i])]
        m = len(members)
        if m < n_quantiles or m == 0:
            continue
        ranks = average_ranks([float(alpha[t - 1, i]) for i in members])
        for q in range(1, n_quantiles + 1):
            inside = [returns[t, i] for i, k in zip(members, ranks)
                      if math.ceil(k * n_quantiles / m) == q]
            if inside:
                buckets[t, q - 1] = sum(inside) / len(inside)
    autocorrelation = np.full(n_bars, np.nan)
    for t in range(1, n_bars):
        both = [i for i in range(n_sym) if universe[t - 1, i] and universe[t, i]
                and _finite(alpha[t - 1, i]) and _finite(alpha[t, i])]
        autocorrelation[t] = spearman([float(alpha[t - 1, i]) for i in both],
                                      [float(alpha[t, i]) for i in both])
    return ic, buckets, autocorrelation


def reference_quantile_turnover(alpha, universe, n_quantiles):
    """(T, 2): share of the bottom / top bucket's symbols at bar t that were not in it at
    bar t-1; buckets ceil(Q k / m) over the m symbols in the universe with finite alpha."""

    def buckets(t):
        members = [i for i in range(alpha.shape[1]) if universe[t, i] and _finite(alpha[t, i])]
        m = len(members)
        if m < n_quantiles or m == 0:
            return None
        ranks = average_ranks([float(alpha[t, i]) for i in members])
        return {i: math.ceil(k * n_quantiles / m) for i, k in zip(members, ranks)}

    out = np.full((alpha.shape[0], 2), np.nan)
    for t in range(1, alpha.shape[0]):
        before, now = buckets(t - 1), buckets(t)
        if before is None or now is None:
            continue
        for side, bucket in enumerate((1, n_quantiles)):
            inside = [i for i, b in now.items() if b == bucket]
            if inside:
                out[t, side] = sum(before.get(i) != bucket for i in inside) / len(inside)
    return out


# --------------------------------------------------------------------------- data conventions


def _ns(ts) -> int:
    """A timestamp as integer nanoseconds since the Unix epoch (UTC)."""
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value)


def _bar_of(ts_ns: int, freq_ns: int) -> int:
    """Left edge of the bar holding ts: floor to the frequency, origin = Unix epoch."""
    return ts_ns - ts_ns % freq_ns


def _observations(frame: pd.DataFrame, column: str, symbol: str) -> list[tuple[int, float]]:
    """(timestamp ns, value) of one symbol's non-missing cells, sorted by time."""
    rows = frame[frame["symbol"] == symbol]
    obs = []
    for ts, value in zip(rows["timestamp"], rows[column]):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        obs.append((_ns(ts), float(value)))
    obs.sort()
    return obs


def resample_and_fill(frame, column, symbols, bars_ns, freq_ns, max_fill_bars) -> np.ndarray:
    """Value at each bar: the last observation inside the bar; otherwise the last
    observation before the bar if it is at most ``max_fill_bars`` bars old; else NaN."""
    out = np.full((len(bars_ns), len(symbols)), np.nan)
    for j, sym in enumerate(symbols):
        obs = _observations(frame, column, sym)
        times = [ts for ts, _ in obs]
        for t, bar in enumerate(bars_ns):
            k = bisect.bisect_left(times, bar + freq_ns) - 1  # last obs before bar end
            if k < 0:
                continue
            ts, value = obs[k]
            age = (bar - _bar_of(ts, freq_ns)) // freq_ns
            if age <= max_fill_bars:
                out[t, j] = value
    return out


def lagged_prices(frame, column, symbols, bars_ns, freq_ns, max_fill_bars, lag_ns) -> np.ndarray:
    """The price each bar's book trades at with an execution lag: the last observation
    stamped before bar + freq + lag (the close rule with every bar moved later by the
    lag), if the moved bar holding it is at most ``max_fill_bars`` bars old; else NaN."""
    out = np.full((len(bars_ns), len(symbols)), np.nan)
    for j, sym in enumerate(symbols):
        obs = _observations(frame, column, sym)
        times = [ts for ts, _ in obs]
        for t, bar in enumerate(bars_ns):
            k = bisect.bisect_left(times, bar + freq_ns + lag_ns) - 1
            if k < 0:
                continue
            ts, value = obs[k]
            moved_bar = _bar_of(ts - lag_ns, freq_ns) + lag_ns
            if (bar + lag_ns - moved_bar) // freq_ns <= max_fill_bars:
                out[t, j] = value
    return out


def universe_panel(frame, symbols, bars_ns, freq_ns) -> np.ndarray:
    """Last universe observation before the bar's end, at any age; none -> False."""
    out = np.zeros((len(bars_ns), len(symbols)), dtype=bool)
    if frame is None:
        out[:] = True
        return out
    for j, sym in enumerate(symbols):
        obs = _observations(frame, "in_universe", sym)
        times = [ts for ts, _ in obs]
        for t, bar in enumerate(bars_ns):
            k = bisect.bisect_left(times, bar + freq_ns) - 1
            if k >= 0:
                out[t, j] = bool(obs[k][1])
    return out


def beta_vector(beta_frame, symbols) -> np.ndarray:
    """Beta per symbol: rows with status 'ok' and a finite beta; everything else 1.0."""
    out = np.ones(len(symbols))
    if beta_frame is None:
        return out
    for j, sym in enumerate(symbols):
        for _, row in beta_frame[beta_frame["symbol"] == sym].iterrows():
            if row["status"] == "ok" and _finite(row["beta"]):
                out[j] = float(row["beta"])
    return out


def beta_panel(frame, symbols, bars_ns, freq_ns) -> np.ndarray:
    """Time-varying betas: the last finite beta before the bar's end, at any age; 1.0
    before a symbol's first one. ``frame``: timestamp, symbol, beta."""
    out = np.ones((len(bars_ns), len(symbols)))
    for j, sym in enumerate(symbols):
        obs = [(ts, v) for ts, v in _observations(frame, "beta", sym) if math.isfinite(v)]
        times = [ts for ts, _ in obs]
        for t, bar in enumerate(bars_ns):
            k = bisect.bisect_left(times, bar + freq_ns) - 1
            if k >= 0:
                out[t, j] = obs[k][1]
    return out


def funding_panel(frame, symbols, bars_ns, freq_ns, lag_ns=0) -> np.ndarray:
    """F[t, i]: the sum of the rates of symbol i's events with bar + lag <= ts < bar +
    freq + lag (the interval the book of an execution lag holds w[t-1] through)."""
    out = np.zeros((len(bars_ns), len(symbols)))
    for _, row in frame.iterrows():
        if row["symbol"] not in symbols:
            continue
        ts = _ns(row["timestamp"])
        for t, bar in enumerate(bars_ns):
            if bar + lag_ns <= ts < bar + freq_ns + lag_ns:
                out[t, symbols.index(row["symbol"])] += float(row["rate"])
    return out


def bar_grid(price_frame, column, symbols, start_date, end_date, freq_ns) -> list[int]:
    """Every bar from the first to the last bar holding an observed price of a requested
    symbol inside [start_date 00:00, end_date + 1 day 00:00) UTC."""
    lo = _ns(pd.Timestamp(start_date))
    hi = _ns(pd.Timestamp(end_date) + pd.Timedelta(days=1))
    seen = []
    for sym in symbols:
        for ts, _ in _observations(price_frame, column, sym):
            if lo <= ts < hi:
                seen.append(_bar_of(ts, freq_ns))
    if not seen:
        return []
    return list(range(min(seen), max(seen) + freq_ns, freq_ns))


def bar_volumes(frame, column, symbols, bars_ns, freq_ns) -> np.ndarray:
    """The sum of each bar's non-missing volume rows (bar <= ts < bar + freq); NaN
    where the bar has none."""
    out = np.full((len(bars_ns), len(symbols)), np.nan)
    for j, sym in enumerate(symbols):
        for ts, value in _observations(frame, column, sym):
            for t, bar in enumerate(bars_ns):
                if bar <= ts < bar + freq_ns:
                    out[t, j] = value if math.isnan(out[t, j]) else out[t, j] + value
    return out


def impact_estimates(price_frame, price_column, volume_frame, volume_column, symbols,
                     bars_ns, freq_ns, max_fill_bars, window):
    """ADV and sigma of each bar from the ``window`` bars strictly before it.

    ADV = mean of the window's bar volumes (bars with rows) x bars per day, defined with
    at least max(2, bars per day) such bars and ADV > 0; sigma = sample std of the
    window's bar returns (filled prices) x sqrt(bars per day), with as many returns.
    """
    per_day = 86_400 * 10**9 / freq_ns
    needed = max(2, math.ceil(per_day - 1e-9))
    first = bars_ns[0] - (window + 1) * freq_ns
    extended = list(range(first, bars_ns[0], freq_ns)) + list(bars_ns)
    offset = window + 1
    prices = resample_and_fill(price_frame, price_column, symbols, extended, freq_ns,
                               max_fill_bars)
    volumes = bar_volumes(volume_frame, volume_column, symbols, extended, freq_ns)
    adv = np.full((len(bars_ns), len(symbols)), np.nan)
    sigma = np.full((len(bars_ns), len(symbols)), np.nan)
    for t in range(len(bars_ns)):
        rows = range(offset + t - window, offset + t)
        for j in range(len(symbols)):
            vols = [volumes[s, j] for s in rows if not math.isnan(volumes[s, j])]
            rets = []
            for s in rows:
                if _finite(prices[s, j]) and _finite(prices[s - 1, j]):
                    r = prices[s, j] / prices[s - 1, j] - 1
                    if math.isfinite(r):
                        rets.append(r)
            if len(vols) >= needed and statistics.fmean(vols) > 0:
                adv[t, j] = statistics.fmean(vols) * per_day
            if len(rets) >= needed:
                sigma[t, j] = statistics.stdev(rets) * math.sqrt(per_day)
    return adv, sigma, volumes[offset:]


@dataclass
class ReferenceBacktest:
    timestamps: pd.DatetimeIndex
    symbols: list
    prices: np.ndarray
    alpha: np.ndarray
    universe: np.ndarray
    beta: np.ndarray
    run: ReferenceRun
    sequences: pd.DataFrame
    positions: pd.DataFrame
    trades: pd.DataFrame


def reference_backtest(
    raw_price_df,
    raw_alpha_df,
    raw_universe_df,
    beta_frame,
    symbols,
    start_date,
    end_date,
    frequency,
    max_fill_bars,
    open_q,
    close_q,
    gross_exposure,
    fee_rate,
    price_column="close",
    alpha_column="alpha",
    execution_delay=0,
    slippage_rate=0.0,
    funding_df=None,
    beta_df=None,
    volume_df=None,
    impact_coefficient=0.0,
    capital=1.0,
    impact_window_bars=None,
    execution_lag=None,
) -> ReferenceBacktest:
    """Data conventions, then the book and accounting, from raw long-format frames.

    ``raw_price_df``: columns timestamp, symbol, ``price_column``;
    ``raw_alpha_df``: the alpha's output rows, columns timestamp, symbol,
    ``alpha_column``; ``raw_universe_df``: timestamp, symbol, in_universe (or None);
    ``beta_frame``: the beta CSV as a frame (symbol, beta, status) or None.
    ``slippage_rate``: a number or a dict symbol -> rate; ``funding_df``: timestamp,
    symbol, rate (or None); ``beta_df``: time-varying betas, timestamp, symbol, beta.
    ``volume_df``: timestamp, symbol, volume, with ``impact_coefficient``, ``capital``
    and ``impact_window_bars`` (docs/semantics.md#market-impact). ``execution_lag``: a
    duration shorter than a bar (docs/semantics.md#execution-lag).
    """
    symbols = sorted(symbols)
    freq_ns = int(pd.Timedelta(frequency).value)
    bars_ns = bar_grid(raw_price_df, price_column, symbols, start_date, end_date, freq_ns)
    prices = resample_and_fill(
        raw_price_df, price_column, symbols, bars_ns, freq_ns, max_fill_bars
    )
    alpha = resample_and_fill(raw_alpha_df, alpha_column, symbols, bars_ns, freq_ns, max_fill_bars)
    universe = universe_panel(raw_universe_df, symbols, bars_ns, freq_ns)
    beta = beta_vector(beta_frame, symbols)
    if beta_df is not None:
        beta = beta_panel(beta_df, symbols, bars_ns, freq_ns)
    # A'[t] = A[t - d]: the alpha of the bar d bars earlier, with the same conventions
    delayed_bars = [b - execution_delay * freq_ns for b in bars_ns]
    traded_alpha = resample_and_fill(
        raw_alpha_df, alpha_column, symbols, delayed_bars, freq_ns, max_fill_bars
    )
    if isinstance(slippage_rate, dict):
        rates = [slippage_rate[s] for s in symbols]
    else:
        rates = [slippage_rate] * len(symbols)
    lag_ns = 0 if execution_lag is None else int(pd.Timedelta(execution_lag).value)
    funding = None if funding_df is None else funding_panel(
        funding_df, symbols, bars_ns, freq_ns, lag_ns)
    trade_prices = None if not lag_ns else lagged_prices(
        raw_price_df, price_column, symbols, bars_ns, freq_ns, max_fill_bars, lag_ns)

    adv = sigma = volume = None
    if volume_df is not None:
        adv, sigma, volume = impact_estimates(
            raw_price_df, price_column, volume_df, "volume", symbols, bars_ns, freq_ns,
            max_fill_bars, impact_window_bars,
        )
    run = reference_weights_and_accounting(
        prices, alpha, universe, beta, open_q, close_q, gross_exposure, fee_rate,
        traded_alpha=traded_alpha, slippage_rates=rates, funding=funding,
        impact_coefficient=impact_coefficient, capital=capital, adv=adv, sigma=sigma,
        volume=volume, trade_prices=trade_prices,
    )
    timestamps = pd.DatetimeIndex(pd.to_datetime(bars_ns, unit="ns", utc=True), name="timestamp")
    sequences = pd.DataFrame(
        {
            "pnl": run.pnl,
            "gross": run.gross,
            "fees": run.fees,
            "slippage": run.slippage,
            "impact": run.impact,
            "funding": run.funding,
            "turnover": run.turnover,
            "long_return": run.long_return,
            "short_return": run.short_return,
            "ic": run.ic,
            "equity": run.equity,
        },
        index=timestamps,
    )
    pos_rows = []
    trade_rows = []
    for t, ts in enumerate(timestamps):
        for j, sym in enumerate(symbols):
            w = run.weights[t, j]
            prev = run.weights[t - 1, j] if t > 0 else 0.0
            if w != 0:
                pos_rows.append((ts, sym, w))
            if w != prev:
                trade_rows.append((ts, sym, prev, w, w - prev))
    positions = pd.DataFrame(pos_rows, columns=["timestamp", "symbol", "weight"])
    trades = pd.DataFrame(
        trade_rows, columns=["timestamp", "symbol", "previous_weight", "weight", "delta"]
    )
    return ReferenceBacktest(
        timestamps=timestamps,
        symbols=symbols,
        prices=prices,
        alpha=alpha,
        universe=universe,
        beta=beta,
        run=run,
        sequences=sequences,
        positions=positions,
        trades=trades,
    )
