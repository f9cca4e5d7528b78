"""Cost of the research helpers on a big sweep (prints numbers; not part of the suite).

    python -m benchmarks.research_api

* the loader check of 1,000 configs sharing two files (each header read once);
* ``Backtester.load`` and ``returns()`` of a saved sweep of 60 small configs.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from alphadev import BacktestConfig, Backtester, CSVDataLoader
from alphadev.preflight import check_loaders
from alphadev.synthetic import write_synthetic_market
from benchmarks.alphas import Momentum


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_synthetic_market(folder / "data", n_symbols=20, days=30)
        base = BacktestConfig(
            name="b", alpha_class=Momentum, alpha_kwargs={},
            start_date=dt.date(2024, 1, 3), end_date=dt.date(2024, 1, 30),
            symbols=[f"S{k:03d}USDT" for k in range(20)],
            price_loader=CSVDataLoader(str(paths["prices"]), "close"),
            alpha_loaders=[CSVDataLoader(str(paths["values"]), "value")],
            beta_csv_path=str(paths["beta"]),
        )
        big = Backtester()
        big.add_multiple_configs(base, {"window": list(range(1, 101))},
                                 {"trading_fee_rate": [k * 1e-4 for k in range(10)]})
        for label in ("first call, one-time imports included", "again"):
            start = time.perf_counter()
            check_loaders(big.configs)
            print(f"loader check, {len(big.configs)} configs on 2 files ({label}): "
                  f"{(time.perf_counter() - start) * 1e3:.1f} ms")

        sweep = Backtester()
        sweep.add_multiple_configs(base, {"window": list(range(1, 61))})
        start = time.perf_counter()
        sweep.run_all(verbose=False, save_dir=folder / "runs")
        print(f"run_all of {len(sweep.configs)} configs: {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        loaded = Backtester.load(folder / "runs")
        table = loaded.get_comparison_table()
        print(f"Backtester.load + get_comparison_table, {len(table)} results: "
              f"{time.perf_counter() - start:.2f} s")
        start = time.perf_counter()
        frame = loaded.returns("pnl")
        print(f"returns('pnl') {frame.shape}: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
