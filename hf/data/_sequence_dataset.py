"""Sequence datasets: zero-padded, time-major batches of variable-length sequences with a mask."""
import numpy as np

from ._array_like import check_array, first_bad, is_float, take_rows
from .._checks import boolean
from ._base import FiniteDataset, permutation
from ._ragged import RaggedArray

__all__ = ["SequenceDataset"]


class SequenceDataset(FiniteDataset):
    """Mini-batches of variable-length sequences, zero-padded time-major with a mask.

    Parameters
    ----------
    inputs : list or tuple
        Each entry is a :class:`RaggedArray`, a list of arrays ``(T_i, ...)``
        (converted to a RaggedArray), or an array with one entry per sequence
        on axis 0 (static data, e.g. a target per sequence; numpy, h5py,
        pandas or scipy.sparse CSR/CSC, as for :class:`Dataset`).  At least one
        entry must be ragged; all have the same number of sequences and ragged
        entries have equal lengths per sequence.
    name : str, optional
        Name used in messages (default ``'dataset'``).
    batch_size : int, optional
        Sequences per batch (default 32).
    iteration_size : int, optional
        Batches per :meth:`iterate` call (default: one pass).
    rng : None, int, numpy.random.Generator or numpy.random.RandomState, optional
        Source of the order (see :class:`Dataset`).
    bucket : bool, optional
        If True, batches are formed from sequences of neighbouring lengths
        (sorted by length) so that padding is minimal; the order of batches
        is still shuffled on each pass.  If False (default), sequences are
        reshuffled into new batches on each pass.
    mask_dtype : dtype, optional
        Dtype of the mask; default the dtype of the first ragged input if it
        is floating-point, else float64.

    Attributes
    ----------
    lengths : ndarray of int64
        Length of each sequence.
    mask_index : int
        Position of the mask in a batch (the last array).
    mask_dtype : numpy.dtype
    bucket : bool

    Notes
    -----
    A batch is a list with, in input order, each ragged input padded with
    zeros to shape ``(T, B) + feature_shape`` (``T`` the longest sequence of
    the batch; time-major for ``pytensor.scan``), each static input as
    ``(B, ...)``, and the mask ``(T, B)`` appended last (1 for real steps, 0
    for padding).  :attr:`batch_axes` is 1 for ragged inputs and the mask, 0
    for static inputs.
    """

    def __init__(self, inputs, name=None, batch_size=32, iteration_size=None, rng=None,
                 bucket=False, mask_dtype=None):
        super().__init__(name, batch_size, rng)
        self.bucket = boolean("bucket", bucket, self._owner)
        entries = self._check_entries(inputs)
        self._arrays = [x for x, _ in entries]
        self._ragged = [isinstance(x, RaggedArray) for x in self._arrays]
        n_examples = self._check_counts()
        first = self._ragged.index(True)
        self.lengths = self._arrays[first].lengths
        self._check_lengths(first, [given for _, given in entries])
        if mask_dtype is None:
            first_dtype = self._arrays[first].dtype
            mask_dtype = first_dtype if is_float(first_dtype) else np.float64
        self.mask_dtype = np.dtype(mask_dtype)
        self.mask_index = len(self._arrays)
        self._axes = [1 if r else 0 for r in self._ragged] + [1]
        if self.bucket:
            by_length = np.argsort(self.lengths, kind="stable")
            self._groups = [by_length[s:s + self.batch_size].astype(np.int64)
                            for s in range(0, n_examples, self.batch_size)]
        self._init_passes(n_examples, iteration_size)

    # ----------------------------------------------------------------- construction

    def _check_entries(self, inputs):
        """(array, input as given) per input: lists of sequences become RaggedArrays."""
        owner = self._owner
        if not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{owner}: inputs must be a list or tuple of RaggedArrays, lists of "
                            f"sequences or arrays, got {type(inputs).__name__}")
        if not inputs:
            raise ValueError(f"{owner}: inputs is an empty list; give at least one input")
        entries = []
        for i, given in enumerate(inputs):
            x = given
            if isinstance(x, list):
                if not all(np.ndim(s) >= 1 for s in x):
                    raise TypeError(f"{owner}: input {i} is a list whose items are not all "
                                    "arrays (T_i, ...); pass static data as a numpy array")
                if not x:
                    raise ValueError(f"{owner} is empty: input {i} has no sequences")
                x = RaggedArray.from_list(x)
            elif not isinstance(x, RaggedArray):
                x = check_array(x, i, owner)
                if len(x.shape) < 1:
                    raise ValueError(f"{owner}: static input {i} must have the sequences on "
                                     f"axis 0, got shape {tuple(x.shape)}")
            entries.append((x, given))
        if not any(isinstance(x, RaggedArray) for x, _ in entries):
            raise ValueError(f"{owner}: no ragged input (RaggedArray or list of sequences); "
                             "use Dataset for fixed-size data")
        return entries

    def _check_counts(self):
        """The number of sequences, the same for every input."""
        owner = self._owner
        counts = [len(x) if r else int(x.shape[0]) for x, r in zip(self._arrays, self._ragged)]
        for i, n in enumerate(counts):
            if n != counts[0]:
                raise ValueError(f"{owner}: all inputs must have the same number of sequences; "
                                 f"input 0 has {counts[0]}, input {i} has {n}")
        if counts[0] == 0:
            raise ValueError(f"{owner} is empty: input 0 has 0 sequences")
        return counts[0]

    def _check_lengths(self, first, given):
        """Ragged inputs agree on every length, and no sequence is empty."""
        owner = self._owner
        for i, (x, r) in enumerate(zip(self._arrays, self._ragged)):
            if r and not np.array_equal(x.lengths, self.lengths):
                j = int(np.flatnonzero(x.lengths != self.lengths)[0])
                hint = (f" (input {i} was given as a list, so it was taken as ragged; pass "
                        "per-sequence static data as one numpy array)"
                        if isinstance(given[i], list) else "")
                raise ValueError(f"{owner}: ragged inputs must have equal lengths per sequence; "
                                 f"sequence {j} has length {int(self.lengths[j])} in input "
                                 f"{first} and {int(x.lengths[j])} in input {i}{hint}")
        if self.lengths.min() == 0:
            j = int(np.argmin(self.lengths))
            raise ValueError(f"{owner}: sequence {j} has length 0; every sequence needs at "
                             "least one time step")

    # ----------------------------------------------------------------- passes

    def _shuffled(self):
        """(sequence order, batch sizes) for a new pass."""
        if self.bucket:
            perm = self.rng.permutation(len(self._groups))
            order = np.concatenate([self._groups[g] for g in perm])
            sizes = np.array([len(self._groups[g]) for g in perm], dtype=np.int64)
        else:
            order = self.rng.permutation(self.n_examples).astype(np.int64)
            sizes = np.full(self.n_batches, self.batch_size, dtype=np.int64)
            sizes[-1] = self.n_examples - self.batch_size * (self.n_batches - 1)
        return order.astype(np.int64), sizes

    def _set_pass(self, new_pass):
        self._order, self._sizes = new_pass

    def _pass_from_state(self, state, order):
        owner = self._owner
        if state.get("bucket") != self.bucket:
            raise ValueError(f"{owner}: state has bucket={state.get('bucket')!r}, this dataset "
                             f"has bucket={self.bucket!r}")
        order = permutation(order, self.n_examples)
        if order is None:
            raise ValueError(f"{owner}: state order is not a permutation of the "
                             f"{self.n_examples} sequences")
        sizes = np.asarray(state.get("sizes"))
        if (sizes.shape != (self.n_batches,) or sizes.dtype.kind not in "iu"
                or sizes.sum() != self.n_examples or (sizes.size and sizes.min() <= 0)):
            raise ValueError(f"{owner}: state sizes are not {self.n_batches} positive batch "
                             f"sizes summing to {self.n_examples}")
        return order, sizes.astype(np.int64)

    # ----------------------------------------------------------------- batches

    @property
    def batch_axes(self):
        """list of int: 1 for ragged inputs and the mask (last), 0 for static inputs."""
        return list(self._axes)

    def examples(self, position):
        """The sequences of batch ``position`` of the current pass (int64 array, a copy)."""
        position = self._position(position)
        start = int(self._sizes[:position].sum())
        return self._order[start:start + int(self._sizes[position])].copy()

    def read(self, position, part=None):
        """Batch ``position`` of the current pass, padded (see :meth:`FiniteDataset.read`).

        With a ``part``, the batch holds only those sequences, padded to their
        own longest.
        """
        indices = self._part(self.examples(position), part, position)
        return self._build(indices, f"batch {position} of pass {self.epoch}")

    def _build(self, indices, where):
        indices = np.asarray(indices, dtype=np.int64)
        lengths = self.lengths[indices]
        steps = int(lengths.max())
        batch = []
        for i, (x, r) in enumerate(zip(self._arrays, self._ragged)):
            b = x.padded(indices, steps) if r else take_rows(x, indices)
            bad = first_bad(b, 1 if r else 0)
            if bad is not None:
                raise ValueError(f"{self._owner}: {where} of input {i} contains NaN or Inf "
                                 f"in sequence {int(indices[bad])}")
            batch.append(b)
        mask = np.arange(steps)[:, None] < lengths[None, :]
        batch.append(mask.astype(self.mask_dtype))
        return batch

    def take(self, n=None):
        """The first ``n`` sequences in their natural order, as one padded batch.

        Parameters
        ----------
        n : int, optional
            Number of sequences, ``1 <= n <= n_examples``; default all.

        Returns
        -------
        batch : list of arrays
            Same layout as the batches of :meth:`iterate`, mask last.
        """
        n = self._check_take(n)
        return self._build(np.arange(n), f"sequences 0:{n}")

    def _batch_specs(self):
        specs = []
        for x, r in zip(self._arrays, self._ragged):
            specs.append((len(x.data.shape) + 1 if r else len(x.shape), np.dtype(x.dtype)))
        specs.append((2, self.mask_dtype))
        return specs

    # ----------------------------------------------------------------- state

    def state_dict(self):
        """Checkpointable state; as :meth:`Dataset.state_dict`, where ``order``
        is the sequence order of the pass, plus ``sizes`` (int64 array: batch
        sizes of the pass, in order) and ``bucket``."""
        state = super().state_dict()
        state["sizes"] = self._sizes.copy()
        state["bucket"] = self.bucket
        return state

    def _repr_fields(self):
        return dict(super()._repr_fields(), bucket=self.bucket)
