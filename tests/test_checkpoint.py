"""Tests for hf.checkpoint: exact round trips, readable layout, atomicity, errors."""
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from hf import checkpoint
from hf.checkpoint import CheckpointError


def _assert_same(a, b, where="state"):
    """Exact equality including Python types, numpy dtypes and NaN bit patterns."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), where
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), where
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), where
    else:
        assert a == b, where


def _full_state():
    rng = np.random.default_rng(0)
    return {
        "params": {
            "W": rng.standard_normal((3, 4)).astype(np.float32),
            "b": rng.standard_normal(4),
            "idx": np.arange(5, dtype=np.int32),
            "u": np.arange(3, dtype=np.uint64) * np.uint64(2 ** 62),
            "mask": np.array([True, False]),
            "c": np.array([1 + 2j, 3 - 4j]),
            "half": np.array([1.5, -2.0], dtype=np.float16),
            "special": np.array([np.nan, np.inf, -np.inf, -0.0]),
            "zero_d": np.array(2.5),
            "zero_d_int": np.array(7, dtype=np.int8),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "bytes": np.array([b"ab", b"c"]),
            "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        },
        "optimizer": {
            "damping": 0.75,
            "step": 12,
            "negative": -3,
            "converged": False,
            "flag": True,
            "method": "hf",
            "unicode": "λ → ∞",
            "empty_str": "",
            "nothing": None,
            "np_float32": np.float32(1.25),
            "np_int64": np.int64(-9),
            "np_bool": np.bool_(True),
            "minus_zero": -0.0,
            "big": 2 ** 127 + 12345,
            "big_negative": -(2 ** 100),
            "int64_max": 2 ** 63 - 1,
        },
        "history": {
            "losses": [1.0, 0.5, 0.25],
            "iters": [3, 5, 8],
            "flags": [True, False],
            "empty": [],
            "mixed": [1, 2.5, True, None, "x", 2 ** 70],
            "pair": (1, 2.0),
            "nested": [[1, 2], {"a": 1}],
            "np_losses": [np.float32(0.5), np.float32(0.25)],
            "np_mixed": [np.float32(0.5), np.float64(0.25)],
            "nan": float("nan"),  # (load refuses NaN under 'optimizer' and 'loop')
        },
        "empty_dict": {},
        "deep": {"a": {"b": {"c": {"d": np.ones(2)}}}},
        "rng": checkpoint.rng_state(np.random.default_rng(123)),
    }


def test_round_trip_every_type(tmp_path):
    state = _full_state()
    path = tmp_path / "ck.h5"
    checkpoint.save(path, state)
    loaded = checkpoint.load(path)
    _assert_same(state, loaded)
    # a 0-d array stays an array, a numpy scalar a numpy scalar
    assert isinstance(loaded["params"]["zero_d"], np.ndarray)
    assert loaded["params"]["zero_d"].shape == ()
    assert type(loaded["optimizer"]["np_float32"]) is np.float32
    assert loaded["optimizer"]["big"] == 2 ** 127 + 12345


def test_empty_state_round_trip(tmp_path):
    checkpoint.save(tmp_path / "e.h5", {})
    assert checkpoint.load(tmp_path / "e.h5") == {}


def test_readable_with_plain_h5py(tmp_path):
    path = tmp_path / "ck.h5"
    state = _full_state()
    checkpoint.save(str(path), state)
    with h5py.File(path, "r") as f:
        assert f.attrs["format_version"] == checkpoint.FORMAT_VERSION
        np.testing.assert_array_equal(f["params/W"][...], state["params"]["W"])
        assert f["optimizer/damping"][()] == 0.75
        assert f["optimizer/step"][()] == 12
        assert f["optimizer/method"].asstr()[()] == "hf"
        assert list(f["params"].keys())[:3] == ["W", "b", "idx"]  # insertion order kept
        assert "created" not in f.attrs
        assert isinstance(f["history/losses"], h5py.Dataset)  # lists of numbers: one dataset
        assert isinstance(f["history/np_losses"], h5py.Dataset)
        assert f["history/np_losses"].dtype == np.float32


def test_byte_deterministic(tmp_path):
    state = _full_state()
    checkpoint.save(tmp_path / "a.h5", state)
    time.sleep(1.05)  # HDF5 timestamps have one-second resolution
    checkpoint.save(tmp_path / "b.h5", state)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_overwrite_and_no_leftover_temporaries(tmp_path):
    path = tmp_path / "ck.h5"
    checkpoint.save(path, {"x": 1})
    checkpoint.save(path, {"x": 2})
    assert checkpoint.load(path) == {"x": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.h5"]


def test_stale_temporary_files_do_not_break_saves(tmp_path):
    path = tmp_path / "ck.h5"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f"ck.h5.tmp-{int(dead.stdout)}-deadbeef0000"
    stale.write_bytes(b"partial garbage")
    checkpoint.save(path, {"x": np.arange(3)})
    np.testing.assert_array_equal(checkpoint.load(path)["x"], np.arange(3))
    assert not stale.exists()


def test_invalid_state_raises_before_writing(tmp_path):
    path = tmp_path / "ck.h5"
    with pytest.raises(TypeError, match=r"state\['a'\]\['f'\].*object"):
        checkpoint.save(path, {"a": {"f": object()}})
    with pytest.raises(TypeError, match="key 3"):
        checkpoint.save(path, {3: 1})
    with pytest.raises(ValueError, match="'a/b'"):
        checkpoint.save(path, {"a/b": 1})
    with pytest.raises(TypeError, match="dtype object"):
        checkpoint.save(path, {"a": np.array([None])})
    with pytest.raises(TypeError, match="must be a dict"):
        checkpoint.save(path, [1, 2])
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


_WRITER = textwrap.dedent("""
    import importlib.util
    import sys
    import numpy as np
    # load the module by path: the writer needs neither hf/__init__ nor PyTensor
    spec = importlib.util.spec_from_file_location("checkpoint", sys.argv[2])
    checkpoint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checkpoint)
    path = sys.argv[1]
    i = 0
    while True:
        value = float(i % 2)
        checkpoint.save(path, {"x": np.full(1_000_000, value), "tag": i % 2,
                               "nested": {"y": np.full(1000, value)}})
        if i == 0:
            print("ready", flush=True)
        i += 1
""")


def _start_writer(path):
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), checkpoint.__file__],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"  # one complete checkpoint on disk
    return proc


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def _temporaries(path, pid):
    """The temporary files of writer ``pid``: present while it writes, until its rename."""
    return list(path.parent.glob(f"{path.name}.tmp-{pid}-*"))


def _assert_consistent(path):
    state = checkpoint.load(path)
    tag = state["tag"]
    assert tag in (0, 1)
    np.testing.assert_array_equal(state["x"], np.full(1_000_000, float(tag)))
    np.testing.assert_array_equal(state["nested"]["y"], np.full(1000, float(tag)))


def test_atomic_against_sigkill(tmp_path):
    path = tmp_path / "ck.h5"
    killed_mid_write = 0
    # Kills at fixed delays land anywhere in the save cycle (building the file
    # in memory, writing it, renaming it).
    for delay in (0.0, 0.013, 0.05, 0.11):
        proc = _start_writer(path)
        try:
            time.sleep(delay)
        finally:
            _kill(proc)
        killed_mid_write += bool(_temporaries(path, proc.pid))
        _assert_consistent(path)
    # Kills aimed at the write itself: sent as soon as the writer's temporary
    # file appears, retried (a bounded number of times) until one lands before
    # the rename, which the temporary file left behind shows.
    for _ in range(10):
        if killed_mid_write >= 1:
            break
        proc = _start_writer(path)
        try:
            deadline = time.monotonic() + 10.0
            while not _temporaries(path, proc.pid) and time.monotonic() < deadline:
                time.sleep(0.0005)
        finally:
            _kill(proc)
        killed_mid_write += bool(_temporaries(path, proc.pid))
        _assert_consistent(path)
    assert killed_mid_write >= 1, "no SIGKILL landed while a checkpoint was being written"
    checkpoint.save(path, {"after": True})  # leftovers of killed writers do not matter
    assert checkpoint.load(path) == {"after": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.h5"]


def _saved(tmp_path):
    path = tmp_path / "ck.h5"
    checkpoint.save(path, {"params": {"W": np.arange(200_000, dtype=np.float64)}, "step": 3})
    return path


def test_not_hdf5_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a checkpoint\n" * 10)
    with pytest.raises(CheckpointError, match=r"notes\.txt.*not an HDF5 file"):
        checkpoint.load(path)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.h5"):
        checkpoint.load(empty)


def test_truncated_file(tmp_path):
    path = _saved(tmp_path)
    data = path.read_bytes()
    for size in (len(data) // 2, len(data) - 100, 600):
        path.write_bytes(data[:size])
        with pytest.raises(CheckpointError, match=r"ck\.h5.*(truncated|corrupt)"):
            checkpoint.load(path)


def test_corrupt_file_detected_and_not_modified(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid:mid + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match=r"ck\.h5.*corrupt"):
        checkpoint.load(path)
    assert path.read_bytes() == before


def test_corrupt_metadata(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[48:400] = b"\xff" * 352  # superblock extension / root group headers
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"ck\.h5"):
        checkpoint.load(path)


def test_missing_and_newer_format_version(tmp_path):
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(CheckpointError, match=r"plain\.h5.*format_version"):
        checkpoint.load(plain)
    newer = tmp_path / "newer.h5"
    checkpoint.save(newer, {"x": 1})
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = checkpoint.FORMAT_VERSION + 1
    with pytest.raises(CheckpointError, match=rf"newer\.h5.*format version {checkpoint.FORMAT_VERSION + 1} is newer"):
        checkpoint.load(newer)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        checkpoint.load(tmp_path / "nope.h5")


def test_check_params():
    saved = {"W": np.zeros((3, 4)), "b": np.zeros(4), "old": np.zeros(1)}
    checkpoint.check_params(saved, {"W": (3, 4), "b": (4,), "old": (1,)})
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: 'c'"):
        checkpoint.check_params(saved, {"W": (3, 4), "b": (4,), "old": (1,), "c": (2,)})
    with pytest.raises(CheckpointError, match=r"unexpected in the checkpoint: 'old'"):
        checkpoint.check_params(saved, {"W": (3, 4), "b": (4,)})
    with pytest.raises(CheckpointError,
                       match=r"'W': saved shape \(3, 4\) != model shape \(4, 3\)"):
        checkpoint.check_params(saved, {"W": (4, 3), "b": (4,), "old": (1,)}, path="run.h5")
    with pytest.raises(CheckpointError, match=r"run\.h5"):
        checkpoint.check_params(saved, {"W": np.zeros((4, 3))}, path="run.h5")


@pytest.mark.parametrize("bit_generator", ["PCG64", "MT19937", "Philox", "SFC64", "PCG64DXSM"])
def test_rng_state_round_trip(tmp_path, bit_generator):
    rng = np.random.Generator(getattr(np.random, bit_generator)(7))
    rng.random(5)
    checkpoint.save(tmp_path / "r.h5", {"rng": checkpoint.rng_state(rng)})
    state = checkpoint.load(tmp_path / "r.h5")["rng"]
    expected = rng.random(10)
    restored = checkpoint.rng_from_state(state)
    np.testing.assert_array_equal(restored.random(10), expected)
    other = np.random.Generator(getattr(np.random, bit_generator)(99))
    checkpoint.set_rng_state(other, state)
    np.testing.assert_array_equal(other.random(10), expected)


def test_set_rng_state_type_mismatch():
    state = checkpoint.rng_state(np.random.default_rng(0))
    with pytest.raises(CheckpointError, match="'PCG64'.*'MT19937'"):
        checkpoint.set_rng_state(np.random.Generator(np.random.MT19937(0)), state)
    with pytest.raises(TypeError, match="RandomState"):
        checkpoint.rng_state(np.random.RandomState(0))


# --------------------------------------------------------------------------- checksum

def _training_state():
    """A state laid out like the one HFOptimizer.save_checkpoint writes."""
    rng = np.random.default_rng(1)
    return {
        "kind": "HFOptimizer",
        "params": {"W": rng.standard_normal((3, 2)), "b": np.zeros(2)},
        "optimizer": {"damping": np.float64(0.75), "cg_x": rng.standard_normal(8),
                      "has_cg_x": True},
        "loop": {
            "updates": 4,
            "best_loss": np.float64(0.5),
            "bad_validations": 1,
            "best_params": {"W": rng.standard_normal((3, 2)), "b": np.ones(2)},
            "last_valid": {"loss": np.float64(0.625), "best_loss": np.float64(0.5)},
        },
        "history": {"update": np.arange(1.0, 5.0), "loss": np.array([2.0, 1.0, np.nan, 0.5])},
        "datasets": {"train": {"cursor": 3, "rng": checkpoint.rng_state(np.random.default_rng(2))}},
    }


def _edit_damping(f):
    f["optimizer/damping"][()] = 0.5  # a plausible value: only a checksum can tell


def _edit_nan_damping(f):
    f["optimizer/damping"][()] = np.nan


def _edit_int(f):
    f["loop/updates"][()] = 5


def _edit_bool(f):
    f["optimizer/has_cg_x"][()] = False


def _edit_string(f):
    f["kind"][()] = "Adam"


def _edit_array_element(f):
    f["params/b"][0] = 1.0  # arrays: Fletcher-32 is recomputed by HDF5 on a write


def _edit_history(f):
    f["history/loss"][2] = 0.75


def _edit_type_attribute(f):
    f["loop/updates"].attrs["type"] = "npscalar"


def _edit_add_attribute(f):
    f["optimizer"].attrs["note"] = "edited"


def _edit_root_attribute(f):
    f.attrs["type"] = "list"


def _edit_add_dataset(f):
    f["optimizer/extra"] = np.float64(1.0)


def _edit_remove_dataset(f):
    del f["loop/bad_validations"]


def _edit_replace_dataset(f):
    del f["optimizer/damping"]
    f["optimizer/damping"] = np.float64(0.75)  # same value, new type attribute missing


@pytest.mark.parametrize("edit", [
    _edit_damping, _edit_nan_damping, _edit_int, _edit_bool, _edit_string, _edit_array_element,
    _edit_history, _edit_type_attribute, _edit_add_attribute, _edit_root_attribute,
    _edit_add_dataset, _edit_remove_dataset, _edit_replace_dataset,
], ids=lambda edit: edit.__name__[len("_edit_"):])
def test_any_edit_after_save_is_detected(tmp_path, edit):
    path = tmp_path / "ck.h5"
    checkpoint.save(path, _training_state())
    _assert_same(checkpoint.load(path), _training_state())  # unedited: loads
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(CheckpointError, match=r"ck\.h5.*checksum"):
        checkpoint.load(path)


def test_checksum_is_stored_and_missing_one_refused(tmp_path):
    path = tmp_path / "ck.h5"
    checkpoint.save(path, {"x": 1.5})
    with h5py.File(path, "r+") as f:
        assert str(f.attrs["checksum"]).startswith("sha256:")
        assert len(str(f.attrs["checksum"])) == len("sha256:") + 64
        del f.attrs["checksum"]
    with pytest.raises(CheckpointError, match=r"ck\.h5.*no 'checksum'"):
        checkpoint.load(path)
    checkpoint.save(path, {"x": 1.5})
    with h5py.File(path, "r+") as f:
        f.attrs["checksum"] = "sha256:" + "0" * 64
    with pytest.raises(CheckpointError, match=r"ck\.h5.*checksum mismatch"):
        checkpoint.load(path)


def _as_version_1(path):
    """Rewrite a saved file as format version 1 wrote it: no checksum attribute."""
    with h5py.File(path, "r+") as f:
        del f.attrs["checksum"]
        f.attrs["format_version"] = np.int64(1)


def test_version_1_files_still_load(tmp_path):
    path = tmp_path / "v1.h5"
    checkpoint.save(path, _training_state())
    _as_version_1(path)
    _assert_same(checkpoint.load(path), _training_state())
    with h5py.File(path, "r+") as f:  # without a checksum, the value checks still apply
        f["optimizer/damping"][()] = np.nan
    with pytest.raises(CheckpointError, match=r"v1\.h5.*optimizer/damping must be finite, got nan"):
        checkpoint.load(path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = np.int64(0)
    with pytest.raises(CheckpointError, match=r"v1\.h5.*unknown format version 0"):
        checkpoint.load(path)


# --------------------------------------------------------------------------- finite values

def _set(state, where, value):
    *parents, last = where.split("/")
    node = state
    for key in parents:
        node = node[key]
    node[last] = value
    return state


@pytest.mark.parametrize("where, value", [
    ("optimizer/damping", np.float64(np.nan)),
    ("optimizer/damping", np.float64(np.inf)),
    ("optimizer/damping", float("-inf")),
    ("optimizer/cg_x", np.array([0.0, np.nan, 1.0])),
    ("optimizer/slots", {"W": {"m": np.array([[1.0, np.inf]], dtype=np.float32)}}),
    ("optimizer/global", {"scale": np.complex128(complex(1.0, np.nan))}),
    ("optimizer/trace", [1.0, float("nan")]),
    ("loop/best_loss", np.float64(np.nan)),
    ("loop/best_loss", np.float64(-np.inf)),
    ("loop/best_params/W", np.full((3, 2), np.nan)),
    ("loop/extra", float("inf")),
])
def test_non_finite_optimizer_and_loop_values_refused(tmp_path, where, value):
    path = tmp_path / "ck.h5"
    checkpoint.save(path, _set(_training_state(), where, value))  # save itself does not judge
    with pytest.raises(CheckpointError, match=rf"ck\.h5.*{where.split('/')[0]}/.* must be finite"):
        checkpoint.load(path)


@pytest.mark.parametrize("where, value", [
    ("loop/best_loss", np.float64(np.inf)),          # no finite validation loss yet
    ("loop/last_valid/loss", np.float64(np.nan)),   # a diverged validation, as measured
    ("loop/last_valid/best_loss", np.float64(np.inf)),
    ("history/loss", np.array([np.nan, np.inf, 1.0, 0.5])),
    ("params/W", np.full((3, 2), np.inf)),
    ("loop/best_params", None),
    ("optimizer/cg_x", np.zeros(0)),
])
def test_legitimate_non_finite_values_load(tmp_path, where, value):
    path = tmp_path / "ck.h5"
    state = _set(_training_state(), where, value)
    checkpoint.save(path, state)
    _assert_same(checkpoint.load(path), state)
