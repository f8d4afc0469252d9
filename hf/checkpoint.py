"""Atomic, versioned HDF5 checkpoints of nested state dictionaries.

A checkpoint is a nested ``dict`` with ``str`` keys whose leaves are numpy
arrays, numpy scalars, Python ``int``/``float``/``bool``/``str``, ``None`` or
lists/tuples of such values.  It is stored in one HDF5 file, one group per
dict and one dataset per leaf, under the same names (``params/W``,
``optimizer/damping``, ``datasets/train/cursor``), so the file can be
inspected with plain :mod:`h5py`::

    >>> import h5py                                       # doctest: +SKIP
    >>> h5py.File('run.h5', 'r')['optimizer/damping'][()]  # doctest: +SKIP

Each node carries a ``type`` attribute recording the Python type of the
value, so :func:`load` returns exactly what :func:`save` was given: arrays
bit-exact with their dtype, Python scalars as the same Python types, Python
integers of any size (e.g. the 128-bit state of a PCG64 generator) exactly.

:func:`save` is atomic: the file is written under a unique temporary name in
the destination directory, flushed to disk and renamed over the destination,
so a crash at any moment leaves either the previous or the new complete file.
Files contain no timestamps: saving the same state twice gives identical bytes.
The HDF5 file is built in memory and written with plain ``os.write`` calls, so
a full disk (or a file size limit) gives one :class:`OSError` naming the path,
the previous checkpoint stays intact and no temporary file is left behind.
:func:`check_writable` reports a missing or read-only directory before any
training starts.

Integrity
---------
The root attribute ``checksum`` (format version 2) is a SHA-256 over the
whole content: every group and dataset name, every attribute and every value,
scalars included.  :func:`load` refuses, with :class:`CheckpointError`, a file
whose content no longer matches it, e.g. a scalar edited with h5py.  Version 1
files (no ``checksum``; HDF5's Fletcher-32 covers their arrays only) are
still read.

Training checkpoints
--------------------
:func:`load` also applies the trainer's rules on what a training checkpoint
must hold (:func:`hf._loop.check_finite_state`): no NaN or infinite value
under the ``optimizer`` and ``loop`` groups (resuming from one could not make
progress), with two exceptions: ``loop/best_loss`` may be ``+inf`` and
``loop/last_valid`` may hold any value.  :func:`save` does not judge values.
``check_params`` (saved parameters fit a model) lives with the trainer too,
and ``rng_state``, ``set_rng_state`` and ``rng_from_state`` in
``hf._rng_state`` (numpy only); all four stay importable from here.

Examples
--------
>>> import os, tempfile
>>> import numpy as np
>>> from hf import checkpoint
>>> path = os.path.join(tempfile.mkdtemp(), 'run.h5')
>>> checkpoint.save(path, {'params': {'W': np.eye(2)}, 'step': 3, 'note': None})
>>> state = checkpoint.load(path)
>>> state['step'], state['note'], state['params']['W'].dtype
(3, None, dtype('float64'))
"""
import errno
import glob
import hashlib
import importlib
import io
import os
import stat
import time
import uuid
from collections.abc import Mapping

import h5py
import numpy as np

__all__ = [
    "FORMAT_VERSION",
    "CheckpointError",
    "ReadOnlyCheckpointError",
    "save",
    "load",
    "check_writable",
    "check_not_read_only",
    "CheckpointLock",
    "check_params",
    "rng_state",
    "set_rng_state",
    "rng_from_state",
]

#: Version of the on-disk layout written by :func:`save`.  :func:`load` reads
#: files of this version or older and refuses newer ones.  Version 2 added the
#: whole-file ``checksum`` attribute; version 1 files (arrays checksummed by
#: HDF5's Fletcher-32 filter only) are still read.
FORMAT_VERSION = 2

# Root attribute holding the whole-content checksum (version >= 2).
_CHECKSUM_ATTR = "checksum"
_CHECKSUM_PREFIX = "sha256:"

# Value of the ``type`` attribute of each node, by kind of Python value.
_DICT = "dict"
_LIST = "list"          # list stored as a group of items '0', '1', ...
_TUPLE = "tuple"        # tuple stored as a group of items
_NUMLIST = "numlist"    # list of Python numbers of one type, or of numpy scalars of one
                        # dtype, stored as one 1-D dataset (attribute 'item': the item type)
_NDARRAY = "ndarray"
_NPSCALAR = "npscalar"
_BOOL = "bool"
_INT = "int"            # Python int within int64
_BIGINT = "bigint"      # Python int beyond int64, stored as a decimal string
_FLOAT = "float"
_STR = "str"
_NONE = "none"

_ARRAY_KINDS = "biufcS"  # bool, int, uint, float, complex, fixed-length bytes
_INT64_MIN, _INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


class CheckpointError(ValueError):
    """A checkpoint cannot be read, or does not match the model it is loaded into."""


class ReadOnlyCheckpointError(PermissionError, CheckpointError):
    """A read-only checkpoint file that a run would replace: a ``PermissionError``
    (``errno.EACCES``) and a :class:`CheckpointError`."""


# --------------------------------------------------------------------------- save

def save(path, state):
    """Write a nested state dictionary to an HDF5 file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.  Its directory must exist.
    state : dict
        Nested dictionary with ``str`` keys (non-empty, without ``'/'``, not
        ``'.'``).  Leaves may be numpy arrays (bool, integer, float, complex or
        fixed-length bytes dtype, any shape including 0-d), numpy scalars,
        Python ``bool``, ``int`` (any size), ``float``, ``str``, ``None``, or
        lists/tuples of such values.

    Raises
    ------
    TypeError
        If a key is not a string or a value has an unsupported type; the
        message names the key path.  Nothing is written in that case.
    ValueError
        If a key is not a valid HDF5 name.
    ReadOnlyCheckpointError
        A ``PermissionError`` and a :class:`CheckpointError`: ``path`` is a
        read-only file (no write bit in its mode). It is neither replaced nor
        changed, even by a user (root) who could.
    OSError
        If the file cannot be written (disk full, file size limit, directory
        missing or read-only, ...): one error, with the ``errno`` of the
        failed system call, whose message names ``path`` and says that the
        previous checkpoint there (if any) is intact.  ``path`` is left
        untouched and the temporary file is removed.

    Notes
    -----
    The whole HDF5 file is first built in memory, so HDF5 itself never
    writes to disk and never meets a disk error.  The bytes are then written
    with plain ``os.write`` calls to ``<path>.tmp-<pid>-<random>`` in the
    same directory, ``os.fsync``-ed, renamed onto ``path`` with
    :func:`os.replace` and the directory is ``fsync``-ed, so that a crash at
    any moment leaves either the old or the new complete file at ``path``.
    Temporary files left by killed writers (whose process no longer exists)
    are removed. The new file keeps the permission bits of the file it
    replaces.
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"save: state must be a dict, got {type(state).__name__}")
    _validate(state, "state")
    path = os.fspath(path)
    check_not_read_only(path)
    image = _serialize(state)
    directory = os.path.dirname(os.path.abspath(path))
    _remove_stale_temporaries(path)
    tmp = _temporary_name(path)
    had_previous = os.path.exists(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as err:
        raise _write_error(path, err, had_previous) from None
    try:
        try:
            if had_previous:  # the new file keeps the mode of the one it replaces
                os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
            _write_all(fd, image)
            os.fsync(fd)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass
            raise
        os.close(fd)
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise _write_error(path, err, had_previous) from None
        raise
    _fsync_directory(directory)


def _temporary_name(path):
    """``<path>.tmp-<pid>-<random>``: the pattern :func:`_remove_stale_temporaries` knows."""
    return f"{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}"


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _write_error(path, err, had_previous):
    """One OSError (same errno, so the same subclass) naming ``path``."""
    reason = err.strerror or str(err)
    if had_previous:
        outcome = f"the previous checkpoint {path!r} is intact"
    else:
        outcome = f"no checkpoint was written at {path!r}"
    return OSError(err.errno, f"cannot write checkpoint {path!r}: {reason}; {outcome} "
                              "and the temporary file was removed")


def _serialize(state):
    """The complete HDF5 file of ``state``, built in memory, as bytes."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver="v110", track_order=True) as f:
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["type"] = _DICT
        for key, value in state.items():
            _write(f, key, value)
        f.attrs[_CHECKSUM_ATTR] = _checksum(f)
    return buffer.getbuffer()  # (no copy of the whole file)


def check_writable(path):
    """Check, before any training, that a checkpoint can be written at ``path``.

    A small probe file is created in the directory of ``path`` (under the
    temporary name :func:`save` uses), written and removed again, so a
    missing directory, a read-only directory or file system, or a full disk
    is reported now rather than when the first checkpoint is written.
    ``path`` itself is neither created nor modified.

    Parameters
    ----------
    path : str or os.PathLike
        The checkpoint file that :func:`save` will write.

    Raises
    ------
    FileNotFoundError
        If the directory of ``path`` does not exist.
    NotADirectoryError
        If the parent of ``path`` is not a directory.
    IsADirectoryError
        If ``path`` is an existing directory.
    OSError
        If the directory is not writable (``PermissionError`` for a
        permission problem, ``errno.EROFS`` for a read-only file system,
        ``errno.ENOSPC`` for a full disk); the message names ``path`` and
        its directory.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write checkpoint {path!r}: directory "
                                              f"{directory!r} does not exist")
    if not os.path.isdir(directory):
        raise NotADirectoryError(errno.ENOTDIR, f"cannot write checkpoint {path!r}: "
                                                f"{directory!r} is not a directory")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"cannot write checkpoint {path!r}: it is a directory")
    probe = _temporary_name(path)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as err:
        raise OSError(err.errno, f"cannot write checkpoint {path!r}: directory {directory!r} is "
                                 f"not writable ({err.strerror or err})") from None
    try:
        try:
            _write_all(fd, b"hf checkpoint write probe\n")
        finally:
            os.close(fd)
    except OSError as err:
        raise OSError(err.errno, f"cannot write checkpoint {path!r}: cannot write a file in "
                                 f"directory {directory!r} ({err.strerror or err})") from None
    finally:
        try:
            os.remove(probe)
        except OSError:
            pass


def check_not_read_only(path, what="checkpoint"):
    """Raise :class:`ReadOnlyCheckpointError` if ``path`` is an existing file with no write bit set.

    :func:`save` replaces a file by renaming a new one over it, which only
    needs the directory to be writable: a checkpoint made read-only
    (``chmod a-w``) to keep it would be replaced, and its mode with it. The
    mode bits are read rather than ``os.access``, which says yes to root.
    """
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return
    if os.path.isfile(path) and not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise ReadOnlyCheckpointError(
            errno.EACCES,
            f"{what} {path!r} is read-only (mode {mode:#o}): hf does not replace a read-only checkpoint; "
            "make it writable (chmod u+w) or pass another checkpoint= path",
        )


# --------------------------------------------------------------------------- lock

LOCK_SUFFIX = ".lock"


class CheckpointLock:
    """A lock file ``<path>.lock`` that keeps two live runs off one checkpoint path.

    The file holds the process id and a token unique to the run. A run may take
    the lock when there is no lock file, when the file is its own (same token),
    or when the process that wrote it is gone (a killed run: a stale lock).
    Within one process, a lock whose run has ended or been garbage collected
    (``alive()`` false) is stale too.

    Parameters
    ----------
    path : str
        The checkpoint path.
    token : str
        Identifies the run (e.g. one per optimizer).
    alive : callable, optional
        For a lock of this process: whether the run holding ``token`` still
        runs. Default: the lock is held.
    """

    _live = {}  # this process's locks: lock path -> (token, alive)

    def __init__(self, path, token):
        self.path = os.fspath(path)
        self.lock_path = self.path + LOCK_SUFFIX
        self.token = token

    def acquire(self, alive=None, owner=""):
        """Take the lock, or raise :class:`CheckpointError` naming the run that holds it."""
        prefix = f"{owner}: " if owner else ""
        for _ in range(3):  # bounded: a racing run can take a stale lock between two tries
            try:
                fd = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                             0o666)
            except FileExistsError:
                pid, token = self._read()
                if token == self.token and pid == os.getpid():
                    break
                if pid is not None and pid != os.getpid() and _alive_after_grace(pid):
                    raise CheckpointError(
                        f"{prefix}checkpoint={self.path!r} is held by another run (process {pid}, lock file "
                        f"{self.lock_path!r}): two runs writing one checkpoint would overwrite each other's "
                        "state; give each run its own checkpoint path"
                    ) from None
                if pid == os.getpid():
                    held = self._live.get(self.lock_path)
                    if held is not None and held[0] == token and held[1]():
                        raise CheckpointError(
                            f"{prefix}checkpoint={self.path!r} is held by another run in this process "
                            f"(process {pid}, lock file {self.lock_path!r}): two runs writing one checkpoint "
                            "would overwrite each other's state; let the other run end (or close its "
                            "iterate() generator) or give each run its own checkpoint path"
                        ) from None
                try:  # a stale lock: its run is gone
                    os.remove(self.lock_path)
                except FileNotFoundError:
                    pass
                continue
            except OSError as err:
                directory = os.path.dirname(os.path.abspath(self.path))
                raise OSError(err.errno, f"{prefix}cannot write checkpoint {self.path!r}: cannot create its lock "
                                         f"file in directory {directory!r} ({err.strerror or err})") from None
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {self.token}\n")
            break
        else:
            raise CheckpointError(f"{prefix}cannot take the lock {self.lock_path!r} of checkpoint={self.path!r}")
        self._live[self.lock_path] = (self.token, alive or (lambda: True))

    def release(self):
        """Remove the lock file if it is still this run's."""
        held = self._live.get(self.lock_path)
        if held is not None and held[0] == self.token:
            del self._live[self.lock_path]
        pid, token = self._read()
        if pid == os.getpid() and token == self.token:
            try:
                os.remove(self.lock_path)
            except OSError:
                pass

    def _read(self):
        """``(pid, token)`` of the lock file; ``(None, None)`` when missing or unreadable."""
        try:
            with open(self.lock_path) as f:
                pid, token = f.read().split()[:2]
            return int(pid), token
        except (OSError, ValueError):
            return None, None


def _fsync_directory(directory):
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # e.g. platforms that cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temporaries(path):
    """Remove ``<path>.tmp-<pid>-*`` files whose writer process is gone."""
    for name in glob.glob(glob.escape(path) + ".tmp-*"):
        parts = name[len(path):].split("-")
        try:
            pid = int(parts[1])
        except (IndexError, ValueError):
            continue
        if _process_alive(pid):  # another (or this) process may be writing it now
            continue
        try:
            os.remove(name)
        except OSError:
            pass


def _process_alive(pid):
    """Whether process ``pid`` runs: it exists and is not a zombie (an ended process not yet reaped,
    as the ranks of an aborted MPI job can stay where nothing reaps orphans)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]  # the field after the command's name
    except (OSError, IndexError):
        return True  # no /proc (not Linux): existing counts as alive
    return state not in (b"Z", b"X")


def _alive_after_grace(pid, seconds=3.0):
    """Whether process ``pid`` is still alive after up to ``seconds``: a run that was just stopped (a
    Ctrl-C'd MPI job whose ranks are still exiting) releases its lock by ending."""
    deadline = time.monotonic() + seconds
    while _process_alive(pid):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


def _validate(value, where):
    """Check the whole tree before writing anything."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"save: key {key!r} in {where} must be a str, "
                                f"got {type(key).__name__}")
            if key in ("", ".") or "/" in key:
                raise ValueError(f"save: key {key!r} in {where} is not a valid HDF5 name "
                                 "(must be non-empty, not '.', without '/')")
            _validate(item, f"{where}[{key!r}]")
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"save: {where} is an array of unsupported dtype {value.dtype} "
                            "(supported: bool, integer, float, complex, bytes)")
    elif isinstance(value, np.generic):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"save: {where} is a numpy scalar of unsupported dtype {value.dtype}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _validate(item, f"{where}[{i}]")
    elif value is None or isinstance(value, (bool, int, float, str)):
        pass
    else:
        raise TypeError(f"save: {where} has unsupported type {type(value).__name__} "
                        "(supported: dict, numpy array/scalar, int, float, bool, str, "
                        "None, list, tuple)")


def _numeric_list_kind(items):
    """Item type of a list storable as one 1-D dataset, or None."""
    if not items:
        return _FLOAT
    types = {type(v) for v in items}
    if types == {bool}:
        return _BOOL
    if types == {float}:
        return _FLOAT
    if types == {int} and all(_INT64_MIN <= v <= _INT64_MAX for v in items):
        return _INT
    if (all(isinstance(v, np.generic) for v in items) and len({v.dtype for v in items}) == 1
            and items[0].dtype.kind in _ARRAY_KINDS):
        return _NPSCALAR
    return None


def _write(group, key, value):
    if isinstance(value, Mapping):
        sub = group.create_group(key, track_order=True)
        sub.attrs["type"] = _DICT
        for k, v in value.items():
            _write(sub, k, v)
        return
    if isinstance(value, np.ndarray):
        data = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if data.ndim >= 1 and data.size > 0:
            ds = group.create_dataset(key, data=data, chunks=True, fletcher32=True)
        else:
            ds = group.create_dataset(key, data=data)
        ds.attrs["type"] = _NDARRAY
        return
    if isinstance(value, np.generic):
        ds = group.create_dataset(key, data=value)
        ds.attrs["type"] = _NPSCALAR
        return
    if isinstance(value, list) and _numeric_list_kind(value) is not None:
        kind = _numeric_list_kind(value)
        if kind == _NPSCALAR:
            dtype = value[0].dtype
        else:
            dtype = {_BOOL: np.bool_, _INT: np.int64, _FLOAT: np.float64}[kind]
        ds = group.create_dataset(key, data=np.asarray(value, dtype=dtype).reshape(-1))
        ds.attrs["type"] = _NUMLIST
        ds.attrs["item"] = kind
        return
    if isinstance(value, (list, tuple)):
        sub = group.create_group(key, track_order=True)
        sub.attrs["type"] = _TUPLE if isinstance(value, tuple) else _LIST
        sub.attrs["length"] = np.int64(len(value))
        for i, item in enumerate(value):
            _write(sub, str(i), item)
        return
    if value is None:
        ds = group.create_dataset(key, data=h5py.Empty("i1"))
        ds.attrs["type"] = _NONE
        return
    if isinstance(value, bool):
        ds = group.create_dataset(key, data=np.bool_(value))
        ds.attrs["type"] = _BOOL
        return
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            ds = group.create_dataset(key, data=np.int64(value))
            ds.attrs["type"] = _INT
        else:
            ds = group.create_dataset(key, data=str(value), dtype=h5py.string_dtype())
            ds.attrs["type"] = _BIGINT
        return
    if isinstance(value, float):
        ds = group.create_dataset(key, data=np.float64(value))
        ds.attrs["type"] = _FLOAT
        return
    if isinstance(value, str):
        ds = group.create_dataset(key, data=value, dtype=h5py.string_dtype())
        ds.attrs["type"] = _STR
        return
    raise TypeError(f"save: unsupported type {type(value).__name__} for key {key!r}")


# --------------------------------------------------------------------------- checksum

def _checksum(root):
    """SHA-256 of everything in an open file except the ``checksum`` attribute itself.

    Covers, for every group and dataset in iteration order, its full name,
    whether it is a group or a dataset, every attribute (name and value,
    ``format_version`` and ``type`` included), and every dataset's dtype,
    shape and values as h5py reads them.  Any change made after :func:`save`
    (a scalar or attribute edited with h5py, a node added, removed or
    renamed) changes it.
    """
    digest = hashlib.sha256()

    def put(tag, data):
        data = memoryview(data)
        digest.update(tag + data.nbytes.to_bytes(8, "little"))
        digest.update(data)

    def visit(node):
        put(b"N", node.name.encode("utf-8"))
        names = sorted(n for n in node.attrs.keys() if not (node == root and n == _CHECKSUM_ATTR))
        put(b"A", str(len(names)).encode())
        for name in names:
            put(b"a", name.encode("utf-8"))
            _put_value(put, node.attrs[name])
        if isinstance(node, h5py.Group):
            keys = list(node.keys())
            put(b"G", str(len(keys)).encode())
            for key in keys:
                visit(node[key])
        else:
            put(b"D", str(node.dtype).encode() + b"|" + repr(node.shape).encode())
            _put_value(put, node[()])

    visit(root)
    return _CHECKSUM_PREFIX + digest.hexdigest()


def _put_value(put, value):
    """Feed a value read by h5py (attribute or dataset contents) to ``put``, unambiguously."""
    if isinstance(value, str):
        put(b"s", value.encode("utf-8"))
    elif isinstance(value, bytes):
        put(b"b", value)
    elif isinstance(value, h5py.Empty):
        put(b"e", str(value.dtype).encode())
    else:
        array = np.asarray(value)
        if array.dtype.kind == "O":  # variable-length strings or other objects, item by item
            put(b"o", repr(array.shape).encode())
            for item in array.reshape(-1):
                _put_value(put, item)
        else:
            put(b"n", array.dtype.str.encode() + b"|" + repr(array.shape).encode())
            put(b"r", np.ascontiguousarray(array).reshape(-1).view(np.uint8))


# --------------------------------------------------------------------------- load

def load(path):
    """Read a checkpoint written by :func:`save`.

    Parameters
    ----------
    path : str or os.PathLike
        Checkpoint file.  It is opened read-only and never modified.

    Returns
    -------
    state : dict
        The nested dictionary given to :func:`save`, with keys in their
        original order and every value round-tripped exactly.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CheckpointError
        If the file is not an HDF5 file, is truncated or corrupt, has no
        ``format_version`` attribute, was written by a newer format version,
        does not match its checksum (any value or attribute changed after
        :func:`save`), or holds a non-finite value where a training
        checkpoint must hold a finite one (see the module docstring).  The
        message names the path and the reason.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path!r}: {err}") from err
    if not is_hdf5:
        raise CheckpointError(f"cannot read checkpoint {path!r}: not an HDF5 file "
                              "(no HDF5 signature)")
    try:
        f = h5py.File(path, "r")
    except Exception as err:  # h5py raises OSError for truncated/corrupt files
        raise CheckpointError(f"cannot read checkpoint {path!r}: truncated or corrupt "
                              f"HDF5 file ({err})") from err
    try:
        with f:
            if "format_version" not in f.attrs:
                raise CheckpointError(f"cannot read checkpoint {path!r}: no 'format_version' "
                                      "attribute (not a checkpoint written by hf.checkpoint)")
            version = f.attrs["format_version"]
            if not (np.ndim(version) == 0 and np.issubdtype(np.asarray(version).dtype, np.integer)):
                raise CheckpointError(f"cannot read checkpoint {path!r}: format_version "
                                      f"{version!r} is not an integer")
            version = int(version)
            if version > FORMAT_VERSION:
                raise CheckpointError(f"cannot read checkpoint {path!r}: format version "
                                      f"{version} is newer than the supported version "
                                      f"{FORMAT_VERSION}; upgrade hf")
            if version < 1:
                raise CheckpointError(f"cannot read checkpoint {path!r}: unknown format "
                                      f"version {version}")
            if version >= 2:
                _verify_checksum(f, path)
            state = _read_group_dict(f, path)
    except CheckpointError:
        raise
    except Exception as err:  # corrupt metadata or data (checksums), bad values
        raise CheckpointError(f"cannot read checkpoint {path!r}: corrupt file "
                              f"({type(err).__name__}: {err})") from err
    from ._loop import check_finite_state  # the trainer's rules for a training checkpoint

    check_finite_state(state, path)
    return state


def _verify_checksum(f, path):
    stored = _attr_str(f, _CHECKSUM_ATTR)
    if stored is None:
        raise CheckpointError(f"cannot read checkpoint {path!r}: no {_CHECKSUM_ATTR!r} "
                              f"attribute (required since format version 2)")
    if not (isinstance(stored, str) and stored.startswith(_CHECKSUM_PREFIX)):
        raise CheckpointError(f"cannot read checkpoint {path!r}: malformed {_CHECKSUM_ATTR!r} "
                              f"attribute {stored!r}")
    if _checksum(f) != stored:
        raise CheckpointError(f"cannot read checkpoint {path!r}: checksum mismatch, the file "
                              "was modified or corrupted after it was written")


def _attr_str(node, name):
    value = node.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


def _read_group_dict(group, path):
    return {key: _read(group[key], path) for key in group.keys()}


def _read(node, path):
    kind = _attr_str(node, "type")
    if isinstance(node, h5py.Group):
        if kind in (None, _DICT):
            return _read_group_dict(node, path)
        if kind in (_LIST, _TUPLE):
            n = int(node.attrs["length"])
            items = [_read(node[str(i)], path) for i in range(n)]
            return tuple(items) if kind == _TUPLE else items
        raise CheckpointError(f"cannot read checkpoint {path!r}: group {node.name!r} has "
                              f"unknown type {kind!r}")
    if kind in (None, _NDARRAY):
        return np.asarray(node[...]) if node.shape is not None else None
    if kind == _NPSCALAR:
        value = node[()]
        if not isinstance(value, np.generic):
            value = np.asarray(value)[()]
        return value
    if kind == _NUMLIST:
        values = node[...]
        if _attr_str(node, "item") == _NPSCALAR:
            return list(values)
        return values.tolist()
    if kind == _NONE:
        return None
    if kind == _BOOL:
        return bool(node[()])
    if kind == _INT:
        return int(node[()])
    if kind == _BIGINT:
        return int(node.asstr()[()])
    if kind == _FLOAT:
        return float(node[()])
    if kind == _STR:
        return node.asstr()[()]
    raise CheckpointError(f"cannot read checkpoint {path!r}: dataset {node.name!r} has "
                          f"unknown type {kind!r}")


# --------------------------------------------------------------------------- moved names

# Names kept importable from here whose code lives elsewhere: the trainer's check
# that saved parameters fit a model, and the RNG-state helpers (numpy only, so the
# data layer needs no h5py).  Looked up on first use, so this file still loads on
# its own (by path, without the hf package), as the torn-write tests load it.
_ELSEWHERE = {
    "check_params": "_loop",
    "rng_state": "_rng_state",
    "set_rng_state": "_rng_state",
    "rng_from_state": "_rng_state",
}


def __getattr__(name):
    if name in _ELSEWHERE:
        module = importlib.import_module(f".{_ELSEWHERE[name]}", __package__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_ELSEWHERE))
