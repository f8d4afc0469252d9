"""The one rule by which what a user passes as data becomes a dataset: :func:`as_dataset`.

Both optimizers call it; the two places where they give the data a different
meaning are its two keywords (``full_batch``: HF's list of arrays is one full
batch; ``batch_lists``: downhill's list of batches is a fixed list of batches).
"""
import logging

import numpy as np

from ._array_like import is_input
from ._base import Dataset, is_batch_function
from ._batch import as_batch
from ._ragged import RaggedArray
from ._sequence_dataset import SequenceDataset

__all__ = ["BatchList", "as_dataset"]

log = logging.getLogger("hf")


def is_batch_list(data):
    """downhill's list of batches, ``[[x1, y1], [x2, y2]]``: a list whose items are lists of arrays."""
    return (isinstance(data, (list, tuple)) and len(data) > 0
            and all(isinstance(b, (list, tuple)) for b in data))


class BatchList:
    """A fixed list of batches, each pass going through all of them in order (downhill's
    ``iterate(train=[[y]])``). It has no cursor, so a resumed run is exact without one.

    Parameters
    ----------
    data : list of lists of arrays
        One list of arrays per batch, the examples of each array along axis 0.
    name : str
    """

    def __init__(self, data, name):
        self.name = name
        self._arrays = [[np.asarray(a) if not hasattr(a, "shape") else a for a in batch] for batch in data]
        self._batches = [as_batch(arrays, [0] * len(arrays), source=f"batch {i} of {name!r}")
                         for i, arrays in enumerate(self._arrays)]
        self.iteration_size = len(self._batches)

    def check_inputs(self, variables):
        """Check that every batch has one array per graph input, of the input's ndim."""
        variables = list(variables)
        for i, arrays in enumerate(self._arrays):
            if len(arrays) != len(variables):
                raise ValueError(f"{self.name}: batch {i} holds {len(arrays)} arrays, the graph has "
                                 f"{len(variables)} inputs ({', '.join(repr(v.name) for v in variables)})")
            for j, (a, v) in enumerate(zip(arrays, variables)):
                if a.ndim != v.ndim:
                    raise ValueError(f"{self.name}: batch {i}, input {j} ({v.name!r}) expects ndim {v.ndim}, "
                                     f"got {a.ndim}")

    def batches(self):
        """Yield every batch, in order, as an :class:`hf.Batch`."""
        yield from self._batches

    def __repr__(self):
        return f"BatchList(name={self.name!r}, batches={len(self._batches)})"


def _described(data):
    if isinstance(data, Dataset):
        return "a Dataset"
    if isinstance(data, BatchList) or is_batch_list(data):
        return "a list of batches"
    if isinstance(data, (list, tuple)):
        return "a list of arrays"
    if is_input(data):
        return "an array"
    return "a callable" if callable(data) else f"a {type(data).__name__}"


def as_dataset(data, name=None, *, inputs=None, required=False, full_batch=False, batch_lists=False,
               owner=None, **kwargs):
    """Coerce training or validation data to a dataset: the one rule of both optimizers.

    Parameters
    ----------
    data : Dataset, array, list or tuple of arrays, list of batches, callable, or None
        What the user passed:

        * None gives None (an error with ``required`` when the graph has
          ``inputs``: the data must be given);
        * a :class:`Dataset` (or a :class:`BatchList`) is returned as it is;
          ``kwargs`` are not applied to it (logged at INFO);
        * a list or tuple of lists of arrays, with ``batch_lists``: a
          :class:`BatchList` (downhill's ``train=[[x1, y1], [x2, y2]]``);
        * a list or tuple with a :class:`RaggedArray` entry: a
          :class:`SequenceDataset`;
        * another list or tuple of arrays: a :class:`Dataset` of those arrays,
          cut into batches of ``batch_size`` (default 32); with ``full_batch``,
          one batch of all the examples (``batch_size`` their number along axis
          0 of the first array, ``rng=0``: HF's full-batch mode);
        * a callable: a :class:`Dataset` that calls it for each batch;
        * a single array: a :class:`Dataset` of one input; with ``full_batch``
          a TypeError (a full batch is a list, one array per graph input).
    name : str, optional
        Name of a new dataset, and the argument's name in messages.
    inputs : sequence of variables, optional
        The graph's inputs: given, the dataset is checked against them
        (``check_inputs``) and data for a graph without inputs are refused.
    required : bool
        Refuse None when the graph has ``inputs``.
    full_batch, batch_lists : bool
        The meanings of a list described above (HF: ``full_batch``; the
        first-order optimizers: ``batch_lists``, as downhill).
    owner : str, optional
        Prefix of error messages (``'HFOptimizer'``, ``'SGD'``, ...).
    **kwargs
        Passed to the constructor (``batch_size``, ``iteration_size``,
        ``axis``, ``rng``, ...); unknown keywords raise TypeError.

    Returns
    -------
    Dataset, BatchList or None

    Raises
    ------
    TypeError
        For data of a type no rule takes, naming the argument and the type.
    ValueError
        For an empty list, missing or unexpected data, or data that do not fit
        the graph's inputs.
    """
    who = f"{owner}: " if owner else ""
    if data is None:
        if required and inputs:
            names = ", ".join(repr(getattr(v, "name", None) or str(v)) for v in inputs)
            raise ValueError(f"{who}{name} is None but the graph has inputs ({names}); give {name} data")
        return None
    if inputs is not None and not inputs:
        raise ValueError(f"{who}{name} is {_described(data)} but the graph has no inputs; give {name}=None "
                         "(the data live in shared variables) or pass the graph's inputs=[...]")
    if isinstance(data, Dataset) or (batch_lists and isinstance(data, BatchList)):
        if kwargs:
            log.info("%s%s not applied: %s is already a Dataset or a list of batches", who, ", ".join(kwargs), name)
        ds = data
    elif batch_lists and is_batch_list(data):
        ds = BatchList(data, name)
    elif full_batch:
        ds = _full_batch(data, name, who, kwargs)
    elif isinstance(data, (list, tuple)) and any(isinstance(x, RaggedArray) for x in data):
        ds = SequenceDataset(data, name=name, **kwargs)
    else:
        ds = Dataset(data, name=name, **kwargs)  # a single array is a one-input dataset
    if inputs is not None:
        ds.check_inputs(inputs)
    return ds


def _full_batch(data, name, who, kwargs):
    """HF's meaning of data: a list of arrays is one batch of all its examples."""
    if is_input(data):
        raise TypeError(f"{who}{name} must be a list of arrays (one per graph input), got a single array "
                        f"({type(data).__name__})")
    if is_batch_function(data):
        return Dataset(data, name=name, **kwargs)
    if not isinstance(data, (list, tuple)):
        raise TypeError(f"{who}{name} must be an hf.Dataset, a list of arrays (one per graph input) or a "
                        f"callable, got {type(data).__name__}")
    if not data:
        raise ValueError(f"{who}{name} must hold one array per graph input, got an empty list")
    first = data[0]
    n = first.shape[0] if getattr(first, "ndim", None) else len(first)  # sparse matrices have no len()
    kwargs = {"batch_size": max(int(n), 1), "rng": 0, **kwargs}
    if any(isinstance(x, RaggedArray) for x in data):
        return SequenceDataset(data, name=name, **kwargs)
    return Dataset(data, name=name, **kwargs)
