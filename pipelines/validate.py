"""``Validate``: the sweep, then its out-of-sample validation in ``{save_dir}/validation/``.

    luigi --module pipelines Validate --spec sweeps/momentum.py --save-dir runs/momentum \\
          --train 60D --test 14D --blocks 16 --local-scheduler

Complete only when ``validation/`` was built from exactly the spec's current results
and these parameters (``alphadev.out_of_sample.files.validation_is_current``): a rerun
after configs changed, or with other parameters, rebuilds it without re-running a
backtest.
"""

from __future__ import annotations

import logging
import sys

import luigi
from luigi.util import inherits

from alphadev.config import frequency_nanos
from alphadev.layout import ResultState, SweepDir
from alphadev.out_of_sample.files import (
    ValidationParameters,
    check_window_bars,
    validate_sweep,
    validation_is_current,
)
from alphadev.out_of_sample.summary import summary_text
from alphadev.validation import ParameterError
from pipelines.tasks import Sweep, SweepFolder, _bad_parameter, _configs

logger = logging.getLogger("luigi-interface")


@inherits(SweepFolder)
class Validate(luigi.Task):
    """Walk-forward selection and PBO of a finished sweep."""

    spec: str  # inherited parameters, typed for mypy (inherits adds them at class creation)
    save_dir: str

    train = luigi.OptionalParameter(
        default=None, description="walk-forward train window (default: 60D or half the span)")
    test = luigi.OptionalParameter(
        default=None, description="walk-forward test window (default: 14D or a quarter)")
    anchored = luigi.BoolParameter(default=False, description="train from the first bar")
    metric = luigi.Parameter(default="sharpe", description="metric a config is chosen by")
    blocks = luigi.IntParameter(default=16, description="PBO blocks (even, >= 4)")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        try:
            self._check_windows(self.parameters().check())
        except ParameterError as exc:
            raise _bad_parameter(f"Validate: {exc}") from None

    def _check_windows(self, params: ValidationParameters) -> None:
        """Windows of at least 2 bars of the spec's (longest) bar, before any config runs."""
        longest = max(_configs(self.spec), key=lambda c: frequency_nanos(c.frequency))
        check_window_bars(params, frequency_nanos(longest.frequency), longest.frequency)

    def parameters(self) -> ValidationParameters:
        return ValidationParameters(self.train, self.test, self.anchored, self.metric,
                                    self.blocks)

    def requires(self):
        return self.clone(Sweep)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(SweepDir.of(self.save_dir).validation.path)

    def _identities(self) -> set[tuple[str, str]]:
        current = set()
        for config in _configs(self.spec):
            saved = SweepDir.of(self.save_dir).saved(config)
            if saved.state is ResultState.DONE and saved.fingerprint is not None:
                current.add((config.name, saved.fingerprint))
        return current

    def complete(self) -> bool:
        """The sweep complete too: luigi never looks at the requirements of a complete
        task, so a config added to the spec would otherwise never be run."""
        return self.requires().complete() and validation_is_current(
            self.save_dir, self.parameters(), self._identities())

    def run(self) -> None:
        self.set_status_message("validating the sweep out of sample")
        validation = validate_sweep(self.save_dir, self.parameters(), self._identities())
        self.set_progress_percentage(100)
        sys.stdout.write(f"\n{summary_text(validation, self.save_dir)}\n")
        sys.stdout.flush()
        logger.info("alphadev: validation of %s written", self.save_dir)

