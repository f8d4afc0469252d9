"""Training loop, checkpoints and bad input, through HFOptimizer."""

import json
import pathlib
import re
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
from hf._compile import function

from .subprocesses import finish, wait_for

SCRIPT = pathlib.Path(__file__).with_name("train_script.py")


def _default_sigint():
    # A shell starts a background job (`make test &`) with SIGINT ignored, children inherit that,
    # and Python then installs no KeyboardInterrupt handler: give the script an interactive setup.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_script(args, **kw):
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=_default_sigint, **kw,
    )


@pytest.fixture
def interactive_sigint():
    """Python's own SIGINT handler for the test, whatever the test run inherited (see _default_sigint)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def params_of(npz):
    with np.load(npz) as f:
        return [f[f"arr_{i}"] for i in range(3)], int(f["updates"])


def test_sigkill_at_any_moment_resumes_bit_identically(tmp_path):
    n = 8
    ref = run_script([tmp_path / "ref.h5", tmp_path / "ref.npz", n])
    out, _ = ref.communicate(timeout=300)
    assert ref.returncode == 0, out
    expected, updates = params_of(tmp_path / "ref.npz")
    assert updates == n

    ck = tmp_path / "run.h5"
    kills = 0
    # Kill twice right after an update, twice in the middle of a checkpoint write.
    for marker, extra in [("update 2", []), ("SAVING", ["--slow-save"]), ("update 5", []),
                          ("SAVING", ["--slow-save"])]:
        proc = run_script([ck, tmp_path / "run.npz", n, *extra])
        if wait_for(proc, marker, 120, line_start=True)[0] is not None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
        proc.stdout.close()
        assert ck.exists()  # a complete checkpoint is always there after the first write
    assert kills == 4
    assert not (tmp_path / "run.npz").exists()
    proc = run_script([ck, tmp_path / "run.npz", n])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    got, updates = params_of(tmp_path / "run.npz")
    assert updates == n
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_ctrl_c_ends_cleanly_with_best_params_and_checkpoint(tmp_path):
    ck = tmp_path / "run.h5"
    proc = run_script([ck, tmp_path / "out.npz", 100000])
    seen, out = wait_for(proc, "update 3", 120, line_start=True)
    assert seen is not None, out
    proc.send_signal(signal.SIGINT)
    rc, out, _ = finish(proc, 120)
    assert rc == 0, out
    assert "DONE" in out
    state = hf.checkpoint.load(ck)
    got, updates = params_of(tmp_path / "out.npz")
    assert 3 <= updates < 100000 and state["loop"]["updates"] == updates
    # The model holds the best parameters; the checkpoint holds them too.
    best = state["loop"]["best_params"]
    for g, name in zip(got, ["W", "b", "V"]):
        np.testing.assert_array_equal(g, best[name])


class _InterruptsWhenCollected:
    """Sends this process a SIGINT from its finalizer: a Ctrl-C that the garbage
    collector's timing lands inside a ``__del__``, where Python ignores an exception."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def test_ctrl_c_inside_a_finalizer_between_updates_still_stops_train(interactive_sigint):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    seen = []

    def callback(tm, vm):
        seen.append(tm["update"])
        if tm["update"] == 3:
            _InterruptsWhenCollected()  # collected at once: the SIGINT arrives inside __del__

    tm, _ = opt.train(data, max_updates=50, patience=100, callback=callback)
    assert seen == [1, 2, 3] and opt.updates == 3 and tm["update"] == 3
    for p, best in zip(params, opt.best_params):
        np.testing.assert_array_equal(p.get_value(), best)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_a_callback_at_once(interactive_sigint):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    finished = []

    def callback(tm, vm):
        if tm["update"] == 2:
            signal.raise_signal(signal.SIGINT)  # the first asks to stop before update 3 ...
            signal.raise_signal(signal.SIGINT)  # ... the second ends the callback here
            finished.append(tm["update"])

    tm, _ = opt.train(data, max_updates=50, patience=100, callback=callback)
    assert finished == [] and opt.updates == 2 and tm["update"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_iterate_leaves_ctrl_c_to_the_code_between_updates(interactive_sigint):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    for tm, _ in opt.iterate(data, max_updates=2):
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert opt.updates == 2


def small_model(dtype="float64"):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)).astype(dtype)
    y = (X @ np.array([1.0, -2.0, 0.5]) + 0.3).astype(dtype)
    w = pytensor.shared(np.zeros(3, dtype=dtype), name="w")
    b = pytensor.shared(np.asarray(0.0, dtype=dtype), name="b")
    x, t = pt.matrix("x", dtype=dtype), pt.vector("t", dtype=dtype)
    s = x @ w + b
    cost = 0.5 * pt.mean((s - t) ** 2)
    return cost, s, [w, b], [x, t], [X, y]


def test_corrupt_or_mismatched_checkpoint_is_reported_and_kept(tmp_path):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not an hdf5 file at all" * 10)
    before = bad.read_bytes()
    with pytest.raises(hf.checkpoint.CheckpointError, match="bad.h5"):
        opt.train(data, max_updates=2, checkpoint=bad)
    assert bad.read_bytes() == before

    # A checkpoint of a different model: names and shapes are named in the error.
    other = tmp_path / "other.h5"
    w2 = pytensor.shared(np.zeros(4), name="w")
    c2 = pytensor.shared(np.zeros(2), name="c")
    x2 = pt.matrix("x")
    s2 = x2 @ w2 + c2.sum()
    hf.HFOptimizer(0.5 * pt.mean(s2**2), s2, [w2, c2], [x2]).save_checkpoint(other)
    before = other.read_bytes()
    with pytest.raises(hf.checkpoint.CheckpointError, match=r"'w'.*\(4,\).*\(3,\)|missing.*'b'"):
        opt.train(data, max_updates=2, checkpoint=other)
    assert other.read_bytes() == before


def test_checkpoint_opens_in_plain_h5py(tmp_path):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    opt.train(data, max_updates=2, checkpoint=tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "r") as f:
        np.testing.assert_array_equal(f["params/w"][()], params[0].get_value())
        assert "format_version" in f.attrs
        assert f["optimizer/damping"][()] > 0
        assert f["loop/updates"][()] == 2
        rows = json.loads(f["history"][()])  # one JSON row per update, types kept
    assert [r["update"] for r in rows] == [1, 2]
    assert rows == [dict(r) for r in opt.history]
    assert isinstance(rows[0]["cg_status"], str) and isinstance(rows[0]["accepted"], bool)


def test_best_loss_float32_with_min_improvement():
    """A float32 loss compared with the best loss keeps working (numpy 2 promotion)."""
    cost, s, params, inputs, data = small_model("float32")
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=1e-2, cg_fraction=1.0)
    losses = []
    for tm, vm in opt.iterate(data, data, max_updates=6, min_improvement=0.01, patience=100):
        losses.append(vm["loss"])
    assert isinstance(opt.best_loss, np.float64) and np.isfinite(opt.best_loss)
    # The best loss is the lowest validation loss that beat the previous best by 1%.
    best = np.inf
    for v in losses:
        if not np.isfinite(best) or best - v > 0.01 * abs(best):
            best = v
    assert opt.best_loss == pytest.approx(best, rel=1e-6)


def test_patience_stops_and_restores_best():
    cost, s, params, inputs, data = small_model()
    X, y = data
    # Validation data from a different target: training overfits it after a point.
    valid = [X, (X @ np.array([0.2, 0.0, 0.0])).astype(X.dtype)]
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    snapshots, vlosses = [], []
    for tm, vm in opt.iterate(data, valid, max_updates=50, patience=2):
        snapshots.append([p.get_value() for p in params])
        vlosses.append(vm["loss"])
    assert len(vlosses) < 50
    opt.set_params()
    best = int(np.argmin(vlosses))
    for p, v in zip(params, snapshots[best]):
        np.testing.assert_array_equal(p.get_value(), v)
    evaluate = function(inputs, cost)
    assert float(evaluate(*valid)) == pytest.approx(min(vlosses), rel=1e-12)


def test_bad_data_gives_clear_errors():
    cost, s, params, inputs, data = small_model()
    X, y = data
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with pytest.raises(ValueError, match="expects 2|2 inputs|count|number"):
        opt.train([X], max_updates=1)
    with pytest.raises(ValueError, match="ndim|dimensions"):
        opt.train([X[:, :, None], y], max_updates=1)
    with pytest.raises(TypeError, match="dtype"):
        opt.train([X.astype("float32"), y], max_updates=1)
    with pytest.raises(ValueError, match="length|examples"):
        opt.train([X, y[:-1]], max_updates=1)
    with pytest.raises(ValueError, match="empty|zero|no examples"):
        opt.train([X[:0], y[:0]], max_updates=1)
    # Nothing was changed by the failed runs.
    np.testing.assert_array_equal(params[0].get_value(), np.zeros(3))
    Xn = X.copy()
    Xn[25, 1] = np.nan
    with pytest.raises(ValueError, match=r"batch 1 \(examples 20:40\).*NaN"):
        opt.train(hf.Dataset([Xn, y], batch_size=20, rng=0), max_updates=4)
    # Updates on the clean batches before the bad one are kept in the model.
    assert opt.updates >= 1
    assert np.all(np.isfinite(params[0].get_value())) and np.any(params[0].get_value() != 0)


def test_names_with_slashes_checkpoint_and_resume(tmp_path):
    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.normal(size=(3, 2)), name="enc/W")
    b = pytensor.shared(np.zeros(2), name="enc/b%")
    x, t = pt.matrix("x"), pt.matrix("t")
    s = x @ W + b
    cost = 0.5 * pt.mean(pt.sum((s - t) ** 2, axis=1))
    X, T = rng.normal(size=(20, 3)), rng.normal(size=(20, 2))
    opt = hf.HFOptimizer(cost, s, [W, b], [x, t], monitors={"err/abs": pt.mean(abs(s - t))})
    opt.train([X, T], max_updates=2, checkpoint=tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert "enc%2FW" in f["params"] and "err/abs" in json.loads(f["history"][()])[0]
    W2 = pytensor.shared(np.zeros((3, 2)), name="enc/W")
    b2 = pytensor.shared(np.zeros(2), name="enc/b%")
    s2 = x @ W2 + b2
    opt2 = hf.HFOptimizer(0.5 * pt.mean(pt.sum((s2 - t) ** 2, axis=1)), s2, [W2, b2], [x, t],
                          monitors={"err/abs": pt.mean(abs(s2 - t))})
    opt2.resume(tmp_path / "c.h5")
    np.testing.assert_array_equal(W2.get_value(), W.get_value())
    assert opt2.history[-1]["err/abs"] == pytest.approx(opt.history[-1]["err/abs"])


def test_finished_run_is_not_extended_on_rerun(tmp_path):
    cost, s, params, inputs, data = small_model()
    X, y = data
    valid = [X, (X @ np.array([0.2, 0.0, 0.0])).astype(X.dtype)]
    ck = tmp_path / "c.h5"
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    opt.train(data, valid, max_updates=50, patience=1, checkpoint=ck)
    done = opt.updates
    assert done < 50
    again = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    again.train(data, valid, max_updates=50, patience=1, checkpoint=ck)
    assert again.updates == done


def test_failed_resume_leaves_model_and_data_untouched(tmp_path):
    cost, s, params, inputs, data = small_model()
    ck = tmp_path / "c.h5"
    opt = hf.HFOptimizer(cost, s, params, inputs)
    opt.train(hf.Dataset(data, batch_size=10, rng=0), max_updates=2, checkpoint=ck)
    for p in params:
        p.set_value(np.zeros_like(p.get_value()))
    fresh = hf.HFOptimizer(cost, s, params, inputs)
    other = hf.Dataset(data, batch_size=20, rng=0)  # batch size differs from the checkpoint's
    before = other.state_dict()
    with pytest.raises(hf.checkpoint.CheckpointError, match="batch_size"):
        fresh.train(other, max_updates=4, checkpoint=ck)
    assert fresh.updates == 0 and fresh.damping == 1.0
    np.testing.assert_array_equal(params[0].get_value(), np.zeros(3))
    assert other.state_dict()["cursor"] == before["cursor"]


def test_inputs_and_data_mismatches_named():
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with pytest.raises(ValueError, match="train is None"):
        opt.train()
    with pytest.raises(ValueError, match=r"HFOptimizer: inputs\[2\].*not used"):
        hf.HFOptimizer(cost, s, params, inputs + [pt.matrix("unused")])
    with pytest.raises(TypeError, match=r"HFOptimizer: inputs\[1\] must be a symbolic input variable"):
        hf.HFOptimizer(cost, s, params, [inputs[0], params[0]] + inputs[2:])
    with pytest.raises(TypeError, match="line_search"):
        hf.HFOptimizer(cost, s, params, inputs, line_search="yes")
    with pytest.raises(TypeError, match="cg_decay"):
        hf.HFOptimizer(cost, s, params, inputs, cg_decay=None)


# --------------------------------------------------------------------------- silent surprises


def overfitting_valid(X):
    """Validation targets from other weights: training overfits them after a few updates."""
    return [X, (X @ np.array([0.2, 0.0, 0.0])).astype(X.dtype)]


def test_checkpoint_and_model_agree_on_the_parameters_after_train(tmp_path):
    cost, s, params, inputs, data = small_model()
    valid = overfitting_valid(data[0])
    ck = tmp_path / "run.h5"
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    last = []
    opt.train(data, valid, max_updates=50, patience=2, checkpoint=ck,
              callback=lambda tm, vm: last.__setitem__(slice(None), [p.get_value() for p in params]))
    in_memory = [p.get_value() for p in params]
    evaluate = function(inputs, cost)
    assert not np.array_equal(in_memory[0], last[0])  # the best is not the last here
    # A fresh model loading the file gets what train() left in memory: the best.
    w2 = pytensor.shared(np.full(3, 7.0), name="w")
    b2 = pytensor.shared(np.asarray(7.0), name="b")
    x, t = inputs
    s2 = x @ w2 + b2
    fresh = hf.HFOptimizer(0.5 * pt.mean((s2 - t) ** 2), s2, [w2, b2], inputs)
    fresh.load_params(ck)
    np.testing.assert_array_equal(w2.get_value(), in_memory[0])
    assert float(function(inputs, 0.5 * pt.mean((s2 - t) ** 2))(*valid)) == pytest.approx(
        float(evaluate(*valid)), rel=1e-15)
    fresh.load_params(ck, which="last")
    np.testing.assert_array_equal(w2.get_value(), last[0])
    with pytest.raises(ValueError, match="which"):
        fresh.load_params(ck, which="newest")


def test_a_second_optimizer_cannot_make_the_first_restore_stale_parameters():
    cost, s, params, inputs, data = small_model()
    evaluate = function(inputs, cost)
    a = hf.HFOptimizer(cost, s, params, inputs, damping=100.0, max_cg_iters=2)
    a.train(data, max_updates=3)
    after_a = float(evaluate(*data))
    b = hf.HFOptimizer(cost, s, params, inputs, damping=1e-3)
    b.train(data, max_updates=5)
    after_b = float(evaluate(*data))
    assert after_b < 0.5 * after_a
    # A runs again: a new call with its own updates and its own best, never A's old one.
    tm, vm = a.train(data, max_updates=1)
    assert tm["update"] == 4 and a.call_updates == 1
    assert float(evaluate(*data)) <= after_b


def test_max_updates_counts_the_updates_of_each_call():
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    first = [tm["update"] for tm, _ in opt.iterate(data, max_updates=5, patience=100)]
    second = [tm["update"] for tm, _ in opt.iterate(data, max_updates=5, patience=100)]
    assert first == [1, 2, 3, 4, 5] and second == [6, 7, 8, 9, 10]
    assert opt.updates == 10 and len(opt.history) == 10


def test_validation_before_the_first_update():
    cost, s, params, inputs, data = small_model()
    valid = overfitting_valid(data[0])
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    initial = float(function(inputs, cost)(*valid))  # w = 0, b = 0
    seen = []
    for tm, vm in opt.iterate(data, valid, max_updates=2, validate_every=2, patience=10):
        seen.append(dict(vm))
    # Update 1 carries the validation of the initial parameters, update 2 a new one.
    assert seen[0]["loss"] == pytest.approx(initial, rel=1e-12)
    assert seen[1]["loss"] != seen[0]["loss"]
    assert "valid_loss" in opt.history[1] and "valid_loss" not in opt.history[0]


def test_a_cost_that_sums_over_examples_is_refused():
    cost, s, params, inputs, data = small_model()
    x, t = inputs
    summed = 0.5 * pt.sum((s - t) ** 2)
    opt = hf.HFOptimizer(summed, s, params, inputs, chunk_size=10)
    with pytest.raises(ValueError, match="mean over the examples.*dataset 'train'.*40 examples") as err:
        opt.train(data, max_updates=1)
    # a sum over the batch is twice the size-weighted mean of its halves' sums
    ratio = float(re.search(r"ratio ([0-9.]+);", str(err.value)).group(1))
    assert ratio == pytest.approx(2.0, rel=0.01) and "gives about 2)" in str(err.value)
    assert opt.updates == 0
    np.testing.assert_array_equal(params[0].get_value(), np.zeros(3))
    # The mean of the same thing, chunked, is accepted and equals the unchunked run.
    mean = hf.HFOptimizer(cost, s, params, inputs, chunk_size=7)
    mean.train(data, max_updates=2)


def test_a_checkpoint_directory_that_does_not_exist_is_reported_before_training(tmp_path):
    cost, s, params, inputs, data = small_model()
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        opt.train(data, max_updates=3, checkpoint=tmp_path / "missing" / "run.h5")
    assert opt.updates == 0
    np.testing.assert_array_equal(params[0].get_value(), np.zeros(3))


def test_history_keeps_types_and_validation_across_a_resume(tmp_path):
    cost, s, params, inputs, data = small_model()
    valid = overfitting_valid(data[0])
    ck = tmp_path / "run.h5"
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)
    opt.train(data, valid, max_updates=3, patience=100, checkpoint=ck)
    other = hf.HFOptimizer(cost, s, params, inputs, damping=10.0)  # the run's own options: no warning
    other.resume(ck)
    assert other.history == opt.history
    for before, after in zip(opt.history, other.history):
        assert [type(v) for v in before.values()] == [type(v) for v in after.values()]
    row = other.history[-1]
    assert isinstance(row["cg_status"], str) and isinstance(row["accepted"], bool)
    assert isinstance(row["update"], int) and "valid_loss" in row and "valid_best_loss" in row


def test_wrong_data_is_named_at_the_boundary():
    cost, s, params, inputs, data = small_model()
    X, y = data
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with pytest.raises(ValueError, match=r"dataset 'train'.*x \(40, 4\)"):
        opt.train([np.hstack([X, X[:, :1]]), y], max_updates=1)
    with pytest.raises(ValueError, match=r"dataset 'valid'.*x \(40, 2\)"):
        opt.train(data, [X[:, :2], y], max_updates=1)
    with pytest.raises(ValueError, match=r"dataset 'train'.*x \(10, 5\)"):
        opt.train(hf.Dataset(lambda: [np.ones((10, 5)), np.ones(10)], name="train"), max_updates=1)
    np.testing.assert_array_equal(params[0].get_value(), np.zeros(3))
    with pytest.raises(ValueError, match=r"parameter 0 \('w'\) has shape \(3,\).*\(4,\)"):
        opt.set_params([np.zeros(4), np.asarray(0.0)])
    with pytest.raises(ValueError, match=r"v must be a flat vector of the 4 parameter values.*\(3,\)"):
        opt.gv(np.zeros(3), hf.Batch(tuple(data), (0, 0)))
    with pytest.raises(TypeError, match=r"batch must be an hf.Batch.*list"):
        opt.step([X, y])


def test_labels_out_of_range_are_named():
    x, y = pt.matrix("x"), pt.ivector("y")
    W = pytensor.shared(np.zeros((3, 4)), name="W")
    s = x @ W
    cost = -pt.mean(pt.log(pt.special.softmax(s, axis=1))[pt.arange(y.shape[0]), y])
    opt = hf.HFOptimizer(cost, s, [W], [x, y])
    X = np.ones((6, 3))
    with pytest.raises(ValueError, match=r"dataset 'train'.*y \(6,\) int32.*IndexError"):
        opt.train([X, np.array([0, 1, 2, 3, 4, 9], dtype="int32")], max_updates=1)


def test_a_parameter_the_cost_does_not_use_is_named():
    cost, s, params, inputs, data = small_model()
    stray = pytensor.shared(np.zeros(2), name="stray")
    with pytest.raises(ValueError, match="'stray'"):
        hf.HFOptimizer(cost, s, params + [stray], inputs)


def test_hf_stops_on_a_non_finite_loss_like_first_order():
    cost, s, params, inputs, data = small_model()
    X, y = data
    opt = hf.HFOptimizer(cost, s, params, inputs)
    opt.train(data, max_updates=1)
    before = [p.get_value() for p in params]
    bad = [X, np.full_like(y, 1e308)]  # finite data whose loss overflows to inf
    with pytest.raises(FloatingPointError, match="not finite"):
        opt.train(bad, max_updates=1)
    for p, v in zip(params, before):
        np.testing.assert_array_equal(p.get_value(), v)
