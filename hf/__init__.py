"""Hessian-free optimization for PyTensor graphs.

``hf`` trains models written as PyTensor graphs with the truncated-Newton method
of Martens (ICML 2010) and Martens & Sutskever (ICML 2011), and offers a
downhill-compatible first-order module, :mod:`hf.first_order`, beside it.
"""

from . import _blas

_blas.configure()  # before PyTensor is imported: its C backend links the wheel's OpenBLAS

from . import cg, checkpoint, damping, init  # noqa: E402
from ._compile import default_mode, function  # noqa: E402
from .curvature import (
    StructuralDamping,
    damped_gauss_newton_product,
    gauss_newton_product,
    structural_damping_product,
)
from .dataset import Dataset, RaggedArray, SequenceDataset
from .optimizer import HFOptimizer
from .reduce import Batch, ExampleMean

__version__ = "0.1.0"

__all__ = [
    "HFOptimizer",
    "gauss_newton_product",
    "structural_damping_product",
    "damped_gauss_newton_product",
    "StructuralDamping",
    "Dataset",
    "SequenceDataset",
    "RaggedArray",
    "Batch",
    "ExampleMean",
    "cg",
    "damping",
    "checkpoint",
    "init",
    "function",
    "default_mode",
]
