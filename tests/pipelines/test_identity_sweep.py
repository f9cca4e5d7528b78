"""Code identity through real luigi processes: sibling imports, edits, added configs."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conftest import write_market
from tests.pipelines.test_sweep import complete_dirs, luigi, sweep_args
from tests.test_identity import edit, write_project


def _calls(path: Path) -> Counter:
    return Counter(path.read_text().split()) if path.exists() else Counter()


def _stamps(save_dir: Path) -> dict[str, int]:
    return {d.name: (d / "config.json").stat().st_mtime_ns for d in complete_dirs(save_dir)}


def _fingerprints(save_dir: Path) -> dict[str, str]:
    return {d.name: json.loads((d / "config.json").read_text())["fingerprint"]
            for d in complete_dirs(save_dir)}


def test_spec_with_sibling_module_rerun_after_edits(tmp_path: Path) -> None:
    calls = tmp_path / "calls.log"
    spec = write_project(tmp_path / "project", write_market(tmp_path / "data"), calls)
    save_dir = tmp_path / "out"
    # cwd is not the spec's folder and PYTHONPATH is unset: only --spec tells where it is.
    env = {"PYTHONPATH": ""}

    first = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path, env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _calls(calls) == Counter({"1.0": 1, "2.0": 1})
    stamps = _stamps(save_dir)

    # A new grid value in the spec file: only the new config runs.
    edit(spec, '{"scale": [1.0, 2.0]})', '{"scale": [1.0, 2.0, 3.0]})')
    added = luigi(sweep_args(spec, save_dir, "--local-scheduler"), tmp_path, env)
    assert added.returncode == 0, added.stderr[-3000:]
    assert _calls(calls) == Counter({"1.0": 1, "2.0": 1, "3.0": 1})
    assert {n: t for n, t in _stamps(save_dir).items() if n in stamps} == stamps
    assert "another fingerprint" not in added.stderr

    # An edit to the sibling helper module: every config is recomputed, none of them
    # served from {save_dir}/.cache/panels.
    edit(spec.parent / "helpers.py", "return frame * FACTOR", "return frame * FACTOR * 2")
    edited = luigi(sweep_args(spec, save_dir, "--workers", "2", "--local-scheduler"),
                   tmp_path, env)
    assert edited.returncode == 0, edited.stderr[-3000:]
    assert _calls(calls) == Counter({"1.0": 2, "2.0": 2, "3.0": 2})
    assert "saved results have another fingerprint" in edited.stderr
    after = _stamps(save_dir)
    assert all(after[name] != stamps[name] for name in stamps)

    # Spawned pool workers import the spec (and its sibling) again, and label their
    # results with the same fingerprints.
    pool_dir = tmp_path / "pool"
    pooled = luigi(sweep_args(spec, pool_dir, "--num-processes", "2", "--local-scheduler"),
                   tmp_path, {**env, "ALPHADEV_START_METHOD": "spawn"})
    assert pooled.returncode == 0, pooled.stderr[-3000:]
    assert _fingerprints(pool_dir) == _fingerprints(save_dir)
    assert len(_fingerprints(save_dir)) == 3
