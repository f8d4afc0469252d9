"""Synthetic long-range problems for recurrent networks ("pathological problems").

These are the problems on which [MS11]_ showed that Hessian-free optimization
trains plain tanh RNNs over dependencies of hundreds of time steps.  They come
from the LSTM paper [HS97]_; the exact variants follow Sutskever's definitions
used for [MS11]_ (two marked operands in fixed windows, minimal length ``T``
with lengths drawn from ``[T, 1.1 T]``, a success tolerance of 0.04).

Every generator returns a :class:`SequenceTask` whose arrays are *time-major*:
``inputs`` has shape ``(T_total, n_sequences, n_in)``, so examples lie on
axis 1 of every time-major array and on axis 0 of the end-of-sequence arrays.
The generators only use the random generator they are given (or one built
from ``seed`` with :func:`numpy.random.default_rng`), never numpy's global
random state.

Summary of the definitions (``T`` is the minimal sequence length, except for
:func:`memorization` where it is the number of blank steps):

=====================  ====  =====  ========  ==========================================
problem                n_in  n_out  output    scored / solved when
=====================  ====  =====  ========  ==========================================
addition               2     1      linear    last step, ``|y - target| <= 0.04``
multiplication         2     1      linear    last step, ``|y - target| <= 0.04``
xor                    2     1      logistic  last step, ``(p > 0.5) == target``
temporal_order         8     4/8    softmax   last step, argmax is the class
random_permutation     100   100    softmax   last step, argmax is the first symbol
memorization (5 bit)   4     3      softmax   the 5 recall steps, every argmax right
memorization (20 bit)  6     5      softmax   the 10 recall steps, every argmax right
=====================  ====  =====  ========  ==========================================

The definitions live in modules named after what they hold, all re-exported
here and from :mod:`hf.datasets`:

* :mod:`hf.datasets.task`: :class:`SequenceTask`, the container and its
  success criterion;
* :mod:`hf.datasets.marked_operands`: :func:`addition`,
  :func:`multiplication`, :func:`xor` and :func:`marker_windows`;
* :mod:`hf.datasets.symbol_sequences`: :func:`temporal_order`,
  :func:`random_permutation`, :func:`memorization`,
  :func:`temporal_order_windows` and :data:`TEMPORAL_ORDER_SYMBOLS`;
* :mod:`hf.datasets.hdf5`: :func:`write_hdf5` and :func:`read_hdf5`;
* this module: the registry :data:`TASKS` and :func:`make_task`.

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (section 7 and its supplementary
   material).
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997 (experiments 4, 5 and 6).
"""
from .hdf5 import HDF5_FORMAT_VERSION, read_hdf5, write_hdf5
from .marked_operands import addition, marker_windows, multiplication, xor
from .symbol_sequences import (
    TEMPORAL_ORDER_SYMBOLS,
    memorization,
    random_permutation,
    temporal_order,
    temporal_order_windows,
)
from .task import SOLVED_TOLERANCE, SequenceTask

__all__ = [
    "SequenceTask",
    "addition",
    "multiplication",
    "xor",
    "temporal_order",
    "random_permutation",
    "memorization",
    "marker_windows",
    "temporal_order_windows",
    "make_task",
    "TASKS",
    "write_hdf5",
    "read_hdf5",
    "SOLVED_TOLERANCE",
    "TEMPORAL_ORDER_SYMBOLS",
    "HDF5_FORMAT_VERSION",
]

#: Generators by name, for :func:`make_task`.
TASKS = {
    "addition": addition,
    "multiplication": multiplication,
    "xor": xor,
    "temporal_order": temporal_order,
    "random_permutation": random_permutation,
    "memorization": memorization,
}


def make_task(name, n_sequences, T, **kwargs):
    """Generate a problem by name.

    Parameters
    ----------
    name : str
        A key of :data:`TASKS` (case-insensitive).
    n_sequences, T : int
        Passed to the generator.
    **kwargs
        Keyword arguments of the generator (``bits``, ``seed``...); unknown
        ones raise ``TypeError``.

    Returns
    -------
    SequenceTask

    Raises
    ------
    ValueError
        If ``name`` is not a known problem.

    Examples
    --------
    >>> make_task('temporal_order', 8, 50, bits=3, seed=0).n_out
    8
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in TASKS:
        raise ValueError(f"make_task: unknown problem name={name!r}; known: {sorted(TASKS)}")
    return TASKS[key](n_sequences, T, **kwargs)
