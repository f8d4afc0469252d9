"""Array-backed datasets: contiguous mini-batches of a list of arrays, in shuffled order."""
import numpy as np

from ._array_like import check_array, check_finite, is_input, take_slice
from .._checks import is_int
from ._base import FiniteDataset, is_batch_function, permutation


class ArrayDataset(FiniteDataset):
    """Mini-batches of a list of arrays; what ``Dataset(arrays, ...)`` builds.

    Parameters are those of :class:`~hf.data.Dataset` with ``inputs`` a
    list or tuple of arrays, or one array (a dataset of one input).  A
    ``batch_size`` of 0 or less puts all the examples in one batch (as in
    downhill); ``batch_size`` is then the number of examples.  In messages,
    states and ``repr`` it is a ``'Dataset'``, so checkpoints written before
    the split load as they are.
    """

    _kind = "Dataset"

    @staticmethod
    def _builds_from(inputs):
        """``Dataset(inputs)`` is an ArrayDataset for anything but a batch function."""
        return not is_batch_function(inputs)

    def __init__(self, inputs, name=None, batch_size=32, iteration_size=None, axis=0, rng=None):
        whole = is_int(batch_size) and batch_size <= 0  # one batch of all the examples
        super().__init__(name, 1 if whole else batch_size, rng)
        self._set_axis(axis)
        owner = self._owner
        self._arrays = self._check_inputs_list(inputs)
        self._axes = []
        for i, x in enumerate(self._arrays):
            ndim = len(x.shape)
            a = self._axis_of(ndim)
            if a is None:
                raise ValueError(f"{owner}: axis {self.axis} is out of range for input {i} "
                                 f"with {ndim} dimensions (shape {tuple(x.shape)})")
            self._axes.append(a)
        lengths = [int(x.shape[a]) for x, a in zip(self._arrays, self._axes)]
        for i, n in enumerate(lengths):
            if n != lengths[0]:
                raise ValueError(f"{owner}: all inputs must have the same length along axis "
                                 f"{self.axis}; input 0 has {lengths[0]} examples, "
                                 f"input {i} has {n}")
        if lengths[0] == 0:
            raise ValueError(f"{owner} is empty: input 0 has 0 examples along axis "
                             f"{self.axis}")
        if whole:
            self.batch_size = lengths[0]
        self._init_passes(lengths[0], iteration_size)

    def _check_inputs_list(self, inputs):
        owner = self._owner
        if is_input(inputs):
            inputs = [inputs]  # one array: a dataset of one input
        elif not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{owner}: inputs must be an array, a list or tuple of arrays or a callable, "
                            f"got {type(inputs).__name__}")
        if len(inputs) == 0:
            raise ValueError(f"{owner}: inputs is an empty list; give at least one array")
        return [check_array(x, i, owner) for i, x in enumerate(inputs)]

    # ----------------------------------------------------------------- passes

    def _shuffled(self):
        return self.rng.permutation(self.n_batches).astype(np.int64)

    def _set_pass(self, order):
        self._order = order

    def _pass_from_state(self, state, order):
        order = permutation(order, self.n_batches)
        if order is None:
            raise ValueError(f"{self._owner}: state order is not a permutation of the "
                             f"{self.n_batches} batches")
        return order

    # ----------------------------------------------------------------- batches

    @property
    def batch_axes(self):
        """list of int: axis along which examples lie, for each array of a batch."""
        return list(self._axes)

    def examples(self, position):
        """The examples of batch ``position`` of the current pass: a ``range`` (contiguous)."""
        k = int(self._order[self._position(position)])
        start = k * self.batch_size
        return range(start, min(start + self.batch_size, self.n_examples))

    def read(self, position, part=None):
        """The arrays of batch ``position`` of the current pass (see :meth:`FiniteDataset.read`).

        Batch ``k`` of the data is one slice of every array (a strided one for
        a ``part``), so an HDF5 file is read in one selection per input.
        """
        examples = self.examples(position)
        where = f"batch {examples.start // self.batch_size} (examples {examples.start}:{examples.stop})"
        return self._read(self._part(examples, part, position), where)

    def _read(self, rows, where):
        """The arrays of the examples ``rows`` (a range with a positive step)."""
        batch = [take_slice(x, a, rows.start, rows.stop, rows.step) for x, a in zip(self._arrays, self._axes)]
        return check_finite(batch, self._axes, self._owner, where, lambda bad: rows[bad])

    def take(self, n=None):
        """The first ``n`` examples of the data, in their natural order.

        Use it for a fixed subset, e.g. a validation or curvature batch.  It
        does not move the cursor.

        Parameters
        ----------
        n : int, optional
            Number of examples, ``1 <= n <= n_examples``; default all.

        Returns
        -------
        batch : list of arrays
        """
        n = self._check_take(n)
        return self._read(range(0, n), f"examples 0:{n}")

    def _batch_specs(self):
        return [(len(x.shape), np.dtype(x.dtype)) for x in self._arrays]

    def _repr_fields(self):
        return dict(super()._repr_fields(), n_batches=self.n_batches)
