"""The marked-operand problems: addition, multiplication and xor.

Each sequence carries a value channel and a marker channel; two values are
marked, one in each window of :func:`marker_windows`, and the target, read at
the last step, combines them (their sum, their product, or the exclusive or
of two bits).  These are the problems of [HS97]_ (experiments 4 and 5) in the
variant of [MS11]_.

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (section 7 and its supplementary
   material).
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997.
"""
import numpy as np

from ._checks import check_int, float_dtype, make_rng
from ._generate import MIN_T_MARKED, end_task, lengths_of, step_masks

__all__ = ["marker_windows", "addition", "multiplication", "xor"]


def marker_windows(T):
    """Windows of the two marked operands of addition, multiplication and xor.

    Parameters
    ----------
    T : int
        Minimal sequence length, ``>= 20``.

    Returns
    -------
    tuple of tuple of int
        ``((lo1, hi1), (lo2, hi2))``: the first marked position is uniform on
        the integers of ``[lo1, hi1)``, the second on ``[lo2, hi2)``.

    Notes
    -----
    ``lo1 = max(1, T // 100)``, ``hi1 = lo2 = T // 10``, ``hi2 = T // 2``,
    i.e. ``[2, 20)`` and ``[20, 100)`` at ``T = 200`` as in Sutskever's
    definitions for [MS11]_.  Step 0 is never marked (it carries the start
    marker), and both windows lie in the first half of every sequence.

    Examples
    --------
    >>> marker_windows(200)
    ((2, 20), (20, 100))
    """
    T = check_int("marker_windows", "T", T, MIN_T_MARKED)
    return ((max(1, T // 100), T // 10), (T // 10, T // 2))


def _marked_operands(func, n_sequences, T, variable_length, seed, rng, dtype, binary):
    """The arrays of a marked-operand task for :func:`end_task`, and the two marked values.

    Values are uniform on ``[0, 1)``, or fair bits when ``binary``.
    """
    n = check_int(func, "n_sequences", n_sequences, 1)
    T = check_int(func, "T", T, MIN_T_MARKED)
    dtype = float_dtype(func, dtype)
    rng = make_rng(func, seed, rng)
    windows = marker_windows(T)
    lengths, T_total = lengths_of(rng, n, T, variable_length)
    if binary:
        values = rng.integers(0, 2, size=(T_total, n)).astype(np.float64)
    else:
        values = rng.random((T_total, n))
    positions = [rng.integers(lo, hi, size=n) for lo, hi in windows]
    mask, end = step_masks(lengths, T_total)
    columns = np.arange(n)
    marker = np.zeros((T_total, n))
    marker[0] = -1.0
    marker[lengths - 1, columns] = -1.0
    for pos in positions:
        marker[pos, columns] = 1.0
    values *= mask
    inputs = np.stack([values, marker], axis=-1).astype(dtype)
    operands = [values[pos, columns] for pos in positions]
    params = {
        "windows": [list(w) for w in windows],
        "variable_length": bool(variable_length),
    }
    return dict(inputs=inputs, mask=mask.astype(dtype), end=end.astype(dtype),
                lengths=lengths, params=params, T=T), operands


def addition(n_sequences, T, *, variable_length=True, seed=None, rng=None, dtype=np.float64):
    """The addition problem of [HS97]_ in the variant of [MS11]_.

    Values are uniform on ``[0, 1)``; the target is the sum of the two marked
    values, read by one linear output at the end with a squared loss.  A
    sequence is solved when ``|y - target| <= 0.04``.

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Minimal sequence length, ``>= 20``.
    variable_length : bool, optional
        Draw lengths from ``[T, T + T // 10]`` (default, as in [MS11]_) or
        use length ``T`` for all sequences.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead (it is advanced); excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='linear'``, ``n_in=2``, ``n_out=1``, targets ``(n, 1)``.

    Raises
    ------
    ValueError
        If ``n_sequences < 1``, ``T < 20``, ``dtype`` is not a float dtype,
        or both ``seed`` and ``rng`` are given.
    TypeError
        If ``n_sequences`` or ``T`` is not an integer or ``rng`` is not a
        Generator.

    Notes
    -----
    Input channel 0 holds the values; channel 1 is the marker channel: ``+1``
    at the two marked positions, ``-1`` at step 0 and at the sequence's last
    step ``lengths - 1`` (the start and end signals of [HS97]_), 0 elsewhere.
    The first marked position is uniform on ``[max(1, T // 100), T // 10)``,
    the second on ``[T // 10, T // 2)`` (see :func:`marker_windows`; ``[2,
    20)`` and ``[20, 100)`` at ``T = 200``).  With ``variable_length`` the
    length of each sequence is uniform on the integers of ``[T, T + T //
    10]`` (``[T, 1.1 T]`` as in [MS11]_) and the arrays are padded with zeros
    to ``T_total = T + T // 10`` steps; otherwise every sequence has length
    ``T``.  The target belongs to the last step of each sequence.

    Examples
    --------
    >>> task = addition(4, 100, seed=1)
    >>> task.inputs.shape
    (110, 4, 2)
    >>> (task.inputs[..., 1] == 1).sum(axis=0)
    array([2, 2, 2, 2])
    """
    arrays, (a, b) = _marked_operands("addition", n_sequences, T, variable_length,
                                      seed, rng, dtype, binary=False)
    return end_task("addition", "linear", 1, (a + b)[:, None], arrays)


def multiplication(n_sequences, T, *, variable_length=True, seed=None, rng=None, dtype=np.float64):
    """The multiplication problem of [HS97]_ in the variant of [MS11]_.

    As :func:`addition` but the target is the product of the two marked
    values.  Values are non-negative (uniform on ``[0, 1)``), which keeps the
    problem easier than :func:`xor` (Sutskever's remark).

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Minimal sequence length, ``>= 20``.
    variable_length : bool, optional
        Draw lengths from ``[T, T + T // 10]`` (default) or use ``T``.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead; excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='linear'``, ``n_in=2``, ``n_out=1``, targets ``(n, 1)``.

    Raises
    ------
    ValueError, TypeError
        As for :func:`addition`.

    Notes
    -----
    Inputs, marked windows, lengths and padding as for :func:`addition`.
    """
    arrays, (a, b) = _marked_operands("multiplication", n_sequences, T, variable_length,
                                      seed, rng, dtype, binary=False)
    return end_task("multiplication", "linear", 1, (a * b)[:, None], arrays)


def xor(n_sequences, T, *, variable_length=True, seed=None, rng=None, dtype=np.float64):
    """The XOR problem of [MS11]_: the exclusive or of two marked bits.

    As :func:`addition`, but every value is a fair random bit in {0, 1} and the
    target is ``a XOR b`` of the two marked bits, read by one logistic output
    with the cross-entropy loss.  A sequence is solved when ``(p > 0.5) ==
    target``.  The hardest of the problems: neither operand alone carries any
    information about the target.

    Parameters
    ----------
    n_sequences : int
        Number of sequences, ``>= 1``.
    T : int
        Minimal sequence length, ``>= 20``.
    variable_length : bool, optional
        Draw lengths from ``[T, T + T // 10]`` (default) or use ``T``.
    seed : int or numpy.random.SeedSequence, optional
        Seed for :func:`numpy.random.default_rng`.
    rng : numpy.random.Generator, optional
        Generator to draw from instead; excludes ``seed``.
    dtype : numpy dtype, optional
        Float dtype of the arrays (default ``float64``).

    Returns
    -------
    SequenceTask
        ``output='logistic'``, ``n_in=2``, ``n_out=1``, targets ``(n, 1)`` in
        {0, 1}.

    Raises
    ------
    ValueError, TypeError
        As for :func:`addition`.

    Notes
    -----
    Inputs, marked windows, lengths and padding as for :func:`addition`.

    Sutskever's demo for [MS11]_ ran XOR shorter than the other problems:
    for its ``T = 200`` setting, lengths 100-110 with windows ``[2, 20)`` and
    ``[30, 50)``.  Here ``T`` and the windows mean the same for all three
    problems; ``xor(n, 100)`` is the closest match.
    """
    arrays, (a, b) = _marked_operands("xor", n_sequences, T, variable_length,
                                      seed, rng, dtype, binary=True)
    target = np.logical_xor(a > 0.5, b > 0.5).astype(np.float64)[:, None]
    return end_task("xor", "logistic", 1, target, arrays)
