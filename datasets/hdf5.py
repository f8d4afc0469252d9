"""HDF5 files of generated problems: :func:`write_hdf5` and :func:`read_hdf5`.

A :class:`~hf.datasets.SequenceTask` is written as plain HDF5 datasets, each
marked with its layout and the axis holding the sequences, so that
:class:`hf.Dataset` can read a file batch by batch along that axis, and read
back whole into a task.
"""
import json
import os

from .task import SequenceTask

__all__ = ["write_hdf5", "read_hdf5", "HDF5_FORMAT_VERSION"]

#: Version of the HDF5 layout written by :func:`write_hdf5`.
HDF5_FORMAT_VERSION = 1

# Attribute marking a group written by write_hdf5.
_VERSION_ATTR = "hf_sequence_task_version"

# name -> (layout, example axis)
_HDF5_LAYOUT = {
    "inputs": ("time, sequence, input", 1),
    "target_mask": ("time, sequence", 1),
    "score_mask": ("time, sequence", 1),
    "mask": ("time, sequence", 1),
    "lengths": ("sequence", 0),
}


def _h5py():
    try:
        import h5py
    except ImportError as err:  # pragma: no cover - h5py is a hard dependency
        raise ImportError("hf.datasets HDF5 support needs h5py: pip install h5py") from err
    return h5py


def write_hdf5(task, path_or_group, *, compression=None, dense_targets=False):
    """Write a task as plain HDF5 datasets.

    Parameters
    ----------
    task : SequenceTask
        The task to write.
    path_or_group : str, os.PathLike or h5py.Group
        A file path (created or truncated) or an open group (or file) with
        none of the names below.
    compression : str, optional
        h5py compression filter for the datasets (e.g. ``'gzip'``).
    dense_targets : bool, optional
        Also write ``dense_targets``, the output of
        :meth:`SequenceTask.dense_targets`: ``(T_total, n, n_out)``, examples
        on axis 1 like the other time-major arrays, so that a reader slicing
        every array on one axis can use it instead of ``targets``.
        :func:`read_hdf5` ignores it.

    Notes
    -----
    Datasets, each with attributes ``layout`` (the axes, comma-separated) and
    ``example_axis`` (the axis holding the sequences):

    * ``inputs`` ``(T_total, n, n_in)``, ``target_mask``, ``score_mask``,
      ``mask`` ``(T_total, n)``: time-major, examples on axis 1;
    * ``targets``: ``(n, n_out)`` floats or ``(n,)`` labels (examples on axis
      0), or ``(T_total, n)`` labels for per-step tasks (axis 1);
    * ``lengths`` ``(n,)``, axis 0.

    Group attributes: ``hf_sequence_task_version``, ``name``, ``T``,
    ``output``, ``n_out``, ``per_step`` and ``params`` (a JSON string).
    """
    if not isinstance(task, SequenceTask):
        raise TypeError(f"write_hdf5: task must be a SequenceTask, got {type(task).__name__}")
    if isinstance(path_or_group, (str, os.PathLike)):
        h5py = _h5py()
        with h5py.File(path_or_group, "w") as f:
            _write_group(task, f, compression, dense_targets)
    else:
        _write_group(task, path_or_group, compression, dense_targets)


def _write_group(task, group, compression, dense_targets):
    layout = dict(_HDF5_LAYOUT)
    if task.per_step:
        layout["targets"] = ("time, sequence", 1)
    elif task.output == "softmax":
        layout["targets"] = ("sequence", 0)
    else:
        layout["targets"] = ("sequence, output", 0)
    for name in ("inputs", "targets", "target_mask", "score_mask", "mask", "lengths"):
        dset = group.create_dataset(name, data=getattr(task, name), compression=compression)
        dset.attrs["layout"], dset.attrs["example_axis"] = layout[name]
    if dense_targets:
        dset = group.create_dataset("dense_targets", data=task.dense_targets(),
                                    compression=compression)
        dset.attrs["layout"], dset.attrs["example_axis"] = "time, sequence, output", 1
    group.attrs[_VERSION_ATTR] = HDF5_FORMAT_VERSION
    group.attrs["name"] = task.name
    group.attrs["T"] = task.T
    group.attrs["output"] = task.output
    group.attrs["n_out"] = task.n_out
    group.attrs["per_step"] = task.per_step
    group.attrs["params"] = json.dumps(task.params)


def read_hdf5(path_or_group):
    """Read a task written by :func:`write_hdf5` into memory.

    Parameters
    ----------
    path_or_group : str, os.PathLike or h5py.Group
        File path or open group.

    Returns
    -------
    SequenceTask

    Raises
    ------
    ValueError
        If the group was not written by :func:`write_hdf5` or has a newer
        format version.
    """
    if isinstance(path_or_group, (str, os.PathLike)):
        h5py = _h5py()
        with h5py.File(path_or_group, "r") as f:
            return _read_group(f)
    return _read_group(path_or_group)


def _read_group(group):
    version = group.attrs.get(_VERSION_ATTR)
    if version is None:
        raise ValueError(f"read_hdf5: {group.name!r} holds no SequenceTask "
                         f"(attribute {_VERSION_ATTR!r} missing)")
    if int(version) > HDF5_FORMAT_VERSION:
        raise ValueError(f"read_hdf5: format version={int(version)} is newer than "
                         f"{HDF5_FORMAT_VERSION}, the newest this code reads")

    def text(value):
        return value.decode() if isinstance(value, bytes) else str(value)

    arrays = {name: group[name][()] for name in
              ("inputs", "targets", "target_mask", "score_mask", "mask", "lengths")}
    return SequenceTask(name=text(group.attrs["name"]), T=int(group.attrs["T"]),
                        output=text(group.attrs["output"]), n_out=int(group.attrs["n_out"]),
                        per_step=bool(group.attrs["per_step"]),
                        params=json.loads(text(group.attrs["params"])), **arrays)
