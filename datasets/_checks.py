"""Argument checks of the problem generators: counts with a minimum, bits, float dtypes, seeds.

Each raises :class:`TypeError` for a value of the wrong type and
:class:`ValueError` for a value out of range, naming the function, the
argument and the value.
"""
import numpy as np

from .._checks import is_int


def check_int(func, name, value, minimum):
    """``value`` as an int ``>= minimum``."""
    if not is_int(value):
        raise TypeError(f"{func}: {name} must be an integer, got {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {name}={value!r}")
    return int(value)


def check_bits(func, bits, allowed):
    """``bits`` as an int, one of ``allowed``."""
    if not is_int(bits) or bits not in allowed:
        raise ValueError(f"{func}: bits must be one of {allowed}, got bits={bits!r}")
    return int(bits)


def float_dtype(func, dtype):
    """``dtype`` as a floating numpy dtype."""
    try:
        dtype = np.dtype(dtype)
    except TypeError as err:
        raise ValueError(f"{func}: dtype must be a floating dtype, got dtype={dtype!r}") from err
    if dtype.kind != "f":
        raise ValueError(f"{func}: dtype must be a floating dtype, got dtype={dtype!r}")
    return dtype


def make_rng(func, seed, rng):
    """The Generator to draw from: ``rng`` as it is, or one seeded with ``seed``; not both."""
    if rng is not None:
        if seed is not None:
            raise ValueError(f"{func}: pass seed or rng, not both (got seed={seed!r})")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"{func}: rng must be a numpy.random.Generator, got rng={rng!r}")
        return rng
    return np.random.default_rng(seed)
