"""Library version and the results version that enters every fingerprint."""

__version__ = "0.1.0"

# Bump whenever a change to alphadev alters any number a backtest produces, so saved
# results from older code are recomputed instead of reused.
RESULTS_VERSION = 1
