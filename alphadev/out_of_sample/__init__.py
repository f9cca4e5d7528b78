"""Out-of-sample validation of a sweep (docs/semantics.md#validating-a-sweep).

Arrays inside: ``walk_forward`` (selection on rolling train windows, stitched test
windows) and ``pbo`` (probability of backtest overfitting by combinatorially symmetric
cross-validation) take numpy arrays; the effective number of trials for the deflated
Sharpe ratio is ``alphadev.trials``, below the sweep statistics that use it.
``files`` is the pandas/disk edge: it reads a sweep's saved returns, writes
``{save_dir}/validation/`` and reads it back (``read_validation``).
"""
