"""The state of a numpy random generator as plain values, and back.

Datasets and optimizers keep their random generators' states in their
``state_dict()``; :mod:`hf.checkpoint` stores them.  This module needs numpy
only, so the data layer can save and restore RNG states without h5py.

Examples
--------
>>> import numpy as np
>>> from hf._rng_state import rng_from_state, rng_state
>>> rng = np.random.default_rng(0)
>>> state = rng_state(rng)
>>> state['bit_generator']
'PCG64'
>>> float(rng_from_state(state).random()) == float(rng.random())
True
"""
from collections.abc import Mapping

import numpy as np

__all__ = ["rng_state", "set_rng_state", "rng_from_state"]

#: Bit generators :func:`rng_from_state` can build.
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _error(message):
    """A :class:`hf.checkpoint.CheckpointError`; the checkpoint module (and h5py) is
    imported only when a state cannot be restored."""
    from .checkpoint import CheckpointError

    return CheckpointError(message)


def _bit_generator(rng):
    if isinstance(rng, np.random.Generator):
        return rng.bit_generator
    if isinstance(rng, np.random.BitGenerator):
        return rng
    raise TypeError(f"expected a numpy.random.Generator, got {type(rng).__name__}")


def _copy_tree(value):
    if isinstance(value, Mapping):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.copy()
    return value


def rng_state(rng):
    """Checkpointable state of a numpy random generator.

    Parameters
    ----------
    rng : numpy.random.Generator or numpy.random.BitGenerator

    Returns
    -------
    state : dict
        A deep copy of ``rng.bit_generator.state``: the bit generator's name
        under ``'bit_generator'`` and its state as Python ints (128-bit for
        PCG64) and numpy arrays, which :func:`hf.checkpoint.save` stores exactly.

    Raises
    ------
    TypeError
        If ``rng`` is neither a Generator nor a BitGenerator.
    """
    return _copy_tree(_bit_generator(rng).state)


def set_rng_state(rng, state):
    """Restore, in place, a state returned by :func:`rng_state`.

    Parameters
    ----------
    rng : numpy.random.Generator or numpy.random.BitGenerator
        Generator whose bit generator has the same type as the saved one.
    state : dict
        Output of :func:`rng_state`, possibly round-tripped through
        :func:`hf.checkpoint.save`/:func:`hf.checkpoint.load`.

    Raises
    ------
    hf.checkpoint.CheckpointError
        If the bit generator types differ or the state is malformed.
    """
    bitgen = _bit_generator(rng)
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    if name != type(bitgen).__name__:
        raise _error(f"cannot restore RNG state: saved bit generator {name!r} != "
                     f"{type(bitgen).__name__!r} of the generator")
    try:
        bitgen.state = _copy_tree(dict(state))
    except (TypeError, ValueError, KeyError) as err:
        raise _error(f"cannot restore RNG state of {name}: {err}") from err


def rng_from_state(state):
    """A new :class:`numpy.random.Generator` in the state given by :func:`rng_state`.

    Parameters
    ----------
    state : dict
        Output of :func:`rng_state`; its ``'bit_generator'`` must be one of
        PCG64, PCG64DXSM, MT19937, Philox, SFC64.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    hf.checkpoint.CheckpointError
        If the bit generator is unknown or the state is malformed.
    """
    name = state.get("bit_generator") if isinstance(state, Mapping) else None
    if name not in _BIT_GENERATORS:
        raise _error(f"cannot restore RNG state: unknown bit generator {name!r}")
    rng = np.random.Generator(getattr(np.random, name)())
    set_rng_state(rng, state)
    return rng
