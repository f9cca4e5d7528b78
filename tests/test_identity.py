"""Code identity (alphadev.identity): what of the user's code enters fingerprints.

The project below is real files in a temporary folder: a spec that defines an alpha
whose computation runs through a base class in another module, a base class in the
same file, a helper in the same file, a helper in a sibling module and module
constants.  Each measurement is a fresh Python process, as a rerun of a sweep is.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest

from alphadev import identity
from alphadev.errors import SpecError
from alphadev.spec import load_spec
from tests.conftest import write_market

BASES = '''
from alphadev import Alpha


class BaseAlpha(Alpha):
    lookback = 60

    def __init__(self, scale=1.0):
        self.scale = scale

    def reset(self):
        pass

    def compute(self, data):
        with open(CALLS, "a") as fh:
            fh.write(f"{self.scale}\\n")
        frame = self.transform(data[["value"]])
        return frame.rename(columns={"value": "alpha"})  # BASE-COMPUTE


CALLS = __CALLS__
'''

HELPERS = '''
FACTOR = 1.0  # HELPER-CONSTANT


def signal(frame):
    return frame * FACTOR  # HELPER-FUNCTION
'''

SPEC = '''
import datetime as dt
import json
import sys

import helpers
from alphadev import BacktestConfig, Backtester, CSVDataLoader
from bases import BaseAlpha

DATA = __DATA__
OFFSET = 0.0  # SPEC-CONSTANT


def clip(frame):
    return frame + OFFSET  # SPEC-HELPER


class LocalBase(BaseAlpha):
    def transform(self, frame):
        return clip(helpers.signal(frame)) * self.scale  # LOCAL-BASE


class MyAlpha(LocalBase):
    """The alpha of this sweep: all its computation is inherited."""


def sweep():
    base = BacktestConfig(
        name="cfg", alpha_class=MyAlpha, alpha_kwargs={},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 6),
        symbols=["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT"],
        price_loader=CSVDataLoader(DATA + "/prices.csv", "close"),
        alpha_loaders=[CSVDataLoader(DATA + "/values.csv", "value")],
        beta_csv_path=DATA + "/beta.csv",
    )
    bt = Backtester()
    bt.add_multiple_configs(base, {"scale": [1.0, 2.0]})  # GRID
    return bt


if __name__ == "__main__":
    import pandas as pd
    from alphadev.cache import panel_key

    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-08", tz="UTC")
    json.dump({c.name: [c.fingerprint(), panel_key(c, start, end)]
               for c in sweep().configs}, sys.stdout)
'''

# Prints {name: [fingerprint, panel key]} of the spec in argv[2], loaded as argv[1] says.
PROBE = '''
import importlib, json, sys
import pandas as pd
from alphadev.cache import panel_key
from alphadev.spec import load_spec

how, path = sys.argv[1], sys.argv[2]
start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-08", tz="UTC")

def describe(configs):
    return {c.name: [c.fingerprint(), panel_key(c, start, end)] for c in configs}

out = {}
for way in how.split(","):
    if way == "load_spec":
        out[way] = describe(load_spec(path))
    else:
        sys.path.insert(0, str(__import__("pathlib").Path(path).parent))
        out[way] = describe(importlib.import_module("spec").sweep().configs)
json.dump(out, sys.stdout)
'''


def write_project(folder: Path, data: Path, calls: Path) -> Path:
    """bases.py, helpers.py and spec.py in ``folder``; returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bases.py").write_text(BASES.replace("__CALLS__", repr(str(calls))))
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "spec.py").write_text(SPEC.replace("__DATA__", repr(str(data))))
    return folder / "spec.py"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not once in {path}"
    path.write_text(text.replace(old, new))


def probe(spec: Path, how: str = "load_spec", pythonpath: bool = True) -> dict:
    """Fingerprints and panel keys of the spec's configs, measured in a fresh process.

    With ``pythonpath`` the spec's folder is importable from the start (as for a script),
    so this measures code identity alone, whatever ``load_spec`` does with sys.path.
    """
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = str(spec.parent)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how, str(spec)], cwd=spec.parent.parent, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    return result if "," in how else result[how]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The original project and its fingerprints and panel keys."""
    root = tmp_path_factory.mktemp("identity")
    data = write_market(root / "data")
    spec = write_project(root / "original", data, root / "calls.log")
    return spec, probe(spec)


def copy_project(project: tuple[Path, dict], tmp_path: Path) -> Path:
    spec, _ = project
    folder = tmp_path / "copy"
    shutil.copytree(spec.parent, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder / "spec.py"


EDITS = {
    "base class in another module": (
        "bases.py", "# BASE-COMPUTE", "* 1  # BASE-COMPUTE"),
    "base class in the same file": (
        "spec.py", "* self.scale  # LOCAL-BASE", "* self.scale * 2  # LOCAL-BASE"),
    "helper function in the same file": (
        "spec.py", "return frame + OFFSET  # SPEC-HELPER", "return frame - OFFSET  # SPEC-HELPER"),
    "helper function in a sibling module": (
        "helpers.py", "return frame * FACTOR  # HELPER-FUNCTION",
        "return frame * FACTOR ** 2  # HELPER-FUNCTION"),
    "constant in the spec file": (
        "spec.py", "OFFSET = 0.0", "OFFSET = 0.5"),
    "constant in a sibling module": (
        "helpers.py", "FACTOR = 1.0", "FACTOR = 3.0"),
}


@pytest.mark.parametrize("what", list(EDITS))
def test_edit_of_reached_code_changes_fingerprint_and_panel_key(
    project: tuple[Path, dict], tmp_path: Path, what: str
) -> None:
    spec = copy_project(project, tmp_path)
    file, old, new = EDITS[what]
    edit(spec.parent / file, old, new)
    before, after = project[1], probe(spec)
    assert sorted(after) == sorted(before) == ["cfg__scale=1.0", "cfg__scale=2.0"]
    for name in before:
        assert after[name][0] != before[name][0], f"fingerprint ignores an edited {what}"
        assert after[name][1] != before[name][1], f"panel key ignores an edited {what}"


def test_unchanged_copy_elsewhere_has_the_same_identity(
    project: tuple[Path, dict], tmp_path: Path
) -> None:
    assert probe(copy_project(project, tmp_path)) == project[1]


def test_adding_configs_and_unrelated_code_keeps_existing_fingerprints(
    project: tuple[Path, dict], tmp_path: Path
) -> None:
    spec = copy_project(project, tmp_path)
    edit(spec, '{"scale": [1.0, 2.0]})  # GRID', '{"scale": [1.0, 2.0, 3.0]})  # GRID\n'
         '    bt.add_config(base.replace(name="extra", trading_fee_rate=0.0))')
    # New code above the alpha shifts every line of it; new names it does not use.
    edit(spec, "OFFSET = 0.0  # SPEC-CONSTANT",
         "OFFSET = 0.0  # SPEC-CONSTANT\nWINDOWS = [1, 2, 3]\n\n\ndef unused(x):\n    return x\n")
    before, after = project[1], probe(spec)
    assert sorted(after) == ["cfg__scale=1.0", "cfg__scale=2.0", "cfg__scale=3.0", "extra"]
    for name in before:
        assert after[name] == before[name]


def test_identity_does_not_depend_on_the_module_name(project: tuple[Path, dict]) -> None:
    """--spec path.py (alphadev_spec_spec), `import spec`, and `python spec.py` agree."""
    spec = project[0]
    both = probe(spec, "load_spec,import")
    assert both["load_spec"] == both["import"] == project[1]
    script = subprocess.run([sys.executable, str(spec)], cwd=spec.parent, capture_output=True,
                            text=True, timeout=120)
    assert script.returncode == 0, script.stderr[-3000:]
    assert json.loads(script.stdout) == project[1]


def test_spec_can_import_a_module_next_to_it(project: tuple[Path, dict]) -> None:
    """No PYTHONPATH: load_spec itself makes the spec's folder importable."""
    assert probe(project[0], pythonpath=False) == project[1]


def test_case_insensitive_duplicate_names_are_rejected(tmp_path: Path) -> None:
    data = write_market(tmp_path / "data")
    stem = f"casedup_{uuid.uuid4().hex[:8]}"
    spec = tmp_path / f"{stem}.py"
    spec.write_text(textwrap.dedent(f'''
        import datetime as dt
        from alphadev import BacktestConfig, CSVDataLoader
        from tests.alphas import EchoAlpha

        base = BacktestConfig(
            name="Mom", alpha_class=EchoAlpha, alpha_kwargs={{}},
            start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 1, 6),
            symbols=["AAAUSDT", "BBBUSDT"],
            price_loader=CSVDataLoader({str(data / "prices.csv")!r}, "close"),
            alpha_loaders=[CSVDataLoader({str(data / "values.csv")!r}, "value")],
            beta_csv_path=None,
        )
        configs = [base, base.replace(name="other"), base.replace(name="mom")]
    '''))
    with pytest.raises(SpecError, match=r"equal ignoring case: 'Mom' and 'mom'"):
        load_spec(str(spec))


# ---------------------------------------------------------------------- unit level
def _import_fresh(path: Path):
    """Import ``path`` under a module name never used before (a fresh import)."""
    name = f"identity_case_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


EXOTIC = '''
import threading
from math import log as transform
import numpy as np

LOCK = threading.Lock()
TABLE = np.arange(6, dtype=np.float64).reshape(2, 3)
SECTORS = {"BTC": ("L1", 1), "ETH": ("L1", 2)}


def helper(x):
    return [LOCK, TABLE[0, 0], SECTORS, len(x), transform(2.0)]


def alpha(x):
    return helper(x)
'''


def test_exotic_globals_and_array_constants(tmp_path: Path) -> None:
    path = tmp_path / "exotic.py"
    path.write_text(EXOTIC)
    first = identity.code_digest(_import_fresh(path).alpha)
    assert identity.code_digest(_import_fresh(path).alpha) == first  # stable, no addresses
    path.write_text(EXOTIC.replace("np.arange(6,", "np.arange(1, 7,"))
    assert identity.code_digest(_import_fresh(path).alpha) != first  # array contents
    path.write_text(EXOTIC.replace('("L1", 2)', '("L2", 2)'))
    assert identity.code_digest(_import_fresh(path).alpha) != first  # nested constants
    path.write_text(EXOTIC.replace("math import log", "math import exp"))
    assert identity.code_digest(_import_fresh(path).alpha) != first  # a builtin function


def test_identity_name_of_library_and_user_code(tmp_path: Path) -> None:
    assert identity.identity_name(np.mean) == "numpy:mean"
    path = tmp_path / "userfn.py"
    path.write_text("def f(x):\n    return x\n")
    func = _import_fresh(path).f
    name = identity.identity_name(func)
    assert name == f"f@{identity.code_digest(func)}" and "identity_case" not in name


def test_module_in_memory_keeps_the_text_it_was_read_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edited file is seen once it is imported again, never by code still in memory."""
    name = f"kept_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text("def f(x):\n    return x + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = importlib.import_module(name)
    try:
        first = identity.code_digest(module.f)
        path.write_text("def f(x):\n    return x + 2\n")
        assert identity.code_digest(module.f) == first  # the running code is still `x + 1`
        assert identity.code_digest(_import_fresh(path).f) != first
        importlib.reload(module)
        assert module.f(0) == 2
        assert identity.code_digest(module.f) != first
    finally:
        sys.modules.pop(name, None)
