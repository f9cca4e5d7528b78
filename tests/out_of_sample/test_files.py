"""validation/ from a real sweep's saved results: the files, the command line, bad
input, staleness, and ``pipelines.Validate`` under a real (local) luigi build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import luigi
import numpy as np
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.__main__ import main
from alphadev.comparison import comparison_table, write_comparison
from alphadev.metrics import return_metrics, sharpe_ratio
from alphadev.out_of_sample.files import (
    ValidationParameters,
    read_sweep_returns,
    read_validation,
    validate_sweep,
    validation_is_current,
)
from alphadev.out_of_sample.summary import summary_text, verdict
from alphadev.validation import ParameterError
from tests.alphas import IdleAlpha
from tests.conftest import make_config, write_echo_spec, write_market

PARAMS = ValidationParameters(train="2D", test="1D", blocks=8)
PBO_KEYS = {"pbo", "n_combinations", "blocks", "n_configs", "lambdas", "probability_of_loss",
            "degradation", "walk_forward", "in_sample_best"}


def _sweep(root: Path, market: Path, **grid) -> list:
    bt = Backtester()
    bt.add_multiple_configs(make_config(market, name="echo"),
                            param_grid={"scale": [1.0, -1.0, 0.5]},
                            setting_grid={"quantile": [(0.2, 0.2), (0.4, 0.4)], **grid})
    results = bt.run_all(verbose=False, save_dir=str(root))
    write_comparison(comparison_table(results), root / "comparison.csv")
    return results


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("oos")
    root = base / "runs"
    _sweep(root, write_market(base / "data", days=10))
    return root


def test_the_files_are_written_as_named(swept: Path) -> None:
    validation = validate_sweep(swept, PARAMS)
    folder = swept / "validation"
    assert sorted(p.name for p in folder.iterdir()) == ["folds.csv", "pbo.json",
                                                        "walk_forward.parquet"]
    stitched = pd.read_parquet(folder / "walk_forward.parquet")
    assert stitched.index.name == "timestamp" and list(stitched.columns) == ["pnl", "config"]
    folds = pd.read_csv(folder / "folds.csv")
    assert list(folds.columns) == ["fold", "train_start", "train_end", "test_start",
                                   "test_end", "chosen", "train_metric", "test_metric",
                                   "best_test_metric"]
    summary = json.loads((folder / "pbo.json").read_text())
    assert PBO_KEYS <= set(summary) and summary["n_configs"] == 6
    assert summary["n_combinations"] == len(summary["lambdas"]) == 70
    assert set(summary["degradation"]) == {"slope", "intercept"}
    assert summary["walk_forward"]["num_periods"] == len(stitched)
    # the stitched series is the chosen config's own pnl, fold by fold
    data = read_sweep_returns(swept)
    for fold in folds.itertuples():
        window = stitched.loc[fold.test_start:pd.Timestamp(fold.test_end) - pd.Timedelta("1ns")]
        assert set(window["config"]) == {fold.chosen}
        column = data.pnl[:, data.names.index(fold.chosen)]
        expected = pd.Series(column, index=data.timestamps).loc[window.index]
        np.testing.assert_array_equal(window["pnl"], expected.fillna(0.0))
    # the in-sample choice: best whole-period Sharpe, its metrics on the stitched bars
    sharpes = [sharpe_ratio(np.nan_to_num(c), 8760.0) for c in data.pnl.T]
    best = max(range(len(sharpes)), key=lambda j: (sharpes[j] is not None, sharpes[j] or 0, -j))
    assert summary["in_sample_best_config"] == data.names[best]
    on_bars = pd.Series(data.pnl[:, best], index=data.timestamps).loc[stitched.index]
    assert summary["in_sample_best"] == pytest.approx(
        return_metrics(on_bars.fillna(0.0).to_numpy(), 8760.0))
    back = read_validation(swept)
    assert back is not None and back.summary == validation.summary
    pd.testing.assert_frame_equal(back.walk_forward, validation.walk_forward)
    assert back.folds["chosen"].tolist() == validation.folds["chosen"].tolist()


def test_pbo_ranks_distinct_trials_and_names_the_duplicates(swept: Path) -> None:
    """The echo alpha's position does not depend on its scale: scale 0.5 and 1.0 have the
    same pnl, one trial each (named by the first, 0.5), not a tie in every split."""
    summary = validate_sweep(swept, PARAMS).summary
    assert summary["built_from"]["format"] == 2
    assert summary["n_configs"] == 6 and summary["n_trials"] == 4
    assert summary["duplicate_configs_in_pbo"] == {
        f"echo__quantile={q}__scale=1.0": f"echo__quantile={q}__scale=0.5"
        for q in ("0.2,0.2", "0.4,0.4")
    }
    assert summary["configs_undefined_in_pbo"] == [] and summary["pbo_undefined_reason"] is None
    assert summary["pbo"] == 0.0 and summary["pbo_from_ties"] == 0.0
    text = summary_text(validate_sweep(swept, PARAMS), swept)
    assert "(4 distinct trials of 6 configs; 2 duplicate another: " in text


def _small_sweep(root: Path, market: Path, configs: list) -> Path:
    bt = Backtester()
    for config in configs:
        bt.add_config(config)
    write_comparison(comparison_table(bt.run_all(verbose=False, save_dir=str(root))),
                     root / "comparison.csv")
    return root


def test_configs_that_never_trade_and_two_config_sweeps_leave_pbo_undefined(
    tmp_path: Path,
) -> None:
    """One losing config and two that never trade: PBO undefined (not 0.00 "holds up"),
    and the verdict says the in-sample best lost money in most splits.  Two configs: PBO
    undefined (not "mostly luck" from which of two won)."""
    market = write_market(tmp_path / "data", days=10)
    idle = _small_sweep(tmp_path / "idle", market, [
        make_config(market, name="loser", alpha_kwargs={"scale": -1.0}),
        make_config(market, name="idle_a", alpha_class=IdleAlpha),
        make_config(market, name="idle_b", alpha_class=IdleAlpha, quantile=(0.4, 0.4)),
    ])
    validation = validate_sweep(idle, PARAMS)
    summary = validation.summary
    assert summary["pbo"] is None and summary["n_trials"] == 1
    assert summary["configs_undefined_in_pbo"] == ["idle_a", "idle_b"]
    assert "got 1 of 3 configs (2 have zero spread, so no Sharpe: they never trade)" in \
        summary["pbo_undefined_reason"]
    assert summary["probability_of_loss"] >= 0.5
    assert read_validation(idle).summary == summary
    text = summary_text(validation, idle)
    loss = f"{summary['probability_of_loss']:.0%}"
    assert "PBO n/a over 70 combinations" in text
    assert "1 distinct trial of 3 configs; 2 never trade: idle_a, idle_b" in text
    assert f"verdict: PBO undefined: {summary['pbo_undefined_reason']}; the in-sample best " \
           f"lost money out of sample in {loss} of splits" in text
    assert "holds up" not in text
    pair = _small_sweep(tmp_path / "pair", market, [
        make_config(market, name="free"),
        make_config(market, name="wide", quantile=(0.4, 0.4)),
    ])
    summary = validate_sweep(pair, PARAMS).summary
    assert summary["pbo"] is None and "got 2 of 2 configs;" in summary["pbo_undefined_reason"]
    assert verdict(summary).startswith("PBO undefined: PBO needs at least 3 distinct trials")


def _verdict_of(pbo, loss, ties=0.0, sharpe=1.0):
    return verdict({"pbo": pbo, "probability_of_loss": loss, "pbo_from_ties": ties,
                    "pbo_undefined_reason": None, "walk_forward": {"sharpe": sharpe}})


def test_the_verdict_never_says_holds_up_for_a_loser_nor_overfit_from_ties() -> None:
    assert _verdict_of(0.02, 0.1).startswith("the selection holds up")
    losing = _verdict_of(0.02, 0.93)
    assert "holds up" not in losing and losing.startswith("no edge to select")
    assert losing.endswith("; the in-sample best lost money out of sample in 93% of splits")
    tied = _verdict_of(1.0, 0.0, ties=1.0)
    assert tied.startswith("inconclusive: the in-sample best ranks in the lower half out of "
                           "sample in 100% of splits, 100% of them only because it ties")
    assert "luck" not in tied and "overfit" not in tied
    assert _verdict_of(0.7, 0.2, ties=0.1).startswith("likely overfit")
    assert _verdict_of(0.3, 0.6).startswith("partly overfit") and "in 60% of splits" in \
        _verdict_of(0.3, 0.6)


def test_the_report_skips_a_validation_of_an_older_format(
    swept: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Format 1 ranked duplicate and never-trading configs: its PBO is not shown."""
    from alphadev.report.html import _current_validation

    validate_sweep(swept, PARAMS)
    assert _current_validation(swept) is not None
    path = swept / "validation" / "pbo.json"
    record = json.loads(path.read_text())
    record["built_from"]["format"] = 1
    path.write_text(json.dumps(record))
    with caplog.at_level("WARNING", logger="alphadev.report.html"):
        assert _current_validation(swept) is None
    assert "is of format 1, not 2 (format 1 ranked duplicate" in caplog.text
    assert "run python -m alphadev validate" in caplog.text


def test_staleness_and_damage(swept: Path) -> None:
    validate_sweep(swept, PARAMS)
    identities = read_sweep_returns(swept).identities()
    assert validation_is_current(swept, PARAMS, identities)
    assert not validation_is_current(swept, PARAMS._replace(blocks=6), identities)
    assert not validation_is_current(swept, PARAMS, identities - {min(identities)})
    name, _ = min(identities)
    changed = (identities - {min(identities)}) | {(name, "another-fingerprint")}
    assert not validation_is_current(swept, PARAMS, changed)
    folds = swept / "validation" / "folds.csv"
    folds.write_text(folds.read_text().replace(",", ";", 1))
    assert read_validation(swept) is None
    assert not validation_is_current(swept, PARAMS, identities)


def test_only_the_sweeps_current_results_are_read(swept: Path, tmp_path: Path) -> None:
    table = pd.read_csv(swept / "comparison.csv")
    assert len(read_sweep_returns(swept).names) == 6
    (tmp_path / "comparison.csv").write_text(table.head(4).to_csv(index=False))
    for folder in swept.iterdir():
        if not folder.name.startswith(".") and folder.is_dir() and folder.name != "validation":
            (tmp_path / folder.name).symlink_to(folder)
    assert read_sweep_returns(tmp_path).names == sorted(table["name"].head(4))


def test_configs_left_out_are_named(swept: Path, tmp_path: Path,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """A stale comparison.csv (one result recomputed, one never listed) validates fewer
    configs: never silently."""
    table = pd.read_csv(swept / "comparison.csv", dtype={"fingerprint": str})
    for folder in swept.iterdir():
        if not folder.name.startswith(".") and folder.is_dir() and folder.name != "validation":
            (tmp_path / folder.name).symlink_to(folder)
    names = sorted(table["name"])
    table.loc[table["name"] == names[0], "fingerprint"] = "recomputed-since"
    table[table["name"] != names[1]].to_csv(tmp_path / "comparison.csv", index=False)
    with caplog.at_level("WARNING", logger="alphadev.out_of_sample.files"):
        assert read_sweep_returns(tmp_path).names == names[2:]
    text = caplog.text
    assert f"leaves out 1 config(s) whose folder is missing, damaged or holds another " \
           f"result than recorded: {names[0]}; rerun the sweep" in text
    assert f"leaves out 1 result folder(s) comparison.csv does not list: {names[1]}" in text


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "alphadev", "validate", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_command_line(swept: Path, capsys: pytest.CaptureFixture) -> None:
    done = _cli(str(swept), "--train", "2D", "--test", "1D", "--blocks", "8", "--anchored")
    assert done.returncode == 0, done.stderr
    assert "6 configs" in done.stdout and "PBO" in done.stdout and "verdict:" in done.stdout
    summary = json.loads((swept / "validation" / "pbo.json").read_text())
    assert summary["built_from"]["parameters"]["anchored"] is True
    bad = {
        ("--train", "30D"): "train='30D' is longer than the data",
        ("--train", "soon"): "train='soon' is not a positive time span",
        ("--metric", "profit"): "metric='profit' is not a selection metric",
        ("--blocks", "7"): "blocks=7 must be even",
        ("--blocks", "2"): "blocks=2 must be an integer >= 4",
    }
    for args, message in bad.items():  # in this process: each is one argparse + check
        code = main(["validate", str(swept), "--train", "2D", "--test", "1D", *args])
        assert code == 2 and message in capsys.readouterr().err, args


def test_bad_sweeps(tmp_path: Path) -> None:
    market = write_market(tmp_path / "data", days=4)
    one = tmp_path / "one"
    bt = Backtester()
    bt.add_config(make_config(market, name="alone"))
    results = bt.run_all(verbose=False, save_dir=str(one))
    write_comparison(comparison_table(results), one / "comparison.csv")
    with pytest.raises(ParameterError, match="at least 2 completed configs .* found 1; run"):
        validate_sweep(one, PARAMS)
    mixed = tmp_path / "mixed"
    bt = Backtester()
    for name, frequency in (("hourly", "1h"), ("hourly2", "1h"), ("two_hourly", "2h")):
        bt.add_config(make_config(market, name=name, frequency=frequency,
                                  end_date=pd.Timestamp("2024-01-04").date()))
    results = bt.run_all(verbose=False, save_dir=str(mixed))
    write_comparison(comparison_table(results), mixed / "comparison.csv")
    with pytest.raises(ParameterError, match=r"mixed frequencies \(1h: 2 configs .*2h: 1 "
                       r"configs \(e.g. two_hourly\)\); validate one frequency at a time"):
        validate_sweep(mixed, PARAMS)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        validate_sweep(tmp_path / "nothing", PARAMS)




def test_the_luigi_task_validates_and_rebuilds_when_stale(tmp_path: Path) -> None:
    import pipelines

    market = write_market(tmp_path / "data", days=10)
    spec = tmp_path / "spec.py"
    write_echo_spec(spec, market, [1.0, -1.0, 0.5])
    save_dir = str(tmp_path / "runs")
    task = pipelines.Validate(spec=str(spec), save_dir=save_dir, train="2D", test="1D",
                              blocks=8)
    assert luigi.build([task], local_scheduler=True)
    summary = tmp_path / "runs" / "validation" / "pbo.json"
    first = json.loads(summary.read_text())
    assert first["n_configs"] == 3 and task.complete()
    assert not pipelines.Validate(spec=str(spec), save_dir=save_dir, train="3D", test="1D",
                                  blocks=8).complete()
    write_echo_spec(spec, market, [1.0, -1.0, 0.25])
    assert not task.complete()  # echo2 changed: the validation is stale
    assert luigi.build([task], local_scheduler=True)
    second = json.loads(summary.read_text())
    assert second["built_from"] != first["built_from"] and task.complete()
    write_echo_spec(spec, market, [1.0, -1.0, 0.25, 2.0])
    assert not task.complete()  # echo3 added: the sweep must run it first
    assert luigi.build([task], local_scheduler=True)
    assert json.loads(summary.read_text())["n_configs"] == 4 and task.complete()
    with pytest.raises(ValueError, match="Validate: metric='best' is not a selection metric"):
        pipelines.Validate(spec=str(spec), save_dir=save_dir, metric="best")


def test_a_concurrent_build_never_leaves_a_mix_that_reads_as_current(
    swept: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process rebuilds validation/ (other parameters) right after this build
    wrote folds.csv: this build's pbo.json must not vouch for the other build's files."""
    import contextlib

    import alphadev.out_of_sample.files as files

    other = PARAMS._replace(train="3D")
    real_atomic_write = files.atomic_write

    @contextlib.contextmanager
    def then_the_other_build(target):
        with real_atomic_write(target) as tmp:
            yield tmp
        if Path(target).name == "folds.csv":
            monkeypatch.setattr(files, "atomic_write", real_atomic_write)
            validate_sweep(swept, other)

    monkeypatch.setattr(files, "atomic_write", then_the_other_build)
    validate_sweep(swept, PARAMS)
    identities = read_sweep_returns(swept).identities()
    back = read_validation(swept)
    assert back is None or len(back.folds) == back.summary["n_folds"]
    assert not validation_is_current(swept, PARAMS, identities)
    assert not validation_is_current(swept, other, identities)
