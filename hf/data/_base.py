"""What every dataset shares: :class:`Dataset` and :class:`FiniteDataset`.

:class:`Dataset` holds the name, batch size, random generator, iteration
size and the count of batches drawn, yields batches with :meth:`~Dataset.iterate`,
checks them against a graph's inputs and saves and restores its state.
``Dataset(inputs, ...)`` itself builds an :class:`~hf.data.ArrayDataset`
for a list of arrays and a :class:`~hf.data.CallableDataset` for a
function.  :class:`FiniteDataset` adds the cursor over data of known size, visited
in passes whose order is reshuffled on each wrap (arrays and sequences).
"""
import inspect
import itertools

import numpy as np

from ._array_like import check_specs, is_input
from ._batch import as_batch
from .._checks import is_int, positive_int, rng_from
from .._rng_state import rng_from_state, rng_state, set_rng_state


#: Numbers the datasets built without a name: 'dataset0', 'dataset1', ... (downhill's default names).
_unnamed = itertools.count()


def is_batch_function(inputs):
    """True for a callable that returns batches (not an array, a shared variable or a list)."""
    return callable(inputs) and not is_input(inputs) and not isinstance(inputs, (list, tuple))


def permutation(order, n):
    """``order`` as an int64 array if it is a permutation of ``range(n)``, else None."""
    order = np.asarray(order)
    if (order.shape != (n,) or order.dtype.kind not in "iu"
            or not np.array_equal(np.sort(order), np.arange(n))):
        return None
    return order.astype(np.int64)


class Dataset:
    """Mini-batches of a list of arrays, or of a batch-returning callable.

    ``Dataset(inputs, ...)`` returns an :class:`~hf.data.ArrayDataset` for
    a list of arrays and a :class:`~hf.data.CallableDataset` for a
    callable; both, and :class:`~hf.data.SequenceDataset`, are instances
    of :class:`Dataset`.

    Parameters
    ----------
    inputs : array, list or tuple of arrays, or callable
        Arrays (numpy arrays, :class:`h5py.Dataset` objects, pandas
        DataFrames or Series, PyTensor shared variables, scipy.sparse CSR or
        CSC matrices, or array-likes with ``shape``, ``dtype`` and slicing),
        all with the same length along ``axis``, or one array alone (a
        dataset of one input); or a callable taking no argument that returns
        one batch as a list or tuple of arrays.
    name : str, optional
        Name used in messages; default ``'dataset<N>'``, N counting the
        datasets built without a name in this process (as downhill names them).
    batch_size : int, optional
        Examples per batch (default 32); the last batch of the data may be
        smaller.  0 or less: all the examples in one batch (``batch_size``
        is then their number).  Ignored for a callable.
    iteration_size : int, optional
        Batches yielded by one call of :meth:`iterate`: default the number of
        batches in the data (one pass); for a callable ``len(inputs)``, or
        100 when it has no length.
    axis : int, optional
        Axis along which examples lie in every array (default 0).
    rng : None, int, numpy.random.Generator or numpy.random.RandomState, optional
        Source of the batch order: None gives a fresh ``default_rng()``, an int
        seeds one, a RandomState's state seeds one.  A Generator is used (and
        advanced) as is.

    Attributes
    ----------
    name : str
    batch_size : int
    iteration_size : int
    n_examples : int or None
        Examples in the data (None for a callable).
    n_batches : int or None
        Batches in one pass over the data (None for a callable).
    epoch : int
        Completed passes over the data (the order is reshuffled on each wrap).
    rng : numpy.random.Generator
    mask_index : None
        Index of the mask in a batch (None: plain batches have no mask).

    Raises
    ------
    TypeError
        For inputs that are not arrays (an ``InputTypeError``, which is also
        a ValueError, as downhill raised), and arguments of the wrong type.
    ValueError
        For empty data, arrays of different lengths along ``axis``, ``axis``
        out of range, a non-positive ``iteration_size`` (or ``batch_size`` of
        a :class:`~hf.data.SequenceDataset`).

    Notes
    -----
    Batch ``k`` of the data holds examples ``k * batch_size`` to
    ``(k + 1) * batch_size`` (contiguous, so an HDF5 file is read in large
    slices).  Each pass visits the ``n_batches`` batches in a random order
    drawn from ``rng``; a new order is drawn when the cursor wraps, so every
    example appears exactly once per pass.  The cursor persists across calls
    of :meth:`iterate`.  Floating-point batches are checked for NaN and Inf as
    they are produced.  A DataFrame is read through ``.to_numpy()``; a sparse
    input gives sparse batches of its own format.
    """

    mask_index = None

    #: The subclasses ``Dataset(inputs, ...)`` may build, in the order they registered
    #: (see :meth:`__init_subclass__`).
    _builders = []

    def __new__(cls, inputs=None, *args, **kwargs):
        if cls is Dataset:
            cls = Dataset._builder_for(inputs)
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs):
        """Register a subclass that defines ``_builds_from(inputs)`` in its own body:
        ``Dataset(inputs, ...)`` then builds the first registered subclass whose
        ``_builds_from(inputs)`` is true (an array dataset for arrays, a callable
        dataset for a function), without the base importing its subclasses."""
        super().__init_subclass__(**kwargs)
        cls.__signature__ = None  # a subclass shows its own __init__, not Dataset's
        if "_builds_from" in cls.__dict__:
            Dataset._builders.append(cls)

    @staticmethod
    def _builder_for(inputs):
        for builder in Dataset._builders:
            if builder._builds_from(inputs):
                return builder
        raise TypeError(f"Dataset: no kind of dataset is built from {type(inputs).__name__} "
                        f"(registered: {', '.join(b.__name__ for b in Dataset._builders) or 'none'})")

    def __init__(self, name=None, batch_size=32, rng=None):
        """The state shared by every dataset; subclasses read their inputs after it."""
        self.name = f"dataset{next(_unnamed)}" if name is None else str(name)
        self.batch_size = positive_int("batch_size", batch_size, self._owner)
        self.rng = rng_from("rng", rng, self._owner)
        self.axis = None
        self.n_examples = None
        self.n_batches = None
        self.iteration_size = None
        self.epoch = 0
        self._drawn = 0
        self._cursor = 0
        self._order = None

    @property
    def _kind(self):
        """Class name in messages, :meth:`state_dict` and ``repr``."""
        return type(self).__name__

    @property
    def _owner(self):
        return f"{self._kind} {self.name!r}"

    def _set_axis(self, axis):
        if not is_int(axis):
            raise TypeError(f"{self._owner}: axis must be an int, got {axis!r} "
                            f"({type(axis).__name__})")
        self.axis = int(axis)

    def _axis_of(self, ndim):
        """``axis`` counted from the start for an array with ``ndim`` dimensions, or None."""
        return self.axis % ndim if -ndim <= self.axis < ndim else None

    def _set_iteration_size(self, iteration_size, default):
        if iteration_size is None:
            self.iteration_size = default
        else:
            self.iteration_size = positive_int("iteration_size", iteration_size, self._owner)

    # ----------------------------------------------------------------- batches

    @property
    def batch_axes(self):
        """list of int: axis along which examples lie, for each array of a batch."""
        raise NotImplementedError

    def __iter__(self):
        return self.iterate()

    def iterate(self):
        """Yield the next ``iteration_size`` batches.

        Yields
        ------
        batch : list of arrays
            One array per input.

        Raises
        ------
        ValueError
            If a floating-point batch contains NaN or Inf (the message names the
            dataset, the batch and the input).
        """
        for _ in range(self.iteration_size):
            yield self.next_batch()

    def next_batch(self):
        """Return the next batch (a list of arrays)."""
        raise NotImplementedError

    def draw(self):
        """The next batch as an :class:`hf.Batch`: what the optimizers consume.

        The arrays of :meth:`next_batch`, with :attr:`batch_axes`,
        :attr:`mask_index` and the dataset's name as the batch's source (for
        error messages).

        Returns
        -------
        hf.Batch

        Raises
        ------
        ValueError
            As :meth:`next_batch`, or if the arrays disagree on their number of
            examples.
        """
        arrays = self.next_batch()
        source = f"dataset {self.name!r}" if self.name else "a dataset"
        return as_batch(arrays, self.batch_axes, self.mask_index, source=source)

    def batches(self):
        """Yield the next ``iteration_size`` batches as :class:`hf.Batch` (see :meth:`draw`).

        What :meth:`iterate` yields, as the optimizers consume it: one pass of a
        validation dataset, one epoch of a first-order optimizer.
        """
        for _ in range(self.iteration_size):
            yield self.draw()

    def take(self, n=None):
        """A fixed batch of ``n`` examples that does not move the cursor."""
        raise NotImplementedError

    # ----------------------------------------------------------------- graph inputs

    def _batch_specs(self):
        """(ndim, dtype) of each array of a batch."""
        raise NotImplementedError

    def check_inputs(self, variables):
        """Check that batches fit a graph's inputs: count, ndim and dtype.

        Parameters
        ----------
        variables : sequence
            Symbolic inputs, each with ``ndim``, ``dtype`` and ``name``.

        Raises
        ------
        ValueError
            If the number of arrays per batch or an ``ndim`` differs.
        TypeError
            If a dtype differs.

        Notes
        -----
        For a callable dataset the variables are remembered and every batch
        it returns is checked against them.
        """
        check_specs(self._owner, self._batch_specs(), variables)

    # ----------------------------------------------------------------- state

    def state_dict(self):
        """Checkpointable state: cursor, batch order of this pass and RNG state.

        Returns
        -------
        state : dict
            ``kind`` (``'Dataset'`` for arrays and callables, else the class
            name), ``batch_size``, ``n_examples``, ``cursor`` (batches drawn in
            this pass), ``epoch``, ``batches_drawn``, ``order`` (int64 array:
            the pass's batch order, None for a callable) and ``rng``
            (:func:`hf.checkpoint.rng_state`).  Values are copies;
            :func:`hf.checkpoint.save` stores them exactly.
        """
        return {
            "kind": self._kind,
            "batch_size": self.batch_size,
            "n_examples": self.n_examples,
            "cursor": self._cursor,
            "epoch": self.epoch,
            "batches_drawn": self._drawn,
            "order": None if self._order is None else self._order.copy(),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state):
        """Restore a state from :meth:`state_dict`; future batches are then identical.

        Parameters
        ----------
        state : dict
            Output of :meth:`state_dict` of a dataset over the same data with
            the same batch size (possibly through a checkpoint file).

        Raises
        ------
        ValueError
            If the state belongs to another kind of dataset, another number of
            examples or batch size, or is malformed.

        Notes
        -----
        The RNG state is set in place on ``self.rng`` when its bit generator
        has the saved type, otherwise ``self.rng`` is replaced by a new
        Generator of the saved type.  A callable's own state is not restored.
        """
        owner = self._owner
        try:
            kind = state["kind"]
            checks = {"batch_size": self.batch_size, "n_examples": self.n_examples}
            saved = {key: state[key] for key in checks}
            cursor, epoch, drawn = state["cursor"], state["epoch"], state["batches_drawn"]
            order, rng = state["order"], state["rng"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{owner}: malformed dataset state (missing {err})") from err
        if kind != self._kind:
            raise ValueError(f"{owner}: state is from a {kind!r}, not a {self._kind!r}")
        for key, value in checks.items():
            if saved[key] != value:
                raise ValueError(f"{owner}: state has {key}={saved[key]!r}, this dataset has "
                                 f"{key}={value!r}")
        self._load_order(state, order, cursor)
        for key, value in (("epoch", epoch), ("batches_drawn", drawn)):
            if not is_int(value) or value < 0:
                raise ValueError(f"{owner}: state has invalid {key}={value!r}")
        own_type = type(self.rng.bit_generator).__name__
        if isinstance(rng, dict) and rng.get("bit_generator") == own_type:
            set_rng_state(self.rng, rng)
        else:
            self.rng = rng_from_state(rng)
        self.epoch = int(epoch)
        self._drawn = int(drawn)

    def _load_order(self, state, order, cursor):
        """Restore the order and cursor of a pass from a state (nothing to restore here)."""

    def _repr_fields(self):
        return {"name": self.name}

    def __repr__(self):
        fields = ", ".join(f"{key}={value!r}" for key, value in self._repr_fields().items())
        return f"{self._kind}({fields})"


def _constructor(inputs, name=None, batch_size=32, iteration_size=None, axis=0, rng=None):
    """What ``Dataset(...)`` takes (its ``__new__`` passes the arguments on)."""


Dataset.__signature__ = inspect.signature(_constructor)


class FiniteDataset(Dataset):
    """A dataset of ``n_examples`` examples visited in reshuffled passes.

    :meth:`next_batch` is :meth:`advance` (move the cursor) then :meth:`read`
    (read the batch at the cursor's position); other layers (sharding over MPI
    ranks, :mod:`hf.mpi`) call the two public steps themselves.  Subclasses
    draw a pass with :meth:`_shuffled` (returning what :meth:`_set_pass`
    installs), give the examples of a batch with :meth:`examples`, read them
    with :meth:`read` and check a saved pass with :meth:`_pass_from_state`.
    """

    def _init_passes(self, n_examples, iteration_size):
        """Set the size of the data, draw the first pass and the iteration size."""
        self.n_examples = int(n_examples)
        self.n_batches = -(-self.n_examples // self.batch_size)
        self._set_pass(self._shuffled())
        self._set_iteration_size(iteration_size, self.n_batches)

    def _shuffled(self):
        raise NotImplementedError

    def _set_pass(self, new_pass):
        raise NotImplementedError

    def _pass_from_state(self, state, order):
        raise NotImplementedError

    def next_batch(self):
        """Return the next batch, reshuffling the batch order when a pass ends.

        Returns
        -------
        batch : list of arrays
        """
        return self.read(self.advance())

    def advance(self):
        """Move the cursor to the next batch and return its position in the pass.

        When the pass is over, a new one starts first: a new order is drawn
        from ``rng`` and ``epoch`` grows by one.  Nothing is read.

        Returns
        -------
        position : int
            ``0 <= position < n_batches``: the batch to :meth:`read`.
        """
        if self._cursor >= self.n_batches:
            self._new_pass()
        position = self._cursor
        self._cursor += 1
        self._drawn += 1
        return position

    def examples(self, position):
        """The examples of batch ``position`` of the current pass, in the batch's order.

        Parameters
        ----------
        position : int
            ``0 <= position < n_batches``.

        Returns
        -------
        range or ndarray of int64
            Indices of the examples in the data (a ``range`` for contiguous
            batches of arrays).
        """
        raise NotImplementedError

    def read(self, position, part=None):
        """The arrays of batch ``position`` of the current pass; the cursor does not move.

        Parameters
        ----------
        position : int
            ``0 <= position < n_batches`` (e.g. what :meth:`advance` returned).
        part : slice, optional
            Only these of the batch's examples (positions in the batch, a
            positive step): ``slice(rank, None, size)`` reads every
            ``size``-th example from ``rank``, a round-robin share of the batch.
            Default: all of them.

        Returns
        -------
        batch : list of arrays
            As :meth:`next_batch` returns them.

        Raises
        ------
        ValueError
            For a position out of range, a part that is not such a slice or
            selects no example, or a floating-point array with NaN or Inf.
        """
        raise NotImplementedError

    def _position(self, position):
        """``position`` checked against the batches of a pass."""
        if not is_int(position) or not 0 <= position < self.n_batches:
            raise ValueError(f"{self._owner}: batch position {position!r} is not in "
                             f"range({self.n_batches})")
        return int(position)

    def _part(self, examples, part, position):
        """``examples[part]`` for a ``part`` checked to be a slice with a positive step."""
        if part is None:
            return examples
        if not isinstance(part, slice) or (part.step is not None and (not is_int(part.step) or part.step <= 0)):
            raise ValueError(f"{self._owner}: part must be a slice with a positive step, got {part!r}")
        chosen = examples[part]
        if len(chosen) == 0:
            raise ValueError(f"{self._owner}: part {part!r} selects none of the {len(examples)} examples "
                             f"of batch {position}")
        return chosen

    def _new_pass(self):
        self._set_pass(self._shuffled())
        self._cursor = 0
        self.epoch += 1

    def _check_take(self, n):
        if n is None:
            return self.n_examples
        n = positive_int("n", n, self._owner)
        if n > self.n_examples:
            raise ValueError(f"{self._owner}: take(n={n}) asks for more than the "
                             f"{self.n_examples} examples of the data")
        return n

    def _load_order(self, state, order, cursor):
        new_pass = self._pass_from_state(state, order)
        if not is_int(cursor) or not 0 <= cursor <= self.n_batches:
            raise ValueError(f"{self._owner}: state has invalid cursor={cursor!r} "
                             f"(0..{self.n_batches})")
        self._set_pass(new_pass)
        self._cursor = int(cursor)

    def _repr_fields(self):
        return {"name": self.name, "n_examples": self.n_examples, "batch_size": self.batch_size}
