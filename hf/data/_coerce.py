"""The one rule by which what a user passes as data becomes a dataset: :func:`as_dataset`."""
from ._base import Dataset
from ._ragged import RaggedArray
from ._sequence_dataset import SequenceDataset

__all__ = ["as_dataset"]


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
