"""Variable-length sequences stored as one concatenated array: :class:`RaggedArray`."""
import numpy as np

from ._array_like import is_array_like
from .._checks import is_int

__all__ = ["RaggedArray"]


class RaggedArray:
    """A list of arrays of shapes ``(T_i, ...)``, stored as one concatenated array.

    Parameters
    ----------
    data : ndarray or h5py.Dataset
        The sequences concatenated along axis 0, shape ``(sum T_i, ...)``.
        An :class:`h5py.Dataset` is kept as is and read one sequence at a time.
    lengths : array of int
        ``T_i`` for each sequence (non-negative, summing to ``len(data)``).

    Attributes
    ----------
    data : ndarray or h5py.Dataset
    lengths : ndarray of int64
        Read-only.
    offsets : ndarray of int64
        Start of each sequence in ``data``, plus the total length at the end.
    feature_shape : tuple of int
        ``data.shape[1:]``.
    dtype : numpy.dtype

    Examples
    --------
    >>> import numpy as np
    >>> r = RaggedArray.from_list([np.ones((2, 3)), np.zeros((1, 3))])
    >>> len(r), r.lengths.tolist(), r.feature_shape, r[1].shape
    (2, [2, 1], (3,), (1, 3))
    >>> r.padded([1, 0]).shape
    (2, 2, 3)
    """

    def __init__(self, data, lengths):
        if not is_array_like(data):
            raise TypeError(f"RaggedArray: data must be an ndarray or h5py.Dataset, got "
                            f"{type(data).__name__}")
        if len(data.shape) < 1:
            raise ValueError("RaggedArray: data must have at least one dimension (time), "
                             f"got shape {tuple(data.shape)}")
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
            raise TypeError(f"RaggedArray: lengths must be a 1-D array of ints, got dtype "
                            f"{lengths.dtype} and shape {lengths.shape}")
        lengths = lengths.astype(np.int64)
        if lengths.size and lengths.min() < 0:
            raise ValueError(f"RaggedArray: lengths must be non-negative, got {int(lengths.min())} "
                             f"for sequence {int(np.argmin(lengths))}")
        if int(lengths.sum()) != int(data.shape[0]):
            raise ValueError(f"RaggedArray: lengths sum to {int(lengths.sum())} but data has "
                             f"{int(data.shape[0])} rows")
        lengths.setflags(write=False)
        self.data = data
        self.lengths = lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.offsets.setflags(write=False)

    @classmethod
    def from_list(cls, arrays):
        """Concatenate a list of arrays ``(T_i, ...)`` with equal trailing shapes.

        Parameters
        ----------
        arrays : list of array_like

        Returns
        -------
        RaggedArray
        """
        arrays = [np.asarray(a) for a in arrays]
        if not arrays:
            raise ValueError("RaggedArray.from_list: empty list of sequences")
        for i, a in enumerate(arrays):
            if a.ndim < 1:
                raise ValueError(f"RaggedArray.from_list: sequence {i} is a scalar; each "
                                 "sequence needs a time axis")
            if a.shape[1:] != arrays[0].shape[1:]:
                raise ValueError(f"RaggedArray.from_list: sequence {i} has feature shape "
                                 f"{a.shape[1:]}, sequence 0 has {arrays[0].shape[1:]}")
        dtype = np.result_type(*arrays)
        data = np.concatenate(arrays, axis=0).astype(dtype, copy=False)
        return cls(data, [len(a) for a in arrays])

    @property
    def feature_shape(self):
        return tuple(self.data.shape[1:])

    @property
    def dtype(self):
        return np.dtype(self.data.dtype)

    def __len__(self):
        return len(self.lengths)

    def __getitem__(self, i):
        if not is_int(i):
            raise TypeError(f"RaggedArray indices must be ints, got {type(i).__name__}")
        n = len(self.lengths)
        if not -n <= i < n:
            raise IndexError(f"RaggedArray index {i} out of range for {n} sequences")
        i = int(i) % n
        return np.asarray(self.data[int(self.offsets[i]):int(self.offsets[i + 1])])

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def padded(self, indices, max_length=None):
        """Zero-padded, time-major batch of the given sequences.

        Parameters
        ----------
        indices : sequence of int
            Sequences to put in the batch, in order.
        max_length : int, optional
            Time steps of the result (default: longest selected sequence).

        Returns
        -------
        ndarray, shape ``(max_length, len(indices)) + feature_shape``
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        lengths = self.lengths[indices]
        if max_length is None:
            max_length = int(lengths.max()) if lengths.size else 0
        out = np.zeros((max_length, len(indices)) + self.feature_shape, dtype=self.dtype)
        for j, i in enumerate(indices):
            t = min(int(lengths[j]), max_length)
            start = int(self.offsets[i])
            out[:t, j] = self.data[start:start + t]
        return out

    def to_hdf5(self, group, name):
        """Write ``group[name + '/data']`` and ``group[name + '/lengths']``.

        The data is copied in blocks, so an HDF5-backed array is never loaded
        whole.

        Parameters
        ----------
        group : h5py.Group or h5py.File
        name : str
        """
        sub = group.create_group(name)
        sub.attrs["kind"] = "RaggedArray"
        sub.create_dataset("lengths", data=np.asarray(self.lengths, dtype=np.int64))
        out = sub.create_dataset("data", shape=tuple(self.data.shape), dtype=self.dtype)
        rows = int(self.data.shape[0])
        row_bytes = max(1, int(np.prod(self.feature_shape, dtype=np.int64)) * self.dtype.itemsize)
        block = max(1, (1 << 24) // row_bytes)
        for start in range(0, rows, block):
            stop = min(start + block, rows)
            out[start:stop] = np.asarray(self.data[start:stop])

    @classmethod
    def from_hdf5(cls, group, name):
        """Open a RaggedArray written by :meth:`to_hdf5`, lazily.

        The lengths are read; the data stays an :class:`h5py.Dataset` read one
        sequence at a time (keep the file open while using it).

        Parameters
        ----------
        group : h5py.Group or h5py.File
        name : str

        Returns
        -------
        RaggedArray
        """
        sub = group[name]
        return cls(sub["data"], sub["lengths"][...])

    def __repr__(self):
        return (f"RaggedArray({len(self)} sequences, feature_shape={self.feature_shape}, "
                f"dtype={self.dtype})")
