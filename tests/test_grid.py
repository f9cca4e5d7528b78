"""Backtester.add_multiple_configs: products, names and their stability."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import pandas as pd
import pytest

from alphadev import Alpha, BacktestConfig, Backtester, CSVDataLoader


class GridAlpha(Alpha):
    lookback = 60

    def __init__(self, window: int = 5, scale: float = 1.0, mode: str = "plain") -> None:
        self.window = window
        self.scale = scale
        self.mode = mode

    def reset(self) -> None:
        pass

    def compute(self, data: pd.DataFrame) -> pd.DataFrame:
        return data.rename(columns={"value": "alpha"})[["alpha"]] * self.scale


@pytest.fixture
def base(tmp_path: Path) -> BacktestConfig:
    path = tmp_path / "data.csv"
    stamps = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    frame = pd.DataFrame(
        [(t.strftime("%Y-%m-%dT%H:%M:%SZ"), s, 100.0, 1.0) for t in stamps for s in ("A", "B")],
        columns=["timestamp", "symbol", "close", "value"],
    )
    frame.to_csv(path, index=False)
    return BacktestConfig(
        name="mom",
        alpha_class=GridAlpha,
        alpha_kwargs={"window": 5, "scale": 1.0},
        start_date="2024-01-01",
        end_date="2024-01-31",
        symbols=["A", "B"],
        price_loader=CSVDataLoader(str(path), "close"),
        alpha_loaders=[CSVDataLoader(str(path), "value")],
        beta_csv_path=None,
    )


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}


def assert_safe_dir_name(name: str) -> None:
    """One directory name on Linux, macOS and Windows (independent of alphadev's check)."""
    assert name and len(name) <= 255, name
    assert name not in (".", ".."), name
    assert not re.search(r'[<>:"/\\|?*\x00-\x1f\s]', name), name
    assert not name.endswith("."), name
    assert name.split(".")[0].upper() not in _WINDOWS_RESERVED, name


def _names(configs) -> list[str]:
    return [c.name for c in configs]


def _name_by_point(configs, keys) -> dict[tuple, str]:
    """Map (values of ``keys``) -> config name; keys read from alpha_kwargs or fields."""
    out = {}
    for c in configs:
        point = tuple(
            c.alpha_kwargs[k] if k in c.alpha_kwargs and k in GRID_PARAMS else getattr(c, k)
            for k in keys
        )
        out[point] = c.name
    return out


GRID_PARAMS = {"window", "scale", "mode"}


# --------------------------------------------------------------------------- product
def test_cartesian_product_count_and_order(base):
    param_grid = {"window": [5, 10, 20], "scale": [0.5, 2.0]}
    setting_grid = {"quantile": [(0.1, 0.2), (0.2, 0.2)], "gross_exposure": [1.0, 2.0]}
    bt = Backtester()
    returned = bt.add_multiple_configs(base, param_grid, setting_grid)

    assert len(bt.configs) == 3 * 2 * 2 * 2
    assert _names(returned) == _names(bt.configs)
    expected = list(
        itertools.product(
            param_grid["window"], param_grid["scale"],
            setting_grid["quantile"], setting_grid["gross_exposure"],
        )
    )
    actual = [
        (c.alpha_kwargs["window"], c.alpha_kwargs["scale"], c.quantile, c.gross_exposure)
        for c in bt.configs
    ]
    assert actual == expected
    for c in bt.configs:  # settings not in the grid come from the base config
        assert c.frequency == base.frequency
        assert c.trading_fee_rate == base.trading_fee_rate
        assert c.symbols == base.symbols
        assert c.price_loader == base.price_loader
    assert len(set(_names(bt.configs))) == len(bt.configs)


def test_only_param_grid(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {"window": [1, 2, 3]})
    assert [c.alpha_kwargs["window"] for c in bt.configs] == [1, 2, 3]
    assert all(c.quantile == base.quantile for c in bt.configs)


def test_only_setting_grid(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {}, {"trading_fee_rate": [0.0, 1e-4]})
    assert [c.trading_fee_rate for c in bt.configs] == [0.0, 1e-4]
    assert all(c.alpha_kwargs == base.alpha_kwargs for c in bt.configs)


def test_configs_are_appended_after_existing_ones(base):
    bt = Backtester()
    bt.add_config(base)
    bt.add_multiple_configs(base, {"window": [1, 2]})
    assert len(bt.configs) == 3
    assert bt.configs[0] is base


# --------------------------------------------------------------------------- names
def test_names_are_safe_directory_names(base):
    bt = Backtester()
    bt.add_multiple_configs(
        base,
        {"scale": [0.1, -2.5, 1e-8], "mode": ["a/b", "x:y", "with space", "CON", ".."]},
        {
            "quantile": [(0.1, 0.2)],
            "start_date": [dt.date(2024, 1, 1), dt.datetime(2024, 1, 2, 12, 30)],
            "frequency": ["15min", "1h"],
        },
    )
    assert len(bt.configs) == 3 * 5 * 2 * 2
    for c in bt.configs:
        assert_safe_dir_name(c.name)
        assert c.name.startswith("mom")
    assert len(set(_names(bt.configs))) == len(bt.configs)


def test_values_ending_in_a_dot_still_give_safe_names(base):
    # "mode" sorts last, so its token ends the name; a trailing '.' is invalid on Windows
    bt = Backtester()
    bt.add_multiple_configs(base, {"mode": ["v1.", "..", "end"]})
    assert len(bt.configs) == 3
    for c in bt.configs:
        assert_safe_dir_name(c.name)
    assert len(set(_names(bt.configs))) == 3


def test_names_differing_only_in_case_are_not_distinct_directories(base):
    # macOS and Windows file systems ignore case: 'Fast' and 'fast' would share a folder
    bt = Backtester()
    try:
        bt.add_multiple_configs(base, {"mode": ["Fast", "fast"]})
    except ValueError as exc:
        assert "Fast" in str(exc) or "fast" in str(exc)
        return
    assert len({n.casefold() for n in _names(bt.configs)}) == 2


def test_long_names_stay_safe_and_distinct(base):
    long_values = ["v" * 150 + str(i) for i in range(3)]
    bt = Backtester()
    bt.add_multiple_configs(base, {"mode": long_values, "window": [123456789, 987654321]})
    for c in bt.configs:
        assert_safe_dir_name(c.name)
    assert len(set(_names(bt.configs))) == 6


def test_name_reflects_the_varying_values(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {"window": [5, 10]}, {"gross_exposure": [1.0, 2.0]})
    names = _names(bt.configs)
    assert all(n.startswith("mom") for n in names)
    assert any("10" in n for n in names)
    assert len(set(names)) == 4


def test_adding_a_value_does_not_rename_existing_configs(base):
    keys = ("window", "quantile")
    small = Backtester()
    small.add_multiple_configs(base, {"window": [5, 10]}, {"quantile": [(0.2, 0.2)]})
    bigger = Backtester()
    bigger.add_multiple_configs(
        base, {"window": [5, 10, 20]}, {"quantile": [(0.2, 0.2), (0.1, 0.2)]}
    )
    before = _name_by_point(small.configs, keys)
    after = _name_by_point(bigger.configs, keys)
    assert len(after) == 6
    for point, name in before.items():
        assert after[point] == name


def test_single_value_grid_then_more_values_keeps_names(base):
    # a sweep started with one value, then widened: the first config keeps its name
    first = Backtester()
    first.add_multiple_configs(base, {"window": [5]})
    widened = Backtester()
    widened.add_multiple_configs(base, {"window": [5, 10]})
    assert first.configs[0].name == _name_by_point(widened.configs, ("window",))[(5,)]


def test_names_are_a_pure_function_of_the_values(base):
    one = Backtester()
    one.add_multiple_configs(base, {"window": [5, 10], "scale": [0.5, 1.5]})
    two = Backtester()  # fresh Backtester, values listed in another order
    two.add_multiple_configs(base, {"window": [10, 5], "scale": [1.5, 0.5]})
    keys = ("window", "scale")
    assert _name_by_point(one.configs, keys) == _name_by_point(two.configs, keys)
    three = Backtester()
    three.add_multiple_configs(base, {"window": [10, 5], "scale": [1.5, 0.5]})
    assert _names(three.configs) == _names(two.configs)


def test_names_do_not_depend_on_grid_key_order(base):
    one = Backtester()
    one.add_multiple_configs(base, {"window": [5, 10], "scale": [0.5]})
    two = Backtester()
    two.add_multiple_configs(base, {"scale": [0.5], "window": [5, 10]})
    keys = ("window", "scale")
    assert _name_by_point(one.configs, keys) == _name_by_point(two.configs, keys)


# --------------------------------------------------------------------------- errors
def test_duplicate_names_within_a_grid_are_an_error(base):
    bt = Backtester()
    with pytest.raises(ValueError, match="duplicate"):
        bt.add_multiple_configs(base, {"mode": ["a/b", "a_b"]})  # both spell a_b
    assert bt.configs == []


def test_repeated_value_is_an_error(base):
    with pytest.raises(ValueError, match="duplicate"):
        Backtester().add_multiple_configs(base, {"window": [5, 5]})


def test_adding_the_same_grid_twice_is_an_error(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {"window": [5, 10]})
    with pytest.raises(ValueError) as info:
        bt.add_multiple_configs(base, {"window": [10, 20]})
    assert "unique" in str(info.value) or "already" in str(info.value)
    assert len(bt.configs) == 2  # nothing of the failed grid was added


def test_grid_name_clashing_with_added_config_is_an_error(base):
    bt = Backtester()
    generated = Backtester().add_multiple_configs(base, {"window": [7]})[0]
    bt.add_config(base.replace(name=generated.name))
    with pytest.raises(ValueError, match=re.escape(generated.name)):
        bt.add_multiple_configs(base, {"window": [7]})


def test_setting_grid_with_name_is_an_error(base):
    with pytest.raises(ValueError, match="name"):
        Backtester().add_multiple_configs(base, {}, {"name": ["a", "b"]})


def test_setting_grid_with_unknown_field_is_an_error(base):
    with pytest.raises(ValueError) as info:
        Backtester().add_multiple_configs(base, {}, {"leverage": [1, 2]})
    assert "leverage" in str(info.value)


def test_setting_grid_with_invalid_value_names_the_field(base):
    with pytest.raises(ValueError, match="gross_exposure"):
        Backtester().add_multiple_configs(base, {}, {"gross_exposure": [1.0, -1.0]})


def test_param_grid_with_unknown_parameter_is_an_error(base):
    with pytest.raises(TypeError, match="alpha_kwargs"):
        Backtester().add_multiple_configs(base, {"lookahead": [1, 2]})


@pytest.mark.parametrize("values", [[], "abc", 5])
def test_grid_values_must_be_a_non_empty_list(base, values):
    with pytest.raises((ValueError, TypeError), match="window"):
        Backtester().add_multiple_configs(base, {"window": values})


# --------------------------------------------------------------------------- overrides
def test_param_grid_values_override_alpha_kwargs(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {"scale": [2.0, 3.0]})
    assert [c.alpha_kwargs for c in bt.configs] == [
        {"window": 5, "scale": 2.0},
        {"window": 5, "scale": 3.0},
    ]
    assert base.alpha_kwargs == {"window": 5, "scale": 1.0}  # the base is unchanged


def test_param_grid_adds_parameters_missing_from_alpha_kwargs(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {"mode": ["fast", "slow"]})
    assert [c.alpha_kwargs["mode"] for c in bt.configs] == ["fast", "slow"]
    assert all(c.alpha_kwargs["window"] == 5 for c in bt.configs)


def test_setting_grid_changes_dates(base):
    bt = Backtester()
    bt.add_multiple_configs(base, {}, {"start_date": ["2024-01-02", dt.date(2024, 1, 3)]})
    assert [c.start_date for c in bt.configs] == [dt.date(2024, 1, 2), dt.date(2024, 1, 3)]
    for c in bt.configs:
        assert_safe_dir_name(c.name)
