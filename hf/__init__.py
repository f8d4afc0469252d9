"""Hessian-free optimization for PyTensor graphs.

``hf`` trains models written as PyTensor graphs with the truncated-Newton method
of Martens (ICML 2010) and Martens & Sutskever (ICML 2011), and offers a
downhill-compatible first-order module, :mod:`hf.first_order`, beside it.
"""

import logging as _logging

from . import _blas

_blas.configure()  # before PyTensor is imported: its C backend links the wheel's OpenBLAS

# PyTensor logs its configuration at INFO while it is imported; keep that out of a
# user's logging.basicConfig(level=INFO) unless they set PyTensor's level themselves.
_pytensor_log = _logging.getLogger("pytensor")
_quiet_import = _pytensor_log.level == _logging.NOTSET
if _quiet_import:
    _pytensor_log.setLevel(_logging.WARNING)
try:
    from . import cg, checkpoint, damping, init  # noqa: E402
    from ._compile import default_mode, function  # noqa: E402
finally:
    if _quiet_import:
        _pytensor_log.setLevel(_logging.NOTSET)
from .curvature import (
    StructuralDamping,
    damped_gauss_newton_product,
    gauss_newton_form,
    gauss_newton_product,
    structural_damping_product,
)
from . import data, dataset  # noqa: F401  (hf.dataset: hf.data's older name, kept for downhill users)
from .data import Batch, Dataset, RaggedArray, SequenceDataset, split_batch
from .optimizer import HFOptimizer
from .reduce import ExampleMean

__version__ = "0.1.0"

__all__ = [
    "HFOptimizer",
    "gauss_newton_product",
    "gauss_newton_form",
    "structural_damping_product",
    "damped_gauss_newton_product",
    "StructuralDamping",
    "Dataset",
    "SequenceDataset",
    "RaggedArray",
    "Batch",
    "split_batch",
    "ExampleMean",
    "cg",
    "damping",
    "checkpoint",
    "init",
    "function",
    "default_mode",
]
