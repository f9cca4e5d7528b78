"""The whole pipeline (CSV files -> run_backtest) against the literal tests/reference.py.

Random scenarios are written as long-format CSV files (prices, alpha values, universe,
betas) and run through ``run_backtest``; every sequence must equal the slow reference
in ``tests/reference.py`` to 1e-12. The data have irregular timestamps (within-bar
offsets, several rows in one bar, empty cells), gaps shorter and longer than
``max_fill_bars``, history before ``start_date``, rows after ``end_date``, late
listings, delistings, unrequested symbols, tied alphas, a universe file with rows long
before the start, and a beta file with non-ok rows and negative betas.

A second test checks streaming (``chunk_days`` in {1, 2, 7, 30}) against batch for an
alpha with a rolling window inside its lookback, over ~40 days of hourly data.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphadev import BacktestConfig
from alphadev.alpha import Alpha
from alphadev.data import CSVDataLoader
from alphadev.metrics import sharpe_ratio
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha
from tests.reference import reference_backtest

ATOL = 1e-12
RTOL = 1e-12
SEQ_COLUMNS = ["pnl", "gross", "fees", "turnover", "long_return", "short_return", "ic", "equity"]
POOL = ["ETHUSDT", "BTCUSDT", "SOLUSDT", "ADAUSDT", "XRPUSDT", "DOGEUSDT"]
UNREQUESTED = "AAAUSDT"  # sorts first; present in the files but never requested


class RollingMeanAlpha(Alpha):
    """Per symbol, the mean of ``value`` over the rows in (t - hours, t].

    Summed with a plain loop over each window so the number depends only on the rows
    inside the window (not on where the loaded data starts).
    """

    def __init__(self, hours=6):
        self.hours = hours

    @property
    def lookback(self):
        return self.hours * 60

    def reset(self):
        pass

    def compute(self, data):
        return rolling_mean_rows(data.reset_index(), self.hours).set_index(
            ["timestamp", "symbol"]
        )


def rolling_mean_rows(rows: pd.DataFrame, hours: int) -> pd.DataFrame:
    """rows: timestamp, symbol, value -> timestamp, symbol, alpha (window (t-h, t])."""
    width = pd.Timedelta(hours=hours).value
    out = []
    for sym, grp in rows.groupby("symbol", sort=True):
        grp = grp.sort_values("timestamp")
        ns = grp["timestamp"].map(lambda ts: pd.Timestamp(ts).value).to_numpy()
        vals = grp["value"].to_numpy(dtype=float)
        for k in range(len(ns)):
            lo = np.searchsorted(ns, ns[k] - width, side="right")
            window = [v for v in vals[lo : k + 1] if not math.isnan(v)]
            alpha = sum(window) / len(window) if window else math.nan
            out.append((grp["timestamp"].iloc[k], sym, alpha))
    frame = pd.DataFrame(out, columns=["timestamp", "symbol", "alpha"])
    return frame


# ------------------------------------------------------------------------- scenarios


def _fmt_ts(ts: pd.Timestamp, style: str) -> str:
    if style == "offset":
        return ts.isoformat()  # 2024-01-02T03:17:00+00:00
    if style == "plus2":
        return ts.tz_convert("Etc/GMT-2").isoformat()  # 2024-01-02T05:17:00+02:00
    if style == "zulu":
        return ts.tz_convert(None).isoformat() + "Z"
    return ts.tz_convert(None).isoformat(sep=" ")  # naive: read as UTC


def _write_csv(frame: pd.DataFrame, path, style: str) -> None:
    frame = frame.copy()
    frame["timestamp"] = [_fmt_ts(ts, style) for ts in frame["timestamp"]]
    frame.to_csv(path, index=False)


@st.composite
def scenarios(draw, max_days=2):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n_sym = draw(st.sampled_from([3, 4, 5, 2, 1]))
    symbols = draw(st.permutations(POOL))[:n_sym]
    freq = draw(st.sampled_from(["1h", "1h", "1h", "30min", "2h", "15min", "4h", "1D"]))
    mfb = draw(st.sampled_from([0, 1, 2, 3, 4, 10]))
    n_days = draw(st.integers(1, max_days))
    start = dt.date(2024, 1, 2)
    end = start + dt.timedelta(days=n_days - 1)
    bar = pd.Timedelta(freq)
    t0 = pd.Timestamp(start, tz="UTC")
    t_end = pd.Timestamp(end, tz="UTC") + pd.Timedelta(days=1)
    hist_bars = 8
    n_slots = int((t_end - t0) / bar) + hist_bars + 4
    slot0 = t0 - hist_bars * bar

    gap_prob = draw(st.sampled_from([0.0, 0.1, 0.3, 0.6]))
    nan_prob = draw(st.sampled_from([0.0, 0.05, 0.2]))
    multi_prob = draw(st.sampled_from([0.0, 0.2]))
    offset_prob = draw(st.sampled_from([0.0, 0.5, 1.0]))
    discrete_prices = draw(st.booleans())
    alpha_set = draw(
        st.sampled_from([None, [-1.0, 0.0, 0.5, 1.0, 2.0], [0.0, 1.0], [1.0]])
    )
    alpha_missing_prob = draw(st.sampled_from([0.0, 0.1, 0.3]))
    alpha_extra_prob = draw(st.sampled_from([0.0, 0.2]))
    empty_symbol = n_sym > 1 and draw(st.integers(0, 9)) == 0
    unrequested = draw(st.booleans())

    price_rows = []
    alpha_rows = []
    all_syms = list(symbols) + ([UNREQUESTED] if unrequested else [])
    for j, sym in enumerate(all_syms):
        if empty_symbol and j == 0:
            continue  # a requested symbol without any data
        listing = int(rng.integers(0, n_slots)) if rng.random() < 0.4 else 0
        delisting = int(rng.integers(listing, n_slots + 1)) if rng.random() < 0.4 else n_slots
        level = 100.0 * (1 + j)
        # long gaps: a run of missing slots longer or shorter than max_fill_bars
        missing = np.zeros(n_slots, bool)
        for _ in range(int(rng.integers(0, 3))):
            g0 = int(rng.integers(0, n_slots))
            missing[g0 : g0 + int(rng.integers(1, mfb + 4))] = True
        used = set()
        for s in range(listing, delisting):
            if missing[s] or rng.random() < gap_prob:
                continue
            n_obs = 2 if rng.random() < multi_prob else 1
            for _ in range(n_obs):
                if rng.random() < offset_prob:
                    off = pd.Timedelta(seconds=int(rng.integers(0, int(bar.total_seconds()))))
                else:
                    off = pd.Timedelta(0)
                ts = slot0 + s * bar + off
                if ts in used:
                    continue
                used.add(ts)
                if discrete_prices:
                    price = float(rng.choice([10.0, 11.0, 12.0]))
                else:
                    level *= math.exp(0.02 * rng.standard_normal())
                    price = level
                if rng.random() < nan_prob:
                    price = math.nan  # empty cell: no observation
                price_rows.append((ts, sym, price))
                if rng.random() >= alpha_missing_prob:
                    if alpha_set is None:
                        value = float(rng.standard_normal())
                    else:
                        value = float(rng.choice(alpha_set))
                    alpha_rows.append((ts, sym, value))
                elif rng.random() < 0.5:
                    alpha_rows.append((ts, sym, math.nan))
        # alpha rows at times without a price row
        for s in range(n_slots):
            if rng.random() < alpha_extra_prob:
                ts = slot0 + s * bar + pd.Timedelta(seconds=int(rng.integers(1, 60)))
                if ts not in used:
                    used.add(ts)
                    alpha_rows.append((ts, sym, float(rng.standard_normal())))

    price_df = pd.DataFrame(price_rows, columns=["timestamp", "symbol", "close"])
    alpha_df = pd.DataFrame(alpha_rows, columns=["timestamp", "symbol", "value"])
    # the run needs at least one observed price of a requested symbol in the period
    in_period = price_df[
        price_df["symbol"].isin(symbols)
        & price_df["close"].notna()
        & (price_df["timestamp"] >= t0)
        & (price_df["timestamp"] < t_end)
    ]
    if in_period.empty:
        sym = symbols[-1]
        extra = pd.DataFrame([(t0 + pd.Timedelta(minutes=7), sym, 50.0)], columns=price_df.columns)
        price_df = pd.concat([price_df, extra], ignore_index=True)
        price_df = price_df.drop_duplicates(["timestamp", "symbol"], keep="last")

    universe_df = None
    if draw(st.booleans()):
        rows = []
        daily = draw(st.booleans())
        for sym in all_syms:
            if rng.random() < 0.15:
                continue  # never in the universe
            first = pd.Timestamp("2023-12-01", tz="UTC") if rng.random() < 0.5 else slot0
            if rng.random() < 0.3:
                first = t0 + int(rng.integers(0, n_slots - hist_bars)) * bar  # late entry
            if daily:
                times = pd.date_range(first.normalize(), t_end, freq="1D")
            else:
                times = [first] + [
                    slot0 + s * bar + pd.Timedelta(minutes=int(rng.integers(0, 60)))
                    for s in range(n_slots)
                    if rng.random() < 0.15 and slot0 + s * bar > first
                ]
            seen = set()
            for ts in times:
                if ts in seen:
                    continue
                seen.add(ts)
                value = 1.0 if rng.random() < 0.75 else 0.0
                if rng.random() < 0.05:
                    value = math.nan
                rows.append((ts, sym, value))
        universe_df = pd.DataFrame(rows, columns=["timestamp", "symbol", "in_universe"])

    beta_df = None
    if draw(st.booleans()):
        rows = []
        for sym in all_syms:
            if rng.random() < 0.2:
                continue  # absent -> 1.0
            beta = float(rng.choice([-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, math.nan]))
            if rng.random() < 0.5:
                beta = float(rng.uniform(-1, 3))
            status = str(rng.choice(["ok", "ok", "ok", "stale", "error"]))
            rows.append((sym, beta, status))
        # a file naming no configured symbol is an error (docs/semantics.md#side-data)
        if any(row[0] in symbols for row in rows):
            beta_df = pd.DataFrame(rows, columns=["symbol", "beta", "status"])

    close_q = draw(st.sampled_from([0.5, 0.25, 0.2, 1 / 3]) | st.floats(0.01, 0.5))
    open_q = draw(st.sampled_from([close_q, close_q / 2]) | st.floats(0.01, close_q))
    gross = draw(st.sampled_from([1.0, 2.0]) | st.floats(0.1, 3.0))
    fee = draw(st.sampled_from([0.0, 4.5e-4]) | st.floats(0.0, 0.01))
    style = draw(st.sampled_from(["offset", "zulu", "naive", "plus2"]))
    return dict(
        symbols=list(symbols), freq=freq, mfb=mfb, start=start, end=end,
        price_df=price_df, alpha_df=alpha_df, universe_df=universe_df, beta_df=beta_df,
        quantile=(open_q, close_q), gross=gross, fee=fee, style=style,
    )


def _config(sc, folder, alpha_class=EchoAlpha, alpha_kwargs=None, **overrides):
    _write_csv(sc["price_df"], folder / "prices.csv", sc["style"])
    _write_csv(sc["alpha_df"], folder / "alphas.csv", sc["style"])
    universe_loader = None
    if sc["universe_df"] is not None:
        _write_csv(sc["universe_df"], folder / "universe.csv", sc["style"])
        universe_loader = CSVDataLoader(str(folder / "universe.csv"), "in_universe")
    beta_path = None
    if sc["beta_df"] is not None:
        sc["beta_df"].to_csv(folder / "beta.csv", index=False)
        beta_path = str(folder / "beta.csv")
    kwargs = dict(
        name="ref",
        alpha_class=alpha_class,
        alpha_kwargs=alpha_kwargs or {},
        start_date=sc["start"],
        end_date=sc["end"],
        symbols=sc["symbols"],
        price_loader=CSVDataLoader(str(folder / "prices.csv"), "close"),
        alpha_loaders=[CSVDataLoader(str(folder / "alphas.csv"), "value")],
        beta_csv_path=beta_path,
        universe_loader=universe_loader,
        quantile=sc["quantile"],
        gross_exposure=sc["gross"],
        frequency=sc["freq"],
        trading_fee_rate=sc["fee"],
        max_fill_bars=sc["mfb"],
    )
    kwargs.update(overrides)
    return BacktestConfig(**kwargs)


def _reference(sc, alpha_rows, execution_delay=0):
    return reference_backtest(
        sc["price_df"], alpha_rows, sc["universe_df"], sc["beta_df"], sc["symbols"],
        sc["start"], sc["end"], sc["freq"], sc["mfb"], sc["quantile"][0], sc["quantile"][1],
        sc["gross"], sc["fee"], execution_delay=execution_delay,
    )


def assert_next_bar_matches(result, later):
    """The next-bar metrics are those of the reference run one bar later (``later``)."""
    ppy = result.metrics["periods_per_year"]
    expected = sharpe_ratio(later.run.pnl, ppy)
    got = result.metrics["sharpe_next_bar"]
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)
    growth = float(np.prod(1.0 + later.run.pnl)) - 1.0
    assert result.metrics["total_return_next_bar"] == pytest.approx(growth, rel=1e-9, abs=1e-12)


def _utc_index(index) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(index)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


def _sorted_long(frame: pd.DataFrame, columns) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)[columns].copy()
    frame["timestamp"] = _utc_index(frame["timestamp"])
    return frame.sort_values(["timestamp", "symbol"]).reset_index(drop=True)


def _keys(frame: pd.DataFrame) -> list:
    return list(zip(frame["timestamp"], frame["symbol"]))


def assert_matches_reference(result, ref, atol=ATOL, rtol=RTOL):
    seq = result.sequences
    assert list(_utc_index(seq.index)) == list(ref.timestamps), "bar grid differs"
    for col in SEQ_COLUMNS:
        np.testing.assert_allclose(
            seq[col].to_numpy(dtype=float), ref.sequences[col].to_numpy(), rtol=rtol, atol=atol,
            err_msg=col,
        )
    np.testing.assert_allclose(result.pnl.to_numpy(float), ref.run.pnl, rtol=rtol, atol=atol)
    np.testing.assert_allclose(result.equity.to_numpy(float), ref.run.equity, rtol=rtol, atol=atol)
    np.testing.assert_allclose(
        result.ic_sequence.to_numpy(float), ref.run.ic, rtol=rtol, atol=atol
    )
    assert result.metadata["forced_closes"] == ref.run.forced_closes

    pos = _sorted_long(result.positions, ["timestamp", "symbol", "weight"])
    ref_pos = _sorted_long(ref.positions, ["timestamp", "symbol", "weight"])
    assert _keys(pos) == _keys(ref_pos), "positions"
    np.testing.assert_allclose(
        pos["weight"].to_numpy(float), ref_pos["weight"].to_numpy(float), rtol=rtol, atol=atol
    )

    cols = ["timestamp", "symbol", "previous_weight", "weight", "delta"]
    trades = _sorted_long(result.trades, cols)
    ref_trades = _sorted_long(ref.trades, cols)
    assert _keys(trades) == _keys(ref_trades), "trades"
    for col in cols[2:]:
        np.testing.assert_allclose(
            trades[col].to_numpy(float), ref_trades[col].to_numpy(float), rtol=rtol, atol=atol,
            err_msg=col,
        )

    assert result.metrics["total_fees"] == pytest.approx(ref.run.fees.sum(), abs=atol)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sc=scenarios())
def test_pipeline_matches_reference(sc, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenario")
    result = run_backtest(_config(sc, folder))
    alpha_rows = sc["alpha_df"].rename(columns={"value": "alpha"})
    ref = _reference(sc, alpha_rows)
    assert_matches_reference(result, ref)
    assert_next_bar_matches(result, _reference(sc, alpha_rows, execution_delay=1))


@pytest.mark.parametrize("alpha_value", [math.nan, 1.0])
def test_window_without_any_alpha_observation(tmp_path_factory, alpha_value):
    """Alpha rows exist only after the period (or are all empty): the book stays flat."""
    t0 = pd.Timestamp("2024-01-02", tz="UTC")
    sc = dict(
        symbols=["ETHUSDT", "BTCUSDT"], freq="1h", mfb=3,
        start=dt.date(2024, 1, 2), end=dt.date(2024, 1, 2),
        price_df=pd.DataFrame(
            [(t0 + pd.Timedelta(hours=1), "ETHUSDT", 50.0),
             (t0 + pd.Timedelta(hours=2), "BTCUSDT", 60.0)],
            columns=["timestamp", "symbol", "close"],
        ),
        alpha_df=pd.DataFrame(
            [(t0 + pd.Timedelta(days=1, hours=1), "ETHUSDT", alpha_value)],
            columns=["timestamp", "symbol", "value"],
        ),
        universe_df=None, beta_df=None, quantile=(0.2, 0.2), gross=1.0, fee=4.5e-4,
        style="offset",
    )
    folder = tmp_path_factory.mktemp("noalpha")
    result = run_backtest(_config(sc, folder))
    ref = _reference(sc, sc["alpha_df"].rename(columns={"value": "alpha"}))
    assert len(ref.timestamps) == 2 and not ref.run.weights.any()
    assert_matches_reference(result, ref)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(sc=scenarios(max_days=4), chunk_days=st.sampled_from([1, 2, 3]))
def test_streaming_pipeline_matches_reference(sc, chunk_days, tmp_path_factory):
    """Streaming the random scenarios chunk by chunk gives the reference's numbers."""
    folder = tmp_path_factory.mktemp("stream")
    result = run_backtest(_config(sc, folder, mode="streaming", chunk_days=chunk_days))
    alpha_rows = sc["alpha_df"].rename(columns={"value": "alpha"})
    ref = _reference(sc, alpha_rows)
    assert_matches_reference(result, ref)
    assert_next_bar_matches(result, _reference(sc, alpha_rows, execution_delay=1))


# ------------------------------------------------------------------------- streaming


def _long_scenario():
    """~40 days of hourly data for 5 symbols, with gaps, a dead stretch and a universe."""
    rng = np.random.default_rng(20240101)
    symbols = ["SOLUSDT", "BTCUSDT", "ETHUSDT", "XRPUSDT", "ADAUSDT"]
    start, end = dt.date(2024, 1, 3), dt.date(2024, 2, 11)  # 40 days
    slot0 = pd.Timestamp("2024-01-01", tz="UTC")
    n_slots = 24 * 42
    dead = range(24 * 20 + 5, 24 * 22 + 17)  # ~2.5 days with no data at all
    price_rows, alpha_rows = [], []
    for j, sym in enumerate(symbols):
        level = 100.0 * (j + 1)
        listing = 24 * 9 + 7 if sym == "XRPUSDT" else 0  # lists mid-run
        delisting = 24 * 30 + 3 if sym == "ADAUSDT" else n_slots  # delists mid-run
        for s in range(listing, delisting):
            if s in dead or rng.random() < 0.08:
                continue
            if rng.random() < 0.02:  # a longer gap than max_fill_bars
                continue
            ts = slot0 + pd.Timedelta(hours=s, minutes=int(rng.choice([0, 0, 5, 59])))
            level *= math.exp(0.01 * rng.standard_normal())
            price_rows.append((ts, sym, level))
            if rng.random() < 0.95:
                alpha_rows.append((ts, sym, float(rng.standard_normal())))
    universe_rows = []
    for day in pd.date_range("2023-12-25", "2024-02-12", freq="1D", tz="UTC"):
        for sym in symbols:
            universe_rows.append((day, sym, 0.0 if rng.random() < 0.1 else 1.0))
    beta = pd.DataFrame(
        {"symbol": symbols, "beta": [1.2, 0.8, -0.5, 1.0, 2.0],
         "status": ["ok", "ok", "ok", "stale", "ok"]}
    )
    return dict(
        symbols=symbols, freq="1h", mfb=3, start=start, end=end,
        price_df=pd.DataFrame(price_rows, columns=["timestamp", "symbol", "close"]),
        alpha_df=pd.DataFrame(alpha_rows, columns=["timestamp", "symbol", "value"]),
        universe_df=pd.DataFrame(universe_rows, columns=["timestamp", "symbol", "in_universe"]),
        beta_df=beta, quantile=(0.2, 0.4), gross=1.0, fee=4.5e-4, style="offset",
    )


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    sc = _long_scenario()
    folder = tmp_path_factory.mktemp("long")
    config = _config(sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6})
    return sc, folder, config, run_backtest(config)


def joined_rows(sc) -> pd.DataFrame:
    """What ``compute`` sees: price rows outer-joined with alpha-loader rows."""
    prices = sc["price_df"][sc["price_df"]["symbol"].isin(sc["symbols"])]
    values = sc["alpha_df"][sc["alpha_df"]["symbol"].isin(sc["symbols"])]
    return prices.merge(values, on=["timestamp", "symbol"], how="outer")


def test_long_batch_matches_reference(long_run):
    sc, _, _, batch = long_run
    alpha_rows = rolling_mean_rows(joined_rows(sc), 6)
    ref = _reference(sc, alpha_rows)
    assert len(ref.timestamps) > 24 * 35
    assert ref.run.forced_closes > 0
    assert_matches_reference(batch, ref)
    assert_next_bar_matches(batch, _reference(sc, alpha_rows, execution_delay=1))


def _assert_metrics_equal(a, b, atol):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, dict):
            _assert_metrics_equal(x, y, atol)
        elif x is None or y is None or isinstance(x, str):
            assert x == y, key
        else:
            assert x == pytest.approx(y, abs=atol, rel=0, nan_ok=True), key


@pytest.mark.parametrize("chunk_days", [1, 2, 7, 30])
def test_streaming_equals_batch(long_run, chunk_days):
    sc, folder, config, batch = long_run
    streamed = run_backtest(
        _config(sc, folder, alpha_class=RollingMeanAlpha, alpha_kwargs={"hours": 6},
                mode="streaming", chunk_days=chunk_days)
    )
    assert list(streamed.sequences.index) == list(batch.sequences.index)
    for col in SEQ_COLUMNS:
        np.testing.assert_allclose(
            streamed.sequences[col].to_numpy(float), batch.sequences[col].to_numpy(float),
            rtol=0, atol=1e-9, err_msg=col,
        )
    for name in ("positions", "trades"):
        a = getattr(streamed, name).reset_index(drop=True)
        b = getattr(batch, name).reset_index(drop=True)
        assert a.shape == b.shape, name
        assert list(a["symbol"]) == list(b["symbol"]), name
        assert list(a["timestamp"]) == list(b["timestamp"]), name
        for col in a.columns:
            if col not in ("timestamp", "symbol"):
                np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-9, err_msg=col)
    assert streamed.metadata["forced_closes"] == batch.metadata["forced_closes"]
    _assert_metrics_equal(streamed.metrics, batch.metrics, 1e-9)
