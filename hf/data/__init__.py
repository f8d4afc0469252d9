"""The data layer shared by the Hessian-free and first-order optimizers.

:class:`Dataset` follows downhill's ``Dataset``: a list of arrays cut into
contiguous mini-batches along one axis, yielded in an order reshuffled on each
pass, or a callable that returns a fresh batch on each call.
:class:`SequenceDataset` holds variable-length sequences (:class:`RaggedArray`)
and yields zero-padded, time-major batches with a mask, the layout
``pytensor.scan`` expects.  :class:`Batch` is what the optimizers consume: the
arrays of one batch with the axis of their examples; :func:`split_batch` cuts a
large batch into bounded-memory chunks.  :func:`as_dataset` is the one rule by
which what a user passes as data becomes a dataset.

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

The package's modules, one concept each (import the names from ``hf.data``):

* ``_base``: :class:`Dataset`, the base of every dataset (name, batch size,
  generator, iteration, state; subclasses register the inputs they build
  from), and :class:`FiniteDataset`, the cursor over passes;
* ``_array_dataset``: :class:`ArrayDataset`, what ``Dataset(arrays)`` builds;
* ``_callable_dataset``: :class:`CallableDataset`, what ``Dataset(function)``
  builds;
* ``_ragged`` and ``_sequence_dataset``: :class:`RaggedArray` and
  :class:`SequenceDataset`;
* ``_array_like``: what an input array may be and how batches are read;
* ``_batch``: :class:`Batch`, :func:`batch_size_of` and :func:`split_batch`;
* ``_coerce``: :func:`as_dataset` and :class:`BatchList` (downhill's list of
  batches).

Examples
--------
>>> import numpy as np
>>> from hf.data import Dataset
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
from ._array_like import InputTypeError
from ._base import Dataset, FiniteDataset
from ._array_dataset import ArrayDataset
from ._batch import Batch, as_batch, batch_size_of, split_batch
from ._callable_dataset import CallableDataset
from ._ragged import RaggedArray
from ._sequence_dataset import SequenceDataset
from ._coerce import BatchList, as_dataset

__all__ = [
    "Dataset",
    "FiniteDataset",
    "ArrayDataset",
    "CallableDataset",
    "SequenceDataset",
    "RaggedArray",
    "Batch",
    "as_batch",
    "as_dataset",
    "BatchList",
    "split_batch",
    "batch_size_of",
    "InputTypeError",
]
