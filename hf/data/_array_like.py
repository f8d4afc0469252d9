"""What a dataset input may be, and how a batch is read from one.

An input is a numpy array, an :class:`h5py.Dataset`, anything else with
``shape``, ``dtype`` and numpy-style slicing (read one slice at a time, never
loaded whole), a pandas DataFrame or Series (used through ``.to_numpy()``),
a PyTensor shared variable (its value, read when the dataset is built), or a
scipy.sparse CSR or CSC matrix or array (sliced as is: a batch of a sparse
input is a sparse matrix of the same format).

The helpers here check inputs, read slices and rows, find NaN and Inf in a
batch, and compare the arrays of a batch with the inputs of a graph.
"""
import sys

import numpy as np

#: scipy.sparse formats a dataset slices without conversion.
SPARSE_FORMATS = ("csr", "csc")


class InputTypeError(TypeError, ValueError):
    """An input that is not an array: a TypeError that is also a ValueError.

    downhill raised ValueError here, so code written for it and code that
    expects a TypeError for a value of the wrong type both catch it (as
    :class:`numpy.exceptions.AxisError` is both a ValueError and an IndexError).
    """


def is_sparse(x):
    """True for a scipy.sparse matrix or array (scipy is only consulted once imported)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def _is_pandas(x):
    return type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "to_numpy")


def _is_shared(x):
    compile_module = sys.modules.get("pytensor.compile.sharedvalue")
    return compile_module is not None and isinstance(x, compile_module.SharedVariable)


def is_array_like(x):
    """True for what :func:`check_array` accepts as it is (pandas objects excluded)."""
    return (hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "__getitem__")
            and not isinstance(x, (str, bytes)))


def is_input(x):
    """True for anything :func:`check_array` accepts, pandas objects and shared variables included."""
    return _is_pandas(x) or _is_shared(x) or is_array_like(x)


def check_array(x, index, owner):
    """Input ``index`` as the array a dataset reads from.

    A pandas DataFrame or Series becomes ``x.to_numpy()``, a PyTensor shared
    variable its value (``get_value(borrow=True)``: not copied); a sparse
    matrix must be CSR or CSC; anything else must be array-like.

    Raises
    ------
    TypeError
        For another sparse format.
    InputTypeError
        For an object that is not array-like (a TypeError and a ValueError).
    """
    if _is_pandas(x):
        return x.to_numpy()
    if _is_shared(x):
        return check_array(x.get_value(borrow=True), index, owner)
    if is_sparse(x):
        if x.format not in SPARSE_FORMATS:
            raise TypeError(f"{owner}: input {index} is a scipy.sparse {x.format!r} matrix; "
                            "datasets slice only CSR and CSC matrices (convert with .tocsr())")
        return x
    if not is_array_like(x):
        raise InputTypeError(f"{owner}: input {index} has type {type(x).__name__}; expected a numpy "
                             "array, an h5py.Dataset, a pandas DataFrame, a scipy.sparse CSR or CSC "
                             "matrix, a shared variable or an array-like with shape, dtype and slicing "
                             "(convert lists with numpy.asarray)")
    return x


def materialize(x):
    """A read slice as a batch array: numpy, or the sparse matrix itself."""
    return x if is_sparse(x) else np.asarray(x)


def take_slice(x, axis, start, stop, step=None):
    """``x[..., start:stop:step, ...]`` (the slice on ``axis``) as a batch array.

    A strided slice (``step > 1``) reads only every ``step``-th example: an
    :class:`h5py.Dataset` or a memory map is read in one strided selection.
    """
    key = (slice(None),) * axis + (slice(start, stop, None if step == 1 else step),)
    return materialize(x[key])


def take_rows(x, indices):
    """Rows ``indices`` (any order, repeats allowed) of ``x`` along axis 0, as a batch array."""
    if isinstance(x, np.ndarray) or is_sparse(x):
        return x[indices]
    # h5py and friends want increasing unique indices
    unique, inverse = np.unique(indices, return_inverse=True)
    return np.asarray(x[unique.tolist()])[inverse]


def is_float(dtype):
    return np.dtype(dtype).kind in "fc"


def check_finite(batch, axes, owner, where, example):
    """Raise ValueError naming ``owner``, ``where`` and the input when an array of ``batch`` holds a NaN
    or Inf; ``example(i)`` gives the data set's example number of position ``i`` along the axis."""
    for i, (b, a) in enumerate(zip(batch, axes)):
        bad = first_bad(b, a)
        if bad is not None:
            raise ValueError(f"{owner}: {where} of input {i} contains NaN or Inf (first at example {example(bad)})")
    return batch


def first_bad(a, axis):
    """Index along ``axis`` of the first example of ``a`` with a NaN or Inf, or None.

    Integer arrays are never bad; a sparse ``a`` is checked on its stored values.
    """
    if not is_float(a.dtype):
        return None
    if is_sparse(a):
        coo = a.tocoo()
        bad = ~np.isfinite(coo.data)
        if not bad.any():
            return None
        return int((coo.col if axis == 1 else coo.row)[bad].min())
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    other = tuple(d for d in range(a.ndim) if d != axis)
    rows = np.flatnonzero(bad.any(axis=other)) if other else np.flatnonzero(bad)
    return int(rows[0])


def _name_of(variable, index):
    name = getattr(variable, "name", None)
    return f"input {index} ({name!r})" if name else f"input {index}"


def check_specs(owner, specs, variables):
    """Compare (ndim, dtype) per batch array with duck-typed graph inputs.

    Raises
    ------
    ValueError
        If the number of arrays or an ``ndim`` differs.
    TypeError
        If a dtype differs.
    """
    variables = list(variables)
    if len(specs) != len(variables):
        names = ", ".join(repr(getattr(v, "name", None)) for v in variables)
        raise ValueError(f"{owner} gives {len(specs)} arrays per batch but the graph has "
                         f"{len(variables)} inputs ({names})")
    for i, ((ndim, dtype), var) in enumerate(zip(specs, variables)):
        if ndim != var.ndim:
            raise ValueError(f"{owner}: {_name_of(var, i)} expects ndim {var.ndim}, got data "
                             f"with ndim {ndim}")
        if np.dtype(dtype) != np.dtype(var.dtype):
            raise TypeError(f"{owner}: {_name_of(var, i)} expects dtype {np.dtype(var.dtype)}, "
                            f"got data of dtype {np.dtype(dtype)} (cast it with "
                            f".astype({str(np.dtype(var.dtype))!r}))")
