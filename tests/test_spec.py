"""alphadev.spec on its own: the forms a spec takes, its errors, and its per-process cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from alphadev import Backtester
from alphadev.errors import SpecError
from alphadev.spec import find_config, load_spec
from alphadev.spec_files import SPEC_FILES
from tests.conftest import write_market

SPEC = '''
from pathlib import Path
from tests.conftest import make_config
from tests.alphas import EchoAlpha

DATA = Path({data!r})


def _configs():
    base = make_config(DATA)
    return [base.replace(name=f"cfg{{k}}", trading_fee_rate=k * 1e-4) for k in range(3)]


configs = _configs()
other = configs[:1]


def build():
    return configs[1:]
'''


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    data = write_market(tmp_path / "data")
    path = tmp_path / f"spec_{tmp_path.name[-12:].replace('-', '_')}.py"
    path.write_text(SPEC.format(data=str(data)))
    return path


def test_a_file_gives_its_configs_object(spec_file: Path) -> None:
    names = [c.name for c in load_spec(str(spec_file))]
    assert names == ["cfg0", "cfg1", "cfg2"]
    assert [c.name for c in load_spec(f"{spec_file}:other")] == ["cfg0"]
    assert [c.name for c in load_spec(f"{spec_file}:build")] == ["cfg1", "cfg2"]
    assert find_config(str(spec_file), "cfg2").trading_fee_rate == pytest.approx(2e-4)
    assert any(path == str(spec_file.resolve()) for path in SPEC_FILES.values())


def test_an_import_path_and_a_backtester(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "pkg_for_spec_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "grid.py").write_text(
        "from alphadev import Backtester\n"
        "from tests.conftest import make_config, write_market\n"
        "from pathlib import Path\n"
        f"DATA = write_market(Path({str(tmp_path / 'data')!r}))\n"
        "bt = Backtester()\n"
        "bt.add_config(make_config(DATA, name='only'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert [c.name for c in load_spec("pkg_for_spec_test.grid:bt")] == ["only"]
    assert isinstance(sys.modules["pkg_for_spec_test.grid"].bt, Backtester)


def test_the_cache_sees_an_edited_file(spec_file: Path) -> None:
    first = load_spec(str(spec_file))
    assert load_spec(str(spec_file)) is first  # unchanged: not imported again
    spec_file.write_text(spec_file.read_text().replace("range(3)", "range(2)"))
    os.utime(spec_file, ns=(spec_file.stat().st_atime_ns, spec_file.stat().st_mtime_ns + 10**9))
    assert [c.name for c in load_spec(str(spec_file))] == ["cfg0", "cfg1"]


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("x = 1\n", "defines no configs"),
        ("configs = []\n", "the list is empty"),
        ("configs = [1, 2]\n", "expected a Backtester or a list of BacktestConfig"),
        ("raise RuntimeError('boom in spec')\n", "boom in spec"),
        ("def configs():\n    raise KeyError('inner')\n", "inner"),
    ],
)
def test_bad_specs_say_what_is_wrong(tmp_path: Path, body: str, fragment: str) -> None:
    path = tmp_path / f"bad_{abs(hash(body)) % 10**8}.py"
    path.write_text(body)
    with pytest.raises(SpecError) as info:
        load_spec(str(path))
    assert fragment in str(info.value) and path.name in str(info.value)


def test_missing_file_unknown_module_and_unknown_name(spec_file: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(str(tmp_path / "nope.py"))
    with pytest.raises(SpecError, match="no module named"):
        load_spec("no_such_package_xyz.sweeps:grid")
    with pytest.raises(SpecError, match="no config named 'cfg9'"):
        find_config(str(spec_file), "cfg9")
    with pytest.raises(SpecError, match="must name"):
        load_spec("   ")


def test_duplicate_names_are_rejected(tmp_path: Path, market: Path) -> None:
    path = tmp_path / "dups_spec.py"
    path.write_text(
        "from pathlib import Path\nfrom tests.conftest import make_config\n"
        f"configs = [make_config(Path({str(market)!r}), name='a')] * 2\n"
    )
    with pytest.raises(SpecError, match="'a'"):
        load_spec(str(path))


def test_two_spec_files_with_one_stem_are_an_error(spec_file: Path, tmp_path: Path) -> None:
    load_spec(str(spec_file))
    twin = tmp_path / "elsewhere" / spec_file.name
    twin.parent.mkdir()
    twin.write_text(spec_file.read_text())
    with pytest.raises(SpecError, match="same name"):
        load_spec(str(twin))


def test_a_spec_that_fails_to_import_is_not_handed_to_spawned_workers(tmp_path: Path) -> None:
    """A spawned pool worker imports every registered spec file: a broken one killed it."""
    bad = tmp_path / "broken_spec_for_workers.py"
    bad.write_text("raise RuntimeError('broken on purpose')\n")
    with pytest.raises(SpecError, match="broken on purpose"):
        load_spec(str(bad))
    assert str(bad.resolve()) not in SPEC_FILES.values()
