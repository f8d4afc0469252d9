"""What the optimizers consume: :class:`Batch`, and the helpers that count and cut batches.

A batch is a list of arrays with the examples of each on its own axis (the
dataset's ``batch_axes``). :class:`Batch` holds the arrays with those axes, the
mask's position and where the batch came from; every dataset gives one with
:meth:`hf.Dataset.draw`. :func:`batch_size_of` counts a batch's examples and
:func:`split_batch` cuts it into bounded-memory chunks, trimming time-major
sequence chunks to their own longest sequence.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from .._checks import is_int, positive_int

__all__ = ["Batch", "as_batch", "batch_size_of", "split_batch"]


def _normalize_axes(batch, batch_axes):
    """One non-negative axis per array of ``batch`` from an int or a sequence of ints."""
    if is_int(batch_axes):
        axes = [int(batch_axes)] * len(batch)
    else:
        axes = list(batch_axes)
        if len(axes) != len(batch):
            raise ValueError(f"batch_axes has {len(axes)} entries for a batch of "
                             f"{len(batch)} arrays")
    out = []
    for i, (b, a) in enumerate(zip(batch, axes)):
        ndim = np.ndim(b)
        if not is_int(a) or not -ndim <= a < ndim:
            raise ValueError(f"batch axis {a!r} is out of range for array {i} with "
                             f"{ndim} dimensions")
        out.append(int(a) % ndim)
    return out


def batch_size_of(batch, batch_axes):
    """Number of examples in a batch.

    Parameters
    ----------
    batch : list of ndarray
    batch_axes : int or sequence of int
        Axis of the examples in each array (one int for all).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        If the batch is empty or its arrays disagree on the number of examples.
    """
    batch = list(batch)
    if not batch:
        raise ValueError("batch_size_of: empty batch (no arrays)")
    axes = _normalize_axes(batch, batch_axes)
    sizes = [int(np.shape(b)[a]) for b, a in zip(batch, axes)]
    for i, n in enumerate(sizes):
        if n != sizes[0]:
            raise ValueError(f"batch_size_of: array 0 has {sizes[0]} examples along axis "
                             f"{axes[0]}, array {i} has {n} along axis {axes[i]}")
    return sizes[0]


def split_batch(batch, batch_axes, chunk_size, mask_index=None):
    """Cut a batch into consecutive chunks of at most ``chunk_size`` examples.

    Parameters
    ----------
    batch : list of ndarray
    batch_axes : int or sequence of int
        Axis of the examples in each array (e.g. ``dataset.batch_axes``).
    chunk_size : int or None
        Most examples per chunk; None for the whole batch as one chunk.
    mask_index : int, optional
        Index of a time-major ``(T, B)`` mask (``dataset.mask_index``).  Each
        chunk is then trimmed to its own longest sequence: arrays whose batch
        axis is 1 (time-major ``(T, B, ...)``, the mask included) keep only
        the first ``T_chunk`` steps, the last step where the chunk's mask is
        non-zero.

    Yields
    ------
    chunk : list of ndarray
        Views of the batch's arrays.
    n_rows : int
        Examples in the chunk; they sum to :func:`batch_size_of` the batch, so
        a mean over the batch is ``sum(n_rows * chunk_mean) / sum(n_rows)``.

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.zeros((5, 3)), np.arange(5)
    >>> [n for _, n in split_batch([x, y], [0, 0], 2)]
    [2, 2, 1]
    """
    batch = list(batch)
    axes = _normalize_axes(batch, batch_axes)
    n = batch_size_of(batch, axes)
    if chunk_size is None:
        chunk_size = max(n, 1)
    chunk_size = positive_int("chunk_size", chunk_size, "split_batch")
    if mask_index is not None:
        if not is_int(mask_index) or not -len(batch) <= mask_index < len(batch):
            raise ValueError(f"split_batch: mask_index {mask_index!r} is out of range for a "
                             f"batch of {len(batch)} arrays")
        mask_index = int(mask_index) % len(batch)
        if np.ndim(batch[mask_index]) != 2 or axes[mask_index] != 1:
            raise ValueError(f"split_batch: the mask (array {mask_index}) must be time-major "
                             f"(T, B) with batch axis 1, got shape {np.shape(batch[mask_index])} "
                             f"and batch axis {axes[mask_index]}")
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk = [b[(slice(None),) * a + (slice(start, stop),)] for b, a in zip(batch, axes)]
        if mask_index is not None:
            steps = np.flatnonzero(np.any(chunk[mask_index] != 0, axis=1))
            t = int(steps[-1]) + 1 if steps.size else 0
            chunk = [c[:t] if a == 1 else c for c, a in zip(chunk, axes)]
        yield chunk, stop - start


@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch of graph inputs and where its examples lie.

    Parameters
    ----------
    arrays : tuple of ndarray
        Values for the graph inputs, in order.
    axes : tuple of int
        For each array, the axis that indexes examples.
    mask_index : int or None
        Index of a time-major ``(T, batch)`` mask among ``arrays``: chunks of a
        padded sequence batch are then trimmed to their own longest sequence.
    source : str
        Where the batch came from (e.g. ``"dataset 'train'"``), for error messages.
    """

    arrays: tuple
    axes: tuple
    mask_index: int | None = None
    source: str = ""

    @property
    def size(self) -> int:
        """Number of examples (1 for a batch with no arrays: data held in the graph)."""
        if not self.arrays:
            return 1
        return batch_size_of(self.arrays, self.axes)

    def chunks(self, chunk_size: int | None):
        """Yield ``(chunk, n_examples)`` pairs covering the batch in order."""
        if not self.arrays:
            yield self, 1
            return
        for arrays, n in split_batch(self.arrays, self.axes, chunk_size, self.mask_index):
            yield Batch(tuple(arrays), self.axes, self.mask_index, self.source), n

    def head(self, n: int) -> "Batch":
        """The first ``n`` examples (the whole batch if it is smaller)."""
        if n >= self.size:
            return self
        return next(self.chunks(n))[0]


def as_batch(arrays: Sequence, axes: Sequence[int], mask_index: int | None = None, *, source: str = "") -> Batch:
    """Build a :class:`Batch` after checking the arrays agree on their example count."""
    batch = Batch(tuple(arrays), tuple(axes), mask_index, source)
    if batch.arrays:
        batch_size_of(batch.arrays, batch.axes)  # raises if the arrays disagree
    return batch
