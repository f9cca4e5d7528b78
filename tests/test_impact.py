"""Market impact and capacity by hand, their bad input, and old results staying done
(docs/semantics.md#market-impact, #capacity)."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader
from alphadev.errors import DataError
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha

DAY1 = pd.Timestamp("2024-03-01", tz="UTC")


def _market(folder: Path, volume_a: float = 1000.0, volume_b: float = 4000.0) -> dict:
    """Two symbols, hourly from 2024-03-01 00:00 for 3 days; A alternates 100 / 101, B
    cycles 50 / 51 / 49; alpha A = 1, B = -1 from the first bar; constant volumes."""
    stamps = pd.date_range(DAY1, periods=72, freq="1h")
    rows, values, volumes = [], [], []
    for k, ts in enumerate(stamps):
        rows += [(ts, "AUSDT", 100.0 + k % 2), (ts, "BUSDT", (50.0, 51.0, 49.0)[k % 3])]
        values += [(ts, "AUSDT", 1.0), (ts, "BUSDT", -1.0)]
        volumes += [(ts, "AUSDT", volume_a), (ts, "BUSDT", volume_b)]
    paths = {}
    for name, data, column in (("prices", rows, "close"), ("values", values, "value"),
                               ("volume", volumes, "volume")):
        paths[name] = folder / f"{name}.csv"
        pd.DataFrame(data, columns=["timestamp", "symbol", column]).to_csv(paths[name],
                                                                            index=False)
    return paths


def _config(paths: dict, **overrides) -> BacktestConfig:
    fields = dict(
        name="hand", alpha_class=EchoAlpha, alpha_kwargs={},
        start_date=dt.date(2024, 3, 1), end_date=dt.date(2024, 3, 3),
        symbols=["AUSDT", "BUSDT"],
        price_loader=CSVDataLoader(str(paths["prices"]), "close"),
        alpha_loaders=[CSVDataLoader(str(paths["values"]), "value")],
        quantile=(0.5, 0.5), trading_fee_rate=0.0,
        volume_loader=CSVDataLoader(str(paths["volume"]), "volume"),
        impact_coefficient=0.8, capital=2e5, impact_window="1D",
    )
    fields.update(overrides)
    return BacktestConfig(**fields)


def test_one_trade_against_a_known_adv_and_sigma_on_the_first_tradable_bar(tmp_path):
    paths = _market(tmp_path)
    result = run_backtest(_config(paths))
    weights = result.positions.pivot(index="timestamp", columns="symbol", values="weight")
    # The window of bar 24 (day 2 00:00) holds only 23 returns: the first return of the
    # data is missing. Bar 25 is the first with a day of returns and volumes.
    first = pd.Timestamp(weights.index.min())
    assert first == DAY1 + pd.Timedelta(hours=25)
    assert result.metadata["forced_closes"] == 0
    prices_a = [100.0 + k % 2 for k in range(25)]
    returns_a = [prices_a[k] / prices_a[k - 1] - 1 for k in range(1, 25)]
    prices_b = [(50.0, 51.0, 49.0)[k % 3] for k in range(25)]
    returns_b = [prices_b[k] / prices_b[k - 1] - 1 for k in range(1, 25)]
    sigma_a = statistics.stdev(returns_a) * math.sqrt(24)
    sigma_b = statistics.stdev(returns_b) * math.sqrt(24)
    dw = 0.5
    expected = 0.8 * (sigma_a * math.sqrt(dw * 2e5 / (24 * 1000.0)) * dw
                      + sigma_b * math.sqrt(dw * 2e5 / (24 * 4000.0)) * dw)
    impact = result.sequences["impact"]
    assert impact[first] == pytest.approx(expected, rel=1e-12)
    assert impact.drop(first).abs().max() == 0.0  # the book never trades again
    seq = result.sequences.loc[first]
    assert seq["pnl"] == pytest.approx(seq["gross"] - seq["impact"], abs=1e-15)
    # long leg pays A's impact on its 0.5 of notional, the short leg B's
    long_cost = 0.8 * sigma_a * math.sqrt(dw * 2e5 / 24_000) * dw
    assert seq["long_return"] == pytest.approx(-long_cost / 0.5, rel=1e-12)
    assert result.metrics["total_impact"] == pytest.approx(expected, rel=1e-12)
    # participation: 0.5 * 2e5 against bar volumes 1000 and 4000
    participation = result.metrics["participation"]
    assert participation["trades"] == 2
    assert participation["max"] == pytest.approx(100.0)
    assert participation["mean"] == pytest.approx((100.0 + 25.0) / 2)
    warnings = [w for w in result.metadata["warnings"] if "of a bar's volume" in w]
    assert len(warnings) == 1 and "max_participation=0.1" in warnings[0]


def test_without_impact_the_book_trades_from_the_first_bar_and_only_participation_is_added(
    tmp_path,
):
    paths = _market(tmp_path, volume_a=1e9, volume_b=1e9)
    plain = run_backtest(_config(paths, volume_loader=None, impact_coefficient=0.0))
    sized = run_backtest(_config(paths, impact_coefficient=0.0))
    pd.testing.assert_frame_equal(plain.sequences, sized.sequences, check_exact=True)
    assert sized.metrics["participation"]["max"] == pytest.approx(0.5 * 2e5 / 1e9)
    assert not [w for w in sized.metadata["warnings"] if "of a bar's volume" in w]
    curve = sized.metrics["capacity_curve"]
    assert curve["capacity"] is None  # no impact paid: the curve is flat
    assert len(set(curve["sharpe"])) == 1
    assert "capacity_curve" not in plain.metrics and "participation" not in plain.metrics


def test_a_symbol_without_volume_rows_is_never_traded_with_impact_on(tmp_path):
    paths = _market(tmp_path)
    volume = pd.read_csv(paths["volume"])
    volume[volume["symbol"] == "AUSDT"].to_csv(paths["volume"], index=False)
    result = run_backtest(_config(paths))
    assert result.positions.empty  # one tradable symbol: fewer than two eligible
    assert result.sequences["impact"].sum() == 0.0
    assert any("traded nothing" in w for w in result.metadata["warnings"])


def test_a_negative_volume_names_the_file(tmp_path):
    paths = _market(tmp_path)
    volume = pd.read_csv(paths["volume"])
    volume.loc[7, "volume"] = -5.0
    volume.to_csv(paths["volume"], index=False)
    with pytest.raises(DataError, match=r"volume_loader.*volume\.csv.*-5\.0.*>= 0"):
        run_backtest(_config(paths))


@pytest.mark.parametrize("field, value, message", [
    ("impact_coefficient", -0.1, r"impact_coefficient=-0\.1 must be a finite number >= 0"),
    ("capital", 0.0, r"capital=0\.0 must be a finite number > 0"),
    ("capital", math.inf, r"capital=inf must be"),
    ("impact_window", "12h", r"impact_window='12h' must be a duration of at least one day"),
    ("impact_window", "1D 30min", r"impact_window='1D 30min' must be .*whole number of bars"),
    ("impact_window", 20, r"impact_window=20 must be a duration"),
    ("max_participation", 0, r"max_participation=0 must be a finite number > 0"),
])
def test_bad_impact_settings_name_the_field(tmp_path, field, value, message):
    paths = _market(tmp_path)
    with pytest.raises(ValueError, match=message):
        _config(paths, **{field: value})


def test_impact_needs_a_volume_loader(tmp_path):
    paths = _market(tmp_path)
    with pytest.raises(ValueError, match="impact_coefficient=0.5 needs volume_loader"):
        _config(paths, volume_loader=None, impact_coefficient=0.5)


def test_a_daily_window_of_daily_bars_is_refused(tmp_path):
    paths = _market(tmp_path)
    with pytest.raises(ValueError, match="holds one '1D' bar"):
        _config(paths, frequency="1D", impact_window="1D")


# Every key of a description before impact existed: a config at the defaults must not
# grow one, or every result saved before would be recomputed.
KEYS_BEFORE_IMPACT = {
    "name", "alpha_class", "alpha_kwargs", "start_date", "end_date", "symbols",
    "price_loader", "alpha_loaders", "beta_csv_path", "universe_loader", "quantile",
    "gross_exposure", "frequency", "trading_fee_rate", "mode", "chunk_days", "max_fill_bars",
}


def test_the_defaults_stay_out_of_the_description(tmp_path):
    paths = _market(tmp_path)
    plain = _config(paths, volume_loader=None, impact_coefficient=0.0, capital=1e6,
                    impact_window=pd.Timedelta(days=20))
    assert set(plain.to_dict()) == KEYS_BEFORE_IMPACT
    bare = BacktestConfig(**{k: getattr(plain, k) for k in (
        "name", "alpha_class", "alpha_kwargs", "start_date", "end_date", "symbols",
        "price_loader", "alpha_loaders", "quantile", "trading_fee_rate")})
    assert bare.fingerprint() == plain.fingerprint()
    sized = _config(paths)
    assert {"volume_loader", "capital", "impact_coefficient", "impact_window"} <= set(
        sized.to_dict())
    assert sized.replace(capital=3e5).fingerprint() != sized.fingerprint()
    assert sized.replace(impact_window="2D").fingerprint() != sized.fingerprint()


def test_a_capital_grid_shares_one_panel_and_one_capacity_curve(tmp_path):
    from alphadev import cache as panel_cache
    from alphadev.cache import panel_key

    paths = _market(tmp_path)
    config = _config(paths)
    start, end = pd.Timestamp(DAY1), pd.Timestamp(DAY1) + pd.Timedelta(days=3)
    assert panel_key(config, start, end) == panel_key(config.replace(capital=2e6), start, end)
    assert panel_key(config, start, end) != panel_key(config.replace(impact_window="2D"),
                                                      start, end)
    small = run_backtest(config)
    computed = panel_cache.STATS["computed"]
    large = run_backtest(config.replace(capital=2e6))
    assert panel_cache.STATS["computed"] == computed
    assert large.sequences["impact"].sum() == pytest.approx(
        small.sequences["impact"].sum() * math.sqrt(2e6 / 2e5), rel=1e-12)
    np.testing.assert_allclose(large.metrics["capacity_curve"]["sharpe"][:8],
                               small.metrics["capacity_curve"]["sharpe"][:8], rtol=1e-9)


def test_a_book_ruined_by_its_impact_has_no_capacity_curve(tmp_path):
    result = run_backtest(_config(_market(tmp_path), capital=5e7))
    assert result.metadata["ruined_at"] == (DAY1 + pd.Timedelta(hours=25)).isoformat()
    assert result.sequences["impact"].max() > 1.0
    assert result.metrics["capacity"] is None and result.metrics["capacity_curve"] is None


def test_a_volume_file_without_the_configured_symbols_is_an_error(tmp_path):
    paths = _market(tmp_path)
    volume = pd.read_csv(paths["volume"])
    volume["symbol"] = volume["symbol"].str.replace("USDT", "-USDT")
    volume.to_csv(paths["volume"], index=False)
    with pytest.raises(DataError, match=r"volume_loader .* holds symbols .* none of the "
                                        r"configured symbols.*'A-USDT' for 'AUSDT'"):
        run_backtest(_config(paths))


def test_a_symbol_missing_from_the_volume_file_is_named(tmp_path):
    paths = _market(tmp_path)
    volume = pd.read_csv(paths["volume"])
    volume[volume["symbol"] == "AUSDT"].to_csv(paths["volume"], index=False)
    result = run_backtest(_config(paths, impact_coefficient=0.0))
    assert result.metadata["symbols_without_volume"] == ["BUSDT"]
    assert any("has no volume for ['BUSDT']" in w for w in result.metadata["warnings"])


def test_validation_judges_the_largest_book(tmp_path):
    from alphadev.out_of_sample.files import _market_setting

    small = _config(_market(tmp_path)).describe()
    large = _config(_market(tmp_path), capital=4e6).describe()
    assert _market_setting(large)["impact"] == pytest.approx(0.8 * 2000.0)
    assert _market_setting(small)["impact"] < _market_setting(large)["impact"]
    assert _market_setting({"trading_fee_rate": 0.0})["impact"] == 0.0


def test_estimates_ignore_an_extreme_bar_once_it_leaves_the_window_and_any_start_agrees():
    """A bad tick (a return of 1e6) early in the loaded rows: later windows are exact,
    and rows loaded from another start (a streaming chunk) give the same bits."""
    from alphadev.engine.impact import impact_estimates

    rng = np.random.default_rng(1)
    returns = rng.normal(0, 0.005, (2000, 3))
    returns[30, 1] = 1e6
    volume = rng.lognormal(10, 1, (2000, 3))
    window, first = 480, 600
    whole = impact_estimates(volume, returns, window, 24.0, first, origin=7)
    later = impact_estimates(volume[100:], returns[100:], window, 24.0, first - 100,
                             origin=107)
    np.testing.assert_array_equal(whole.sigma, later.sigma)
    np.testing.assert_array_equal(whole.adv, later.adv)
    for t in (first, first + 333, 1999):
        rows = returns[t - window:t, 1]
        expected = statistics.stdev(rows) * math.sqrt(24)
        assert whole.sigma[t - first, 1] == pytest.approx(expected, rel=1e-12)
        assert whole.adv[t - first, 1] == pytest.approx(
            statistics.fmean(volume[t - window:t, 1]) * 24, rel=1e-12)
