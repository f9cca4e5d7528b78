"""Data loaders (docs/semantics.md#data-conventions), the parse cache, pickling and fingerprints."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import (
    BacktestConfig,
    CompositeDataLoader,
    CSVDataLoader,
    DataLoader,
    ParquetDataLoader,
)
from alphadev.data import files
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha

SYMBOLS = ["AAA", "BBB", "CCC"]


class CloseAlpha(EchoAlpha):
    """Uses the price column itself, so the price loader can double as alpha loader."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return -data.rename(columns={"close": "alpha"})[["alpha"]]


class CountingLoader(DataLoader):
    """A user loader that counts how often it is read (the counter is not a parameter)."""

    def __init__(self, column: str, rows: list[tuple[str, str, float]]) -> None:
        self.column = column
        self.rows = rows
        self._calls = 0

    def get_columns(self) -> list[str]:
        return [self.column]

    def load_date_range(self, start_date, end_date, symbols):
        self._calls += 1
        frame = pd.DataFrame(self.rows, columns=["timestamp", "symbol", self.column])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        frame = frame[frame["symbol"].isin(symbols)]
        return frame.set_index(["timestamp", "symbol"]).sort_index()


# --------------------------------------------------------------------------- helpers
def _hourly(start: str, hours: int, symbols=SYMBOLS) -> pd.DataFrame:
    stamps = pd.date_range(start, periods=hours, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": np.repeat(stamps, len(symbols)),
            "symbol": np.tile(symbols, len(stamps)),
        }
    )
    frame["close"] = 100.0 + np.arange(len(frame), dtype=float)
    frame["value"] = np.arange(len(frame), dtype=float) % 7
    return frame


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    out = frame.copy()
    if pd.api.types.is_datetime64_any_dtype(out["timestamp"]):
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out.to_csv(path, index=False)
    return path


def _stamps(frame: pd.DataFrame) -> pd.DatetimeIndex:
    return frame.index.get_level_values("timestamp")


def _symbols(frame: pd.DataFrame) -> list[str]:
    return sorted(set(frame.index.get_level_values("symbol")))


def _config(data: Path, name: str = "cfg", **changes) -> BacktestConfig:
    kwargs = dict(
        name=name,
        alpha_class=EchoAlpha,
        alpha_kwargs={"scale": 1.0},
        start_date="2024-01-01",
        end_date="2024-01-02",
        symbols=list(SYMBOLS),
        price_loader=CSVDataLoader(str(data), "close"),
        alpha_loaders=[CSVDataLoader(str(data), "value")],
        beta_csv_path=None,
    )
    kwargs.update(changes)
    return BacktestConfig(**kwargs)


@pytest.fixture
def data_csv(tmp_path: Path) -> Path:
    return _write_csv(_hourly("2023-12-31", 24 * 4), tmp_path / "data.csv")


# --------------------------------------------------------------------------- CSV loader
def test_csv_plain_path(data_csv):
    loader = CSVDataLoader(str(data_csv), "close")
    assert loader.get_columns() == ["close"]
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA", "CCC"])
    assert list(frame.columns) == ["close"]
    assert list(frame.index.names) == ["timestamp", "symbol"]
    assert str(_stamps(frame).tz) == "UTC"
    assert _symbols(frame) == ["AAA", "CCC"]
    assert len(frame) == 2 * 24
    expected = _hourly("2023-12-31", 24 * 4).set_index(["timestamp", "symbol"])["close"]
    pd.testing.assert_series_equal(
        frame["close"], expected.loc[frame.index], check_names=False, check_index_type=False
    )


def test_csv_accepts_path_objects(data_csv):
    frame = CSVDataLoader(data_csv, "close").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
    )
    assert len(frame) == 24


def test_csv_glob_over_several_files(tmp_path):
    full = _hourly("2024-01-01", 24 * 3)
    day = full["timestamp"].dt.strftime("%Y%m%d")
    for value, part in full.groupby(day):
        _write_csv(part, tmp_path / f"px_{value}.csv")
    _write_csv(_hourly("2024-01-01", 24, ["ZZZ"]), tmp_path / "other.csv")  # not matched

    loader = CSVDataLoader(str(tmp_path / "px_*.csv"), "close")
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 3), SYMBOLS)
    assert len(frame) == len(full)
    assert _stamps(frame).min() == pd.Timestamp("2024-01-01", tz="UTC")
    assert _stamps(frame).max() == pd.Timestamp("2024-01-03 23:00", tz="UTC")
    assert _symbols(frame) == SYMBOLS
    expected = full.set_index(["timestamp", "symbol"])["close"].sort_index()
    np.testing.assert_array_equal(frame["close"].sort_index().to_numpy(), expected.to_numpy())
    assert len(loader.files(SYMBOLS)) == 3


def test_csv_glob_rows_duplicated_across_files_is_an_error(tmp_path):
    part = _hourly("2024-01-01", 3)
    _write_csv(part, tmp_path / "g_1.csv")
    _write_csv(part.iloc[[0]], tmp_path / "g_2.csv")
    loader = CSVDataLoader(str(tmp_path / "g_*.csv"), "close")
    with pytest.raises(ValueError, match="g_"):
        loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)


def test_csv_symbol_pattern_files_without_symbol_column(tmp_path):
    full = _hourly("2024-01-01", 24)
    for symbol, part in full.groupby("symbol"):
        _write_csv(part.drop(columns=["symbol"]), tmp_path / f"{symbol}_1h.csv")

    loader = CSVDataLoader(str(tmp_path / "{symbol}_1h.csv"), "close")
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["BBB", "AAA"])
    assert _symbols(frame) == ["AAA", "BBB"]  # CCC exists on disk but was not asked for
    assert len(frame) == 48
    expected = full[full["symbol"] != "CCC"].set_index(["timestamp", "symbol"])["close"]
    np.testing.assert_array_equal(
        frame["close"].sort_index().to_numpy(), expected.sort_index().to_numpy()
    )
    assert sorted(Path(p).name for p in loader.files(["AAA", "BBB"])) == [
        "AAA_1h.csv", "BBB_1h.csv",
    ]


def test_csv_text_values_with_empty_cells(tmp_path):
    # a universe file with a blank cell is read as text, not as a bool column
    (tmp_path / "universe.csv").write_text(
        "timestamp,symbol,in_universe,close\n"
        "2024-01-01T00:00:00Z,AAA,True,1.5\n"
        "2024-01-01T00:00:00Z,BBB,,\n"
        "2024-01-01T00:00:00Z,CCC,false, 2.5\n"
    )
    args = (dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    flags = CSVDataLoader(str(tmp_path / "universe.csv"), "in_universe").load_date_range(*args)
    np.testing.assert_array_equal(flags["in_universe"].to_numpy(), [1.0, np.nan, 0.0])
    closes = CSVDataLoader(str(tmp_path / "universe.csv"), "close").load_date_range(*args)
    np.testing.assert_array_equal(closes["close"].to_numpy(), [1.5, np.nan, 2.5])


# --------------------------------------------------------------------------- Parquet loader
def test_parquet_loader(tmp_path):
    full = _hourly("2023-12-31", 24 * 3)
    path = tmp_path / "data.parquet"
    full.to_parquet(path)
    loader = ParquetDataLoader(str(path), "value")
    assert loader.get_columns() == ["value"]
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    assert len(frame) == 24 * 3
    assert str(_stamps(frame).tz) == "UTC"
    expected = full.set_index(["timestamp", "symbol"])["value"]
    np.testing.assert_array_equal(
        frame["value"].to_numpy(), expected.loc[frame.index].to_numpy()
    )


def test_parquet_symbol_pattern_and_naive_timestamps(tmp_path):
    full = _hourly("2024-01-01", 24)
    for symbol, part in full.groupby("symbol"):
        part = part.drop(columns=["symbol"]).copy()
        part["timestamp"] = part["timestamp"].dt.tz_localize(None)  # naive means UTC
        part.to_parquet(tmp_path / f"{symbol}.parquet")
    loader = ParquetDataLoader(str(tmp_path / "{symbol}.parquet"), "close")
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    assert len(frame) == 72
    assert _stamps(frame).min() == pd.Timestamp("2024-01-01", tz="UTC")


def test_parquet_tz_aware_other_zone(tmp_path):
    stamps = pd.date_range("2024-01-01 01:00", periods=3, freq="1h", tz="Europe/Berlin")
    pd.DataFrame({"timestamp": stamps, "symbol": "AAA", "v": [1.0, 2.0, 3.0]}).to_parquet(
        tmp_path / "berlin.parquet"
    )
    frame = ParquetDataLoader(str(tmp_path / "berlin.parquet"), "v").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
    )
    assert list(_stamps(frame)) == list(
        pd.date_range("2024-01-01 00:00", periods=3, freq="1h", tz="UTC")
    )


# --------------------------------------------------------------------------- dates and zones
def test_load_date_range_is_inclusive_utc_days(data_csv):
    loader = CSVDataLoader(str(data_csv), "close")
    frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 2), ["AAA"])
    stamps = _stamps(frame)
    assert stamps.min() == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert stamps.max() == pd.Timestamp("2024-01-02 23:00", tz="UTC")
    assert len(frame) == 48

    one_day = loader.load_date_range(dt.date(2024, 1, 3), dt.date(2024, 1, 3), ["AAA"])
    assert len(one_day) == 24
    assert _stamps(one_day).min() == pd.Timestamp("2024-01-03", tz="UTC")


def test_tz_aware_strings_in_other_zones_become_utc(tmp_path):
    rows = [
        ("2024-01-01T00:30:00+01:00", 1.0),  # 2023-12-31 23:30 UTC: outside
        ("2024-01-01T01:00:00+01:00", 2.0),  # 2024-01-01 00:00 UTC
        ("2024-01-01T00:30:00-05:00", 3.0),  # 2024-01-01 05:30 UTC
        ("2024-01-02T12:00:00Z", 4.0),
        ("2024-01-03T00:30:00+01:00", 5.0),  # 2024-01-02 23:30 UTC: inside
        ("2024-01-02T20:00:00-05:00", 6.0),  # 2024-01-03 01:00 UTC: outside
    ]
    frame = pd.DataFrame(rows, columns=["timestamp", "v"])
    frame.insert(1, "symbol", "AAA")
    frame.to_csv(tmp_path / "zones.csv", index=False)

    out = CSVDataLoader(str(tmp_path / "zones.csv"), "v").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 2), ["AAA"]
    )
    expected = pd.DatetimeIndex(
        ["2024-01-01 00:00", "2024-01-01 05:30", "2024-01-02 12:00", "2024-01-02 23:30"],
        tz="UTC",
    )
    assert list(_stamps(out)) == list(expected)
    assert out["v"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_config_dates_from_tz_aware_datetimes_are_utc_days(data_csv):
    new_york = dt.timezone(dt.timedelta(hours=-5))
    config = _config(
        data_csv,
        start_date=dt.datetime(2023, 12, 31, 20, 0, tzinfo=new_york),  # 2024-01-01 01:00 UTC
        end_date=pd.Timestamp("2024-01-02 23:30", tz="Asia/Tokyo"),  # 2024-01-02 14:30 UTC
    )
    assert config.start_date == dt.date(2024, 1, 1)
    assert config.end_date == dt.date(2024, 1, 2)


@pytest.mark.parametrize("scale", [1, 1000], ids=["seconds", "milliseconds"])
def test_epoch_timestamps(tmp_path, scale):
    base = int(pd.Timestamp("2024-01-01", tz="UTC").timestamp())
    epochs = [(base - 3600) * scale, base * scale, (base + 3600) * scale, (base + 86400) * scale]
    pd.DataFrame({"timestamp": epochs, "symbol": "AAA", "v": [0.0, 1.0, 2.0, 3.0]}).to_csv(
        tmp_path / "epoch.csv", index=False
    )
    out = CSVDataLoader(str(tmp_path / "epoch.csv"), "v").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
    )
    assert list(_stamps(out)) == [
        pd.Timestamp("2024-01-01 00:00", tz="UTC"), pd.Timestamp("2024-01-01 01:00", tz="UTC"),
    ]
    assert out["v"].tolist() == [1.0, 2.0]


# --------------------------------------------------------------------------- composite
def test_composite_outer_join(tmp_path):
    prices = pd.DataFrame(
        [("2024-01-01T00:00:00Z", "AAA", 10.0), ("2024-01-01T01:00:00Z", "AAA", 11.0),
         ("2024-01-01T00:00:00Z", "BBB", 20.0)],
        columns=["timestamp", "symbol", "close"],
    )
    signals = pd.DataFrame(
        [("2024-01-01T01:00:00Z", "AAA", 0.5), ("2024-01-01T02:00:00Z", "AAA", 0.7),
         ("2024-01-01T00:00:00Z", "CCC", 0.9)],
        columns=["timestamp", "symbol", "value"],
    )
    prices.to_csv(tmp_path / "prices.csv", index=False)
    signals.to_csv(tmp_path / "signals.csv", index=False)
    loader = CompositeDataLoader(
        [CSVDataLoader(str(tmp_path / "prices.csv"), "close"),
         CSVDataLoader(str(tmp_path / "signals.csv"), "value")]
    )
    assert loader.get_columns() == ["close", "value"]
    out = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS).sort_index()
    utc = pd.Timestamp("2024-01-01", tz="UTC")
    h = pd.Timedelta(hours=1)
    expected_index = pd.MultiIndex.from_tuples(
        [(utc, "AAA"), (utc, "BBB"), (utc, "CCC"), (utc + h, "AAA"), (utc + 2 * h, "AAA")],
        names=["timestamp", "symbol"],
    )
    assert list(out.index) == list(expected_index)
    np.testing.assert_array_equal(out["close"].to_numpy(), [10.0, 20.0, np.nan, 11.0, np.nan])
    np.testing.assert_array_equal(out["value"].to_numpy(), [np.nan, np.nan, 0.9, 0.5, 0.7])


def test_composite_column_from_two_loaders_is_an_error(tmp_path, data_csv):
    other = _write_csv(_hourly("2024-01-01", 2), tmp_path / "other_prices.csv")
    with pytest.raises(ValueError) as info:
        CompositeDataLoader(
            [CSVDataLoader(str(data_csv), "close"), CSVDataLoader(str(other), "close")]
        )
    message = str(info.value)
    assert "'close'" in message
    assert "other_prices.csv" in message


def test_composite_user_loader_column_clash_is_an_error(data_csv):
    user = CountingLoader("value", [("2024-01-01T00:00:00Z", "AAA", 1.0)])
    with pytest.raises(ValueError) as info:
        CompositeDataLoader([CSVDataLoader(str(data_csv), "value"), user])
    message = str(info.value)
    assert "column 'value'" in message and "CSVDataLoader(" in message
    assert "CountingLoader(" in message and "column_name=" in message


def test_composite_same_loader_twice_is_read_once():
    user = CountingLoader("x", [("2024-01-01T00:00:00Z", "AAA", 1.0),
                                ("2024-01-01T01:00:00Z", "BBB", 2.0)])
    composite = CompositeDataLoader([user, user])
    assert composite.get_columns() == ["x"]
    out = composite.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA", "BBB"])
    assert user._calls == 1
    assert list(out.columns) == ["x"]
    assert len(out) == 2


def test_composite_equal_file_loaders_are_one_source(data_csv):
    composite = CompositeDataLoader(
        [CSVDataLoader(str(data_csv), "close"), CSVDataLoader(str(data_csv), "close")]
    )
    assert composite.get_columns() == ["close"]


def test_price_loader_doubling_as_alpha_loader_runs(data_csv):
    price = CSVDataLoader(str(data_csv), "close")
    config = _config(data_csv, alpha_class=CloseAlpha, alpha_kwargs={}, alpha_loaders=[price])
    result = run_backtest(config)
    assert len(result.pnl) == 48


# --------------------------------------------------------------------------- parse cache
def test_parse_cache_parses_an_unchanged_file_once(tmp_path):
    path = _write_csv(_hourly("2024-01-01", 24), tmp_path / "cached.csv")
    key = os.path.abspath(path)
    before = files.PARSE_COUNT.get(key, 0)
    close = CSVDataLoader(str(path), "close")
    first = close.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    second = close.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    # another loader (another column, an equal instance) of the same file: still no parse
    CSVDataLoader(str(path), "value").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS
    )
    CSVDataLoader(str(path), "close").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
    )
    assert files.PARSE_COUNT[key] == before + 1
    pd.testing.assert_frame_equal(first, second)


def test_parse_cache_reparses_a_touched_file(tmp_path):
    path = _write_csv(_hourly("2024-01-01", 24), tmp_path / "touched.csv")
    key = os.path.abspath(path)
    loader = CSVDataLoader(str(path), "close")
    loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    count = files.PARSE_COUNT[key]

    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5 * 10**9))  # new mtime only
    loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    assert files.PARSE_COUNT[key] == count + 1

    edited = _hourly("2024-01-01", 24)
    edited["close"] = 1.0
    _write_csv(edited, path)  # new size (and content)
    out = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    assert files.PARSE_COUNT[key] == count + 2
    assert (out["close"] == 1.0).all()


def test_run_backtest_twice_does_not_reparse(data_csv):
    key = os.path.abspath(data_csv)
    run_backtest(_config(data_csv))
    count = files.PARSE_COUNT[key]
    run_backtest(_config(data_csv, alpha_kwargs={"scale": 2.0}))
    assert files.PARSE_COUNT[key] == count


# --------------------------------------------------------------------------- pickling
def test_loaders_pickle_round_trip(tmp_path, data_csv):
    parquet = tmp_path / "p.parquet"
    _hourly("2024-01-01", 2).to_parquet(parquet)
    loaders = [
        CSVDataLoader(str(data_csv), "close"),
        CSVDataLoader(str(tmp_path / "{symbol}.csv"), "close", timestamp_col="ts",
                      symbol_col="sym"),
        ParquetDataLoader(str(parquet), "value"),
        CompositeDataLoader(
            [CSVDataLoader(str(data_csv), "close"), ParquetDataLoader(str(parquet), "value")]
        ),
    ]
    for loader in loaders:
        copy = pickle.loads(pickle.dumps(loader))
        assert copy == loader
        assert type(copy) is type(loader)
        assert copy.get_columns() == loader.get_columns()
    assert loaders[0] != loaders[1]
    assert CSVDataLoader(str(data_csv), "close") != ParquetDataLoader(str(data_csv), "close")


def test_loaded_copy_reads_the_same_data(data_csv):
    loader = CSVDataLoader(str(data_csv), "close")
    copy = pickle.loads(pickle.dumps(loader))
    args = (dt.date(2024, 1, 1), dt.date(2024, 1, 1), SYMBOLS)
    pd.testing.assert_frame_equal(copy.load_date_range(*args), loader.load_date_range(*args))


def test_config_pickle_round_trip(data_csv):
    config = _config(data_csv, quantile=(0.1, 0.3), mode="streaming", chunk_days=1)
    copy = pickle.loads(pickle.dumps(config))
    assert copy == config
    assert copy.fingerprint() == config.fingerprint()
    assert copy.to_dict() == config.to_dict()


# --------------------------------------------------------------------------- to_dict
def test_to_dict_is_json_serialisable(tmp_path, data_csv):
    universe = _write_csv(
        _hourly("2024-01-01", 1).assign(in_universe=True), tmp_path / "universe.csv"
    )
    config = _config(
        data_csv,
        start_date=dt.date(2024, 1, 1),
        end_date=dt.datetime(2024, 1, 2, 12, 0),
        universe_loader=CSVDataLoader(str(universe), "in_universe"),
        beta_csv_path=str(tmp_path / "betas.csv"),
    )
    description = config.to_dict()
    text = json.dumps(description)
    assert json.loads(text) == description
    assert description["alpha_class"] == f"{EchoAlpha.__module__}:EchoAlpha"
    assert description["alpha_kwargs"] == {"scale": 1.0}
    assert description["start_date"] == "2024-01-01"
    assert description["end_date"] == "2024-01-02"
    assert str(data_csv) in text
    assert "in_universe" in text


# --------------------------------------------------------------------------- fingerprint
FINGERPRINT_MODULE = '''
import pandas as pd

from alphadev import Alpha, BacktestConfig, CSVDataLoader


class FingerprintAlpha(Alpha):
    version = 3
    lookback = 120

    def __init__(self, window=5):
        self.window = window

    def reset(self):
        pass

    def compute(self, data):
        return data.rename(columns={"value": "alpha"})[["alpha"]]


def make_config(data_path, name="fp"):
    return BacktestConfig(
        name=name,
        alpha_class=FingerprintAlpha,
        alpha_kwargs={"window": 7},
        start_date="2024-01-01",
        end_date="2024-01-02",
        symbols=["BBB", "AAA"],
        price_loader=CSVDataLoader(data_path, "close"),
        alpha_loaders=[CSVDataLoader(data_path, "value")],
        beta_csv_path=None,
        quantile=(0.1, 0.2),
    )
'''


def test_fingerprint_is_equal_in_another_process(tmp_path, monkeypatch, data_csv):
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    (module_dir / "alphadev_fp_module.py").write_text(textwrap.dedent(FINGERPRINT_MODULE))
    monkeypatch.syspath_prepend(str(module_dir))
    module = importlib.import_module("alphadev_fp_module")
    mine = module.make_config(str(data_csv)).fingerprint()

    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import alphadev_fp_module as m; "
        "print(m.make_config(sys.argv[2]).fingerprint())"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONHASHSEED": "1234"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(module_dir), str(data_csv)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == mine


def test_fingerprint_ignores_the_name(data_csv):
    config = _config(data_csv, name="one")
    assert config.replace(name="two").fingerprint() == config.fingerprint()
    assert _config(data_csv, name="three").fingerprint() == config.fingerprint()


def test_fingerprint_is_stable_for_equal_configs(data_csv):
    assert _config(data_csv).fingerprint() == _config(data_csv).fingerprint()


def test_fingerprint_changes_when_a_data_file_changes(data_csv):
    before = _config(data_csv).fingerprint()
    st = os.stat(data_csv)
    os.utime(data_csv, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched = _config(data_csv).fingerprint()
    assert touched != before

    frame = pd.read_csv(data_csv)
    frame.loc[0, "close"] = 12345.678
    frame.to_csv(data_csv, index=False)
    assert _config(data_csv).fingerprint() not in (before, touched)


def test_fingerprint_changes_when_a_symbol_pattern_file_changes(tmp_path):
    full = _hourly("2024-01-01", 24)
    for symbol, part in full.groupby("symbol"):
        _write_csv(part.drop(columns=["symbol"]), tmp_path / f"{symbol}.csv")
    pattern = str(tmp_path / "{symbol}.csv")
    loaders = dict(
        price_loader=CSVDataLoader(pattern, "close"),
        alpha_loaders=[CSVDataLoader(pattern, "value")],
    )
    before = _config(tmp_path / "unused.csv", **loaders).fingerprint()
    shorter = full[full["symbol"] == "BBB"].drop(columns=["symbol"]).iloc[:5]
    _write_csv(shorter, tmp_path / "BBB.csv")
    assert _config(tmp_path / "unused.csv", **loaders).fingerprint() != before


def test_fingerprint_changes_when_alpha_kwargs_change(data_csv):
    one = _config(data_csv, alpha_kwargs={"scale": 1.0}).fingerprint()
    two = _config(data_csv, alpha_kwargs={"scale": 2.0}).fingerprint()
    assert one != two


def test_fingerprint_changes_when_alpha_version_changes(data_csv, monkeypatch):
    before = _config(data_csv).fingerprint()
    monkeypatch.setattr(EchoAlpha, "version", 2, raising=False)
    assert _config(data_csv).fingerprint() != before


def test_fingerprint_changes_with_settings(data_csv):
    fingerprints = {
        _config(data_csv).fingerprint(),
        _config(data_csv, quantile=(0.1, 0.2)).fingerprint(),
        _config(data_csv, gross_exposure=2.0).fingerprint(),
        _config(data_csv, trading_fee_rate=0.0).fingerprint(),
        _config(data_csv, end_date="2024-01-03").fingerprint(),
        _config(data_csv, max_fill_bars=0).fingerprint(),
    }
    assert len(fingerprints) == 6
