"""docs/semantics.md#bad-input: every kind of bad input fails with a clear message.

Config-field problems raise when the BacktestConfig is built; data problems raise from
``run_backtest`` (and are recorded, not raised, by ``Backtester.run_all``).  Every test
checks the exception type and that the message names the field or file (and, where it
makes sense, the bad value).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev.errors import DataError
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha

SYMBOLS = ["AAA", "BBB", "CCC"]
CONFIG_NAME = "bad_input_case"


# --------------------------------------------------------------------------- alphas
class ParamAlpha(EchoAlpha):
    """An alpha with one required and one optional parameter."""

    def __init__(self, window: int, scale: float = 1.0) -> None:
        self.window = window
        self.scale = scale


class AnyKwargsAlpha(EchoAlpha):
    """Accepts any parameter, so a pool is the first place a bad value can fail."""

    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs


class NoAlphaColumn(EchoAlpha):
    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return data.rename(columns={"value": "score"})[["score"]]


class RangeIndexAlpha(EchoAlpha):
    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return data.rename(columns={"value": "alpha"})[["alpha"]].reset_index(drop=True)


class InfAlpha(EchoAlpha):
    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        out = data.rename(columns={"value": "alpha"})[["alpha"]].copy()
        out.iloc[5, 0] = np.inf
        return out


class NumericTextAlpha(EchoAlpha):
    """Numbers spelled as text: an alpha of object dtype that to_numeric would accept."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        out = data.rename(columns={"value": "alpha"})[["alpha"]]
        return out.assign(alpha=out["alpha"].map(str))


# --------------------------------------------------------------------------- data
def _frame(symbols=SYMBOLS, start="2024-01-01", hours=72) -> pd.DataFrame:
    stamps = pd.date_range(start, periods=hours, freq="1h", tz="UTC")
    rows = []
    for k, symbol in enumerate(symbols):
        for i, stamp in enumerate(stamps):
            rows.append(
                {
                    "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "symbol": symbol,
                    "close": 100.0 + 10 * k + np.sin(i + k),
                    "value": float((i * (k + 1)) % 7),
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    _frame().to_csv(path, index=False)
    return path


@pytest.fixture
def base(data_csv: Path) -> dict:
    """Keyword arguments of a valid config; tests override one field."""
    return dict(
        name=CONFIG_NAME,
        alpha_class=EchoAlpha,
        alpha_kwargs={},
        start_date="2024-01-01",
        end_date="2024-01-03",
        symbols=list(SYMBOLS),
        price_loader=CSVDataLoader(str(data_csv), "close"),
        alpha_loaders=[CSVDataLoader(str(data_csv), "value")],
        beta_csv_path=None,
    )


def _config_error(base: dict, exc_type: type, *fragments: str, **changes) -> str:
    """Build a config with ``changes``; it must raise ``exc_type`` naming ``fragments``."""
    with pytest.raises(exc_type) as info:
        BacktestConfig(**{**base, **changes})
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _run_error(base: dict, exc_type: type, *fragments: str, **changes) -> str:
    """Build a valid config with ``changes``; ``run_backtest`` must raise ``exc_type``."""
    config = BacktestConfig(**{**base, **changes})
    with pytest.raises(exc_type) as info:
        run_backtest(config)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def test_valid_base_config_runs(base):
    result = run_backtest(BacktestConfig(**base))
    assert len(result.pnl) == 72


# --------------------------------------------------------------------------- quantile
@pytest.mark.parametrize("quantile", [0.2, (0.2,), (0.1, 0.2, 0.3), "0.2,0.2", (0.2, "x")])
def test_quantile_not_a_pair(base, quantile):
    _config_error(base, (ValueError, TypeError), CONFIG_NAME, "quantile", repr(quantile),
                  quantile=quantile)


@pytest.mark.parametrize(
    "quantile, bad",
    [((0.0, 0.2), "0.0"), ((-0.1, 0.2), "-0.1"), ((0.2, 0.6), "0.6"), ((0.2, 1.0), "1.0")],
)
def test_quantile_outside_zero_half(base, quantile, bad):
    message = _config_error(base, ValueError, CONFIG_NAME, "quantile", bad, quantile=quantile)
    assert "0.5" in message


def test_quantile_open_greater_than_close(base):
    message = _config_error(base, ValueError, CONFIG_NAME, "quantile", "0.3", quantile=(0.3, 0.2))
    assert "open" in message and "close" in message


# --------------------------------------------------------------------------- portfolio
@pytest.mark.parametrize("gross", [0, 0.0, -1.0])
def test_gross_exposure_not_positive(base, gross):
    _config_error(base, ValueError, CONFIG_NAME, "gross_exposure", repr(gross),
                  gross_exposure=gross)


@pytest.mark.parametrize("gross", [100.5, 101, 1e308, float("inf"), float("nan")])
def test_gross_exposure_above_the_bound_or_not_finite(base, gross):
    message = _config_error(base, ValueError, CONFIG_NAME, "gross_exposure", "100",
                            gross_exposure=gross)
    assert repr(gross) in message


def test_gross_exposure_at_the_bound_is_accepted(base):
    assert BacktestConfig(**{**base, "gross_exposure": np.float64(100)}).gross_exposure == 100.0


def test_negative_fee(base):
    _config_error(base, ValueError, CONFIG_NAME, "trading_fee_rate", "-0.0001",
                  trading_fee_rate=-1e-4)


def test_unknown_mode(base):
    message = _config_error(base, ValueError, CONFIG_NAME, "mode", "'fast'", mode="fast")
    assert "batch" in message and "streaming" in message


# --------------------------------------------------------------------------- streaming
def test_streaming_without_chunk_days(base):
    _config_error(base, ValueError, CONFIG_NAME, "chunk_days", "streaming", mode="streaming")


@pytest.mark.parametrize(
    "chunk_days, exc_type",
    [(0, ValueError), (-3, ValueError), (1.5, TypeError), ("2", TypeError), (True, TypeError)],
)
def test_chunk_days_not_a_positive_integer(base, chunk_days, exc_type):
    _config_error(base, (exc_type, ValueError), CONFIG_NAME, "chunk_days", repr(chunk_days),
                  mode="streaming", chunk_days=chunk_days)


def test_chunk_days_with_batch_mode_is_rejected(base):
    """Batch runs the whole period at once: a chunk_days there would be silently ignored."""
    message = _config_error(base, ValueError, CONFIG_NAME, "chunk_days=7", "batch",
                            chunk_days=7)
    assert "chunk_days=None" in message and "streaming" in message


def test_chunk_days_not_a_whole_number_of_bars(base):
    # 24h is not a multiple of 7h
    _config_error(base, ValueError, CONFIG_NAME, "chunk_days", "1", "7h",
                  mode="streaming", chunk_days=1, frequency="7h")


def test_chunk_days_whole_number_of_bars_is_fine(base):
    BacktestConfig(**{**base, "mode": "streaming", "chunk_days": 7, "frequency": "7h"})


# --------------------------------------------------------------------------- max_fill_bars
@pytest.mark.parametrize("value", [-1, 1.5, "3", None, True])
def test_max_fill_bars_not_a_non_negative_integer(base, value):
    _config_error(base, (ValueError, TypeError), CONFIG_NAME, "max_fill_bars", repr(value),
                  max_fill_bars=value)


def test_max_fill_bars_beyond_any_timestamp_is_a_clear_error(base):
    """10**12 hourly bars overflowed pandas' Timedelta deep inside the panel."""
    _config_error(base, ValueError, CONFIG_NAME, "max_fill_bars", "1000000000000", "1900",
                  max_fill_bars=10**12)


def test_max_fill_bars_large_but_in_range_runs(base):
    result = run_backtest(BacktestConfig(**{**base, "max_fill_bars": 100_000}))
    assert len(result.pnl) == 72


# --------------------------------------------------------------------------- frequency
@pytest.mark.parametrize("frequency, day", [("3D", "2024-01-01"), ("25h", "2024-01-02")])
def test_frequency_without_a_bar_label_in_the_period(base, frequency, day):
    """A one-day period where the bar grid has no label: say so, not 'no price rows'."""
    _config_error(base, ValueError, CONFIG_NAME, "frequency", repr(frequency), "no bar label",
                  "2024-01-03 00:00", frequency=frequency, start_date=day, end_date=day)


def test_frequency_with_a_bar_label_in_the_period_runs(base):
    result = run_backtest(BacktestConfig(**{**base, "frequency": "25h"}))
    assert len(result.pnl) >= 2


@pytest.mark.parametrize("frequency", ["xyz", "", "1 hour please"])
def test_unparseable_frequency(base, frequency):
    _config_error(base, ValueError, CONFIG_NAME, "frequency", repr(frequency),
                  frequency=frequency)


@pytest.mark.parametrize("frequency", ["M", "W", "ME", "MS", "B"])
def test_variable_frequency(base, frequency):
    _config_error(base, ValueError, CONFIG_NAME, "frequency", repr(frequency),
                  frequency=frequency)


def test_frequency_not_a_string(base):
    _config_error(base, (TypeError, ValueError), CONFIG_NAME, "frequency", frequency=3600)


# --------------------------------------------------------------------------- dates
def test_start_date_after_end_date(base):
    _config_error(base, ValueError, CONFIG_NAME, "start_date", "end_date", "2024-02-01",
                  "2024-01-01", start_date="2024-02-01", end_date="2024-01-01")


def test_unparseable_date(base):
    _config_error(base, (TypeError, ValueError), CONFIG_NAME, "start_date", "'first of May'",
                  start_date="first of May")


# --------------------------------------------------------------------------- symbols
def test_empty_symbols(base):
    _config_error(base, ValueError, CONFIG_NAME, "symbols", symbols=[])


def test_duplicate_symbols(base):
    _config_error(base, ValueError, CONFIG_NAME, "symbols", "BBB",
                  symbols=["AAA", "BBB", "CCC", "BBB"])


def test_symbols_a_single_string(base):
    _config_error(base, (TypeError, ValueError), CONFIG_NAME, "symbols", "'AAA'", symbols="AAA")


# --------------------------------------------------------------------------- name
def test_empty_name(base):
    _config_error(base, ValueError, "name", name="")


@pytest.mark.parametrize(
    "name", ["a/b", "..", ".", "CON", "con.txt", "LPT1", "x:y", "a b", "a\\b", "a*b", "trail."]
)
def test_unsafe_name(base, name):
    _config_error(base, ValueError, "name", repr(name), name=name)


def test_name_too_long(base):
    _config_error(base, ValueError, "name", name="a" * 300)


# --------------------------------------------------------------------------- alpha
@pytest.mark.parametrize("alpha_class", [int, EchoAlpha(), "EchoAlpha", None])
def test_alpha_class_not_an_alpha_subclass(base, alpha_class):
    message = _config_error(base, TypeError, CONFIG_NAME, "alpha_class", alpha_class=alpha_class)
    assert "Alpha" in message


def test_alpha_kwargs_not_accepted(base):
    _config_error(base, TypeError, CONFIG_NAME, "alpha_kwargs", "nope", "EchoAlpha",
                  alpha_kwargs={"nope": 1})


def test_alpha_kwargs_missing_required_parameter(base):
    _config_error(base, TypeError, CONFIG_NAME, "alpha_kwargs", "window", "ParamAlpha",
                  alpha_class=ParamAlpha, alpha_kwargs={"scale": 2.0})


def test_alpha_kwargs_not_a_dict(base):
    _config_error(base, TypeError, CONFIG_NAME, "alpha_kwargs", alpha_kwargs=[("window", 3)])


# --------------------------------------------------------------------------- data files
def test_missing_data_file_plain_path(base, tmp_path):
    missing = tmp_path / "no_such_prices.csv"
    _run_error(base, ValueError, "no_such_prices.csv",
               price_loader=CSVDataLoader(str(missing), "close"))


def test_missing_data_file_glob_without_match(base, tmp_path):
    pattern = str(tmp_path / "prices_*.parquet.csv")
    _run_error(base, ValueError, "prices_*.parquet.csv",
               price_loader=CSVDataLoader(pattern, "close"))


def test_missing_data_file_symbol_pattern_without_file(base, tmp_path):
    pattern = str(tmp_path / "px_{symbol}.csv")
    _run_error(base, ValueError, "px_{symbol}.csv", price_loader=CSVDataLoader(pattern, "close"))


def test_missing_alpha_data_file(base, tmp_path):
    missing = tmp_path / "signals_missing.csv"
    _run_error(base, ValueError, "signals_missing.csv",
               alpha_loaders=[CSVDataLoader(str(missing), "value")])


@pytest.mark.parametrize(
    "dropped, loader_column",
    [("timestamp", "close"), ("symbol", "close"), ("close", "close"), ("value", "value")],
)
def test_csv_missing_a_column(base, tmp_path, dropped, loader_column):
    path = tmp_path / f"without_{dropped}.csv"
    _frame().drop(columns=[dropped]).to_csv(path, index=False)
    loader = CSVDataLoader(str(path), loader_column)
    field = "price_loader" if loader_column == "close" else "alpha_loaders"
    changes = {field: loader if field == "price_loader" else [loader]}
    _run_error(base, ValueError, path.name, repr(dropped), **changes)


def test_csv_missing_a_renamed_timestamp_column(base, tmp_path):
    path = tmp_path / "custom_cols.csv"
    _frame().rename(columns={"timestamp": "time"}).to_csv(path, index=False)
    loader = CSVDataLoader(str(path), "close", timestamp_col="ts")
    _run_error(base, ValueError, path.name, "'ts'", price_loader=loader)


def test_unparseable_timestamps(base, tmp_path):
    path = tmp_path / "bad_stamps.csv"
    frame = _frame()
    frame.loc[7, "timestamp"] = "not-a-time"
    frame.to_csv(path, index=False)
    _run_error(base, ValueError, path.name, "'timestamp'", "not-a-time",
               price_loader=CSVDataLoader(str(path), "close"))


def test_duplicate_timestamp_symbol_rows(base, tmp_path):
    path = tmp_path / "dups.csv"
    frame = _frame()
    pd.concat([frame, frame.iloc[[10]]]).to_csv(path, index=False)
    duplicate_symbol = frame.iloc[10]["symbol"]
    message = _run_error(base, ValueError, path.name, duplicate_symbol,
                         price_loader=CSVDataLoader(str(path), "close"))
    assert "duplicate" in message.lower()


def test_duplicate_rows_spelled_in_different_time_zones(base, tmp_path):
    path = tmp_path / "dups_tz.csv"
    frame = _frame()
    extra = frame.iloc[[0]].copy()  # 2024-01-01T00:00:00Z written as 01:00+01:00
    extra["timestamp"] = "2024-01-01T01:00:00+01:00"
    pd.concat([frame, extra]).to_csv(path, index=False)
    message = _run_error(base, ValueError, path.name,
                         price_loader=CSVDataLoader(str(path), "close"))
    assert "duplicate" in message.lower()


def test_no_rows_in_date_range(base):
    message = _run_error(base, ValueError, CONFIG_NAME, "2025-03-01", "2025-03-02",
                         start_date="2025-03-01", end_date="2025-03-02")
    assert "no price rows" in message or "no rows" in message


def test_symbol_without_any_data_warns_and_continues(base, caplog):
    config = BacktestConfig(**{**base, "symbols": [*SYMBOLS, "ZZZ"]})
    with caplog.at_level(logging.WARNING):
        result = run_backtest(config)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("ZZZ" in r.getMessage() and CONFIG_NAME in r.getMessage() for r in warnings)
    reference = run_backtest(BacktestConfig(**base))
    pd.testing.assert_series_equal(result.pnl, reference.pnl)
    assert result.metadata["symbols_without_data"] == ["ZZZ"]


def test_symbol_pattern_with_one_file_missing_warns_and_continues(base, tmp_path, caplog):
    frame = _frame()
    for symbol in ("AAA", "BBB"):  # no file for CCC
        part = frame[frame["symbol"] == symbol].drop(columns=["symbol"])
        part.to_csv(tmp_path / f"sym_{symbol}.csv", index=False)
    pattern = str(tmp_path / "sym_{symbol}.csv")
    config = BacktestConfig(**{**base, "price_loader": CSVDataLoader(pattern, "close"),
                               "alpha_loaders": [CSVDataLoader(pattern, "value")]})
    with caplog.at_level(logging.WARNING):
        result = run_backtest(config)
    assert any("CCC" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert result.metadata["symbols_without_data"] == ["CCC"]
    assert len(result.pnl) == 72


def test_non_numeric_price_value(base, tmp_path):
    path = tmp_path / "text_prices.csv"
    frame = _frame()
    frame["close"] = frame["close"].astype(object)
    frame.loc[4, "close"] = "n/a?"
    frame.to_csv(path, index=False)
    _run_error(base, ValueError, path.name, "'close'", "n/a?",
               price_loader=CSVDataLoader(str(path), "close"))


# --------------------------------------------------------------------------- alpha output
ALPHA_FAILURES = [
    (NoAlphaColumn, "alpha"),
    (RangeIndexAlpha, "index"),
    (InfAlpha, "inf"),
    (NumericTextAlpha, "non-numeric alpha column of dtype"),
]


@pytest.mark.parametrize("alpha_class, fragment", ALPHA_FAILURES)
def test_bad_alpha_output_raises_in_run_backtest(base, alpha_class, fragment):
    message = _run_error(base, ValueError, CONFIG_NAME, alpha_class.__name__,
                         alpha_class=alpha_class)
    assert fragment in message.lower()


def test_bad_alpha_output_is_recorded_by_run_all(base, tmp_path):
    bt = Backtester()
    for alpha_class, _ in ALPHA_FAILURES:
        bt.add_config(BacktestConfig(**{**base, "alpha_class": alpha_class,
                                        "name": f"bad_{alpha_class.__name__}"}))
    bt.add_config(BacktestConfig(**{**base, "name": "good_echo"}))
    err_path = tmp_path / "errors.log"
    results = bt.run_all(verbose=False, err_path=err_path)

    bad = len(ALPHA_FAILURES)
    assert results[:bad] == [None] * bad
    assert results[bad] is not None and results[bad].name == "good_echo"
    log_text = err_path.read_text()
    for alpha_class, fragment in ALPHA_FAILURES:
        name = f"bad_{alpha_class.__name__}"
        assert name in log_text
        start = log_text.index(name)
        section = log_text[start:]
        assert "Traceback (most recent call last)" in section
        assert fragment in section.lower()
    assert "good_echo" not in log_text


# --------------------------------------------------------------------------- beta
def test_missing_beta_file(base, tmp_path):
    missing = tmp_path / "betas_missing.csv"
    config = BacktestConfig(**{**base, "beta_csv_path": str(missing)})
    with pytest.raises(DataError) as info:
        run_backtest(config)
    message = str(info.value)
    assert "beta_csv_path" in message
    assert "betas_missing.csv" in message


# --------------------------------------------------------------------------- pool
def _pool_backtester(base: dict, **changes) -> Backtester:
    bt = Backtester()
    for name in ("pool_a", "pool_b"):
        bt.add_config(BacktestConfig(**{**base, "name": name, **changes}))
    return bt


def test_unpicklable_lambda_in_alpha_kwargs_with_pool(base):
    bt = _pool_backtester(base, alpha_class=AnyKwargsAlpha, alpha_kwargs={"fn": lambda x: x})
    with pytest.raises(TypeError) as info:
        bt.run_all(verbose=False, num_processes=2)
    message = str(info.value)
    assert "alpha_kwargs" in message
    assert "module level" in message
    assert "pool_a" in message


def test_local_class_in_alpha_kwargs_with_pool(base):
    class LocalHelper:
        pass

    bt = _pool_backtester(base, alpha_class=AnyKwargsAlpha, alpha_kwargs={"helper": LocalHelper})
    with pytest.raises(TypeError) as info:
        bt.run_all(verbose=False, num_processes=2)
    message = str(info.value)
    assert "alpha_kwargs" in message
    assert "module level" in message


def test_local_alpha_class_with_pool(base):
    class LocalAlpha(EchoAlpha):
        pass

    bt = _pool_backtester(base, alpha_class=LocalAlpha)
    with pytest.raises(TypeError) as info:
        bt.run_all(verbose=False, num_processes=2)
    message = str(info.value)
    assert "alpha_class" in message
    assert "module level" in message
