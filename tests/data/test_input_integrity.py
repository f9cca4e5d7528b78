"""Input integrity: what a backtest trades on is exactly what the data files say.

An alpha cannot change the prices (or the per-process parse cache) by editing its
input; timestamps are never guessed; impossible values stop the run with a message
naming the file, the row and the fix; stray spaces in headers and symbols are harmless.
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alphadev import BacktestConfig, CSVDataLoader, DataLoader, ParquetDataLoader
from alphadev import cache as panel_cache
from alphadev.data import files
from alphadev.errors import DataError
from alphadev.runner import run_backtest
from tests.alphas import EchoAlpha
from tests.conftest import SYMBOLS, make_config


# --------------------------------------------------------------------------- helpers
def _same_sequences(result, reference) -> None:
    pd.testing.assert_frame_equal(result.sequences, reference.sequences)
    pd.testing.assert_frame_equal(result.positions, reference.positions)
    pd.testing.assert_frame_equal(result.trades, reference.trades)
    assert result.metrics == reference.metrics


def _modes() -> list[dict]:
    return [{}, {"mode": "streaming", "chunk_days": 2}]


def _rows(*lines: str, header: str = "timestamp,symbol,close") -> str:
    return "\n".join([header, *lines]) + "\n"


def _prices(hours: int = 48, symbols=("AAA", "BBB", "CCC")) -> pd.DataFrame:
    stamps = pd.date_range("2024-01-01", periods=hours, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        {
            "timestamp": np.repeat(stamps.strftime("%Y-%m-%dT%H:%M:%SZ"), len(symbols)),
            "symbol": np.tile(list(symbols), hours),
        }
    )
    frame["close"] = 100.0 + np.sin(np.arange(len(frame)))
    frame["value"] = np.cos(np.arange(len(frame)) * 0.7)
    return frame


def _config(path: Path, name: str = "integrity", **changes) -> BacktestConfig:
    fields = dict(
        name=name, alpha_class=EchoAlpha, alpha_kwargs={},
        start_date="2024-01-01", end_date="2024-01-02", symbols=["AAA", "BBB", "CCC"],
        price_loader=CSVDataLoader(str(path), "close"),
        alpha_loaders=[CSVDataLoader(str(path), "value")], beta_csv_path=None,
    )
    fields.update(changes)
    return BacktestConfig(**fields)


def _error(config: BacktestConfig, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        run_backtest(config)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- 1. alphas
class _Mutating(EchoAlpha):
    """Echo's alpha, computed first; then the input is vandalised."""

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        out = super().compute(data)
        self.vandalise(data)
        return out

    def vandalise(self, data: pd.DataFrame) -> None:
        raise NotImplementedError


class LogCloseAlpha(_Mutating):
    def vandalise(self, data):
        data["close"] = np.log(data["close"])


class ILocAlpha(_Mutating):
    def vandalise(self, data):
        data.iloc[:, 0] = 1.0


class NegativeLocAlpha(_Mutating):
    def vandalise(self, data):
        data.loc[:, "close"] = -1.0


class NumpyWriteAlpha(_Mutating):
    """Writes through the array behind the frame, forcing it writeable when allowed."""

    def vandalise(self, data):
        array = data["close"].to_numpy()
        try:
            array.flags.writeable = True
        except ValueError:
            pass  # memory numpy refuses to unlock: the write below is blocked too
        try:
            array[:] = 1.0
        except ValueError:
            pass


class DropRowsAlpha(_Mutating):
    def vandalise(self, data):
        with warnings.catch_warnings():  # inplace= is deprecated, not gone, in pandas 3
            warnings.simplefilter("ignore")
            data.drop(index=data.index[::2], inplace=True)


class RenameCloseAlpha(_Mutating):
    def vandalise(self, data):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.rename(columns={"close": "price"}, inplace=True)


MUTATORS = [LogCloseAlpha, ILocAlpha, NegativeLocAlpha, NumpyWriteAlpha, DropRowsAlpha,
            RenameCloseAlpha]


@pytest.mark.parametrize("mode", _modes(), ids=["batch", "streaming"])
@pytest.mark.parametrize("alpha_class", MUTATORS, ids=lambda c: c.__name__)
def test_alpha_editing_its_input_does_not_change_the_backtest(market, alpha_class, mode):
    reference = run_backtest(make_config(market, "echo", **mode))
    result = run_backtest(make_config(market, "vandal", alpha_class=alpha_class, **mode))
    _same_sequences(result, reference)


def test_alpha_editing_its_input_does_not_reach_the_next_config(market):
    files.clear_cache()
    panel_cache.clear_memory()
    reference = run_backtest(make_config(market, "echo"))
    parses = dict(files.PARSE_COUNT)
    snapshot = {
        key: {col: table.values(col, "test").copy() for col in table.columns}
        for key, table in files._CACHE.items()
    }
    for alpha_class in MUTATORS:
        for mode in _modes():
            run_backtest(make_config(market, alpha_class.__name__, alpha_class=alpha_class,
                                     **mode))
    for key, columns in snapshot.items():
        for col, before in columns.items():
            np.testing.assert_array_equal(files._CACHE[key].values(col, "test"), before)
    panel_cache.clear_memory()  # rebuild the panel from the parse cache
    again = run_backtest(make_config(market, "echo_again"))
    assert files.PARSE_COUNT == parses  # served by the (untouched) cache, not re-parsed
    _same_sequences(again, reference)


def test_parse_cache_arrays_cannot_be_written(market):
    loader = CSVDataLoader(str(market / "prices.csv"), "close")
    loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 2), SYMBOLS)
    table = next(t for t in files._CACHE.values() if t.path == str(market / "prices.csv"))
    for array in (table.values("close", "test"), table.timestamps):
        with pytest.raises(ValueError):
            array[0] = 0
        view = array[:10]
        with pytest.raises(ValueError):
            view.flags.writeable = True


# --------------------------------------------------------------------------- 2. timestamps
def test_day_first_text_is_rejected_not_guessed(tmp_path):
    path = tmp_path / "day_first.csv"
    path.write_text(_rows("02/01/2024 00:00,AAA,1.0", "13/01/2024 00:00,AAA,2.0"))
    loader = CSVDataLoader(str(path), "close")
    with pytest.raises(DataError) as info:
        loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 2, 28), ["AAA"])
    message = str(info.value)
    for fragment in ("day_first.csv", "'02/01/2024 00:00'", "ISO 8601", "timestamp_format="):
        assert fragment in message, message


def test_non_iso_text_in_parquet_is_rejected(tmp_path):
    path = tmp_path / "text_stamps.parquet"
    pd.DataFrame({"timestamp": ["2024-01-02T00:00:00Z", "Jan 3 2024"], "symbol": "AAA",
                  "close": [1.0, 2.0]}).to_parquet(path)
    with pytest.raises(DataError, match="text_stamps.parquet.*'Jan 3 2024'.*timestamp_format"):
        ParquetDataLoader(str(path), "close").load_date_range(
            dt.date(2024, 1, 1), dt.date(2024, 1, 5), ["AAA"]
        )


@pytest.mark.parametrize(
    "fmt, lines",
    [
        ("%d/%m/%Y %H:%M", ["02/01/2024 00:00,AAA,1.0", "13/01/2024 00:00,AAA,2.0"]),
        ("%d/%m/%Y %H:%M%z", ["02/01/2024 01:00+01:00,AAA,1.0", "13/01/2024 00:00Z,AAA,2.0"]),
        ("%d.%m.%Y", [" 02.01.2024 ,AAA,1.0", "13.01.2024,AAA,2.0"]),
    ],
)
def test_timestamp_format_reads_day_first(tmp_path, fmt, lines):
    path = tmp_path / "day_first.csv"
    path.write_text(_rows(*lines))
    frame = CSVDataLoader(str(path), "close", timestamp_format=fmt).load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 2, 28), ["AAA"]
    )
    assert list(frame.index.get_level_values("timestamp")) == [
        pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-13", tz="UTC")
    ]
    assert frame["close"].tolist() == [1.0, 2.0]


def test_timestamp_format_for_digits_and_parquet(tmp_path):
    csv = tmp_path / "digits.csv"
    csv.write_text(_rows("2024010200,AAA,1.0", "2024011300,AAA,2.0"))
    parquet = tmp_path / "digits.parquet"
    pd.read_csv(csv).to_parquet(parquet)  # an int64 column
    for loader in (CSVDataLoader(str(csv), "close", timestamp_format="%Y%m%d%H"),
                   ParquetDataLoader(str(parquet), "close", timestamp_format="%Y%m%d%H")):
        frame = loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 31), ["AAA"])
        assert list(frame.index.get_level_values("timestamp")) == [
            pd.Timestamp("2024-01-02", tz="UTC"), pd.Timestamp("2024-01-13", tz="UTC")
        ]


def test_text_not_matching_timestamp_format_is_an_error(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(_rows("02/01/2024 00:00,AAA,1.0", "2024-01-03T00:00:00Z,AAA,2.0"))
    loader = CSVDataLoader(str(path), "close", timestamp_format="%d/%m/%Y %H:%M")
    with pytest.raises(DataError, match="mixed.csv.*'2024-01-03T00:00:00Z'.*%d/%m/%Y %H:%M"):
        loader.load_date_range(dt.date(2024, 1, 1), dt.date(2024, 1, 31), ["AAA"])


def test_iso_8601_in_any_spelling_and_offset_still_reads(tmp_path):
    path = tmp_path / "iso.csv"
    path.write_text(_rows(
        "2024-01-02T00:00:00Z,AAA,1.0",
        "2024-01-02 02:00:00+01:00,AAA,2.0",  # 01:00 UTC
        "2024-01-02T02:00,AAA,3.0",  # naive: UTC
        "2024-01-02T03:00:00.000-00:00,AAA,4.0",
        "2024-01-03,AAA,5.0",
    ))
    frame = CSVDataLoader(str(path), "close").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 3), ["AAA"]
    )
    expected = pd.DatetimeIndex(
        ["2024-01-02 00:00", "2024-01-02 01:00", "2024-01-02 02:00", "2024-01-02 03:00",
         "2024-01-03 00:00"], tz="UTC",
    )
    assert list(frame.index.get_level_values("timestamp")) == list(expected)
    assert frame["close"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_parse_cache_key_includes_the_timestamp_format(tmp_path):
    path = tmp_path / "both.csv"
    path.write_text(_rows("2024-01-02T00:00:00,AAA,1.0"))
    args = (dt.date(2024, 1, 1), dt.date(2024, 3, 1), ["AAA"])
    iso = CSVDataLoader(str(path), "close").load_date_range(*args)
    swapped = CSVDataLoader(str(path), "close", timestamp_format="%Y-%d-%mT%H:%M:%S")
    other = swapped.load_date_range(*args)
    assert iso.index.get_level_values(0)[0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert other.index.get_level_values(0)[0] == pd.Timestamp("2024-02-01", tz="UTC")


def test_timestamp_format_in_params_only_when_set(tmp_path):
    path = str(tmp_path / "p.csv")
    plain = CSVDataLoader(path, "close")
    assert plain.to_dict()["params"] == {
        "file_pattern": path, "column_name": "close", "timestamp_col": "timestamp",
        "symbol_col": "symbol",
    }
    assert plain == CSVDataLoader(path, "close", timestamp_format=None)
    day_first = CSVDataLoader(path, "close", timestamp_format="%d/%m/%Y")
    assert day_first.to_dict()["params"]["timestamp_format"] == "%d/%m/%Y"
    assert day_first != plain
    assert "timestamp_format='%d/%m/%Y'" in repr(day_first)
    one = _config(Path(path), price_loader=plain)
    two = _config(Path(path), price_loader=day_first)
    assert one.to_dict() != two.to_dict()


@pytest.mark.parametrize("bad", ["", "dd/mm/yyyy", 5])
def test_timestamp_format_must_be_a_strptime_format(tmp_path, bad):
    with pytest.raises(TypeError, match="timestamp_format must be None or a strptime"):
        CSVDataLoader(str(tmp_path / "x.csv"), "close", timestamp_format=bad)


# --------------------------------------------------------------------------- 3. values
@pytest.mark.parametrize("mode", _modes(), ids=["batch", "streaming"])
@pytest.mark.parametrize("bad", ["-5.0", "0", "inf", "-inf"])
def test_impossible_price_names_file_symbol_and_time(tmp_path, bad, mode):
    frame = _prices().astype({"close": object})
    frame.loc[40, ["close"]] = bad  # row 40: 2024-01-01 13:00, BBB
    path = tmp_path / "bad_prices.csv"
    frame.to_csv(path, index=False)
    message = _error(_config(path, **mode), "bad_prices.csv", "'BBB'",
                     "2024-01-01 13:00:00+00:00", "> 0", "price_loader")
    assert "close=" in message


def test_impossible_price_in_a_glob_names_the_file_holding_it(tmp_path):
    frame = _prices()
    frame.iloc[:60].to_csv(tmp_path / "px_1.csv", index=False)
    second = frame.iloc[60:].copy()
    second.loc[70, "close"] = -1.0
    second.to_csv(tmp_path / "px_2.csv", index=False)
    config = _config(tmp_path / "px_1.csv",
                     price_loader=CSVDataLoader(str(tmp_path / "px_*.csv"), "close"))
    message = _error(config, "px_2.csv", f"{frame.loc[70, 'symbol']!r}")
    assert "px_1.csv'" not in message


class ListLoader(DataLoader):
    """A user loader serving fixed rows."""

    def __init__(self, column: str, rows: list[tuple[str, str, float]]) -> None:
        self.column = column
        self.rows = rows

    def get_columns(self) -> list[str]:
        return [self.column]

    def load_date_range(self, start_date, end_date, symbols):
        frame = pd.DataFrame(self.rows, columns=["timestamp", "symbol", self.column])
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
        return frame[frame["symbol"].isin(symbols)].set_index(["timestamp", "symbol"])


def test_impossible_price_from_a_user_loader(tmp_path):
    rows = [(f"2024-01-01T{h:02d}:00:00Z", s, 10.0 + h) for h in range(6) for s in ("AAA", "BBB")]
    rows[5] = (rows[5][0], rows[5][1], -3.0)
    config = _config(tmp_path / "unused.csv", symbols=["AAA", "BBB"],
                     price_loader=ListLoader("close", rows), alpha_loaders=[])
    _error(config, "ListLoader", "'BBB'", "2024-01-01 02:00:00+00:00", "-3.0")


@pytest.mark.parametrize("text", ["true", "FALSE", " True "])
def test_boolean_text_among_prices_is_an_error(tmp_path, text):
    frame = _prices().astype({"close": object})
    frame.loc[7, "close"] = text
    path = tmp_path / "bool_prices.csv"
    frame.to_csv(path, index=False)
    _error(_config(path), "bool_prices.csv", "'close'", repr(text))


def test_boolean_text_among_alpha_values_is_an_error(tmp_path):
    frame = _prices().astype({"value": object})
    frame.loc[3, "value"] = "true"
    path = tmp_path / "bool_values.csv"
    frame.to_csv(path, index=False)
    _error(_config(path), "bool_values.csv", "'value'", "'true'")


def test_whole_boolean_column_is_read_as_flags(tmp_path):
    path = tmp_path / "flags.csv"
    path.write_text(_rows("2024-01-01T00:00:00Z,AAA,TRUE", "2024-01-01T00:00:00Z,BBB,",
                          "2024-01-01T00:00:00Z,CCC, false ",
                          header="timestamp,symbol,in_universe"))
    flags = CSVDataLoader(str(path), "in_universe").load_date_range(
        dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA", "BBB", "CCC"]
    )
    np.testing.assert_array_equal(flags["in_universe"].to_numpy(), [1.0, np.nan, 0.0])


def test_infinite_alpha_input_names_the_alpha_loader_file(tmp_path):
    prices = _prices()
    path = tmp_path / "prices.csv"
    prices.drop(columns=["value"]).to_csv(path, index=False)
    values = prices.drop(columns=["close"])
    values.loc[9, "value"] = np.inf
    values.to_csv(tmp_path / "signals.csv", index=False)
    config = _config(path, alpha_loaders=[CSVDataLoader(str(tmp_path / "signals.csv"), "value")])
    _error(config, "alpha_loaders", "signals.csv", "value=inf", "'AAA'")


def test_negative_and_missing_alpha_inputs_are_fine(tmp_path):
    frame = _prices()
    frame["value"] = -frame["value"].abs()
    frame.loc[[4, 5], "value"] = np.nan
    path = tmp_path / "ok.csv"
    frame.to_csv(path, index=False)
    assert len(run_backtest(_config(path)).pnl) == 48


# --------------------------------------------------------------------------- 4. smaller
def test_missing_price_column_lists_the_files_real_columns(tmp_path):
    path = tmp_path / "no_values.csv"
    path.write_text(_rows("2024-01-01T00:00:00Z,AAA", header="timestamp,symbol"))
    message = _error(_config(path, price_loader=CSVDataLoader(str(path), "close")),
                     "no_values.csv", "'close'", "['timestamp', 'symbol']")
    assert "[]" not in message


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_symbols_and_headers_with_spaces_match(tmp_path, fmt):
    clean = _prices()
    padded = clean.copy()
    padded["symbol"] = padded["symbol"].map({"AAA": " AAA", "BBB": "BBB ", "CCC": " CCC "})
    padded.columns = ["timestamp", " symbol", " close ", "value "]
    loader = CSVDataLoader if fmt == "csv" else ParquetDataLoader
    paths = []
    for name, frame in (("clean", clean), ("padded", padded)):
        path = tmp_path / f"{name}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
        paths.append(path)
    results = [
        run_backtest(_config(p, price_loader=loader(str(p), "close"),
                             alpha_loaders=[loader(str(p), "value")]))
        for p in paths
    ]
    assert results[1].metadata["symbols_without_data"] == []
    _same_sequences(results[1], results[0])


def test_csv_header_written_with_spaces_after_commas(tmp_path):
    path = tmp_path / "spaced.csv"
    text = _prices().to_csv(index=False).replace(",", ", ")
    path.write_text(text)
    reference = tmp_path / "plain.csv"
    _prices().to_csv(reference, index=False)
    _same_sequences(run_backtest(_config(path)), run_backtest(_config(reference)))


def test_a_symbol_spelled_with_and_without_spaces_is_one_symbol(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text(_rows("2024-01-01T00:00:00Z,AAA,1.0", "2024-01-01T00:00:00Z, AAA,2.0"))
    with pytest.raises(DataError, match="twice.csv.*duplicate.*'AAA'"):
        CSVDataLoader(str(path), "close").load_date_range(
            dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
        )


def test_header_names_that_clash_once_stripped(tmp_path):
    path = tmp_path / "clash.csv"
    path.write_text(
        _rows("2024-01-01T00:00:00Z,AAA,1.0,2.0", header="timestamp,symbol,close, close")
    )
    with pytest.raises(DataError, match="clash.csv.*'close'"):
        CSVDataLoader(str(path), "close").load_date_range(
            dt.date(2024, 1, 1), dt.date(2024, 1, 1), ["AAA"]
        )


@pytest.mark.parametrize("symbol", [" AAA", "AAA ", "\tAAA"])
def test_config_symbol_with_surrounding_whitespace_is_rejected(tmp_path, symbol):
    with pytest.raises(ValueError) as info:
        _config(tmp_path / "x.csv", symbols=[symbol, "BBB"])
    message = str(info.value)
    assert "symbols" in message and repr(symbol) in message and "'AAA'" in message


def test_beta_file_with_spaces_in_header_and_symbols(tmp_path):
    from alphadev.data import beta

    path = tmp_path / "beta.csv"
    path.write_text("symbol, beta, status\n AAA,0.5,ok\nBBB ,2.0, OK\n")
    np.testing.assert_array_equal(beta.load_betas(path, ["AAA", "BBB", "CCC"]), [0.5, 2.0, 1.0])
