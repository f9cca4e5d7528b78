"""Adaptive search in the library: the space, the objective on either side of the
held-out split, trials as configs, resuming, counting every trial."""

from __future__ import annotations

import datetime as dt
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from alphadev import Backtester
from alphadev.errors import SpecError
from alphadev.layout import SweepDir
from alphadev.metrics import sharpe_ratio
from alphadev.search import (
    Choice,
    FloatRange,
    IntRange,
    Owner,
    SearchSpec,
    SearchStudy,
    claimed_elsewhere,
    run_search,
)
from alphadev.validation import ParameterError
from tests.alphas import CountingAlpha, EchoAlpha, PlantedOptimumAlpha
from tests.conftest import make_config, write_market

PLANE = {"a": FloatRange(0, 1), "b": FloatRange(0, 1)}


@pytest.fixture
def planted(tmp_path: Path):
    market = write_market(tmp_path / "market", days=20)
    return make_config(market, name="planted", alpha_class=PlantedOptimumAlpha,
                       end_date=dt.date(2024, 1, 19))


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# ---------------------------------------------------------------------- the space
@pytest.mark.parametrize("space, message", [
    ({"a": FloatRange(1, 0)}, "inverted (low > high); swap them"),
    ({"a": FloatRange(0.5, 0.5)}, "is empty (low == high)"),
    ({"a": FloatRange(0, 1, log=True)}, "log=True needs low > 0"),
    ({"a": IntRange(5, 2)}, "inverted"),
    ({"a": IntRange(0, 10, step=3)}, "not a multiple of step=3"),
    ({"a": Choice([])}, "Choice([]) is empty"),
    ({"a": Choice([0.5])}, "has one value"),
    ({"a": Choice([(0.1, 0.2), (0.2, 0.3)])}, "values must be None, bools, numbers"),
    ({"a": (0, 1)}, "must be IntRange(low, high), FloatRange(low, high) or Choice"),
    ({}, "must be a non-empty dict"),
])
def test_bad_ranges_name_the_parameter(planted, space, message) -> None:
    with pytest.raises(ParameterError) as caught:
        SearchSpec(planted, space)
    assert message in str(caught.value)


def test_unknown_name_is_named_with_the_valid_ones(planted) -> None:
    with pytest.raises(ParameterError) as caught:
        SearchSpec(planted, {"alpha": FloatRange(0, 1)})
    text = str(caught.value)
    assert "'alpha' is neither a parameter of PlantedOptimumAlpha (a, b, log_path)" in text
    assert "execution_delay" in text and "open_quantile" in text


@pytest.mark.parametrize("field, value, message", [
    ("metric", "dsr", "metric='dsr' is not a metric a search can optimise; choose from sharpe"),
    ("metric", "Sharpe", "choose from"),
    ("sampler", "grid", "sampler='grid' must be one of tpe, random"),
    ("direction", "up", "direction='up' must be one of maximize, minimize"),
    ("holdout", 0.95, "holdout=0.95 must be a finite number >= 0 and <= 0.9"),
    ("seed", -1, "seed=-1 must be an integer >= 0"),
])
def test_bad_search_settings(planted, field, value, message) -> None:
    with pytest.raises(ParameterError) as caught:
        SearchSpec(planted, PLANE, **{field: value})
    assert message in str(caught.value)


@pytest.mark.parametrize("n_trials", [0, -3, 2.5, True])
def test_n_trials_below_one_is_refused(planted, n_trials) -> None:
    with pytest.raises(ParameterError, match=r"n_trials=.* must be an integer >= 1"):
        Backtester().search(planted, PLANE, n_trials=n_trials, verbose=False)


def test_storage_that_cannot_be_opened(planted, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/no/such/folder/study.db"
    with pytest.raises(SpecError) as caught:
        Backtester().search(planted, PLANE, n_trials=2, storage=url, verbose=False,
                            save_dir=tmp_path / "out")
    assert f"storage={url!r} cannot be opened" in str(caught.value)
    with pytest.raises(SpecError, match="cannot be opened"):
        Backtester().search(planted, PLANE, n_trials=2, storage="nosuchdb://x", verbose=False,
                            save_dir=tmp_path / "out")
    with pytest.raises(ParameterError, match="storage='sqlite:///x.db' needs a save_dir"):
        Backtester().search(planted, PLANE, n_trials=2, storage="sqlite:///x.db",
                            verbose=False)


def test_same_values_same_name_and_fingerprint(planted) -> None:
    spec = SearchSpec(planted, {**PLANE, "execution_delay": IntRange(0, 2),
                                "open_quantile": Choice([0.1, 0.2])})
    values = {"a": 0.25, "b": np.float64(0.5), "execution_delay": np.int64(1),
              "open_quantile": 0.1}
    one, two = spec.config_for(values), spec.config_for(dict(reversed(values.items())))
    assert one.name == two.name == (
        "planted__a=0.25__b=0.5__execution_delay=1__open_quantile=0.1")
    assert one.fingerprint() == two.fingerprint()
    assert one.alpha_kwargs == {"a": 0.25, "b": 0.5}
    assert one.execution_delay == 1 and one.quantile == (0.1, 0.2)
    other = spec.config_for({**values, "b": 0.5000001})
    assert other.name != one.name and other.fingerprint() != one.fingerprint()


def test_split_rounds_down_to_a_bar(planted) -> None:
    # 2024-01-02 .. 2024-01-19 is 18 days = 432 hours; 70 % is 302.4 hours -> 302.
    spec = SearchSpec(planted, PLANE, holdout=0.3)
    assert spec.split() == pd.Timestamp("2024-01-02", tz="UTC") + pd.Timedelta(hours=302)
    assert SearchSpec(planted, PLANE, holdout=0).split() == pd.Timestamp("2024-01-20",
                                                                          tz="UTC")


# ---------------------------------------------------------------------- finding
def test_planted_optimum_found_more_often_than_by_random_search(planted) -> None:
    """30 trials, 5 seeds: TPE's chosen trial lies within 0.05 of the optimum far more
    often than random search's (measured: TPE 7 of 8 seeds, random 0 of 8)."""
    hits = {}
    for sampler in ("tpe", "random"):
        found = []
        for seed in range(5):
            summary = Backtester().search(planted, PLANE, n_trials=30, seed=seed,
                                          sampler=sampler, verbose=False)
            params = summary.best["params"]
            found.append(math.dist((params["a"], params["b"]),
                                   PlantedOptimumAlpha.OPTIMUM) < 0.05)
        hits[sampler] = sum(found)
    assert hits["tpe"] >= 4
    assert hits["tpe"] > hits["random"]


def test_objective_is_the_in_sample_metric_and_held_out_is_the_rest(planted) -> None:
    bt = Backtester()
    summary = bt.search(planted, PLANE, n_trials=4, seed=0, verbose=False)
    spec = SearchSpec(planted, PLANE)
    for row in summary.trials.to_dict("records"):
        result = next(r for r in bt.results if r.name == row["config"])
        pnl = result.sequences["pnl"]
        ppy = result.metrics["periods_per_year"]
        inside = pnl[pnl.index < spec.split()]
        assert len(inside) == 302 - 0  # bars 2024-01-02 00:00 .. split - 1 h
        assert row["in_sample_sharpe"] == pytest.approx(sharpe_ratio(inside.to_numpy(), ppy),
                                                        rel=1e-12)
        outside = pnl[pnl.index >= spec.split()]
        assert row["held_out_sharpe"] == pytest.approx(sharpe_ratio(outside.to_numpy(), ppy),
                                                       rel=1e-12)
        assert not math.isclose(row["in_sample_sharpe"], result.metrics["total"]["sharpe"])


def test_held_out_differs_when_the_signal_changes_half_way(tmp_path: Path) -> None:
    market = write_market(tmp_path / "market", days=20)
    values = pd.read_csv(market / "values.csv")
    later = pd.to_datetime(values["timestamp"]) >= pd.Timestamp("2024-01-11", tz="UTC")
    values.loc[later, "value"] *= -1  # the planted edge turns into its opposite
    values.to_csv(market / "values.csv", index=False)
    base = make_config(market, name="flip", end_date=dt.date(2024, 1, 19))
    bt = Backtester()
    summary = bt.search(base, {"scale": FloatRange(0.5, 2.0)}, n_trials=3, seed=1,
                        verbose=False)
    assert summary.best["in_sample"] > 5
    assert summary.best["held_out"] < -5
    full = bt.get_comparison_table().set_index("name").loc[summary.best["config"], "sharpe"]
    assert summary.best["held_out"] < full < summary.best["in_sample"]


# ---------------------------------------------------------------------- trials as configs
def test_every_trial_is_counted_and_repeats_are_read_back(tmp_path: Path) -> None:
    market = write_market(tmp_path / "market", days=10)
    log = tmp_path / "calls.log"
    base = make_config(market, name="count", alpha_class=CountingAlpha,
                       alpha_kwargs={"log_path": str(log)})
    save = tmp_path / "out"
    bt = Backtester()
    summary = bt.search(base, {"scale": Choice([1.0, 2.0, 3.0])}, n_trials=8, seed=0,
                        sampler="random", save_dir=save, verbose=False)
    trials = pd.read_csv(SweepDir.of(save).search.trials)
    assert len(trials) == summary.n_trials == 8
    distinct = trials["config"].unique()
    assert 1 < len(distinct) <= 3 < 8
    assert len(_calls(log)) == len(distinct)  # a repeated config is read back
    table = pd.read_csv(save / "comparison.csv")
    assert sorted(table["name"]) == sorted(distinct)
    assert (table["n_trials"] == len(distinct)).all()
    counts = trials["config"].value_counts()
    assert dict(zip(table["name"], table["search_trials"])) == counts.to_dict()
    # the in-memory table matches the saved one (the DSR deflated over the same trials)
    memory = bt.get_comparison_table().set_index("name")
    for row in table.to_dict("records"):
        assert memory.loc[row["name"], "dsr"] == pytest.approx(row["dsr"], rel=1e-9)


def test_resume_continues_to_n_trials_in_total(planted, tmp_path: Path) -> None:
    save = tmp_path / "out"
    log = tmp_path / "calls.log"
    base = planted.replace(alpha_kwargs={"log_path": str(log)})
    first = Backtester().search(base, PLANE, n_trials=5, seed=2, save_dir=save,
                                verbose=False)
    assert first.n_trials == 5 and len(_calls(log)) == 5
    again = Backtester().search(base, PLANE, n_trials=5, seed=2, save_dir=save,
                                verbose=False)
    assert again.n_trials == 5 and len(_calls(log)) == 5  # nothing to do
    more = Backtester().search(base, PLANE, n_trials=9, seed=2, save_dir=save,
                               verbose=False)
    assert more.n_trials == 9 and len(_calls(log)) == 9
    assert list(more.trials["trial"]) == list(range(9))
    assert more.trials.head(5)["config"].tolist() == first.trials["config"].tolist()


def test_a_resumed_search_must_search_the_same(planted, tmp_path: Path) -> None:
    save = tmp_path / "out"
    Backtester().search(planted, PLANE, n_trials=2, save_dir=save, verbose=False)
    with pytest.raises(SpecError) as caught:
        Backtester().search(planted, PLANE, n_trials=3, save_dir=save, verbose=False,
                            metric="sortino")
    assert "was started with another metric" in str(caught.value)
    assert "delete" in str(caught.value) and "search" in str(caught.value)
    with pytest.raises(SpecError, match="another base_fingerprint"):
        Backtester().search(planted.replace(trading_fee_rate=1e-3), PLANE, n_trials=3,
                            save_dir=save, verbose=False)
    # another seed is the same search, continued
    assert Backtester().search(planted, PLANE, n_trials=3, save_dir=save, seed=9,
                               verbose=False).n_trials == 3


def test_failed_trials_count_and_the_search_goes_on(tmp_path: Path) -> None:
    market = write_market(tmp_path / "market", days=10)
    base = make_config(market, name="fails", alpha_class=EchoAlpha)
    save = tmp_path / "out"
    # open_quantile 0.3 with close_quantile 0.2 is no valid config; a negative scale
    # makes the alpha constant in sign, still fine: only the quantile fails.
    summary = Backtester().search(
        base, {"open_quantile": Choice([0.1, 0.3]), "scale": FloatRange(0.5, 1.5)},
        n_trials=10, seed=3, sampler="random", save_dir=save, verbose=False)
    trials = summary.trials
    assert len(trials) == 10
    failed = trials[trials["state"] == "fail"]
    assert len(failed) > 0 and (failed["param.open_quantile"] == 0.3).all()
    assert failed["failure"].str.contains("open_quantile 0.3 must be <= close_quantile").all()
    assert "open_quantile 0.3 must be <= close_quantile" in (save / "errors.log").read_text()
    table = pd.read_csv(save / "comparison.csv")
    assert len(table) == (trials["state"] == "complete").sum()


def test_a_trial_whose_asker_died_is_not_counted(planted, tmp_path: Path) -> None:
    """A process killed between Optuna's ask and naming the trial's config leaves a
    running trial without a config: it never ran, so it is set aside, not counted."""
    save = tmp_path / "out"
    spec = SearchSpec(planted, PLANE, seed=0)
    study = SearchStudy(spec, save)
    study.study.ask(spec.distributions())  # as if killed right after the ask
    summary = run_search(study, 3)
    assert summary.n_trials == 3
    states = [t.state for t in study.study.get_trials()]
    assert len(states) == 4 and optuna.trial.TrialState.RUNNING not in states
    assert study.study.get_trials()[0].user_attrs["abandoned"] is True


def test_searched_settings_but_not_realism_by_default(planted) -> None:
    spec = SearchSpec(planted.replace(execution_delay=1, trading_fee_rate=1e-3), PLANE)
    config = spec.config_for({"a": 0.1, "b": 0.2})
    assert config.execution_delay == 1 and config.trading_fee_rate == 1e-3
    assert "execution_delay" not in spec.definition()["space"]


def test_validate_and_report_on_a_search_folder(planted, tmp_path: Path) -> None:
    from alphadev.out_of_sample.files import validate_sweep
    from alphadev.report import build_report

    save = tmp_path / "out"
    summary = Backtester().search(planted, PLANE, n_trials=12, seed=4, save_dir=save,
                                  verbose=False)
    validation = validate_sweep(save)
    configs = {tuple(pair) for pair in validation.summary["built_from"]["configs"]}
    assert {name for name, _ in configs} == {c.name for c in summary.configs}
    page = build_report(save, top=3).read_text()
    assert "<h2>Adaptive search</h2>" in page
    assert "12 trials (12 distinct configs, 0 failed" in page
    assert "alt='objective by trial'" in page and "alt='parameter importances'" in page
    best = summary.best
    assert f"{best['in_sample']:.2f}" in page and f"{best['held_out']:.2f}" in page
    assert "The chosen trial holds up on the held-out part" in page
    assert "<h2>Out-of-sample validation</h2>" in page


def test_report_says_when_the_choice_does_not_hold_up(tmp_path: Path) -> None:
    from alphadev.report import build_report

    market = write_market(tmp_path / "market", days=20)
    values = pd.read_csv(market / "values.csv")
    later = pd.to_datetime(values["timestamp"]) >= pd.Timestamp("2024-01-11", tz="UTC")
    values.loc[later, "value"] *= -1
    values.to_csv(market / "values.csv", index=False)
    base = make_config(market, name="flip", end_date=dt.date(2024, 1, 19))
    save = tmp_path / "out"
    Backtester().search(base, {"scale": FloatRange(0.5, 2.0)}, n_trials=3, seed=1,
                        save_dir=save, verbose=False)
    page = build_report(save, top=2).read_text()
    assert "The chosen trial does not hold up on the held-out part" in page


@pytest.mark.parametrize("values, message", [
    ([True, 1, 0.7], "Choice values True and 1 are one value to the search"),
    ([1, 1.0], "Choice values 1 and 1.0"),
    ([0, False], "Choice values 0 and False"),
    (["a b", "a_b"], "spelled alike in config names"),
    ([None, "none"], "Choice values None and 'none'"),
    ([1, "1"], "Choice values 1 and '1'"),
    (["Fast", "fast"], "spelled alike"),
    ([0.5, float("nan")], "is not a finite number"),
])
def test_choices_that_are_one_value_to_the_search(planted, values, message) -> None:
    with pytest.raises(ParameterError) as caught:
        SearchSpec(planted, {"a": Choice(values), "b": FloatRange(0, 1)})
    assert message in str(caught.value)


def test_no_held_out_bar_reaches_the_objective_of_a_coarser_or_later_trade(planted) -> None:
    """The split lies on the edge of every bar length the space can give, and a row is
    in-sample only when its return is earned before the split (t + bar + lag <= T)."""
    from alphadev.search import in_sample_rows

    spec = SearchSpec(planted, {"frequency": Choice(["1h", "1D"]), "b": FloatRange(0, 1)})
    split = spec.split()
    # 2024-01-02 + 70 % of 18 days = 2024-01-14 14:24, down to a day (and an hour)
    assert split == pd.Timestamp("2024-01-14", tz="UTC")
    daily = spec.config_for({"frequency": "1D", "b": 0.5})
    stamps = pd.date_range("2024-01-02", "2024-01-19", freq="1D", tz="UTC")
    inside = stamps[in_sample_rows(stamps, daily, split)]
    assert inside[-1] == pd.Timestamp("2024-01-13", tz="UTC")  # earned to 01-14 00:00
    hourly = pd.date_range("2024-01-02", "2024-01-19 23:00", freq="1h", tz="UTC")
    lagged = planted.replace(execution_lag="5min")
    last = hourly[in_sample_rows(hourly, lagged, split)][-1]
    assert last == split - pd.Timedelta(hours=2)  # the bar earned until T + 5min is out
    assert hourly[in_sample_rows(hourly, planted, split)][-1] == split - pd.Timedelta(hours=1)
    with pytest.raises(ParameterError, match="space\\['frequency'\\] must be a Choice"):
        SearchSpec(planted, {"frequency": IntRange(1, 2)})
    with pytest.raises(ParameterError, match="'2x' is no bar length"):
        SearchSpec(planted, {"frequency": Choice(["1h", "2x"])})


def test_a_smaller_total_leaves_extra_open_trials_unrun_and_uncounted(planted,
                                                                      tmp_path: Path) -> None:
    """A run killed with four trials open, resumed with n_trials=2: two are counted."""
    spec = SearchSpec(planted, PLANE, seed=1)
    study = SearchStudy(spec, tmp_path / "out")
    opened = study.step(10, in_flight=4)
    assert len(opened.to_run) == 4 and opened.finished == 0  # as if killed now
    assert run_search(study, 2).n_trials == 2
    running = [t for t in study.study.get_trials()
               if t.state is optuna.trial.TrialState.RUNNING]
    assert [t.number for t in running] == [2, 3]  # the lowest-numbered filled the slots
    assert run_search(study, 5).n_trials == 5
    assert [t.number for t in study.counted_trials()] == [0, 1, 2, 3, 4]


def test_a_second_process_leaves_the_trials_handed_to_the_first(planted, tmp_path: Path,
                                                                monkeypatch) -> None:
    """Trials handed out but whose configs have not started yet are the asker's while
    its claim holds: a second machine asks for its own, and takes them over only once
    the claim has run out."""
    spec = SearchSpec(planted, PLANE, seed=1)
    first = SearchStudy(spec, tmp_path / "out", owner=Owner("machine-a", 11))
    second = SearchStudy(spec, tmp_path / "out", owner=Owner("machine-b", 22))
    handed = first.step(10, in_flight=2)
    assert [t.number for t in handed.to_run] == [0, 1]
    found = second.step(10, in_flight=2)
    assert [t.number for t in found.waiting] == [0, 1]
    assert [t.number for t in found.to_run] == [2, 3]
    assert [t.number for t in first.step(10, in_flight=2).to_run] == [0, 1]  # its own
    ahead = {"host": "machine-a", "pid": 11, "at": time.time() + 3600}
    assert not claimed_elsewhere(ahead, second.owner, time.time())  # a clock an hour ahead
    monkeypatch.setattr("alphadev.search.CLAIM_SECONDS", 0.0)
    taken = second.step(10, in_flight=4)
    assert [t.number for t in taken.to_run] == [0, 1, 2, 3] and not taken.waiting


def test_a_dead_process_on_this_machine_holds_no_trials(planted, tmp_path: Path,
                                                        monkeypatch) -> None:
    """A killed process's claims on this host are let go at once, not after a timeout;
    a live one's (or a reused pid's) only until the claim runs out."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    spec = SearchSpec(planted, PLANE, seed=1)
    dead = SearchStudy(spec, tmp_path / "out", owner=Owner(socket.gethostname(), child.pid))
    assert len(dead.step(10, in_flight=2).to_run) == 2
    alive = SearchStudy(spec, tmp_path / "out", owner=Owner(socket.gethostname(), os.getpid()))
    assert [t.number for t in alive.step(10, in_flight=2).to_run] == [0, 1]
    other = SearchStudy(spec, tmp_path / "out",
                        owner=Owner(socket.gethostname(), os.getppid()))
    found = other.step(10, in_flight=2)  # the claims are now this (live) process's
    assert [t.number for t in found.waiting] == [0, 1]
    monkeypatch.setattr("alphadev.search.CLAIM_SECONDS", 0.0)
    assert [t.number for t in other.step(10, in_flight=4).to_run] == [0, 1, 2, 3]
