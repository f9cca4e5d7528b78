"""Streaming with save_dir writes positions and trades chunk by chunk, same numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from alphadev import Backtester
from tests.conftest import make_config


def test_spilled_streaming_equals_batch(market: Path, tmp_path: Path) -> None:
    bt = Backtester()
    bt.add_config(make_config(market, name="batch"))
    bt.add_config(make_config(market, name="stream", mode="streaming", chunk_days=2))
    batch, stream = bt.run_all(verbose=False, save_dir=tmp_path / "out")
    assert stream.path == tmp_path / "out" / "stream"
    for kind in ("positions", "trades"):
        expected = getattr(batch, kind)
        got = pd.read_parquet(stream.path / "sequences" / f"{kind}.parquet")
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=0, atol=1e-12)
        pd.testing.assert_frame_equal(getattr(stream, kind), expected, check_exact=False,
                                      rtol=0, atol=1e-12)
    pd.testing.assert_frame_equal(stream.sequences, batch.sequences, check_exact=False,
                                  rtol=0, atol=1e-12)
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
