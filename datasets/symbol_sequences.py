"""The symbol-sequence problems: temporal order, random permutation and noiseless memorization.

Every step shows one symbol, one-hot, and a softmax output names a class:
the order of two or three informative symbols (temporal order, [HS97]_
experiment 6), the first symbol of the sequence (random permutation) or, one
step after another, a pattern shown at the start (memorization), as in
[MS11]_.

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (section 7 and its supplementary
   material).
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997.
"""
import numpy as np

from ._checks import check_bits, check_int, float_dtype, make_rng
from ._generate import (MIN_T_MARKED, balanced_labels, end_task, lengths_of, one_hot,
                        step_masks)
from .task import SequenceTask

__all__ = [
    "TEMPORAL_ORDER_SYMBOLS",
    "temporal_order_windows",
    "temporal_order",
    "random_permutation",
    "memorization",
]

#: Symbols of the temporal order problem, in the order of the one-hot input
#: dimensions: four distractors, the two informative symbols, the end (trigger)
#: symbol ``B`` and the start symbol ``E`` [HS97].
TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")

_N_DISTRACTORS = 4
_SYMBOL_X = 4
_SYMBOL_END = 6
_SYMBOL_START = 7
# bits -> (pattern length, alphabet size) of the memorization problem.
_MEMORIZATION_VARIANTS = {5: (5, 2), 20: (10, 4)}


def temporal_order_windows(T, bits=2):
    """Windows of the informative symbols of the temporal order problem.

    Parameters
    ----------
    T : int
        Minimal sequence length, ``>= 20``.
    bits : {2, 3}
        Number of informative symbols.

    Returns
    -------
    tuple of tuple of int
        One half-open window ``(lo, hi)`` per informative symbol.

    Notes
    -----
    With ``f(x) = floor(x T / 100)``, following Sutskever's definitions for
    [MS11]_ (at ``T = 100``: ``[1, 10)``, ``[40, 50)`` for 2 bits and
    ``[1, 10)``, ``[30, 40)``, ``[50, 60)`` for 3 bits):

    * 2 bits: ``[max(1, f(1)), f(10))``, ``[f(40), f(50))``;
    * 3 bits: ``[max(1, f(1)), f(10))``, ``[f(30), f(40))``, ``[f(50), f(60))``.

    Examples
    --------
    >>> temporal_order_windows(200, bits=3)
    ((2, 20), (60, 80), (100, 120))
    """
    T = check_int("temporal_order_windows", "T", T, MIN_T_MARKED)
    bits = check_bits("temporal_order_windows", bits, (2, 3))
    first = (max(1, T // 100), T // 10)
    if bits == 2:
        return (first, (4 * T // 10, 5 * T // 10))
    return (first, (3 * T // 10, 4 * T // 10), (5 * T // 10, 6 * T // 10))


def temporal_order(n_sequences, T, *, bits=2, variable_length=True, seed=None, rng=None,
                   dtype=np.float64):
    """The temporal order problem of [HS97]_ (experiments 6a/6b) as in [MS11]_.

    Each step shows one symbol, one-hot over :data:`TEMPORAL_ORDER_SYMBOLS`
    ``('a', 'b', 'c', 'd', 'X', 'Y', 'B', 'E')``.  A sequence starts with the
    start symbol ``E``, ends with the trigger symbol ``B`` at step
    ``lengths - 1``, and is otherwise made of uniform random distractors
    ``a``-``d``, except at ``bits`` positions, one in each window of
    :func:`temporal_order_windows`, which hold ``X`` or ``Y``.  The class,
    given by a softmax output at the last step, is the ordered combination of
    those symbols read as a binary number with ``X = 0``, ``Y = 1`` and the
    earliest symbol most significant: for 2 bits ``XX=0, XY=1, YX=2, YY=3``;
    for 3 bits ``XXX=0, XXY=1, ..., YYY=7``.

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Minimal sequence length, ``>= 20``.
    bits : {2, 3}, optional
        Number of informative symbols; gives ``2**bits`` classes.
    variable_length : bool, optional
        Draw lengths from ``[T, T + T // 10]`` (default, like the lengths
        100-110 of [HS97]_) or use ``T``.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead; excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='softmax'``, ``n_in=8``, ``n_out=2**bits``, ``int64``
        labels ``(n,)``.

    Raises
    ------
    ValueError
        If ``bits`` is not 2 or 3, or as for :func:`~hf.datasets.addition`.
    TypeError
        As for :func:`~hf.datasets.addition`.

    Notes
    -----
    Classes are balanced within one call, as in Sutskever's generator: each
    occurs ``n // 2**bits`` or one more times (the classes that get one more
    are chosen at random), in random order; each label on its own is uniform.  Padded steps
    have all-zero inputs.
    """
    func = "temporal_order"
    n = check_int(func, "n_sequences", n_sequences, 1)
    T = check_int(func, "T", T, MIN_T_MARKED)
    bits = check_bits(func, bits, (2, 3))
    dtype = float_dtype(func, dtype)
    rng = make_rng(func, seed, rng)
    windows = temporal_order_windows(T, bits)
    lengths, T_total = lengths_of(rng, n, T, variable_length)
    labels = balanced_labels(rng, n, 2 ** bits)
    columns = np.arange(n)
    symbols = rng.integers(0, _N_DISTRACTORS, size=(T_total, n))
    symbols[0] = _SYMBOL_START
    symbols[lengths - 1, columns] = _SYMBOL_END
    for k, (lo, hi) in enumerate(windows):
        bit = (labels >> (bits - 1 - k)) & 1
        symbols[rng.integers(lo, hi, size=n), columns] = _SYMBOL_X + bit
    mask, end = step_masks(lengths, T_total)
    inputs = one_hot(symbols, len(TEMPORAL_ORDER_SYMBOLS), dtype) * mask[..., None].astype(dtype)
    params = {"bits": bits, "windows": [list(w) for w in windows],
              "variable_length": bool(variable_length),
              "symbols": list(TEMPORAL_ORDER_SYMBOLS)}
    arrays = dict(inputs=inputs, mask=mask.astype(dtype), end=end.astype(dtype),
                  lengths=lengths, params=params, T=T)
    return end_task("temporal_order", "softmax", 2 ** bits, labels, arrays)


def random_permutation(n_sequences, T, *, n_symbols=100, predict_all=False, seed=None,
                       rng=None, dtype=np.float64):
    """The random permutation problem of [MS11]_.

    Each step shows one of ``n_symbols`` symbols, one-hot.  Step 0 shows
    symbol 0 or 1; steps ``1 .. T-1`` show symbols drawn uniformly from ``2 ..
    n_symbols - 1``.  The network predicts the next symbol with a softmax over
    all ``n_symbols``; the sequence wraps around, so the symbol after the last
    step is the first symbol again.  Only the prediction at the last step
    ``T - 1`` can be right for more than chance and is judged: a sequence is
    solved when its argmax there is the first symbol.

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Sequence length (fixed), ``>= 2``.
    n_symbols : int, optional
        Alphabet size, ``>= 3`` (100 in [MS11]_).
    predict_all : bool, optional
        If false (default), the only target is the first symbol at the last
        step (``targets`` ``(n,)``).  If true, the loss covers next-symbol
        prediction at every step as in Sutskever's generator for [MS11]_:
        ``targets`` is time-major ``(T, n)`` with ``targets[t] = symbol[t+1]``
        and ``targets[T-1] = symbol[0]``, ``target_mask`` is all ones, and
        ``score_mask`` still judges only the last step.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead; excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='softmax'``, ``n_in = n_out = n_symbols``.

    Raises
    ------
    ValueError
        If ``n_sequences < 1``, ``T < 2``, ``n_symbols < 3``, or as for
        :func:`~hf.datasets.addition`.
    TypeError
        As for :func:`~hf.datasets.addition`.

    Notes
    -----
    Despite its name the sequence is not a permutation (Sutskever's remark):
    the middle symbols are drawn independently.  The first symbol is
    balanced within one call (0 and 1 each occur ``n // 2`` or one more
    times).  The one-hot inputs take ``8 * T * n * n_symbols`` bytes in
    float64; pass ``dtype='float32'`` to halve that.
    """
    func = "random_permutation"
    n = check_int(func, "n_sequences", n_sequences, 1)
    T = check_int(func, "T", T, 2)
    n_symbols = check_int(func, "n_symbols", n_symbols, 3)
    dtype = float_dtype(func, dtype)
    rng = make_rng(func, seed, rng)
    first = balanced_labels(rng, n, 2)
    symbols = np.empty((T, n), dtype=np.int64)
    symbols[0] = first
    symbols[1:] = rng.integers(2, n_symbols, size=(T - 1, n))
    inputs = one_hot(symbols, n_symbols, dtype)
    lengths = np.full(n, T, dtype=np.int64)
    mask, end = step_masks(lengths, T)
    params = {"n_symbols": n_symbols, "predict_all": bool(predict_all)}
    if predict_all:
        targets = np.roll(symbols, -1, axis=0)
        target_mask = mask
    else:
        targets = first
        target_mask = end
    return SequenceTask(name="random_permutation", T=T, output="softmax", n_out=n_symbols,
                        inputs=inputs, targets=targets, target_mask=target_mask.astype(dtype),
                        score_mask=end.astype(dtype), mask=mask.astype(dtype), lengths=lengths,
                        per_step=bool(predict_all), params=params)


def memorization(n_sequences, T, *, bits=5, predict_blanks=False, seed=None, rng=None,
                 dtype=np.float64):
    """The noiseless memorization problem of [MS11]_ (5-bit and 20-bit).

    A pattern of ``L`` symbols from an alphabet of ``K`` is shown first,
    followed by ``T`` blank steps and a cue; on the ``L`` steps after the cue
    the network must output the pattern, one symbol per step.

    * ``bits=5``: ``L = 5`` symbols from ``K = 2`` (5 bits, 32 patterns);
    * ``bits=20``: ``L = 10`` symbols from ``K = 4`` (2 bits each, ``2**20``
      patterns).

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Number of blank steps between the pattern and the cue, ``>= 1``.
    bits : {5, 20}, optional
        Information content of the pattern, selecting the variant above.
    predict_blanks : bool, optional
        If false (default), the loss covers only the ``L`` recall steps.  If
        true, it covers every step, the target being the blank class outside
        the recall steps (as in Sutskever's generator).  Only the recall steps
        are judged either way.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead; excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='softmax'``, ``per_step=True``, ``n_in = K + 2``, ``n_out =
        K + 1``, ``T_total = 2 L + T + 1``, ``int64`` labels ``(T_total, n)``.

    Raises
    ------
    ValueError
        If ``bits`` is not 5 or 20, or ``n_sequences < 1``, ``T < 1``, or as
        for :func:`~hf.datasets.addition`.
    TypeError
        As for :func:`~hf.datasets.addition`.

    Notes
    -----
    Layout, with input dimensions ``0 .. K-1`` the pattern symbols, ``K`` the
    blank and ``K + 1`` the cue, and output classes ``0 .. K-1`` the pattern
    symbols and ``K`` the blank:

    ==========================  ==================  =================
    steps                       input               target
    ==========================  ==================  =================
    ``0 .. L-1``                pattern symbol      blank
    ``L .. L+T-1``              blank               blank
    ``L+T``                     cue                 blank
    ``L+T+1 .. 2L+T``           blank               pattern symbol
    ==========================  ==================  =================

    A sequence is solved when the argmax is right on all ``L`` recall steps.
    Patterns are drawn uniformly and independently.
    """
    func = "memorization"
    n = check_int(func, "n_sequences", n_sequences, 1)
    T = check_int(func, "T", T, 1)
    bits = check_bits(func, bits, tuple(_MEMORIZATION_VARIANTS))
    dtype = float_dtype(func, dtype)
    rng = make_rng(func, seed, rng)
    L, K = _MEMORIZATION_VARIANTS[bits]
    blank, cue = K, K + 1
    T_total = 2 * L + T + 1
    pattern = rng.integers(0, K, size=(L, n))
    symbols = np.full((T_total, n), blank, dtype=np.int64)
    symbols[:L] = pattern
    symbols[L + T] = cue
    targets = np.full((T_total, n), blank, dtype=np.int64)
    targets[L + T + 1:] = pattern
    recall = np.zeros((T_total, n), dtype=dtype)
    recall[L + T + 1:] = 1
    ones = np.ones((T_total, n), dtype=dtype)
    params = {"bits": bits, "pattern_length": L, "alphabet_size": K,
              "blank": blank, "cue": cue, "recall_start": L + T + 1,
              "predict_blanks": bool(predict_blanks)}
    return SequenceTask(name="memorization", T=T, output="softmax", n_out=K + 1,
                        inputs=one_hot(symbols, K + 2, dtype), targets=targets,
                        target_mask=ones if predict_blanks else recall, score_mask=recall,
                        mask=ones, lengths=np.full(n, T_total, dtype=np.int64),
                        per_step=True, params=params)
