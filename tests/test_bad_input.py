"""Bad input and faults that used to pass silently or with a misleading message.

Each test gives one mistake a user makes and checks that ``hf`` refuses it with
an error naming the argument (or dataset) and the bad value, before anything is
trained or written.
"""

import logging
import os
import re
import stat
import subprocess
import sys
import time
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
import hf.first_order as downhill
from hf import checkpoint as ckpt

from . import models


def _softmax_data(n=8, seed=0):
    m = models.mlp("softmax", n=n, seed=seed)
    return m, [a.copy() for a in m.data]


# --------------------------------------------------------------------------- labels


@pytest.mark.parametrize("label", [-1, 7])
def test_label_out_of_range_is_refused_by_hf(label):
    m, (X, Y) = _softmax_data()
    Y[3] = label
    before = models.flat_values(m.params)
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs)
    with pytest.raises(ValueError, match=rf"dataset 'train'.*y \(8,\) int32.*{label}.*label ranges"):
        opt.train([X, Y], max_updates=1)
    np.testing.assert_array_equal(models.flat_values(m.params), before)


def test_negative_label_is_refused_by_first_order():
    m, (X, Y) = _softmax_data()
    Y[5] = -1
    opt = downhill.build("adam", m.cost, params=m.params, inputs=m.inputs)
    with pytest.raises(ValueError, match=r"'y' holds -1 at index 5.*as an index") as err:
        opt.train(hf.Dataset([X, Y], name="labels", batch_size=len(X)), max_updates=1)
    assert "dataset 'labels'" in str(err.value)


def test_negative_label_inside_a_scan_is_refused():
    # Per-step labels (T, batch) indexed inside the scan's step function.
    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.normal(size=(2, 3)), name="W")
    x, y = pt.tensor3("x"), pt.imatrix("y")

    s = pt.tensordot(x, W, axes=1)  # (T, batch, classes)

    def step(s_t, y_t):
        return -pt.special.log_softmax(s_t, axis=1)[pt.arange(y_t.shape[0]), y_t]

    nll = pytensor.scan(step, sequences=[s, y], return_updates=False)
    cost = nll.sum(axis=0).mean()
    X = rng.normal(size=(4, 6, 2))
    Y = rng.integers(0, 3, size=(4, 6)).astype("int32")
    Y[2, 1] = -1
    opt = hf.HFOptimizer(cost, s, [W], [x, y])
    with pytest.raises(ValueError, match=r"'y' holds -1 at index \(2, 1\)"):
        opt.train(hf.Dataset([X, Y], axis=1, batch_size=6, name="seq"), max_updates=1)


# --------------------------------------------------------------------------- checkpoint path shared by two runs


def _lsq(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(20, 3))
    Y = X @ rng.normal(size=3) + 0.1 * rng.normal(size=20)
    w = pytensor.shared(np.zeros(3), name="w")
    x, y = pt.matrix("x"), pt.vector("y")
    s = x @ w
    cost = 0.5 * pt.mean((s - y) ** 2)
    return hf.HFOptimizer(cost, s, [w], [x, y], damping=0.1), [X, Y]


def test_two_live_runs_cannot_share_a_checkpoint(tmp_path):
    path = str(tmp_path / "run.h5")
    first, data = _lsq()
    second, _ = _lsq()
    run = first.iterate(data, checkpoint=path, max_updates=3)
    next(run)
    written = open(path, "rb").read()
    with pytest.raises(ValueError, match=r"checkpoint=.*run\.h5.*held by another run.*process %d" % os.getpid()):
        second.iterate(data, checkpoint=path, max_updates=3)
    assert open(path, "rb").read() == written  # the first run's file is untouched
    for _ in run:  # the first run goes on and ends, which frees the path
        pass
    assert not os.path.exists(path + ".lock")
    second.train(data, checkpoint=path, max_updates=4)  # now it resumes the first run's file
    assert second.updates == 4


def test_checkpoint_locked_by_another_process(tmp_path):
    path = str(tmp_path / "run.h5")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(path + ".lock", "w") as f:
            f.write(f"{holder.pid} other-run\n")
        opt, data = _lsq()
        with pytest.raises(ValueError, match=rf"held by another run \(process {holder.pid}"):
            opt.train(data, checkpoint=path, max_updates=1)
        assert not os.path.exists(path)
    finally:
        holder.kill()
        holder.wait()
    # The holder is gone: its lock is stale and is taken over.
    opt.train(data, checkpoint=path, max_updates=1)
    assert os.path.exists(path) and not os.path.exists(path + ".lock")


def test_checkpoint_lock_of_a_zombie_or_a_process_ending_is_taken_over(tmp_path):
    """A holder that has ended but is not reaped (a zombie, as the ranks of an aborted MPI job can
    stay), or that ends within the grace period, does not hold the checkpoint."""
    path = str(tmp_path / "run.h5")
    opt, data = _lsq()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while open(f"/proc/{zombie.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with open(path + ".lock", "w") as f:
            f.write(f"{zombie.pid} other-run\n")
        opt.train(data, checkpoint=path, max_updates=1)  # not refused
        assert os.path.exists(path) and not os.path.exists(path + ".lock")
    finally:
        zombie.wait()
    ending = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1)"])
    try:
        with open(path + ".lock", "w") as f:
            f.write(f"{ending.pid} other-run\n")
        opt.train(data, checkpoint=path, max_updates=2)  # waits for it to end, then takes the lock
    finally:
        ending.kill()
        ending.wait()


# --------------------------------------------------------------------------- graphs hf cannot train


def test_vector_cost_is_named_before_pytensor_grad():
    m = models.mlp("squared")
    per_example = 0.5 * pt.sum((m.s - m.inputs[1]) ** 2, axis=1)
    with pytest.raises(ValueError, match=r"HFOptimizer: cost must be a scalar.*ndim 1.*\.mean\(\)"):
        hf.HFOptimizer(per_example, m.s, m.params, m.inputs)


def test_loss_not_convex_in_s_is_refused():
    m = models.mlp("squared", n=20)
    p = pt.special.softmax(m.s, axis=1)
    cost = 0.5 * pt.mean(pt.sum((p - m.inputs[1]) ** 2, axis=1))
    opt = hf.HFOptimizer(cost, m.s, m.params, m.inputs)
    before = models.flat_values(m.params)
    with pytest.raises(ValueError, match=r"not convex in s.*dataset 'train'.*eigenvalue ≤ -\d"):
        opt.train(m.data, max_updates=1)
    np.testing.assert_array_equal(models.flat_values(m.params), before)


def test_convex_losses_pass_the_convexity_check():
    for loss in ("softmax", "logistic", "squared"):
        m = models.mlp(loss, n=6)
        opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs)
        opt.train(m.data, max_updates=1)
        assert opt.updates == 1


def test_convex_loss_coupling_time_steps_passes_the_convexity_check():
    # (s_t - 2 s_{t+1})²: convex, but its Hessian's row sums are negative.
    rng = np.random.default_rng(0)
    w = pytensor.shared(np.array([0.5, -0.3]), name="w")
    x = pt.tensor3("x")  # (T, batch, 2)
    s = pt.tensordot(x, w, axes=1)  # (T, batch)
    cost = pt.mean(pt.sum((s[:-1] - 2 * s[1:]) ** 2, axis=0))
    opt = hf.HFOptimizer(cost, s, [w], [x])
    opt.train(hf.Dataset([rng.normal(size=(5, 4, 2))], axis=1, batch_size=4), max_updates=1)
    assert opt.updates == 1


# --------------------------------------------------------------------------- resuming


def test_resume_says_which_options_apply(tmp_path, caplog):
    path = str(tmp_path / "run.h5")
    opt, data = _lsq()
    opt.train(data, checkpoint=path, max_updates=2)
    saved_damping = opt.damping
    w = opt.params[0]
    again = hf.HFOptimizer(opt.cost, opt.s, [w], opt.inputs, damping=0.5, max_cg_iters=7)
    with caplog.at_level(logging.INFO, logger="hf"), \
            pytest.warns(UserWarning, match=r"damping=0\.5 is overridden by the checkpoint's damping") as rec:
        again.train(data, checkpoint=path, max_updates=3)
    message = str(rec[0].message)
    assert "max_cg_iters=7 applies (the checkpoint's run used 250)" in message
    assert f"{saved_damping:.6g}" in message
    assert "resumed from" in caplog.text


def test_resume_with_the_same_options_does_not_warn(tmp_path):
    path = str(tmp_path / "run.h5")
    opt, data = _lsq()
    run = opt.iterate(data, checkpoint=path, max_updates=3)
    next(run)  # one update, then the run is dropped (as a killed run would be)
    run.close()
    again = hf.HFOptimizer(opt.cost, opt.s, opt.params, opt.inputs, damping=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again.train(data, checkpoint=path, max_updates=3)
    assert again.updates == 3


# --------------------------------------------------------------------------- read-only checkpoints


def test_read_only_checkpoint_is_neither_replaced_nor_chmodded(tmp_path):
    path = str(tmp_path / "run.h5")
    opt, data = _lsq()
    opt.train(data, checkpoint=path, max_updates=1)
    os.chmod(path, 0o444)
    content = open(path, "rb").read()
    again, _ = _lsq()
    with pytest.raises(PermissionError, match=r"checkpoint .*run\.h5.* is read-only \(mode 0o444\)") as err:
        again.train(data, checkpoint=path, max_updates=3)
    assert isinstance(err.value, ValueError)  # a CheckpointError too
    with pytest.raises(PermissionError, match="read-only"):
        ckpt.save(path, {"a": 1})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert open(path, "rb").read() == content
    assert again.updates == 0


def test_overwriting_keeps_the_checkpoint_mode(tmp_path):
    path = str(tmp_path / "run.h5")
    ckpt.save(path, {"a": 1})
    os.chmod(path, 0o640)
    ckpt.save(path, {"a": 2})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert ckpt.load(path)["a"] == 2


# --------------------------------------------------------------------------- structural damping mask


def test_structural_damping_mask_of_wrong_ndim_is_refused():
    m = models.rnn(masked=True)
    with pytest.raises(ValueError, match=r"StructuralDamping: mask must have .*ndim 1"):
        hf.StructuralDamping(m.a, mask=m.mask[0])


def test_structural_damping_mask_of_wrong_static_shape_is_refused():
    m = models.rnn(masked=True)
    a = pt.specify_shape(m.a, (4, 3, 3))
    with pytest.raises(ValueError, match=r"StructuralDamping: mask has shape \(3, 4\).*\(4, 3\)"):
        hf.StructuralDamping(a, mask=pt.constant(np.ones((3, 4))))


def test_transposed_structural_damping_mask_is_named_not_the_data():
    m = models.rnn(T=4, n=3, masked=True)
    sd = hf.StructuralDamping(m.a, mask=m.mask.T)
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, structural_damping=sd, cg_fraction=1.0)
    with pytest.raises(ValueError, match=r"structural_damping: mask has shape \(3, 4\) on .*dataset 'train'.*"
                                         r"preactivation.*\(4, 3, 3\).*\(4, 3\)") as err:
        opt.train(hf.Dataset(m.data, axis=1, batch_size=3, name="train"), max_updates=1)
    assert "Check that the data" not in str(err.value)


# --------------------------------------------------------------------------- what a newcomer meets


def test_time_major_list_error_names_the_axis():
    m = models.rnn(T=6, n=4)
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs)
    with pytest.raises(ValueError, match=r"mean along axis 1.*axis 0 of a list.*hf\.Dataset\(\[X, Y\], axis=1"):
        opt.train(m.data, max_updates=1)


def test_progress_bar_ends_on_one_loss(capsys):
    m, data = _softmax_data()
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, damping=10.0)  # the loss falls slowly
    opt.train(data, max_updates=3, progress="bar", callback=lambda *_: time.sleep(0.12))
    lines = [l for l in re.split(r"[\r\n]", capsys.readouterr().err) if "3/3" in l]
    assert lines, "no final progress line"
    assert len({re.search(r"loss=(\S+)", l).group(1) for l in lines}) == 1, lines


def test_first_order_update_line_comes_before_its_validation(capsys):
    m, (X, Y) = _softmax_data()
    opt = downhill.build("adam", m.cost, params=m.params, inputs=m.inputs)
    opt.train([X, Y], [X, Y], max_updates=2, validate_every=2)
    out = capsys.readouterr().out.splitlines()
    update = next(i for i, l in enumerate(out) if l.startswith("Adam 2 "))
    validation = next(i for i, l in enumerate(out) if l.startswith("validation after update 2"))
    assert update < validation, out
