"""hf.checkpoint against the disk: a full disk or file size limit during a save,
and check_writable on missing, read-only and full directories.

The writers run in subprocesses (loading hf/checkpoint.py by path, without
PyTensor) so that a crash at interpreter exit shows in their return code and
HDF5's ignored-exception tracebacks show on their stderr.  Real full disks are
small tmpfs mounts (skipped where mounting is not permitted); a file size limit
(``RLIMIT_FSIZE``) needs no privilege.
"""
import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hf import checkpoint

# Saves a small checkpoint (tag 0), optionally lowers the file size limit, then
# tries to save one of about 800 kB (tag 1) and reports every exception it
# catches as one JSON line.
_WRITER = textwrap.dedent("""
    import importlib.util
    import json
    import resource
    import signal
    import sys
    import numpy as np
    spec = importlib.util.spec_from_file_location("checkpoint", sys.argv[2])
    checkpoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checkpoint)
    path, fsize_limit = sys.argv[1], int(sys.argv[3])
    checkpoint.save(path, {"x": np.arange(1000.0), "tag": 0})
    if fsize_limit:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE,
                           (fsize_limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        checkpoint.save(path, {"x": np.ones(100_000), "tag": 1})
    except BaseException as err:
        print(json.dumps({"type": type(err).__name__, "is_oserror": isinstance(err, OSError),
                          "errno": getattr(err, "errno", None), "message": str(err)}), flush=True)
    print("done", flush=True)
""")


def _run_writer(path, fsize_limit=0):
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(path), checkpoint.__file__,
                           str(fsize_limit)], capture_output=True, text=True, timeout=60)
    return proc


def _check_failed_save(proc, path, expected_errnos):
    # a clean exit: no crash at interpreter exit (the old h5py writer segfaulted here)
    assert proc.returncode == 0, f"writer exited with {proc.returncode}; stderr:\n{proc.stderr}"
    # nothing printed by HDF5 or h5py's ignored exceptions
    assert proc.stderr == "", proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "done"
    errors = [json.loads(line) for line in lines[:-1]]
    assert len(errors) == 1, errors  # exactly one error reached the caller
    (error,) = errors
    assert error["is_oserror"], error
    assert error["errno"] in expected_errnos, error
    assert str(path) in error["message"]
    assert "intact" in error["message"]
    # the previous checkpoint is there, complete, and nothing else is
    assert sorted(os.listdir(path.parent)) == [path.name]
    state = checkpoint.load(path)
    assert state["tag"] == 0
    np.testing.assert_array_equal(state["x"], np.arange(1000.0))


def test_file_size_limit_during_save(tmp_path):
    path = tmp_path / "ck.h5"
    proc = _run_writer(path, fsize_limit=200_000)
    _check_failed_save(proc, path, {errno.EFBIG})


@contextlib.contextmanager
def _tmpfs(directory, size):
    """A tmpfs of ``size`` mounted on ``directory``; skips the test where that is not allowed."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and the mount command")
    directory.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def _remount_read_only(directory):
    res = subprocess.run(["mount", "-o", "remount,ro", str(directory)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot remount a tmpfs read-only here: {res.stderr.strip()}")


def test_disk_full_during_save(tmp_path):
    with _tmpfs(tmp_path / "small", "300k") as directory:
        path = directory / "ck.h5"
        proc = _run_writer(path)
        _check_failed_save(proc, path, {errno.ENOSPC})


def test_read_only_directory_during_save(tmp_path):
    with _tmpfs(tmp_path / "ro", "1m") as directory:
        path = directory / "ck.h5"
        checkpoint.save(path, {"tag": 0})
        _remount_read_only(directory)
        with pytest.raises(OSError, match=r"ro/ck\.h5.*intact") as info:
            checkpoint.save(path, {"tag": 1})
        assert info.value.errno == errno.EROFS
        assert checkpoint.load(path) == {"tag": 0}
        assert os.listdir(directory) == ["ck.h5"]


# --------------------------------------------------------------------------- check_writable

def test_check_writable_writable_directory_left_unchanged(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    checkpoint.check_writable(tmp_path / "ck.h5")
    checkpoint.check_writable(str(tmp_path / "ck.h5"))
    assert sorted(os.listdir(tmp_path)) == ["other.txt"]  # no probe left, no checkpoint made
    checkpoint.save(tmp_path / "ck.h5", {"a": 1})
    checkpoint.check_writable(tmp_path / "ck.h5")  # an existing checkpoint is not touched
    assert checkpoint.load(tmp_path / "ck.h5") == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["ck.h5", "other.txt"]


def test_check_writable_missing_directory(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "ck.h5"
    with pytest.raises(FileNotFoundError) as info:
        checkpoint.check_writable(path)
    assert str(path) in str(info.value)
    assert str(tmp_path / "no" / "such" / "dir") in str(info.value)
    assert info.value.errno == errno.ENOENT
    assert not (tmp_path / "no").exists()


def test_check_writable_parent_is_a_file_or_path_is_a_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"file/ck\.h5"):
        checkpoint.check_writable(tmp_path / "file" / "ck.h5")
    (tmp_path / "ck.h5").mkdir()
    with pytest.raises(IsADirectoryError, match=r"ck\.h5"):
        checkpoint.check_writable(tmp_path / "ck.h5")


def test_check_writable_read_only_directory(tmp_path):
    with _tmpfs(tmp_path / "ro", "1m") as directory:
        _remount_read_only(directory)
        path = directory / "ck.h5"
        with pytest.raises(OSError) as info:
            checkpoint.check_writable(path)
        assert info.value.errno == errno.EROFS
        assert str(path) in str(info.value)
        assert "not writable" in str(info.value)
        assert os.listdir(directory) == []


def test_check_writable_full_disk(tmp_path):
    with _tmpfs(tmp_path / "full", "64k") as directory:
        with pytest.raises(OSError) as filling:  # fill it to the last byte
            with open(directory / "filler", "wb") as f:
                while True:
                    f.write(b"\0" * 4096)
                    f.flush()
        assert filling.value.errno == errno.ENOSPC
        path = directory / "ck.h5"
        with pytest.raises(OSError) as info:
            checkpoint.check_writable(path)
        assert info.value.errno == errno.ENOSPC
        assert str(path) in str(info.value)
        assert os.listdir(directory) == ["filler"]
