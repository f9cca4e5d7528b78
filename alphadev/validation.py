"""One validator for scalar settings, so every message reads the same way.

Numpy scalars are welcome (grids are often built with ``np.arange``/``np.linspace``);
booleans, NaN and infinities are not numbers for a setting.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np


class ParameterError(ValueError, TypeError):
    """A setting of the wrong type or out of range.

    Both a ValueError and a TypeError, so callers may catch either, as they did before
    the checks were gathered here.
    """


def plain(value: Any) -> Any:
    """Numpy scalars (also inside tuples and lists) as the Python values they spell.

    A float32 keeps its shortest spelling (``np.float32(0.3)`` is 0.3, not
    0.30000001192092896): that is the number the user wrote.
    """
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(str(value))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(plain(v) for v in value)
    return value


def _describe_range(
    integer: bool, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    kind = "an integer" if integer else "a finite number"
    def spell(bound: float) -> str:  # an integer bound in full, not as 1.08698e+06
        return str(int(bound)) if integer else f"{bound:g}"

    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {spell(low)}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {spell(high)}")
    return f"{kind} {' and '.join(parts)}".rstrip()


def check_scalar(
    name: str,
    value: Any,
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> Any:
    """``value`` as a plain ``int`` or ``float`` inside the range, or a ParameterError.

    The message names the parameter, the bad value and the allowed range (plus ``hint``).
    """
    def refused() -> ParameterError:  # the message is built only for a bad value
        allowed = _describe_range(integer, low, high, low_open, high_open)
        suffix = f" ({hint})" if hint else ""
        return ParameterError(f"{name}={value!r} must be {allowed}{suffix}")

    wanted_type = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted_type):
        raise refused()
    number: int | float = int(plain(value)) if integer else float(plain(value))
    if not integer and not math.isfinite(number):
        raise refused()
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise refused()
    return number
