"""Mini-batch datasets shared by the Hessian-free and first-order optimizers.

:class:`Dataset` follows downhill's ``Dataset``: a list of arrays cut into
contiguous mini-batches along one axis, yielded in an order reshuffled on each
pass, or a callable that returns a fresh batch on each call.
:class:`SequenceDataset` holds variable-length sequences (:class:`RaggedArray`)
and yields zero-padded, time-major batches with a mask, the layout
``pytensor.scan`` expects.  :func:`split_batch` cuts a large batch into
bounded-memory chunks.

Every dataset shuffles with its own :class:`numpy.random.Generator` (never the
global ``np.random`` state) and can be checkpointed with
:meth:`Dataset.state_dict` and resumed bit-identically with
:meth:`Dataset.load_state_dict`.

Arrays may be numpy arrays, :class:`h5py.Dataset` objects or anything with
``shape``, ``dtype`` and numpy-style slicing; they are read one batch at a
time, never loaded whole.  A pandas DataFrame or Series is used through
``.to_numpy()``, a PyTensor shared variable through its value; a scipy.sparse
CSR or CSC matrix is sliced as it is and gives batches of its own sparse
format.  A single array is a dataset of one input.

The classes live in modules named after what they hold; this module is their
public face:

* :mod:`hf._dataset_base`: :class:`Dataset`, the base of every dataset (name,
  batch size, generator, iteration, state), and the cursor over passes;
* :mod:`hf._array_dataset`: :class:`ArrayDataset`, what ``Dataset(arrays)``
  builds;
* :mod:`hf._callable_dataset`: :class:`CallableDataset`, what
  ``Dataset(function)`` builds;
* :mod:`hf._ragged` and :mod:`hf._sequence_dataset`: :class:`RaggedArray` and
  :class:`SequenceDataset`;
* :mod:`hf._array_like`: what an input array may be and how batches are read;
* :mod:`hf._batches`: :func:`batch_size_of` and :func:`split_batch`.

Examples
--------
>>> import numpy as np
>>> from hf.dataset import Dataset
>>> x = np.arange(10.0).reshape(5, 2)
>>> y = np.arange(5)
>>> ds = Dataset([x, y], name='train', batch_size=2, rng=0)
>>> ds.n_batches, ds.iteration_size
(3, 3)
>>> sorted(len(b[1]) for b in ds.iterate())
[1, 2, 2]
>>> ds.take(2)[1]
array([0, 1])
"""
from ._array_dataset import ArrayDataset
from ._array_like import InputTypeError
from ._batches import batch_size_of, split_batch  # noqa: F401
from ._callable_dataset import CallableDataset
from ._dataset_base import Dataset
from ._ragged import RaggedArray
from ._sequence_dataset import SequenceDataset

__all__ = [
    "Dataset",
    "ArrayDataset",
    "CallableDataset",
    "SequenceDataset",
    "RaggedArray",
    "as_dataset",
    "split_batch",
    "batch_size_of",
    "InputTypeError",
]


def as_dataset(data, name=None, **kwargs):
    """Coerce training or validation data to a :class:`Dataset`.

    Parameters
    ----------
    data : Dataset, array, list or tuple of arrays, callable, or None
        A Dataset is returned unchanged (``kwargs`` are not applied to it);
        None gives None; a list/tuple with a :class:`RaggedArray` entry gives a
        :class:`SequenceDataset`; arrays, other lists/tuples and callables give
        a :class:`Dataset`.
    name : str, optional
        Name of a new dataset.
    **kwargs
        Passed to the constructor (``batch_size``, ``iteration_size``,
        ``axis``, ``rng``, ...); unknown keywords raise TypeError.

    Returns
    -------
    Dataset or None
    """
    if data is None:
        return None
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (list, tuple)) and any(isinstance(x, RaggedArray) for x in data):
        return SequenceDataset(data, name=name, **kwargs)
    return Dataset(data, name=name, **kwargs)
