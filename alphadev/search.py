"""Adaptive search: Optuna picks the next config; every trial is a config like any other.

A trial's config is the base config with the sampled values (``config_for``): its name
comes from those values (``alphadev.grid.grid_name``), so the same values always give
the same name, folder and fingerprint, and a trial whose config is done already is read
back instead of computed.  The study lives in Optuna's own storage: a journal file in
``{save_dir}/search`` (or an RDB URL), so a killed search resumes and several processes
or machines share it.

The sampler sees the objective on the first ``1 - holdout`` of the period only
(``SearchSpec.split``); the rest is the held-out part, reported next to it for the
chosen config.  docs/semantics.md#adaptive-search is the contract.

Who runs a trial: ``SearchStudy.step`` settles what is finished and asks for new
trials under one lock, and hands back the trials to run; the caller (the Luigi
``Search`` task, or ``Backtester.search``) runs their configs, each under its run lock
(``alphadev.store.run_lock``), so two processes never compute one config.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from alphadev.comparison import comparison_table, write_comparison
from alphadev.config import BacktestConfig, frequency_nanos, pandas_frequency
from alphadev.data.loaders import day_bounds
from alphadev.errors import SpecError
from alphadev.grid import grid_name, value_token
from alphadev.layout import ResultState, SweepDir
from alphadev.metrics import finite_or_none, ic_metrics, json_safe, return_metrics
from alphadev.orchestrator import run_config, run_sweep
from alphadev.progress import ProgressBar
from alphadev.results import BacktestResult, load_result
from alphadev.store import (
    append_error_log,
    atomic_write,
    is_running,
    name_lock,
    pid_alive,
    read_json,
    recover,
    run_lock,
    write_json,
)
from alphadev.validation import ParameterError, check_scalar, plain

log = logging.getLogger(__name__)

SEARCH_LOCK = "~search"  # '~' is in no config name
STUDY_NAME = "alphadev-search"
SAMPLERS = ("tpe", "random")
DIRECTIONS = ("maximize", "minimize")
DEFAULT_HOLDOUT = 0.3
# How long a trial handed to a process stays that process's own before another may take
# it (sooner on the same machine, once that process is dead).
CLAIM_SECONDS = 60.0
# Metrics that can be computed on part of a run (its per-bar pnl and IC).
SEARCH_METRICS = (
    "sharpe", "sortino", "calmar", "annualized_return", "cumulative_return",
    "annualized_volatility", "max_drawdown", "hit_rate", "ic_mean", "ic_ir",
)
# Settings a space may search over (open/close_quantile set the quantile pair); the
# period, the universe and the data are what the search is about, never searched.
SEARCHABLE_SETTINGS = (
    "open_quantile", "close_quantile", "gross_exposure", "frequency", "trading_fee_rate",
    "max_fill_bars", "execution_delay", "execution_lag", "slippage_rate", "capital",
    "impact_coefficient", "impact_window", "max_participation",
)
_CHOICE_TYPES = (bool, int, float, str, type(None))


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise ImportError(
            "adaptive search needs Optuna, an optional extra: pip install 'alphadev[search]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours
    return optuna


# ---------------------------------------------------------------------- the space
@dataclass(frozen=True)
class IntRange:
    """Integers ``low..high`` (both included), every ``step``; ``log`` samples on a log
    scale (step 1 only)."""

    low: int
    high: int
    step: int = 1
    log: bool = False

    def check(self, name: str) -> IntRange:
        low = check_scalar(f"space[{name!r}].low", self.low, integer=True)
        high = check_scalar(f"space[{name!r}].high", self.high, integer=True)
        step = check_scalar(f"space[{name!r}].step", self.step, integer=True, low=1)
        _check_bounds(name, low, high, self.log)
        if self.log and step != 1:
            raise ParameterError(f"space[{name!r}]: log=True needs step=1, got step={step}")
        if (high - low) % step:
            raise ParameterError(
                f"space[{name!r}]: high - low = {high - low} is not a multiple of step={step}; "
                f"use high={low + (high - low) // step * step}"
            )
        return IntRange(low, high, step, bool(self.log))

    def distribution(self) -> Any:
        return _optuna().distributions.IntDistribution(self.low, self.high, log=self.log,
                                                       step=self.step)

    def describe(self) -> dict[str, Any]:
        return {"int": [self.low, self.high], "step": self.step, "log": self.log}


@dataclass(frozen=True)
class FloatRange:
    """Real numbers in ``[low, high]``; ``log`` samples on a log scale (low > 0)."""

    low: float
    high: float
    log: bool = False

    def check(self, name: str) -> FloatRange:
        low = check_scalar(f"space[{name!r}].low", self.low)
        high = check_scalar(f"space[{name!r}].high", self.high)
        _check_bounds(name, low, high, self.log)
        return FloatRange(low, high, bool(self.log))

    def distribution(self) -> Any:
        return _optuna().distributions.FloatDistribution(self.low, self.high, log=self.log)

    def describe(self) -> dict[str, Any]:
        return {"float": [self.low, self.high], "log": self.log}


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (None, bools, numbers or strings)."""

    values: Sequence[Any]

    def check(self, name: str) -> Choice:
        if isinstance(self.values, (str, bytes, Mapping)) or not isinstance(
            self.values, Sequence
        ):
            raise ParameterError(f"space[{name!r}]: Choice({self.values!r}) needs a list of "
                                 "values")
        values = tuple(plain(v) for v in self.values)
        if not values:
            raise ParameterError(f"space[{name!r}]: Choice([]) is empty; list at least two "
                                 "values")
        bad = [v for v in values if not isinstance(v, _CHOICE_TYPES)]
        if bad:
            raise ParameterError(
                f"space[{name!r}]: Choice value {bad[0]!r} is a {type(bad[0]).__name__}; "
                "values must be None, bools, numbers or strings"
            )
        for i, first in enumerate(values):
            for second in values[i + 1:]:
                # Optuna stores a choice by its index in the list, found with ==, so 1 and
                # True (or 1 and 1.0) would come back as the first; names must differ too.
                if first == second or _token(first) == _token(second):
                    raise ParameterError(
                        f"space[{name!r}]: Choice values {first!r} and {second!r} are one "
                        "value to the search (equal, or spelled alike in config names); "
                        "keep one of them"
                    )
        bad_float = [v for v in values if isinstance(v, float) and not math.isfinite(v)]
        if bad_float:
            raise ParameterError(f"space[{name!r}]: Choice value {bad_float[0]!r} is not "
                                 "a finite number")
        if len(values) < 2:
            raise ParameterError(
                f"space[{name!r}]: Choice{values!r} has one value; set it in the base "
                "config instead of searching over it"
            )
        return Choice(values)

    def distribution(self) -> Any:
        return _optuna().distributions.CategoricalDistribution(list(self.values))

    def describe(self) -> dict[str, Any]:
        return {"choice": list(self.values)}


Param = IntRange | FloatRange | Choice


def _token(value: Any) -> str:
    """How a value is spelled in a trial's config name (case-folded, as folders are)."""
    return value_token(value).casefold()


def _check_bounds(name: str, low: float, high: float, log_scale: bool) -> None:
    if low > high:
        raise ParameterError(
            f"space[{name!r}]: the range [{low}, {high}] is inverted (low > high); swap them"
        )
    if low == high:
        raise ParameterError(
            f"space[{name!r}]: the range [{low}, {high}] is empty (low == high); set the "
            "value in the base config instead of searching over it"
        )
    if log_scale and low <= 0:
        raise ParameterError(
            f"space[{name!r}]: log=True needs low > 0, got low={low}"
        )


def _alpha_parameters(alpha_class: type) -> list[str] | None:
    """The alpha's keyword parameters; None when it takes ``**kwargs`` (any name)."""
    import inspect

    parameters = inspect.signature(alpha_class).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return None
    return [p.name for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_space(base: BacktestConfig, space: Mapping[str, Any]) -> dict[str, Param]:
    """The space with every range checked; names are the alpha's parameters or
    ``SEARCHABLE_SETTINGS``."""
    if not isinstance(space, Mapping) or not space:
        raise ParameterError(
            f"space={space!r} must be a non-empty dict of name -> IntRange, FloatRange or "
            "Choice"
        )
    alpha_names = _alpha_parameters(base.alpha_class)
    checked: dict[str, Param] = {}
    for name, param in space.items():
        if not isinstance(name, str):
            raise ParameterError(f"space key {name!r} must be a parameter name (a str)")
        known = (alpha_names is None or name in alpha_names) or name in SEARCHABLE_SETTINGS
        if not known:
            raise ParameterError(
                f"space[{name!r}]: {name!r} is neither a parameter of "
                f"{base.alpha_class.__name__} ({', '.join(alpha_names or []) or 'none'}) nor "
                f"a searchable setting ({', '.join(SEARCHABLE_SETTINGS)})"
            )
        if not isinstance(param, (IntRange, FloatRange, Choice)):
            raise ParameterError(
                f"space[{name!r}]={param!r} must be IntRange(low, high), FloatRange(low, "
                "high) or Choice([...]) from alphadev.search"
            )
        checked[name] = param.check(name)
    return checked


# ---------------------------------------------------------------------- the spec
@dataclass(frozen=True)
class SearchSpec:
    """What to search: a base config, a space over its alpha parameters and settings,
    the objective and the held-out share of the period.

    ``metric`` is computed on the in-sample part of each trial's run (one of
    ``SEARCH_METRICS``); ``holdout`` is the share of the period (by time, rounded down
    to a bar) the sampler never sees; 0 shows it everything.
    """

    base: BacktestConfig
    space: Mapping[str, Any]
    metric: str = "sharpe"
    direction: str = "maximize"
    sampler: str = "tpe"
    seed: int | None = None
    holdout: float = DEFAULT_HOLDOUT
    _built: dict[str, BacktestConfig] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base, BacktestConfig):
            raise ParameterError(f"base={self.base!r} must be a BacktestConfig")
        object.__setattr__(self, "space", check_space(self.base, self.space))
        if self.metric not in SEARCH_METRICS:
            raise ParameterError(
                f"metric={self.metric!r} is not a metric a search can optimise; choose from "
                f"{', '.join(SEARCH_METRICS)}"
            )
        for label, value, allowed in (("direction", self.direction, DIRECTIONS),
                                      ("sampler", self.sampler, SAMPLERS)):
            if value not in allowed:
                raise ParameterError(f"{label}={value!r} must be one of {', '.join(allowed)}")
        if self.seed is not None:
            object.__setattr__(self, "seed", check_scalar("seed", self.seed, integer=True,
                                                          low=0, hint="or None"))
        holdout = check_scalar("holdout", self.holdout, low=0.0, high=0.9,
                               hint="the share of the period kept from the sampler")
        object.__setattr__(self, "holdout", holdout)
        if self.split() <= day_bounds(self.base.start_date, self.base.end_date)[0]:
            raise ParameterError(
                f"holdout={holdout}: the in-sample part of {self.base.start_date}.."
                f"{self.base.end_date} holds no bar; use a smaller holdout or a longer period"
            )

    def split(self) -> pd.Timestamp:
        """The first held-out instant, on the edge of every bar length the space can
        give (so no trial's bar straddles it): the in-sample part is the rows whose
        return is earned before it (``in_sample_rows``)."""
        start, end = day_bounds(self.base.start_date, self.base.end_date)
        step = math.lcm(*self._bar_lengths())
        instant = start.value + int((end.value - start.value) * (1.0 - self.holdout))
        return pd.Timestamp(instant // step * step, tz="UTC")

    def _bar_lengths(self) -> list[int]:
        """The bar lengths (ns) of the base and of every searched ``frequency``."""
        lengths = [self.base.bar_nanos]
        frequencies = self.space.get("frequency")
        if isinstance(frequencies, Choice):
            for value in frequencies.values:
                try:
                    lengths.append(frequency_nanos(pandas_frequency(str(value))))
                except ValueError as exc:
                    raise ParameterError(f"space['frequency']: {value!r} is no bar length "
                                         f"({exc})") from None
        elif frequencies is not None:
            raise ParameterError("space['frequency'] must be a Choice of bar lengths such as "
                                 "Choice(['1h', '4h'])")
        return lengths

    def config_for(self, params: Mapping[str, Any]) -> BacktestConfig:
        """The trial's config: the base with ``params``, named after them (built once
        per process: a search asks for it at every step)."""
        values = {k: plain(v) for k, v in params.items()}
        key = repr(sorted(values.items()))
        built = self._built.get(key)
        if built is None:
            built = self._build(values)
            self._built[key] = built
        return built

    def _build(self, values: dict[str, Any]) -> BacktestConfig:
        missing = sorted(set(self.space) - set(values))
        extra = sorted(set(values) - set(self.space))
        if missing or extra:
            raise ParameterError(
                f"trial parameters {sorted(values)} do not match the space {sorted(self.space)}"
            )
        alpha_names = _alpha_parameters(self.base.alpha_class)
        alpha = {k: v for k, v in values.items()
                 if k not in SEARCHABLE_SETTINGS or (alpha_names and k in alpha_names)}
        settings = {k: v for k, v in values.items() if k not in alpha}
        open_q = settings.pop("open_quantile", self.base.quantile[0])
        close_q = settings.pop("close_quantile", self.base.quantile[1])
        if (open_q, close_q) != tuple(self.base.quantile):
            settings["quantile"] = (open_q, close_q)
        return self.base.replace(name=grid_name(self.base.name, values),
                                 alpha_kwargs={**self.base.alpha_kwargs, **alpha}, **settings)

    def distributions(self) -> dict[str, Any]:
        return {name: param.distribution() for name, param in self.space.items()}

    def definition(self) -> dict[str, Any]:
        """What a study is of: a resumed search must match it (the seed may change)."""
        return {
            "base": self.base.name,
            "base_fingerprint": self.base.fingerprint(),
            "space": {name: param.describe() for name, param in self.space.items()},
            "metric": self.metric,
            "direction": self.direction,
            "holdout": self.holdout,
            "split": self.split().isoformat(),
        }


def check_n_trials(n_trials: Any) -> int:
    return check_scalar("n_trials", n_trials, integer=True, low=1,
                        hint="the number of trials the search runs in total")


# ---------------------------------------------------------------------- objectives
class TrialScore(NamedTuple):
    """The objective on the in-sample part and on the held-out part (None: undefined)."""

    in_sample: float | None
    held_out: float | None


def window_metrics(returns: pd.DataFrame, periods_per_year: float) -> dict[str, float | None]:
    """``SEARCH_METRICS`` of a part of a run's per-bar returns frame."""
    values: dict[str, Any] = {**return_metrics(returns["pnl"].to_numpy(), periods_per_year),
                              **ic_metrics(returns["ic"].to_numpy())}
    return {name: finite_or_none(values[name]) for name in SEARCH_METRICS}


def in_sample_rows(index: pd.DatetimeIndex, config: BacktestConfig,
                   split: pd.Timestamp) -> Any:
    """Rows whose return is earned from prices known before ``split``: row ``t`` runs
    from the close of bar ``t-1`` to the close of bar ``t`` (traded ``execution_lag``
    later), so it is in-sample when ``t + bar + lag <= split``."""
    reach = pd.Timedelta(config.bar_nanos, "ns") + pd.Timedelta(config.execution_lag)
    return index + reach <= split


def score(result: BacktestResult, spec: SearchSpec, config: BacktestConfig) -> TrialScore:
    """The objective on either side of ``spec.split()`` (``in_sample_rows``)."""
    returns = result.sequences
    ppy = float(result.metrics["periods_per_year"])
    before = in_sample_rows(returns.index, config, spec.split())
    in_sample = window_metrics(returns[before], ppy)[spec.metric] if before.any() else None
    held_out = (window_metrics(returns[~before], ppy)[spec.metric]
                if (~before).any() else None)
    return TrialScore(in_sample, held_out)


# ---------------------------------------------------------------------- the study
class TrialRun(NamedTuple):
    """A trial whose config is still to compute."""

    number: int
    params: dict[str, Any]
    config: BacktestConfig


class Round(NamedTuple):
    """What ``SearchStudy.step`` found: trials finished (counted), trials to run now,
    and trials another live process is computing."""

    finished: int
    to_run: list[TrialRun]
    waiting: list[TrialRun]


def open_storage(storage: str | None, journal: Path) -> Any:
    """Optuna storage: an RDB URL, or the journal file (shared over the filesystem)."""
    optuna = _optuna()
    if storage is None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        try:
            backend = optuna.storages.journal.JournalFileBackend(str(journal))
        except OSError as exc:
            raise SpecError(f"the search journal {str(journal)!r} cannot be opened ({exc}); "
                            "the save_dir must be writable") from None
        return optuna.storages.JournalStorage(backend)
    try:
        return optuna.storages.RDBStorage(storage)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's errors are many; one message
        raise SpecError(
            f"storage={storage!r} cannot be opened ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else exc}); pass an RDB URL such as "
            "sqlite:////shared/search.db, or leave it unset for a journal file in save_dir"
        ) from None


class Owner(NamedTuple):
    """The process that runs a study's trials: its host and pid."""

    host: str
    pid: int


def this_process() -> Owner:
    return Owner(socket.gethostname(), os.getpid())


def claimed_elsewhere(claim: Any, owner: Owner, now: float) -> bool:
    """Whether a trial's claim (``{"host", "pid", "at"}``) belongs to another process
    that may still run it: made within ``CLAIM_SECONDS`` (so a reused pid cannot hold a
    trial for ever) and, on this host, by a process still alive."""
    if not isinstance(claim, Mapping):
        return False
    host, pid = claim.get("host"), claim.get("pid")
    if (host, pid) == tuple(owner) or not isinstance(pid, int):
        return False
    age = now - float(claim.get("at", 0.0))
    if not -CLAIM_SECONDS < age < CLAIM_SECONDS:  # run out, or stamped by a clock far ahead
        return False
    return host != owner.host or pid_alive(pid)


class SearchStudy:
    """One search's study; every process of the search opens its own.  ``owner`` is
    the process that runs the trials this study's steps hand out (Luigi's: its main
    process, whose workers are its children)."""

    def __init__(self, spec: SearchSpec, save_dir: str | os.PathLike | None,
                 storage: str | None = None, owner: Owner | None = None) -> None:
        optuna = _optuna()
        self.spec = spec
        self.owner = owner or this_process()
        self.root = SweepDir.of(save_dir) if save_dir is not None else None
        # An in-memory search (no save_dir) keeps its configs' outcomes here.
        self._results: dict[str, BacktestResult] = {}
        self._failures: dict[str, str] = {}
        if self.root is None:
            if storage is not None:  # a shared study needs the shared results beside it
                raise ParameterError(
                    f"storage={storage!r} needs a save_dir: the trials' results live there, "
                    "and a study shared without them would compute every config again"
                )
            backend = optuna.storages.InMemoryStorage()
        else:
            self.root.search.path.mkdir(parents=True, exist_ok=True)
            recover(self.root)  # once per study opened; its trials' configs do not
            self._check_definition()
            backend = open_storage(storage, self.root.search.journal)
        self.study = optuna.create_study(
            study_name=STUDY_NAME, storage=backend, sampler=self._sampler(0),
            direction=spec.direction, load_if_exists=True,
        )
        self._storage = backend
        self._distributions = spec.distributions()

    def _check_definition(self) -> None:
        """The first process writes what is searched; a later one must search the same."""
        assert self.root is not None
        path = self.root.search.definition
        wanted = json_safe(self.spec.definition())
        with name_lock(self.root.root, SEARCH_LOCK):
            if not path.exists():
                write_json(path, wanted)
                return
        saved = read_json(path)
        changed = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
        if changed:
            why = ("the base config or the alpha's code changed"
                   if "base_fingerprint" in changed else "the search changed")
            raise SpecError(
                f"the search in {str(self.root)!r} was started with another "
                f"{', '.join(changed)} ({why}); its trials would not be comparable. Use a "
                f"new save_dir, or delete {str(self.root.search.path)!r} to start over"
            )

    # ------------------------------------------------------------------ stepping
    def step(self, n_trials: int, in_flight: int = 1) -> Round:
        """Settle finished trials, then ask for new ones until ``in_flight`` are to run
        or ``n_trials`` are finished or under way (one lock: no two processes ask for
        the same slot).  A trial handed out to run is claimed by this study's owner;
        another process leaves it alone while the claim holds (``claimed_elsewhere``).

        Open trials beyond ``n_trials - finished`` (left by a killed run with a larger
        total) are neither run nor counted now: the lowest-numbered open trials fill the
        slots, in every process alike, and the rest wait for a larger ``n_trials``."""
        lock = (name_lock(self.root.root, SEARCH_LOCK) if self.root is not None
                else contextlib.nullcontext())
        with lock:
            while True:
                pending = [(trial, run) for trial in sorted(self._running(),
                                                            key=lambda t: t.number)
                           if (run := self._settle(trial)) is not None]
                finished = self.finished_count()
                active = pending[:max(0, n_trials - finished)]
                to_run: list[TrialRun] = []
                waiting: list[TrialRun] = []
                now = time.time()
                for trial, run in active:
                    held = self.root is not None and (
                        claimed_elsewhere(trial.user_attrs.get("claim"), self.owner, now)
                        or is_running(self.root.root, run.config.name))
                    (waiting if held else to_run).append(run)
                    if not held and self.root is not None:
                        self._claim(trial, now)
                room = min(n_trials - finished - len(active), in_flight - len(to_run))
                if room <= 0:
                    return Round(finished, to_run, waiting)
                for _ in range(room):
                    self._ask()

    def _claim(self, trial: Any, now: float) -> None:
        """Mark a trial this process's to run, so that a second process stepping before
        its config's run lock is taken asks for new trials instead of queueing behind
        this one's."""
        claim = {"host": self.owner.host, "pid": self.owner.pid, "at": now}
        self._storage.set_trial_user_attr(trial._trial_id, "claim", claim)

    def _running(self) -> list[Any]:
        optuna = _optuna()
        return self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))

    def finished_count(self) -> int:
        """Trials that count: complete or failed (not ones whose asker died mid-ask)."""
        return len(self.counted_trials())

    def counted_trials(self) -> list[Any]:
        optuna = _optuna()
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        return [t for t in self.study.get_trials(deepcopy=False, states=states)
                if not t.user_attrs.get("abandoned")]

    def _sampler(self, n_asked: int) -> Any:
        """The sampler for the next ask.  Its seed follows the spec's seed and the
        trials asked so far: every process (and every Luigi re-run of the search task)
        builds a new sampler, and one seeded the same way each time would propose the
        same values again."""
        optuna = _optuna()
        seed = (None if self.spec.seed is None
                else int(np.random.SeedSequence([self.spec.seed, n_asked]).generate_state(1)[0]))
        if self.spec.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)

    def _ask(self) -> None:
        self.study.sampler = self._sampler(len(self.study.get_trials(deepcopy=False)))
        trial = self.study.ask(self._distributions)
        try:
            config = self.spec.config_for(trial.params)
        except (ValueError, TypeError) as exc:  # e.g. open_quantile > close_quantile
            report = f"search trial {trial.number} with {trial.params}: {exc}"
            trial.set_user_attr("error", str(exc))
            self._log_failure(report)
            self.study.tell(trial, state=_optuna().trial.TrialState.FAIL)
            return
        trial.set_user_attr("config", config.name)

    def _log_failure(self, report: str) -> None:
        log.warning("%s", report)
        if self.root is not None:
            append_error_log(self.root.errors_log, report)

    def _settle(self, trial: Any) -> TrialRun | None:
        """Tell a running trial's outcome when its config has one; else the run to do."""
        optuna = _optuna()
        name = trial.user_attrs.get("config")
        if name is None or set(trial.params) != set(self.spec.space):
            # Asked by a process that died before it named the config: never run, so it
            # does not count (another process holding the lock would have finished it).
            self._storage.set_trial_user_attr(trial._trial_id, "abandoned", True)
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            return None
        config = self.spec.config_for(trial.params)
        result, failed = self._outcome(config)
        if failed is not None:
            self._storage.set_trial_user_attr(trial._trial_id, "failed", failed)
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            return None
        if result is None:
            return TrialRun(trial.number, dict(trial.params), config)
        scored = score(result, self.spec, config)
        self._storage.set_trial_user_attr(trial._trial_id, "held_out", scored.held_out)
        if scored.in_sample is None or not math.isfinite(scored.in_sample):
            self._storage.set_trial_user_attr(
                trial._trial_id, "failed", f"{self.spec.metric} is undefined in-sample")
            self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial.number, scored.in_sample)
        return None

    def _outcome(self, config: BacktestConfig) -> tuple[BacktestResult | None, str | None]:
        """(the config's result, None), (None, why it failed) or (None, None): to run."""
        if self.root is None:
            if config.name in self._results:
                return self._results[config.name], None
            failure = self._failures.get(config.name)
            return None, failure
        state = self.root.state(config)
        if state is ResultState.DONE:
            return load_result(self.root.result(config.name).path, config=config), None
        if state is ResultState.FAILED:
            try:
                report = str(read_json(self.root.failure(config.name)).get("report", ""))
            except (OSError, ValueError):
                report = ""
            return None, (report.strip().splitlines() or ["the config failed"])[-1]
        return None, None

    def record(self, config: BacktestConfig, result: BacktestResult | None,
               failure: str | None) -> None:
        """An in-memory search's outcome of a config (a saved search reads the folder)."""
        if result is not None:
            self._results[config.name] = result
        elif failure is not None:
            self._failures[config.name] = failure

    # ------------------------------------------------------------------ reading
    def trials_table(self) -> pd.DataFrame:
        """One row per counted trial: number, state, in-sample and held-out objective,
        config, parameters (``param.<name>``), failure."""
        rows = []
        for t in sorted(self.counted_trials(), key=lambda t: t.number):
            rows.append({
                "trial": t.number,
                "state": t.state.name.lower(),
                f"in_sample_{self.spec.metric}": t.value,
                f"held_out_{self.spec.metric}": t.user_attrs.get("held_out"),
                "config": t.user_attrs.get("config"),
                **{f"param.{k}": v for k, v in t.params.items()},
                "failure": t.user_attrs.get("failed") or t.user_attrs.get("error"),
            })
        columns = ["trial", "state", f"in_sample_{self.spec.metric}",
                   f"held_out_{self.spec.metric}", "config",
                   *(f"param.{k}" for k in self.spec.space), "failure"]
        return pd.DataFrame(rows, columns=columns)

    def importances(self) -> dict[str, float]:
        """Optuna's parameter importances (PED-ANOVA) over the complete trials; empty
        while there are too few to tell."""
        optuna = _optuna()
        complete = [t for t in self.counted_trials()
                    if t.state is optuna.trial.TrialState.COMPLETE]
        if len(complete) < 3:
            return {}
        try:
            with warnings.catch_warnings():  # "importances will be equal": shown as such
                warnings.simplefilter("ignore", UserWarning)
                found = optuna.importance.get_param_importances(self.study)
        except (ValueError, RuntimeError, ZeroDivisionError) as exc:
            log.info("parameter importances are not available: %s", exc)
            return {}
        return {k: float(v) for k, v in found.items()}


# ---------------------------------------------------------------------- the summary
@dataclass
class SearchSummary:
    """A finished search: its trials, the chosen (best in-sample) trial, importances."""

    spec: SearchSpec
    trials: pd.DataFrame
    configs: list[BacktestConfig]  # distinct trial configs, in order of first trial
    best: dict[str, Any] | None
    importances: dict[str, float]

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    def record(self) -> dict[str, Any]:
        """``summary.json``: what the report and a rerun read."""
        return json_safe({
            **self.spec.definition(),
            "sampler": self.spec.sampler,
            "seed": self.spec.seed,
            "n_trials": self.n_trials,
            "n_configs": len(self.configs),
            "failed": int((self.trials["state"] == "fail").sum()),
            "best": self.best,
            "importances": self.importances,
            "configs": [{"name": c.name, "fingerprint": c.fingerprint()} for c in self.configs],
        })


def summarize(study: SearchStudy) -> SearchSummary:
    """The search's trials, distinct configs and chosen trial."""
    spec = study.spec
    table = study.trials_table()
    configs: dict[str, BacktestConfig] = {}
    for row in table.to_dict("records"):
        name = row["config"]
        if isinstance(name, str) and name not in configs:
            configs[name] = spec.config_for({k: _cell(row[f"param.{k}"]) for k in spec.space})
    in_col = f"in_sample_{spec.metric}"
    complete = table[table["state"] == "complete"]
    best = None
    if not complete.empty:
        values = pd.to_numeric(complete[in_col], errors="coerce")
        index = values.idxmax() if spec.direction == "maximize" else values.idxmin()
        row = table.loc[index]
        best = {
            "trial": int(row["trial"]),
            "config": row["config"],
            "params": {k: _cell(row[f"param.{k}"]) for k in spec.space},
            "in_sample": finite_or_none(row[in_col]),
            "held_out": finite_or_none(row[f"held_out_{spec.metric}"]),
        }
    return SearchSummary(spec, table, list(configs.values()), best, study.importances())


def _cell(value: Any) -> Any:
    """A table cell as the plain value the sampler gave (numpy scalars, NaN as None)."""
    value = plain(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def save_summary(summary: SearchSummary, save_dir: str | os.PathLike) -> None:
    """``trials.csv`` and ``summary.json`` under ``{save_dir}/search`` (atomically)."""
    folder = SweepDir.of(save_dir).search
    with atomic_write(folder.trials) as tmp:
        summary.trials.to_csv(tmp, index=False)
    write_json(folder.summary, summary.record())


def read_summary(save_dir: str | os.PathLike) -> dict[str, Any] | None:
    try:
        return read_json(SweepDir.of(save_dir).search.summary)
    except (OSError, ValueError):
        return None


def read_trials(save_dir: str | os.PathLike) -> pd.DataFrame | None:
    try:
        return pd.read_csv(SweepDir.of(save_dir).search.trials)
    except (OSError, ValueError):
        return None


def with_search_columns(table: pd.DataFrame, summary: SearchSummary) -> pd.DataFrame:
    """``comparison.csv`` of a search: every config with its trial count, its first
    trial and the objective in-sample and held-out."""
    spec = summary.spec
    trials = summary.trials[summary.trials["config"].notna()]
    grouped = trials.groupby("config", sort=False)
    extra = pd.DataFrame({
        "name": list(grouped.groups),
        "search_trials": grouped.size().to_numpy(),
        "first_trial": grouped["trial"].min().to_numpy(),
        f"in_sample_{spec.metric}": grouped[f"in_sample_{spec.metric}"].first().to_numpy(),
        f"held_out_{spec.metric}": grouped[f"held_out_{spec.metric}"].first().to_numpy(),
    })
    if table.empty:
        return table
    return table.merge(extra, on="name", how="left")


def search_board(table: pd.DataFrame, metric: str, direction: str, top: int = 10) -> str:
    """The best ``top`` trial configs by the in-sample objective (what the sampler saw),
    with the held-out objective beside it and the whole-period Sharpe and DSR (over
    every trial), from a search's ``comparison.csv``."""
    inside, outside = f"in_sample_{metric}", f"held_out_{metric}"
    if table.empty or inside not in table.columns:
        return "no completed trial"
    ranked = table.sort_values(inside, ascending=direction == "minimize",
                               na_position="last", kind="stable").head(top)
    columns = [c for c in ("first_trial", "name", inside, outside, "sharpe", "dsr")
               if c in ranked.columns]
    return ranked[columns].to_string(index=False, na_rep="",
                                     float_format=lambda x: f"{x:.4g}")


RATIO_METRICS = ("sharpe", "sortino", "calmar", "ic_mean", "ic_ir", "annualized_return")
"""Search metrics where 0 is no edge, so "less than half of it held out" means decay."""
HOLDS_UP_RATIO = 0.5  # as the next-bar rule (alphadev.metrics.FRAGILE_RATIO)


def held_out_verdict(metric: str, in_sample: float | None, held_out: float | None,
                     holdout: float) -> str:
    """Whether the chosen trial's edge survives the part the sampler never saw."""
    if holdout <= 0:
        return "No part of the period was held out (holdout=0): the choice is in-sample only."
    if in_sample is None or held_out is None:
        return "The chosen trial's held-out result is undefined."
    shown = f"{in_sample:.2f} in-sample, {held_out:.2f} held out"
    if metric not in RATIO_METRICS:
        return f"The chosen trial: {shown}."
    if in_sample <= 0:
        return f"Even the chosen trial has no edge in-sample ({metric} {in_sample:.2f})."
    if held_out <= 0 or held_out < HOLDS_UP_RATIO * in_sample:
        return f"The chosen trial does not hold up on the held-out part: {shown}."
    return f"The chosen trial holds up on the held-out part: {shown}."


def summary_lines(record: Mapping[str, Any], save_dir: str | os.PathLike) -> list[str]:
    """What a finished search prints above its leaderboard."""
    metric = record["metric"]
    holdout = float(record["holdout"])
    split = pd.Timestamp(record["split"])
    lines = [
        f"alphadev search: {record['n_trials']} trials ({record['n_configs']} distinct "
        f"configs, {record['failed']} failed), sampler {record['sampler']}, results in "
        f"{save_dir}",
    ]
    best = record.get("best")
    if best is None:
        lines.append("no trial completed; see errors.log")
        return lines
    held = best.get("held_out")
    in_sample = best.get("in_sample")
    lines.append(
        f"chosen by in-sample {metric} (bars before {split:%Y-%m-%d %H:%M}): trial "
        f"{best['trial']}, {best['config']}"
    )
    shown_in = "n/a" if in_sample is None else f"{in_sample:.3f}"
    if holdout > 0:
        shown_out = "n/a" if held is None else f"{held:.3f}"
        lines.append(f"  {metric}: {shown_in} in-sample, {shown_out} held-out (the last "
                     f"{holdout:.0%} of the period, never shown to the sampler)")
        lines.append(f"  {held_out_verdict(metric, in_sample, held, holdout)}")
    else:
        lines.append(f"  {metric}: {shown_in} (holdout=0: no held-out part)")
    importances = record.get("importances") or {}
    if importances:
        ranked = sorted(importances.items(), key=lambda kv: -kv[1])
        lines.append("parameter importances: "
                     + ", ".join(f"{k} {v:.2f}" for k, v in ranked))
    return lines


# ---------------------------------------------------------------------- running
POLL_SECONDS = 0.5  # how often a process whose trials are all running elsewhere looks


def run_trial(study: SearchStudy, trial: TrialRun) -> None:
    """Compute one trial's config, once: under its run lock, skipped when another
    process finished it meanwhile.  A failure is recorded (marker, errors.log), and the
    next ``step`` counts the trial as failed."""
    config = trial.config
    if study.root is None:
        run = run_sweep([config], None)
        study.record(config, run.results[0], run.failures.get(config.name))
        return
    with run_lock(study.root.root, config.name):
        if study.root.state(config) in (ResultState.DONE, ResultState.FAILED):
            return
        run_config(config, study.root)


def run_search(study: SearchStudy, n_trials: int, verbose: bool = False) -> SearchSummary:
    """Run trials in this process until ``n_trials`` are finished (counting those of
    every process sharing the study), then summarise (and save, with a save_dir)."""
    n_trials = check_n_trials(n_trials)
    bar = ProgressBar(total=n_trials, desc="trials", disable=not verbose, dynamic_ncols=True)
    try:
        while True:
            found = study.step(n_trials)
            bar.update(min(found.finished, n_trials) - bar.n)
            if found.finished >= n_trials:
                break
            if found.to_run:
                for trial in found.to_run:
                    run_trial(study, trial)
            else:  # every open trial is being computed by another process
                time.sleep(POLL_SECONDS)
    finally:
        bar.close()
    return finish(study)


def finish(study: SearchStudy) -> SearchSummary:
    """The summary; with a save_dir also ``comparison.csv`` (every config, DSR deflated
    over all of them), ``trials.csv`` and ``summary.json``."""
    summary = summarize(study)
    if study.root is not None:
        table = comparison_table(results_of(study, summary), sort_by="sharpe",
                                 n_trials=len(summary.configs))
        write_comparison(with_search_columns(table, summary), study.root.comparison)
        save_summary(summary, study.root.root)
    return summary


def results_of(study: SearchStudy, summary: SearchSummary) -> list[BacktestResult]:
    """The done results of the search's distinct configs, in order of first trial."""
    results = []
    for config in summary.configs:
        if study.root is None:
            result = study._results.get(config.name)
        elif study.root.state(config) is ResultState.DONE:
            result = load_result(study.root.result(config.name).path, config=config)
        else:
            result = None
        if result is not None:
            results.append(result)
    return results


__all__ = [
    "SEARCHABLE_SETTINGS", "SEARCH_METRICS", "Choice", "FloatRange", "IntRange", "Round",
    "SearchSpec", "SearchStudy", "SearchSummary", "TrialRun", "TrialScore", "check_n_trials",
    "finish", "held_out_verdict", "read_summary", "read_trials", "results_of", "run_search",
    "run_trial", "save_summary", "search_board", "score", "summarize", "summary_lines",
    "with_search_columns", "window_metrics", "in_sample_rows",
]
