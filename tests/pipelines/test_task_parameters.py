"""The tasks' parameters keep their names, order and defaults: positional arguments
bind as documented, and a task passes on only what its requirement means."""

from __future__ import annotations

from pathlib import Path

import pipelines
from tests.conftest import write_echo_spec


def test_positional_arguments_bind_as_documented(market: Path, tmp_path: Path) -> None:
    spec = str(write_echo_spec(tmp_path / "positional_spec.py", market, [1.0, 2.0]))
    task = pipelines.BacktestTask(spec, "echo0", str(tmp_path / "out"))
    assert (task.name, task.save_dir) == ("echo0", str(tmp_path / "out"))
    report = pipelines.Report(spec, str(tmp_path), 3)
    assert report.top == 3 and report.get_param_names() == ["spec", "save_dir", "top"]
    validate = pipelines.Validate(spec, str(tmp_path), "2D", "1D")
    assert (validate.train, validate.test) == ("2D", "1D")
    assert pipelines.Sweep.get_param_names() == ["spec", "save_dir", "num_processes", "top",
                                                 "wave_size", "batch_size"]


def test_requirements_get_the_sweep_parameters_only(market: Path, tmp_path: Path) -> None:
    spec = str(write_echo_spec(tmp_path / "parameters_spec.py", market, [1.0, 2.0]))
    sweep = pipelines.Report(spec, str(tmp_path), 3).requires()
    assert isinstance(sweep, pipelines.Sweep)
    assert (sweep.spec, sweep.save_dir, sweep.top, sweep.num_processes) == (
        spec, str(tmp_path), 10, None)  # the report's top is not the leaderboard's
    assert pipelines.Validate(spec, str(tmp_path)).requires() == pipelines.Sweep(
        spec=spec, save_dir=str(tmp_path))
