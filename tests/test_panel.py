"""alphadev.panel on its own: bar arithmetic, last observation per bar, causal fill."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader
from alphadev.data.loaders import make_index
from alphadev.panel import bar_ceil, bar_floor, build_panel, fill_forward, history_needed, to_bars
from tests.alphas import EchoAlpha

HOUR = 3_600 * 10**9


def test_bar_floor_and_ceil_align_to_the_epoch() -> None:
    ts = pd.Timestamp("2024-01-01 10:30", tz="UTC")
    assert bar_floor(ts, HOUR) == pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert bar_ceil(ts, HOUR) == pd.Timestamp("2024-01-01 11:00", tz="UTC")
    on_edge = pd.Timestamp("2024-01-01 10:00", tz="UTC")
    assert bar_floor(on_edge, HOUR) == bar_ceil(on_edge, HOUR) == on_edge
    seven = 7 * HOUR  # labels are multiples of 7 h since 1970, not since midnight
    assert bar_floor(on_edge, seven).value % seven == 0


def test_to_bars_keeps_the_last_non_missing_observation_of_each_bar() -> None:
    base = pd.Timestamp("2024-01-01", tz="UTC").value
    stamps = np.array([base, base + HOUR // 2, base + HOUR, base + 3 * HOUR // 2, base + HOUR],
                      dtype=np.int64)
    codes = np.array([0, 0, 1, 1, 0])
    order = np.argsort(stamps, kind="stable")
    index = make_index(stamps[order], codes[order], ["A", "B"])
    values = pd.Series(np.array([1.0, 2.0, 5.0, np.nan, 3.0])[order], index=index)
    out, observed = to_bars(values, ["A", "B"], base, 3, HOUR)
    # bar 0: A seen at 0:00 (1.0) and 0:30 (2.0) -> 2.0; B nothing
    # bar 1: A 3.0; B 5.0 at 1:00, NaN at 1:30 is no observation -> 5.0
    np.testing.assert_array_equal(out[:2], [[2.0, np.nan], [3.0, 5.0]])
    np.testing.assert_array_equal(observed, [[True, False], [True, True], [False, False]])


@pytest.mark.parametrize("limit, expected", [
    (0, [1.0, np.nan, np.nan, np.nan, 4.0, np.nan]),
    (2, [1.0, 1.0, 1.0, np.nan, 4.0, 4.0]),
    (None, [1.0, 1.0, 1.0, 1.0, 4.0, 4.0]),
])
def test_fill_forward_is_causal_and_limited(limit, expected) -> None:
    values = np.array([[1.0], [9.0], [np.nan], [np.nan], [4.0], [np.nan]])
    observed = np.array([[True], [False], [False], [False], [True], [False]])
    # an unobserved value (the 9.0) is never used, whatever the array holds
    out = fill_forward(values, observed, limit)
    np.testing.assert_array_equal(out[:, 0], expected)


def test_history_needed_is_lookback_plus_fill_reach() -> None:
    """One more bar than the delay itself needs: the next-bar book trades one bar later
    (docs/semantics.md#next-bar)."""
    config = _config(Path("."), check_files=False)
    for delay in (0, 2):
        config = config.replace(execution_delay=delay) if delay else config
        assert history_needed(config, EchoAlpha()) == pd.Timedelta(minutes=60) + pd.Timedelta(
            hours=config.max_fill_bars + 2 + delay
        )


def _config(folder: Path, check_files: bool = True, **changes) -> BacktestConfig:
    prices = folder / "prices.csv"
    if check_files:
        stamps = pd.date_range("2023-12-31 20:00", "2024-01-02 23:00", freq="1h", tz="UTC")
        rows = [(t.isoformat(), s, 100.0 + k + (5 if s == "B" else 0), float(k % 3))
                for k, t in enumerate(stamps) for s in ("A", "B")
                if not (s == "B" and 5 <= k <= 12)]  # B has a gap of 8 hours
        pd.DataFrame(rows, columns=["timestamp", "symbol", "close", "value"]).to_csv(
            prices, index=False
        )
    fields = dict(
        name="panel", alpha_class=EchoAlpha, alpha_kwargs={},
        start_date=dt.date(2024, 1, 1), end_date=dt.date(2024, 1, 2), symbols=["B", "A"],
        price_loader=CSVDataLoader(str(prices), "close"),
        alpha_loaders=[CSVDataLoader(str(prices), "value")], beta_csv_path=None,
    )
    fields.update(changes)
    return BacktestConfig(**fields)


def test_build_panel_grid_order_and_fill(tmp_path: Path) -> None:
    config = _config(tmp_path, max_fill_bars=3)
    start = pd.Timestamp("2024-01-01", tz="UTC")
    end = pd.Timestamp("2024-01-03", tz="UTC")
    panel = build_panel(config, EchoAlpha(), start, end)
    assert panel.prices.shape == (48, 2)  # bars of both days, symbols sorted: A, B
    assert panel.bars[0] == start.value and np.all(np.diff(panel.bars) == HOUR)
    raw = pd.read_csv(tmp_path / "prices.csv")
    a_close = raw[raw.symbol == "A"].set_index("timestamp")["close"].to_numpy()
    np.testing.assert_array_equal(panel.prices[:, 0], a_close[4:])  # 2023-12-31 20:00 + 4 h
    # B misses rows 5..12 (2024-01-01 01:00..08:00): bars 1-3 filled, 4-8 missing
    b = panel.prices[:, 1]
    assert np.all(b[1:4] == b[0]) and np.all(np.isnan(b[4:9])) and np.isfinite(b[9])
    assert not panel.observed[1:9, 1].any() and panel.observed[9, 1]
    assert panel.universe.all()
