"""Argument checks: the one place where ``hf`` validates numbers and flags given by users.

Every check raises :class:`TypeError` for a value of the wrong type and
:class:`ValueError` for a value of the right type outside its range, and the
message names the owner (``"HFOptimizer"``, ``"Dataset 'train'"``), the argument
and the bad value, so an error says what to change without a traceback read.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "is_int",
    "positive_int",
    "nonnegative_int",
    "real",
    "boolean",
    "rng_from",
]


def _prefix(owner):
    return f"{owner}: " if owner else ""


def is_int(value) -> bool:
    """True for Python and numpy integers, False for bools (``True`` is not a count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name, value, owner=None, *, allow_none=False):
    """``value`` as an ``int >= 1`` (or None when ``allow_none``)."""
    if value is None and allow_none:
        return None
    what = "a positive integer" + (" or None" if allow_none else "")
    if not is_int(value):
        raise TypeError(f"{_prefix(owner)}{name} must be {what}, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{_prefix(owner)}{name} must be {what}, got {value!r}")
    return int(value)


def nonnegative_int(name, value, owner=None):
    """``value`` as an ``int >= 0``."""
    if not is_int(value):
        raise TypeError(
            f"{_prefix(owner)}{name} must be a non-negative integer, got {value!r} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"{_prefix(owner)}{name} must be a non-negative integer, got {value!r}")
    return int(value)


def real(name, value, owner=None, *, low=-math.inf, high=math.inf, low_open=False, high_open=False,
         allow_inf=False) -> float:
    """``value`` as a float inside ``[low, high]`` (ends open when asked), finite unless ``allow_inf``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(owner)}{name} must be a real number, got {value!r} ({type(value).__name__})")
    x = float(value)
    inside = (x > low or (not low_open and x == low)) and (x < high or (not high_open and x == high))
    if math.isnan(x) or (not allow_inf and math.isinf(x)) or not inside:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        finite = "" if allow_inf else "finite and "
        raise ValueError(f"{_prefix(owner)}{name} must be {finite}in {interval}, got {value!r}")
    return x


def boolean(name, value, owner=None) -> bool:
    """``value`` as a bool; only ``True``/``False`` (Python or numpy) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{_prefix(owner)}{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def rng_from(name, rng, owner=None, *, default_seed=None) -> np.random.Generator:
    """A numpy Generator from None, a non-negative int seed, a Generator, a SeedSequence,
    a BitGenerator, or a legacy ``numpy.random.RandomState`` (its state seeds a new Generator)."""
    if rng is None:
        return np.random.default_rng(default_seed)
    if isinstance(rng, np.random.Generator):
        return rng
    if is_int(rng):
        if rng < 0:
            raise ValueError(f"{_prefix(owner)}{name} seed must be non-negative, got {rng!r}")
        return np.random.default_rng(int(rng))
    if isinstance(rng, (np.random.SeedSequence, np.random.BitGenerator)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(0, 2**63 - 1, dtype=np.int64))
    raise TypeError(
        f"{_prefix(owner)}{name} must be None, an int seed, a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {type(rng).__name__}"
    )
