"""Out-of-sample validation of a sweep (docs/semantics.md#validating-a-sweep).

Arrays inside: ``walk_forward`` (selection on rolling train windows, stitched test
windows), ``pbo`` (probability of backtest overfitting by combinatorially symmetric
cross-validation) and ``trials`` (effective number of trials for the deflated Sharpe
ratio) take numpy arrays.  ``files`` is the pandas/disk edge: it reads a sweep's saved
returns, writes ``{save_dir}/validation/`` and reads it back (``read_validation``).
"""
