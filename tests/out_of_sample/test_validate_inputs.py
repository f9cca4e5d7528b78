"""Bad validation input on a real sweep: spans without a unit, negative spans, windows
of fewer than 2 bars; the same messages from Python, the command line and ``Validate``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.__main__ import main
from alphadev.comparison import comparison_table, write_comparison
from alphadev.out_of_sample.files import ValidationParameters, read_validation, validate_sweep
from alphadev.validation import ParameterError
from tests.conftest import make_config, write_echo_spec, write_market


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four hourly configs over 8 days, with comparison.csv."""
    base = tmp_path_factory.mktemp("inputs")
    market = write_market(base / "data", days=10)
    root = base / "runs"
    bt = Backtester()
    for k, scale in enumerate((1.0, -1.0, 0.5, 2.0)):
        bt.add_config(make_config(market, name=f"echo{k}", alpha_kwargs={"scale": scale}))
    results = bt.run_all(verbose=False, save_dir=str(root))
    write_comparison(comparison_table(results), root / "comparison.csv")
    write_echo_spec(base / "inputs_spec.py", market, [1.0, -1.0, 0.5])
    return root


BAD_SPANS = {
    ("train", "10"): "train='10' has no unit (pandas would read it as 10 nanoseconds); "
                     "write the unit, e.g. '60D'",
    ("test", "3.5"): "test='3.5' has no unit",
    ("train", "-1D"): "train='-1D' is not a positive time span; write one such as '60D'",
    ("test", "-1D"): "test='-1D' is not a positive time span",
    ("test", "0h"): "test='0h' is not a positive time span",
}


@pytest.mark.parametrize(("field", "value"), list(BAD_SPANS))
def test_a_bad_span_is_refused_in_python_before_any_file_is_read(
    hourly: Path, field: str, value: str
) -> None:
    params = ValidationParameters(train="2D", test="1D")._replace(**{field: value})
    with pytest.raises(ParameterError, match=re.escape(BAD_SPANS[field, value])):
        params.check()
    with pytest.raises(ParameterError, match="has no unit|is not a positive time span"):
        validate_sweep(hourly / "nothing-here", params)


@pytest.mark.parametrize(("field", "value"), list(BAD_SPANS))
def test_a_bad_span_is_refused_on_the_command_line(
    hourly: Path, field: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    """``--test -1D`` is read as the option's value (argparse would take it for an
    option), and refused as negative like ``--test=-1D``."""
    spans = {"train": "2D", "test": "1D", field: value}
    for joined in (False, True):
        argv = ["validate", str(hourly), "--blocks", "4"]
        for k, v in spans.items():
            argv += [f"--{k}={v}"] if joined else [f"--{k}", v]
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and BAD_SPANS[field, value] in err, err
    assert not (hourly / "validation").exists()


def test_a_bad_span_is_refused_by_the_luigi_task(hourly: Path) -> None:
    import pipelines

    spec = str(hourly.parent / "inputs_spec.py")
    for (field, value), message in BAD_SPANS.items():
        with pytest.raises(ValueError, match="^Validate: " + re.escape(message)):
            pipelines.Validate(spec=spec, save_dir=str(hourly), **{field: value})


@pytest.mark.parametrize(("field", "value"), [("train", "1h"), ("test", "90min"),
                                              ("test", "1h")])
def test_a_window_of_fewer_than_2_bars_is_refused(
    hourly: Path, field: str, value: str, capsys: pytest.CaptureFixture
) -> None:
    """One-bar windows made hundreds of folds whose every Sharpe was undefined."""
    params = ValidationParameters(train="2D", test="1D", blocks=4)._replace(**{field: value})
    message = f"{field}={value!r} is shorter than 2 bars of the sweep's 1h bars"
    with pytest.raises(ParameterError, match=message):
        validate_sweep(hourly, params)
    assert main(["validate", str(hourly), "--train", params.train, "--test", params.test,
                 "--blocks", "4"]) == 2
    assert message in capsys.readouterr().err
    import pipelines

    with pytest.raises(ValueError, match=f"^Validate: {message}"):
        pipelines.Validate(spec=str(hourly.parent / "inputs_spec.py"), save_dir=str(hourly),
                           train=params.train, test=params.test)
    assert not (hourly / "validation").exists()


def test_two_bars_and_units_in_any_spelling_are_accepted(hourly: Path) -> None:
    validation = validate_sweep(hourly, ValidationParameters(train="2h", test="120min",
                                                             blocks=4))
    assert validation.summary["n_folds"] > 1
    folds = validation.folds
    spans = pd.to_datetime(folds["test_end"]) - pd.to_datetime(folds["test_start"])
    assert set(spans) == {pd.Timedelta("2h")}


def test_configs_left_out_are_recorded_with_their_reason(hourly: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture) -> None:
    """A result recomputed since comparison.csv, a folder it does not list and a
    damaged folder: each in pbo.json's configs_left_out and in the printed summary."""
    table = pd.read_csv(hourly / "comparison.csv", dtype={"fingerprint": str})
    for name in table["name"]:
        (tmp_path / name).symlink_to(hourly / name)
    table.loc[table["name"] == "echo0", "fingerprint"] = "recomputed-since"
    table[table["name"] != "echo3"].to_csv(tmp_path / "comparison.csv", index=False)
    (tmp_path / "echo4").mkdir()
    (tmp_path / "echo4" / "config.json").write_text("{")
    assert main(["validate", str(tmp_path), "--train", "2D", "--test", "1D",
                 "--blocks", "4"]) == 0
    out = capsys.readouterr().out
    reasons = {
        "echo0": "its folder is missing, damaged or holds another result than recorded",
        "echo3": "comparison.csv does not list it",
    }
    summary = json.loads((tmp_path / "validation" / "pbo.json").read_text())
    left_out = summary["configs_left_out"]
    assert [c["name"] for c in left_out] == ["echo0", "echo3", "echo4"]
    assert {c["name"]: c["reason"] for c in left_out[:2]} == reasons
    assert left_out[2]["reason"].startswith("its folder is damaged: ")
    assert "left out: 3 config(s) of the sweep are not validated:\n" + "".join(
        f"  {c['name']}: {c['reason']}\n" for c in left_out) in out
    assert [name for name, _ in summary["built_from"]["configs"]] == ["echo1", "echo2"]


def _dated_sweep(root: Path, market: Path, periods: dict[str, tuple[str, str]]) -> Path:
    bt = Backtester()
    for k, (name, (start, end)) in enumerate(periods.items()):
        bt.add_config(make_config(market, name=name, alpha_kwargs={"scale": 1.0 + k / 4},
                                  start_date=pd.Timestamp(start).date(),
                                  end_date=pd.Timestamp(end).date()))
    results = bt.run_all(verbose=False, save_dir=str(root))
    write_comparison(comparison_table(results), root / "comparison.csv")
    return root


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_market(tmp_path_factory.mktemp("dated") / "data", days=10)


def test_configs_of_different_periods_are_validated_on_the_common_one(
    market: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Only 'full' covers the whole period: PBO used to refuse ('got 1; use fewer
    blocks') and no walk-forward was written."""
    root = _dated_sweep(tmp_path / "runs", market, {
        "full": ("2024-01-02", "2024-01-09"), "late": ("2024-01-04", "2024-01-09"),
        "early": ("2024-01-02", "2024-01-07")})
    assert main(["validate", str(root), "--train", "1D", "--test", "12h",
                 "--blocks", "4"]) == 0
    out = capsys.readouterr().out
    back = read_validation(root)
    assert back is not None
    s = back.summary
    returns = {name: pd.read_parquet(root / name / "sequences" / "returns.parquet").index
               for name in ("full", "late", "early")}
    start, end = returns["late"][0], returns["early"][-1]
    assert s["period"] == {"start": str(start), "end": str(end)}
    assert s["whole_period"] == {"start": str(returns["full"][0]),
                                 "end": str(returns["full"][-1])}
    assert s["configs_not_covering_whole_period"] == [
        {"name": "early", "start": str(returns["early"][0]), "end": str(end)},
        {"name": "late", "start": str(start), "end": str(returns["late"][-1])}]
    # PBO runs on the common period: all 3 configs rank (one alpha, so on these bars
    # their pnl gives fewer than 3 distinct trials: PBO undefined for that reason, not refused).
    assert s["n_configs"] == 3 and s["n_trials"] < 3 and s["pbo"] is None
    assert "distinct trials" in s["pbo_undefined_reason"]
    walk = back.walk_forward.index
    assert walk[0] >= start + pd.Timedelta("1D") and walk[-1] <= end
    assert back.folds["train_start"].iloc[0] == start
    assert (f"period: {start} to {end}, the bars all configs cover (the whole period is "
            f"{returns['full'][0]} to {returns['full'][-1]}); 2 config(s) do not cover it "
            f"all:\n  early: {returns['early'][0]} to {end}\n") in out


def test_pbo_that_cannot_be_computed_leaves_the_walk_forward(
    market: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """One day in common: too few bars for 16 blocks; the walk-forward is written, PBO
    is null with its reason, printed."""
    root = _dated_sweep(tmp_path / "runs", market, {
        "before": ("2024-01-02", "2024-01-04"), "after": ("2024-01-04", "2024-01-09")})
    assert main(["validate", str(root), "--train", "6h", "--test", "3h"]) == 0
    out = capsys.readouterr().out
    back = read_validation(root)
    assert back is not None and len(back.walk_forward) > 0 and len(back.folds) > 1
    reason = back.summary["pbo_undefined_reason"]
    assert back.summary["pbo"] is None and reason.startswith(
        "blocks=16 leaves fewer than 2 bars per block (24 bars); use at most 12 blocks")
    assert f"PBO not computed: {reason}\n" in out
    assert f"verdict: PBO undefined: {reason}" in out


def test_configs_without_a_common_period_are_an_error_naming_them(
    market: Path, tmp_path: Path
) -> None:
    root = _dated_sweep(tmp_path / "runs", market, {
        "first": ("2024-01-02", "2024-01-03"), "second": ("2024-01-06", "2024-01-09")})
    with pytest.raises(ParameterError, match=r"have no period in common .*: first "
                       r"2024-01-02 00:00:00\+00:00 to 2024-01-03 23:00:00\+00:00; second "
                       r"2024-01-06 00:00:00\+00:00 to .*; validate configs whose periods "
                       r"overlap"):
        validate_sweep(root, ValidationParameters(train="6h", test="3h", blocks=4))
    assert not (root / "validation").exists()
