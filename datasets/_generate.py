"""Pieces shared by the problem generators: lengths, step masks, balanced labels, one-hot codes."""
import numpy as np

from .task import SequenceTask

# Minimal T of the marked-operand and temporal order problems: the first
# window [max(1, T // 100), T // 10) must hold at least one position.
MIN_T_MARKED = 20


def lengths_of(rng, n, T, variable_length):
    """Lengths uniform on the integers of [T, T + T // 10], or all T."""
    if not variable_length:
        return np.full(n, T, dtype=np.int64), T
    T_max = T + T // 10
    return rng.integers(T, T_max + 1, size=n, dtype=np.int64), T_max


def step_masks(lengths, T_total):
    """(mask, end_mask): steps that exist, and each sequence's last step."""
    steps = np.arange(T_total)[:, None]
    mask = (steps < lengths[None, :]).astype(np.float64)
    end = (steps == lengths[None, :] - 1).astype(np.float64)
    return mask, end


def balanced_labels(rng, n, n_classes):
    """n labels in [0, n_classes), each class ``n // n_classes`` or one more times.

    Whole cycles of all classes, plus a uniformly chosen subset of distinct
    classes for the remainder, in random order: every label is uniform on its
    own, and counts differ by at most one.
    """
    full = np.tile(np.arange(n_classes, dtype=np.int64), n // n_classes)
    rest = rng.choice(n_classes, size=n % n_classes, replace=False).astype(np.int64)
    return rng.permutation(np.concatenate([full, rest]))


def one_hot(symbols, depth, dtype):
    """Integer ``symbols`` as one-hot vectors of length ``depth`` on a new last axis."""
    out = np.zeros(symbols.shape + (depth,), dtype=dtype)
    np.put_along_axis(out, symbols[..., None], 1, axis=-1)
    return out


def end_task(name, output, n_out, targets, arrays):
    """A task with one target per sequence, judged at its last step.

    ``arrays`` holds ``inputs``, ``mask``, ``end`` (the last-step mask),
    ``lengths``, ``params`` and ``T``; float targets take the inputs' dtype.
    """
    inputs = arrays["inputs"]
    if output != "softmax":
        targets = targets.astype(inputs.dtype)
    end = arrays["end"]
    return SequenceTask(name=name, T=arrays["T"], output=output, n_out=n_out, inputs=inputs,
                        targets=targets, target_mask=end, score_mask=end, mask=arrays["mask"],
                        lengths=arrays["lengths"], per_step=False, params=arrays["params"])
