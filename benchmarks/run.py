"""alphadev benchmarks: deterministic data, medians of several runs, one table.

    python benchmarks/run.py                 # everything but release and the big Luigi runs
    python benchmarks/run.py --only kernel import
    python benchmarks/run.py --only oos          # validation of a 1,000-config sweep
    python benchmarks/run.py --only nextbar      # the next-bar pass against the commit before
    python benchmarks/run.py --only impact       # market impact and capacity, on vs off
    python benchmarks/run.py --only signal       # recorded signal series, the same way
    python benchmarks/run.py --only search       # adaptive search's cost per trial
    python benchmarks/run.py --only load         # one data file into the panel
    python benchmarks/run.py --only vectorbt     # needs vectorbt in the interpreter (below)
    python benchmarks/run.py --only release      # sweep and Luigi rows vs the previous release
    python benchmarks/run.py --only reference    # the sweep against the plain reference
    python benchmarks/run.py --luigi-10k     # adds the 10,000 tiny configs (slow)
    python benchmarks/run.py --only luigi --luigi-30k   # 3,000 and 30,000 configs (~30 min)

Data are generated into benchmarks/.data/ (git-ignored) on first use.  Each workload
that must measure a fresh process runs in a subprocess.  Timings are wall-clock; the
machine's other load shows up in them, so compare ratios measured in one run.

vectorbt is no dependency (it pins its own pandas and numba): give it a venv of its own,
python3 -m venv /tmp/vbtenv && /tmp/vbtenv/bin/pip install -e . vectorbt, and run
/tmp/vbtenv/bin/python benchmarks/run.py --only vectorbt.  The "original engine" the
performance issue compares with is not in this repository; --only reference compares
with the plain reference implementation of the contract (tests/reference.py) instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
PYTHON = sys.executable
BIN = Path(sys.executable).parent


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_python(code: str, cwd: Path | None = None, env: dict | None = None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line, returned here."""
    proc = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- workloads
def bench_kernel(repeats: int) -> list[tuple[str, str, str]]:
    import numpy as np

    from alphadev.engine.kernel import BookSettings, PreviousBar, cost_settings
    from alphadev.engine.simulate import simulate_arrays

    n_bars, n_sym = 8760, 200
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, n_sym)), axis=0))
    noise = rng.normal(size=(n_bars, n_sym))
    persistent = np.empty_like(noise)  # AR(1), rho 0.95: a typical hourly signal
    persistent[0] = noise[0]
    for t in range(1, n_bars):
        persistent[t] = 0.95 * persistent[t - 1] + 0.3 * noise[t]
    universe = np.ones((n_bars, n_sym), dtype=bool)
    beta = rng.uniform(0.5, 1.5, n_sym)
    previous = PreviousBar.start(n_sym)
    settings = BookSettings(open_quantile=0.2, close_quantile=0.2, gross_exposure=1.0,
                            costs=cost_settings(4.5e-4, None, n_sym))

    rows = []
    for label, alpha in (("AR(1) alpha", persistent), ("i.i.d. alpha, worst case", noise)):

        def once(alpha=alpha) -> None:
            simulate_arrays(prices, alpha, universe, beta, previous, settings)

        once()
        seconds = median_time(once, repeats)
        rows.append((f"kernel + IC, 200 symbols x 8,760 bars, prepared arrays, {label}",
                     f"{seconds * 1000:.0f} ms", "<= 50 ms"))

    # Every cost field on: delay 1, per-symbol slippage, 8-hourly funding, betas by bar.
    before = np.full((1, n_sym), np.nan)
    funding = np.zeros((n_bars, n_sym))
    funding[::8] = rng.normal(1e-4, 1e-4, (len(funding[::8]), n_sym))
    betas = np.repeat(rng.uniform(0.5, 1.5, (n_bars // 24 + 1, n_sym)), 24, axis=0)[:n_bars]
    costed = settings._replace(costs=cost_settings(4.5e-4, rng.uniform(1e-4, 5e-4, n_sym), n_sym))

    def with_costs() -> None:
        simulate_arrays(prices, persistent, universe, betas, previous, costed,
                        alpha_before=before, funding=funding)

    def plain() -> None:
        simulate_arrays(prices, persistent, universe, beta, previous, settings)

    # Interleaved with the plain run: the time of a 14 MB-output kernel drifts with the
    # process's memory state (page faults), so only runs side by side compare.
    with_costs()
    costly, cheap = [], []
    for _ in range(repeats):
        costly.append(median_time(with_costs, 1))
        cheap.append(median_time(plain, 1))
    seconds, ratio = statistics.median(costly), statistics.median(costly) / statistics.median(cheap)
    rows.append(("kernel + IC, as above, AR(1) alpha, every cost field on (delay, slippage, "
                 "funding, betas by bar), interleaved with the plain run",
                 f"{seconds * 1000:.0f} ms = {ratio:.2f}x plain", "<= 1.15x plain"))
    return rows


def _market(n_symbols: int, days: int, fmt: str) -> dict:
    from alphadev.synthetic import write_synthetic_market

    folder = DATA / f"market_{n_symbols}x{days}_{fmt}"
    return {k: str(v) for k, v in write_synthetic_market(folder, n_symbols, days, 3, fmt).items()}


SWEEP_SCRIPT = """
    import datetime as dt, json, sys, time
    t0 = time.perf_counter()
    from alphadev import BacktestConfig, Backtester, ParquetDataLoader
    from benchmarks.alphas import Momentum
    paths = json.loads(sys.argv[1])
    symbols = [f"S{{k:03d}}USDT" for k in range({n_symbols})]
    base = BacktestConfig(
        name="bench", alpha_class=Momentum, alpha_kwargs={{"window": 24}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 12, 30), symbols=symbols,
        price_loader=ParquetDataLoader(paths["prices"], "close"),
        alpha_loaders=[ParquetDataLoader(paths["values"], "value")],
        beta_csv_path=paths["beta"], {extra}
    )
    bt = Backtester()
    bt.add_multiple_configs(base, {grid})
    results = bt.run_all(verbose=False, save_dir=sys.argv[2], num_processes={processes})
    assert all(r is not None for r in results)
    print(json.dumps({{"seconds": time.perf_counter() - t0, "configs": len(results)}}))
"""


SWEEP_GRID = ('{}, {"quantile": [(0.1, 0.1), (0.1, 0.2), (0.2, 0.2), (0.2, 0.3)], '
              '"trading_fee_rate": [0.0, 2e-4, 4.5e-4]}')


def _sweep_once(paths: dict, save_dir: str, processes: int = 1, extra: str = "",
                tree: Path = HERE.parent, grid: str | None = None) -> dict:
    code = SWEEP_SCRIPT.format(n_symbols=200, processes=processes, extra=extra,
                               grid=grid or SWEEP_GRID)
    proc = subprocess.run(
        [PYTHON, "-c", textwrap.dedent(code), json.dumps(paths), save_dir],
        cwd=tree, capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_sweep(repeats: int) -> list[tuple[str, str, str]]:
    paths = _market(200, 366, "parquet")
    first, second = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as save_dir:
            first.append(_sweep_once(paths, save_dir)["seconds"])
            second.append(_sweep_once(paths, save_dir)["seconds"])
    per_config = statistics.median(first) / 12
    return [
        ("12-config sweep, 200 symbols x 1 year, Parquet, sequential, fresh process",
         f"{per_config * 1000:.0f} ms per config", "<= 200 ms per config"),
        ("same sweep, second run (all complete)", f"{statistics.median(second):.2f} s",
         "<= 1 s"),
    ]


LOAD_SCRIPT = """
    import json, sys, time
    import pandas as pd
    from alphadev import CSVDataLoader, ParquetDataLoader
    from alphadev.panel import to_bars
    path, fmt = sys.argv[1], sys.argv[2]
    loader = (ParquetDataLoader if fmt == "parquet" else CSVDataLoader)(path, "close")
    symbols = sorted(f"S{k:03d}USDT" for k in range(200))
    start, end = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2025-01-01", tz="UTC")
    t0 = time.perf_counter()
    rows = loader.load_range(start, end, symbols)
    t1 = time.perf_counter()
    prices, seen = to_bars(rows["close"], symbols, start.value, 8784, 3_600_000_000_000)
    t2 = time.perf_counter()
    assert seen.sum() == len(rows)
    print(json.dumps({"load": t1 - t0, "bars": t2 - t1, "rows": len(rows)}))
"""


def _load_once(path: str, fmt: str) -> dict:
    proc = subprocess.run([PYTHON, "-c", textwrap.dedent(LOAD_SCRIPT), path, fmt],
                          cwd=HERE.parent, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_load(repeats: int) -> list[tuple[str, str, str]]:
    """One price file of 200 symbols x 1 year of hourly rows (1.75 M rows) into the
    panel's dense (bars x symbols) array, in a fresh process (libraries imported
    first): parse with every integrity check, the loader's rows, the bar grid."""
    rows = []
    seconds = {}
    for fmt in ("parquet", "csv"):
        path = _market(200, 366, fmt)["prices"]
        runs = [_load_once(path, fmt) for _ in range(repeats)]
        load = statistics.median(r["load"] for r in runs)
        bars = statistics.median(r["bars"] for r in runs)
        seconds[fmt] = load + bars
        rows.append((f"load one 200 sym x 1 y {fmt} price file into the panel (fresh process)",
                     f"{load + bars:.2f} s (read and check {load:.2f} s, bar grid "
                     f"{bars:.2f} s)", "<= 0.3 s" if fmt == "parquet" else "<= 3x Parquet"))
    rows[-1] = (rows[-1][0], f"{rows[-1][1]} = {seconds['csv'] / seconds['parquet']:.1f}x "
                "Parquet", rows[-1][2])
    return rows


def one_year_config(paths: dict, name: str, **settings):
    """The sweep's config shape: Momentum(24) on the 200-symbol year of ``paths``."""
    import datetime as dt

    from alphadev import BacktestConfig, ParquetDataLoader
    from benchmarks.alphas import Momentum

    return BacktestConfig(
        name=name, alpha_class=Momentum, alpha_kwargs={"window": 24},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 12, 30),
        symbols=[f"S{k:03d}USDT" for k in range(200)],
        price_loader=ParquetDataLoader(paths["prices"], "close"),
        alpha_loaders=[ParquetDataLoader(paths["values"], "value")],
        beta_csv_path=paths["beta"], **settings,
    )


def bench_vectorbt(repeats: int) -> list[tuple[str, str, str]]:
    """One whole config (load the Parquet files, run the alpha, the book, IC, metrics;
    no cache) against vectorbt simulating the same target weights on prepared wide
    frames (``Portfolio.from_orders``, target percent, one cash-sharing group).
    vectorbt is not a dependency: ``pip install vectorbt`` into the benchmark's venv
    (best a separate one: it pins its own pandas and numba)."""
    label = ("whole config vs vectorbt simulating the same weights, 200 symbols x 1 year "
             "hourly")
    try:
        import vectorbt as vbt
    except ImportError:
        return [(label, "not run: vectorbt is not installed in this interpreter "
                 "(pip install vectorbt)", ">= 15x")]

    import pandas as pd

    from alphadev import cache as panel_cache
    from alphadev.data import files as parsed_files
    from alphadev.runner import run_backtest

    paths = _market(200, 366, "parquet")
    config = one_year_config(paths, "vbt", trading_fee_rate=4.5e-4)

    def whole() -> object:
        panel_cache.clear_memory()
        parsed_files.clear_cache()
        return run_backtest(config)

    result = whole()  # compiles and warms the libraries
    ours = median_time(whole, repeats)

    def in_sweep_config() -> object:  # a sweep parses its files once; panel, alpha per config
        panel_cache.clear_memory()
        return run_backtest(config)

    in_sweep = median_time(in_sweep_config, repeats)
    run_backtest(config)  # the panel cached, as for the configs of a settings grid
    in_grid = median_time(lambda: run_backtest(config), repeats)
    positions = result.sequences.positions if hasattr(result.sequences, "positions") \
        else result._load().positions
    if not isinstance(positions, pd.DataFrame):
        positions = pd.read_parquet(positions)
    bars = result.sequences.index
    weights = (positions.pivot(index="timestamp", columns="symbol", values="weight")
               .reindex(index=bars, columns=config.sorted_symbols).fillna(0.0))
    prices = pd.read_parquet(paths["prices"]).pivot(index="timestamp", columns="symbol",
                                                  values="close")
    close = prices.reindex(index=bars, columns=config.sorted_symbols).ffill().bfill()

    def simulate() -> None:
        vbt.Portfolio.from_orders(close, weights, size_type="targetpercent", fees=4.5e-4,
                                  group_by=True, cash_sharing=True, call_seq="auto",
                                  freq="1h")

    simulate()  # compiles
    theirs = median_time(simulate, repeats)
    return [
        (label, f"{theirs / ours:.1f}x: {ours * 1000:.0f} ms whole config (loading "
         f"included), {theirs * 1000:.0f} ms vectorbt {vbt.__version__} on the weights",
         ">= 15x"),
        ("a sweep's config (data files parsed once per sweep; the panel, alpha, book and "
         "metrics per config) vs the same vectorbt run",
         f"{theirs / in_sweep:.1f}x: {in_sweep * 1000:.0f} ms per config", ">= 15x"),
        ("a settings grid's config (the panel and alpha shared by the grid's configs; the "
         "book, IC and metrics per config) vs the same vectorbt run",
         f"{theirs / in_grid:.1f}x: {in_grid * 1000:.0f} ms per config", ""),
    ]


IMPACT_FIELDS = ('volume_loader=ParquetDataLoader(paths["volume"], "quote_volume"), '
                 'impact_coefficient=0.7,')


def bench_impact(repeats: int) -> list[tuple[str, str, str]]:
    """Market impact, participation and the capacity curve on, against the same sweep
    without them, interleaved in one invocation (docs/semantics.md#market-impact)."""
    import numpy as np

    from alphadev.engine.impact import impact_estimates
    from alphadev.engine.kernel import BookSettings, PreviousBar, cost_settings
    from alphadev.engine.simulate import simulate_arrays

    n_bars, n_sym = 8760, 200
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, (n_bars, n_sym))
    prices = 100 * np.exp(np.cumsum(returns, axis=0))
    alpha = np.empty_like(returns)
    alpha[0] = returns[0]
    for t in range(1, n_bars):
        alpha[t] = 0.95 * alpha[t - 1] + 0.3 * rng.normal(size=n_sym)
    volume = 10.0 ** rng.uniform(5.0, 8.0, n_sym) * rng.lognormal(0, 0.5, (n_bars, n_sym))
    universe = np.ones((n_bars, n_sym), dtype=bool)
    beta = np.ones(n_sym)
    previous = PreviousBar.start(n_sym)
    plain = BookSettings(0.2, 0.2, 1.0, cost_settings(4.5e-4, None, n_sym))
    sized = plain._replace(costs=cost_settings(4.5e-4, None, n_sym, 0.7, 1e6))
    scale = impact_estimates(volume, returns, 480, 24.0, 0).scale

    def with_impact() -> None:
        simulate_arrays(prices, alpha, universe, beta, previous, sized,
                        impact_scale=scale, volume=volume)

    def without() -> None:
        simulate_arrays(prices, alpha, universe, beta, previous, plain)

    with_impact()
    costly, cheap = [], []
    for _ in range(repeats):
        costly.append(median_time(with_impact, 1))
        cheap.append(median_time(without, 1))
    kernel_ratio = statistics.median(costly) / statistics.median(cheap)
    estimate = median_time(lambda: impact_estimates(volume, returns, 480, 24.0, 0), repeats)

    paths = _market(200, 366, "parquet")
    sized_runs, plain_runs = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as save_dir:
            sized_runs.append(_sweep_once(paths, save_dir, extra=IMPACT_FIELDS)["seconds"])
        with tempfile.TemporaryDirectory() as save_dir:
            plain_runs.append(_sweep_once(paths, save_dir)["seconds"])
    sized_s, plain_s = statistics.median(sized_runs), statistics.median(plain_runs)
    return [
        ("kernel + IC, 200 symbols x 8,760 bars, AR(1) alpha, impact and participation on, "
         "interleaved with the same run without",
         f"{statistics.median(costly) * 1000:.0f} ms = {kernel_ratio:.2f}x without",
         "<= 1.3x without"),
        ("impact estimates (ADV, sigma, 20-day window), 200 symbols x 8,760 bars, once per "
         "panel", f"{estimate * 1000:.0f} ms", "shared by a grid's configs"),
        ("12-config sweep, 200 symbols x 1 year, Parquet, fresh process, with volume_loader, "
         "impact, participation and capacity curves, interleaved with the same sweep without",
         f"{sized_s / 12 * 1000:.0f} ms per config = {sized_s / plain_s:.2f}x without",
         "<= 1.3x without"),
    ]


NEXT_BAR_BASELINE = "7c23185"  # the last commit before every result got its next-bar pass
SIGNAL_BASELINE = "ba6316d"  # the last commit before runs recorded their signal series
PER_ALPHA_GRID = '{"window": [6, 12, 24, 48]}, {}'  # 4 configs, each its own alpha panel


@contextlib.contextmanager
def _worktree(revision: str) -> Iterator[Path]:
    """A temporary git worktree of ``revision`` (removed afterwards)."""
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "baseline"
        subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", "-q",
                        str(other), revision], check=True)
        try:
            yield other
        finally:
            subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force",
                            str(other)], check=False)


def _against(baseline: str, repeats: int, grid: str | None = None) -> tuple[float, float]:
    """Seconds per config of a sweep on this tree and on ``baseline`` (a temporary git
    worktree), interleaved; the first round compiles and warms the caches."""
    paths = _market(200, 366, "parquet")
    with _worktree(baseline) as other:
        times: dict[Path, list[float]] = {HERE.parent: [], other: []}
        for k in range(repeats + 1):
            for tree, seconds in times.items():
                with tempfile.TemporaryDirectory() as save_dir:
                    done = _sweep_once(paths, save_dir, tree=tree, grid=grid)
                if k:
                    seconds.append(done["seconds"] / done["configs"])
    now, before = (statistics.median(v) for v in times.values())
    return now, before


def bench_next_bar(repeats: int) -> list[tuple[str, str, str]]:
    """The cost of docs/semantics.md#next-bar: the 12-config sweep against the commit
    before it."""
    now, before = _against(NEXT_BAR_BASELINE, repeats)
    return [(f"12-config sweep with the next-bar pass vs {NEXT_BAR_BASELINE} (without it)",
             f"{now * 1000:.0f} vs {before * 1000:.0f} ms per config ({now / before:.2f}x)",
             "<= 1.25x")]


def bench_signal(repeats: int) -> list[tuple[str, str, str]]:
    """The cost of docs/semantics.md#signal-series: the 12-config sweep (one alpha
    panel, so its series are computed once) and 4 configs with an alpha panel each
    (every config pays), against the commit before."""
    rows = []
    for grid, what in ((None, "12-config sweep, one alpha"),
                       (PER_ALPHA_GRID, "4 configs, 4 alpha windows")):
        now, before = _against(SIGNAL_BASELINE, repeats, grid)
        rows.append((f"{what}: recording the signal series vs {SIGNAL_BASELINE} (without)",
                     f"{now * 1000:.0f} vs {before * 1000:.0f} ms per config "
                     f"({now / before:.2f}x)", "<= 1.25x"))
    return rows


MEMORY_SCRIPT = """
    import datetime as dt, json, resource, sys, tempfile
    from alphadev import BacktestConfig, Backtester, ParquetDataLoader
    from benchmarks.alphas import Momentum
    paths = json.loads(sys.argv[1])
    config = BacktestConfig(
        name="mem", alpha_class=Momentum, alpha_kwargs={{"window": 24}},
        start_date=dt.date(2024, 1, 2), end_date={end},
        symbols=[f"S{{k:03d}}USDT" for k in range({n_symbols})],
        price_loader=ParquetDataLoader(paths["prices"], "close"),
        alpha_loaders=[ParquetDataLoader(paths["values"], "value")],
        beta_csv_path=paths["beta"], {extra}
    )
    bt = Backtester()
    bt.add_config(config)
    with tempfile.TemporaryDirectory() as save_dir:
        (result,) = bt.run_all(verbose=False, save_dir=save_dir)
        bars = len(result.sequences)
    # VmHWM is this process's own peak.  ru_maxrss is not: Linux carries the parent's
    # peak across the vfork+exec that starts this script, so a runner that has just
    # generated the data would be measured instead.
    with open("/proc/self/status") as status:
        kb = {{k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in status)
              if k in ("VmHWM", "RssFile")}}
    rss_mb = kb["VmHWM"] / 1024 if "VmHWM" in kb else (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps({{"rss_mb": rss_mb, "bars": bars, "file_mb": kb.get("RssFile", 0) / 1024}}))
"""


def _peak_rss(paths: dict, extra: str, end: str, n_symbols: int = 300) -> dict:
    """The run's own peak RSS (``rss_mb``) and its file-backed part at the end
    (``file_mb``: the libraries' code pages, shared with every other process)."""
    code = MEMORY_SCRIPT.format(extra=extra, end=end, n_symbols=n_symbols)
    out = subprocess.run([PYTHON, "-c", textwrap.dedent(code), json.dumps(paths)],
                         cwd=HERE.parent, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_memory(repeats: int) -> list[tuple[str, str, str]]:
    """Peak RSS of one config, batch against streaming (chunk_days=30), on 300 symbols
    x 730 days; streaming on 1,460 days, which should cost about the same; and the floor
    every run pays before its data (the same streaming config on 5 symbols x 3 months:
    interpreter, libraries, their code pages and the compiled kernels)."""
    streaming = 'mode="streaming", chunk_days=30,'
    two_years = _market(300, 731, "parquet")
    batch = _peak_rss(two_years, "", "dt.date(2025, 12, 30)")["rss_mb"]
    stream = _peak_rss(two_years, streaming, "dt.date(2025, 12, 30)")["rss_mb"]
    floor = _peak_rss(two_years, streaming, "dt.date(2024, 3, 30)", n_symbols=5)
    four_years = _market(300, 1461, "parquet")
    longer = _peak_rss(four_years, streaming, "dt.date(2027, 12, 30)")["rss_mb"]
    base = floor["rss_mb"]
    return [("streaming chunk_days=30 vs batch, 300 symbols x 730 days, run_all with "
             "save_dir, peak RSS",
             f"{stream:.0f} MB vs {batch:.0f} MB ({stream / batch:.0%})", "<= 30 % of batch"),
            ("the floor: the same streaming run on 5 symbols x 3 months, peak RSS "
             "(libraries' code pages at its end)",
             f"{base:.0f} MB = {base / batch:.0%} of batch ({floor['file_mb']:.0f} MB)", ""),
            ("streaming vs batch above that floor, 300 symbols x 730 days",
             f"{stream - base:.0f} MB vs {batch - base:.0f} MB "
             f"({(stream - base) / (batch - base):.0%})", ""),
            ("streaming chunk_days=30, 300 symbols x 1,460 days vs 730 days, peak RSS",
             f"{longer:.0f} MB vs {stream:.0f} MB ({longer / stream:.2f}x)",
             "<= 1.1x the 730-day run")]


def bench_import(repeats: int) -> list[tuple[str, str, str]]:
    times, heavy = [], set()
    for _ in range(repeats):
        out = run_python("""
            import json, sys, time
            t = time.perf_counter()
            import alphadev
            seconds = time.perf_counter() - t
            heavy = [m for m in ("matplotlib", "IPython", "numba", "scipy") if m in sys.modules]
            print(json.dumps({"seconds": seconds, "heavy": heavy}))
        """)
        times.append(out["seconds"])
        heavy.update(out["heavy"])
    loaded = ", ".join(sorted(heavy)) or "none"
    return [("import alphadev", f"{statistics.median(times):.2f} s (heavy modules: {loaded})",
             "<= 1.5 s, no matplotlib/IPython")]


# The tiny config of the Luigi workloads, spelled once for the grid and the search specs.
TINY_CONFIG = """
import datetime as dt
from pathlib import Path

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from benchmarks.alphas import Momentum

DATA = Path({data!r})
TINY = BacktestConfig(
    name="tiny", alpha_class=Momentum, alpha_kwargs={{"window": 2}},
    start_date=dt.date(2024, 1, 1), end_date=dt.date(2024, 1, 2),
    symbols=[f"S{{k:03d}}USDT" for k in range(5)],
    price_loader=CSVDataLoader(str(DATA / "prices.csv"), "close"),
    alpha_loaders=[CSVDataLoader(str(DATA / "values.csv"), "value")],
    beta_csv_path=str(DATA / "beta.csv"),
)
"""

LUIGI_SPEC = TINY_CONFIG + """


def sweep():
    base = TINY
    bt = Backtester()
    fees = [round(k * 1e-6, 7) for k in range({n} // 10)]
    bt.add_multiple_configs(base, {{}}, {{"trading_fee_rate": fees,
                                       "gross_exposure": [1.0 + k / 10 for k in range(10)]}})
    return bt
"""


def _run_measured(args: list[str], cwd: str, env: dict) -> tuple[float, float]:
    """Seconds and peak RSS (MB, the largest process of the run: with the local
    scheduler that is the scheduling process) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"exit code {proc.returncode}\n{out[-2000:]}\n{err[-3000:]}")
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _luigi_measured(n_configs: int, tree: Path = HERE.parent) -> tuple[float, float, float]:
    """Seconds of a first run, of an all-done rerun, and the first run's peak RSS."""
    data = Path(_market(5, 3, "csv")["prices"]).parent
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "tiny_sweep.py"
        spec.write_text(LUIGI_SPEC.format(data=str(data), n=n_configs))
        args = [str(BIN / "luigi"), "--module", "pipelines", "Sweep", "--spec", str(spec),
                "--save-dir", str(Path(tmp) / "out"), "--workers", "2", "--local-scheduler",
                "--log-level", "WARNING"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        first, peak = _run_measured(args, tmp, env)
        rerun, _ = _run_measured(args, tmp, env)
        return first, rerun, peak


def bench_luigi_30k(repeats: int) -> list[tuple[str, str, str]]:
    """3,000 then 30,000 tiny configs (slow: about half an hour)."""
    small, small_rerun, small_peak = _luigi_measured(3000)
    big, big_rerun, big_peak = _luigi_measured(30000)
    ratio = (big / 30000) / (small / 3000)
    return [
        ("Luigi, 3,000 tiny configs, --workers 2", f"{small / 3000 * 1000:.0f} ms per "
         f"config; rerun {small_rerun:.1f} s; peak RSS {small_peak:.0f} MB", ""),
        ("Luigi, 30,000 tiny configs, --workers 2", f"{big / 30000 * 1000:.0f} ms per config "
         f"({ratio:.2f}x the 3,000 figure); all-done rerun {big_rerun:.1f} s; peak RSS "
         f"{big_peak:.0f} MB", "<= 1.1x, <= 50 ms per config, rerun <= 30 s"),
    ]


REFERENCE_SCRIPT = """
    import datetime as dt, json, sys, time
    import numpy as np
    from alphadev.research import config_panel
    from benchmarks.run import one_year_config
    from tests.reference import reference_weights_and_accounting
    paths = json.loads(sys.argv[1])
    config = one_year_config(paths, "bench", quantile=(0.2, 0.2), trading_fee_rate=2e-4)
    panel = config_panel(config)
    t0 = time.perf_counter()
    reference_weights_and_accounting(panel.prices, panel.alpha, panel.universe,
                                     np.ones(panel.prices.shape[1]), 0.2, 0.2, 1.0, 2e-4)
    print(json.dumps({"seconds": time.perf_counter() - t0, "bars": len(panel.bars)}))
"""


def bench_reference(repeats: int) -> list[tuple[str, str, str]]:
    """The 12-config sweep's cost per config against the plain reference implementation
    of the contract (tests/reference.py: Python loops, written to be obviously right)
    doing only the book and accounting of one such config, in the same invocation.  The
    issue's "original engine" is not in this repository; this is the slow engine it has."""
    paths = _market(200, 366, "parquet")
    sweep_s = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as save_dir:
            sweep_s.append(_sweep_once(paths, save_dir)["seconds"] / 12)
    proc = subprocess.run([PYTHON, "-c", textwrap.dedent(REFERENCE_SCRIPT), json.dumps(paths)],
                          cwd=HERE.parent, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    reference = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    per_config = statistics.median(sweep_s)
    return [("fresh-process 12-config sweep, 200 symbols x 1 year, per config, vs the plain "
             "reference's book and accounting alone (tests/reference.py) on one such config",
             f"{per_config * 1000:.0f} ms vs {reference:.1f} s = {reference / per_config:.0f}x",
             ">= 100x (against the original engine, which this repository does not have)")]


RELEASE_BASELINE = "33cd01d"  # the previous release: the code before issue 20's work


def bench_release(repeats: int) -> list[tuple[str, str, str]]:
    """The README's sweep and Luigi rows on this tree and on the previous release (a
    temporary git worktree), alternating."""
    now, before = _against(RELEASE_BASELINE, repeats)
    rows = [(f"12-config sweep, fresh process, this tree vs {RELEASE_BASELINE}",
             f"{now * 1000:.0f} vs {before * 1000:.0f} ms per config", "")]
    with _worktree(RELEASE_BASELINE) as other:
        for n in (1000, 3000):
            runs: dict[Path, list[tuple[float, float, float]]] = {HERE.parent: [], other: []}
            for _ in range(max(1, repeats // 2)):
                for tree, measured in runs.items():
                    measured.append(_luigi_measured(n, tree))
            (first, rerun, _), (first_b, rerun_b, _) = (
                tuple(statistics.median(m[i] for m in v) for i in range(3))
                for v in runs.values())
            rows.append((f"Luigi, {n:,} tiny configs, --workers 2, this tree vs "
                         f"{RELEASE_BASELINE}", f"{first / n * 1000:.0f} vs "
                         f"{first_b / n * 1000:.0f} ms per config; all-done rerun "
                         f"{rerun:.1f} vs {rerun_b:.1f} s", ""))
    return rows


def _luigi(n_configs: int) -> tuple[float, float]:
    """Seconds of a first run and of an all-done rerun."""
    first, rerun, _ = _luigi_measured(n_configs)
    return first, rerun


def bench_luigi(repeats: int, with_10k: bool) -> list[tuple[str, str, str]]:
    first, rerun = _luigi(1000)
    rows = [
        ("Luigi, 1,000 tiny configs, --workers 2", f"{first:.0f} s = "
         f"{first / 1000 * 1000:.0f} ms per config", "<= 150 ms per config"),
        ("Luigi, 1,000 configs, all-done rerun", f"{rerun:.1f} s", "<= 10 s"),
    ]
    if with_10k:
        first_10k, rerun_10k = _luigi(10000)
        ratio = (first_10k / 10000) / (first / 1000)
        rows.append(("Luigi, 10,000 tiny configs, --workers 2",
                     f"{first_10k / 10000 * 1000:.0f} ms per config ({ratio:.2f}x the 1,000 "
                     f"figure); rerun {rerun_10k:.1f} s", "within 1.5x"))
    return rows


SEARCH_SPEC = TINY_CONFIG + """
from alphadev.search import FloatRange, SearchSpec

search = SearchSpec(
    TINY,
    {{"trading_fee_rate": FloatRange(0.0, 1e-4), "gross_exposure": FloatRange(1.0, 2.0)}},
    seed=0,
)
"""


def _timed_luigi(task: str, spec_text: str, extra: list[str]) -> float:
    """Seconds of one fresh ``luigi --module pipelines TASK`` into a new save_dir."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "tiny_spec.py"
        spec.write_text(spec_text)
        args = [str(BIN / "luigi"), "--module", "pipelines", task, "--spec", str(spec),
                "--save-dir", str(Path(tmp) / "out"), *extra, "--workers", "1",
                "--local-scheduler", "--log-level", "WARNING"]
        env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
        start = time.perf_counter()
        done = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-3000:])
        return time.perf_counter() - start


def bench_search(repeats: int) -> list[tuple[str, str, str]]:
    """An adaptive search's cost per trial on top of the config: ``luigi Search`` of N
    tiny trials (TPE ask/tell, the journal, one dynamic dependency and one re-run of the
    search task per trial) against ``luigi Sweep`` of a grid of N configs of the same
    size, alternating, in fresh processes."""
    data = Path(_market(5, 3, "csv")["prices"]).parent
    n = 60
    grid, search = [], []
    for _ in range(max(1, repeats // 2)):
        grid.append(_timed_luigi("Sweep", LUIGI_SPEC.format(data=str(data), n=n), []))
        search.append(_timed_luigi("Search", SEARCH_SPEC.format(data=str(data)),
                                   ["--n-trials", str(n)]))
    grid_s, search_s = statistics.median(grid), statistics.median(search)
    overhead = (search_s - grid_s) / n * 1000
    return [(f"adaptive search overhead per trial: luigi Search vs Sweep, {n} tiny configs, "
             "--workers 1", f"{overhead:.1f} ms per trial ({search_s:.1f} s vs "
             f"{grid_s:.1f} s; {grid_s / n * 1000:.0f} ms per grid config)",
             "<= 20 ms per trial")]


POOL_SCRIPT = """
    import datetime as dt, json, sys, time
    from alphadev import BacktestConfig, Backtester, ParquetDataLoader
    from benchmarks.alphas import HeavyAlpha
    paths = json.loads(sys.argv[1])
    base = BacktestConfig(
        name="heavy", alpha_class=HeavyAlpha, alpha_kwargs={{}},
        start_date=dt.date(2024, 1, 2), end_date=dt.date(2024, 3, 30),
        symbols=[f"S{{k:03d}}USDT" for k in range(100)],
        price_loader=ParquetDataLoader(paths["prices"], "close"),
        alpha_loaders=[ParquetDataLoader(paths["values"], "value")],
        beta_csv_path=paths["beta"],
    )
    bt = Backtester()
    bt.add_multiple_configs(base, {{"rounds": [2000, 2001, 2002, 2003, 2004, 2005]}})
    t = time.perf_counter()
    results = bt.run_all(verbose=False, num_processes={processes})
    assert all(r is not None for r in results)
    print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def bench_pool(repeats: int) -> list[tuple[str, str, str]]:
    paths = _market(100, 92, "parquet")
    seconds = {}
    for processes in (1, 2):
        code = POOL_SCRIPT.format(processes=processes)
        runs = []
        for _ in range(max(1, repeats // 2)):
            out = subprocess.run([PYTHON, "-c", textwrap.dedent(code), json.dumps(paths)],
                                 cwd=HERE.parent, capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(out.stderr[-3000:])
            runs.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
        seconds[processes] = statistics.median(runs)
    return [("num_processes=2 vs sequential, CPU-heavy alpha (6 configs, ~1.7 s each)",
             f"{seconds[1] / seconds[2]:.2f}x ({seconds[1]:.1f} s -> {seconds[2]:.1f} s)",
             ">= 1.7x")]


def bench_oos(repeats: int) -> list[tuple[str, str, str]]:
    """Out-of-sample validation of a 1,000-config sweep of a year of hourly bars."""
    import numpy as np

    from alphadev.out_of_sample.pbo import probability_of_overfitting
    from alphadev.out_of_sample.walk_forward import walk_forward
    from alphadev.trials import cluster_trials

    n_bars, n_configs = 8760, 1000
    rng = np.random.default_rng(0)
    alphas = rng.normal(0, 1e-2, (n_bars, 250))  # 250 alphas x 4 fee variants
    turnover = rng.uniform(0.1, 0.6, (n_bars, 250))
    pnl = np.column_stack([alphas[:, k // 4] - (k % 4) * 2e-4 * turnover[:, k // 4]
                           for k in range(n_configs)])
    hour = 3_600 * 10**9
    times = np.arange(n_bars, dtype=np.int64) * hour
    day = 24 * hour
    probability_of_overfitting(pnl[:64, :4], 16)  # compile (or load) the kernels
    cluster_trials(pnl[:50, :5])
    runs = max(1, min(repeats, 3))
    pbo_s = median_time(lambda: probability_of_overfitting(pnl, 16), runs)
    wf_s = median_time(lambda: walk_forward(times, pnl, 60 * day, 14 * day), runs)
    n_eff = cluster_trials(pnl).n_effective
    neff_s = median_time(lambda: cluster_trials(pnl), runs)
    return [
        ("PBO, 16 blocks (12,870 combinations), 1,000 configs x 8,760 bars",
         f"{pbo_s:.2f} s", "<= 10 s"),
        ("walk-forward 60D/14D (22 folds), 1,000 configs x 8,760 bars", f"{wf_s:.2f} s",
         "<= 2 s"),
        (f"N_eff clustering, 1,000 configs x 8,760 bars (250 alphas x 4 fees: N_eff {n_eff})",
         f"{neff_s:.2f} s", "<= 5 s"),
    ]


WORKLOADS = {
    "kernel": bench_kernel,
    "impact": bench_impact,
    "sweep": bench_sweep,
    "nextbar": bench_next_bar,
    "signal": bench_signal,
    "memory": bench_memory,
    "import": bench_import,
    "pool": bench_pool,
    "oos": bench_oos,
    "search": bench_search,
    "load": bench_load,
    "vectorbt": bench_vectorbt,
    "release": bench_release,
    "reference": bench_reference,
}


OPT_IN = {"release"}  # minutes of the previous release's code: only with --only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=[*WORKLOADS, "luigi"], default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--luigi-10k", action="store_true")
    parser.add_argument("--luigi-30k", action="store_true",
                        help="3,000 and 30,000 tiny configs with peak RSS (about 30 min)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    chosen = args.only or [*(w for w in WORKLOADS if w not in OPT_IN), "luigi"]
    rows = []
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        if name == "luigi":
            rows += bench_luigi(args.repeats, args.luigi_10k)
            if args.luigi_30k:
                rows += bench_luigi_30k(args.repeats)
        else:
            rows += WORKLOADS[name](args.repeats)
    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, {platform.platform()}")
    print(f"Command: python benchmarks/run.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"Repeats: median of {args.repeats}\n")
    print("| workload | measured | target |\n|---|---|---|")
    for workload, measured, target in rows:
        print(f"| {workload} | {measured} | {target} |")


if __name__ == "__main__":
    main()
