"""One place where ``hf`` compiles PyTensor functions.

PyTensor 3 picks its numba backend by default when the linker is left on
``auto``; for the small, many-op graphs of curvature products its first call
JIT-compiles for a minute or more, while the C backend compiles in seconds. So
unless the user chose a mode or linker (``PYTENSOR_FLAGS`` or an explicit
``mode=``), ``hf`` compiles with the C virtual machine (``FAST_RUN`` + ``cvm``).
"""

from __future__ import annotations

import contextlib
import logging

import pytensor
from pytensor.compile.mode import Mode


def default_mode():
    """The mode ``hf`` compiles with when the caller gives none."""
    cfg = pytensor.config
    if cfg.mode == "Mode" and cfg.linker == "auto" and cfg.cxx:
        return Mode(linker="cvm", optimizer="fast_run")
    return None


def function(inputs, outputs, *, mode=None, **kwargs):
    """``pytensor.function`` with ``hf``'s default mode."""
    return pytensor.function(inputs, outputs, mode=mode if mode is not None else default_mode(), **kwargs)


@contextlib.contextmanager
def quiet():
    """Keep PyTensor's compiler chatter (INFO lines per compiled module) out of the
    user's log while ``hf`` compiles, unless the user set PyTensor's log level."""
    logger = logging.getLogger("pytensor")
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)
