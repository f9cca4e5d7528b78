"""``alphadev.layout`` is the one owner of the results layout.

No other module of ``alphadev`` or ``pipelines`` spells a file or folder name that
lives under a sweep folder: in code or in a message (docstrings and comments may
describe the layout).  And ``SweepDir.state`` answers for every kind of folder.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from alphadev.layout import ResultState, SweepDir
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]
OWNER = Path("alphadev/layout.py")

# Names under a sweep folder: any *.json/.csv/.parquet/.log/.lock/.npz/.html file, the
# folders, and the temporary prefixes.  A string with a space is prose (a message may
# name a file to the user); a path is spelled without one.
FILE = re.compile(r"[\w~-]*\.(json|csv|parquet|log|lock|npz|html)\b")
FOLDERS = re.compile(r"(?<![\w-])(sequences|validation|\.failed|\.cache|panels|\.locks|"
                     r"\.tmp-|\.trash-)(?![\w])")
# Files outside a sweep folder: a data folder's own files (written by alphadev.synthetic)
# and what a user passes in (their spec, their CSV data).
ELSEWHERE = {
    ("alphadev/synthetic.py", "SYNTHETIC.txt"),
    ("alphadev/synthetic.py", "beta.csv"),
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def offenders(path: Path) -> list[str]:
    """``file:line: 'literal'`` for every layout name a module's strings spell."""
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip:
            continue
        text = node.value
        if any(c.isspace() for c in text):
            continue
        names = [m.group(0) for m in FILE.finditer(text)]
        names += [m.group(0) for m in FOLDERS.finditer(text)]
        names = [n for n in names if (rel, n) not in ELSEWHERE]
        if names:
            found.append(f"{rel}:{node.lineno}: {text!r} spells {', '.join(names)}")
    return found


def _sources() -> list[Path]:
    return sorted(p for pkg in ("alphadev", "pipelines") for p in (ROOT / pkg).rglob("*.py")
                  if p.relative_to(ROOT) != OWNER)


def test_only_the_layout_module_spells_names_under_a_sweep_folder() -> None:
    found = [line for path in _sources() for line in offenders(path)]
    assert not found, "ask alphadev.layout (SweepDir / ResultDir) instead:\n" + "\n".join(found)


def test_the_check_sees_a_spelled_name(tmp_path: Path) -> None:
    """The check is not vacuous: each way of spelling a name is caught."""
    module = ROOT / "alphadev" / "_layout_probe_for_test.py"
    module.write_text(
        'A = "comparison.csv"\n'
        'B = "results" + "/sequences"\n'
        'C = f"{1}.json"\n'
        'D = ".tmp-" + "x"\n'
        'E = os.path.join(root, "validation")\n'
        'F = "see errors.log for details"  # prose: a message names the file\n'
        'def f():\n    """Docstrings may say comparison.csv."""\n'
    )
    try:
        found = offenders(module)
    finally:
        module.unlink()
    assert sorted(line.split(":")[1] for line in found) == ["1", "2", "3", "4", "5"]


def test_the_layout_owner_spells_them(tmp_path: Path) -> None:
    assert offenders(ROOT / OWNER), "the owner's own literals are what the check looks for"


@pytest.mark.parametrize("case", ["missing", "done", "stale", "damaged", "failed",
                                  "failed but done"])
def test_state_of_each_kind_of_folder(case: str, market: Path, tmp_path: Path) -> None:
    from alphadev.runner import run_backtest
    from alphadev.store import write_json

    sweep_dir = SweepDir.of(tmp_path / "runs")
    config = make_config(market, name="c")
    if case != "missing" and case != "failed":
        run_backtest(config).save(sweep_dir)
    if case == "stale":
        config = config.replace(trading_fee_rate=0.002)
    if case == "damaged":
        sweep_dir.result("c").metrics.write_text("{}")
    if case.startswith("failed"):
        sweep_dir.failures.mkdir(parents=True)
        write_json(sweep_dir.failure("c"), {"name": "c"})
    expected = {"missing": ResultState.MISSING, "done": ResultState.DONE,
                "stale": ResultState.STALE, "damaged": ResultState.DAMAGED,
                "failed": ResultState.FAILED, "failed but done": ResultState.DONE}[case]
    assert sweep_dir.state(config) is expected


def test_result_folders_follow_one_rule(market: Path, tmp_path: Path) -> None:
    """Whole or damaged results are listed; hidden folders, validation/ and a user's own
    folder are not."""
    from alphadev.runner import run_backtest

    sweep_dir = SweepDir.of(tmp_path)
    run_backtest(make_config(market, name="a")).save(sweep_dir)
    (tmp_path / "b" / "sequences").mkdir(parents=True)  # damaged: no config.json
    (tmp_path / "notes").mkdir()
    sweep_dir.validation.path.mkdir()
    (sweep_dir.validation.path / "sequences").mkdir()
    sweep_dir.panel_cache.mkdir(parents=True)
    assert [f.name for f in sweep_dir.result_folders()] == ["a", "b"]
    assert sweep_dir.result("a").check().problem is None
    assert "config.json" in str(sweep_dir.result("b").check().problem)
