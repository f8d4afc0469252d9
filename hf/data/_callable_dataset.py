"""Callable-backed datasets: a function called for each fresh batch."""
from ._array_like import check_array, check_specs, first_bad, is_array_like, materialize
from .._checks import positive_int
from ._base import Dataset, is_batch_function


class CallableDataset(Dataset):
    """Batches returned by a callable; what ``Dataset(function, ...)`` builds.

    Parameters are those of :class:`~hf.data.Dataset` with ``inputs`` a
    callable taking no argument that returns one batch as a list or tuple of
    arrays; ``batch_size`` is kept but not used, and ``iteration_size``
    defaults to ``len(inputs)`` when the callable has a length, else 100
    (downhill's defaults). ``n_examples`` and ``n_batches`` are None. In
    messages, states and ``repr`` it is a ``'Dataset'``.
    """

    _kind = "Dataset"

    @staticmethod
    def _builds_from(inputs):
        """``Dataset(inputs)`` is a CallableDataset for a batch function."""
        return is_batch_function(inputs)

    def __init__(self, inputs, name=None, batch_size=32, iteration_size=None, axis=0, rng=None):
        super().__init__(name, batch_size, rng)
        self._set_axis(axis)
        if not callable(inputs):
            raise TypeError(f"{self._owner}: inputs must be a callable, got "
                            f"{type(inputs).__name__}")
        self._callable = inputs
        self._expected = None
        self._last_axes = None
        self._set_iteration_size(iteration_size, _default_calls(inputs))

    @property
    def batch_axes(self):
        """list of int or None: ``axis`` for every array of the last batch; None before one."""
        return None if self._last_axes is None else list(self._last_axes)

    def next_batch(self):
        """Call the callable once and return its batch, checked.

        Returns
        -------
        batch : list of arrays

        Raises
        ------
        TypeError
            If the callable returns no list or tuple of arrays, or a dtype
            differs from the graph inputs given to :meth:`check_inputs`.
        ValueError
            If ``axis`` is out of range for an array, the number of arrays
            changes between calls, a floating-point array holds NaN or Inf, or
            an ndim differs from the graph inputs.
        """
        owner = self._owner
        call = self._drawn
        batch = self._callable()
        self._drawn += 1
        if is_array_like(batch) or not isinstance(batch, (list, tuple)):
            raise TypeError(f"{owner}: the callable must return a list or tuple of arrays, "
                            f"got {type(batch).__name__} (call {call})")
        batch = [materialize(check_array(b, i, owner)) for i, b in enumerate(batch)]
        axes = []
        for i, b in enumerate(batch):
            a = self._axis_of(b.ndim)
            if a is None:
                raise ValueError(f"{owner}: axis {self.axis} is out of range for array {i} "
                                 f"of batch {call} with {b.ndim} dimensions")
            axes.append(a)
        if self._last_axes is not None and len(axes) != len(self._last_axes):
            raise ValueError(f"{owner}: the callable returned {len(axes)} arrays in batch "
                             f"{call}, {len(self._last_axes)} before")
        self._last_axes = axes
        for i, (b, a) in enumerate(zip(batch, axes)):
            bad = first_bad(b, a)
            if bad is not None:
                raise ValueError(f"{owner}: batch {call} (call {call} of the callable) of "
                                 f"input {i} contains NaN or Inf (first at example {bad})")
        if self._expected is not None:
            check_specs(f"{owner} (batch {call})", [(b.ndim, b.dtype) for b in batch],
                        self._expected)
        return batch

    def take(self, n=None):
        """One batch of the callable, cut to its first ``n`` examples.

        The callable is called once, as by :meth:`next_batch`.

        Parameters
        ----------
        n : int, optional
            Number of examples; default the whole batch.

        Returns
        -------
        batch : list of arrays
        """
        batch = self.next_batch()
        if n is None:
            return batch
        n = positive_int("n", n, self._owner)
        return [b[(slice(None),) * a + (slice(0, n),)] for b, a in zip(batch, self._last_axes)]

    def check_inputs(self, variables):
        """Remember graph inputs; every batch the callable returns is checked against them.

        Parameters
        ----------
        variables : sequence
            Symbolic inputs, each with ``ndim``, ``dtype`` and ``name``.
        """
        self._expected = list(variables)

    def _repr_fields(self):
        return dict(super()._repr_fields(), callable=self._callable)


def _default_calls(function):
    """Batches per pass of a callable without ``iteration_size``: ``len(function)`` when it
    has a length, else 100 (downhill's defaults)."""
    try:
        n = len(function)
    except (TypeError, AttributeError):
        return 100
    return n if isinstance(n, int) and n > 0 else 100
