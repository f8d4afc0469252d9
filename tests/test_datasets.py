"""Tests of hf.datasets: the pathological RNN problems [MS11] and the digits loader.

References are computed here from the inputs alone (reading the marked values,
the special symbols, the pattern), never from the generators' internals, and
the documented windows are written out as numbers.
"""
import sys

import h5py
import numpy as np
import pytest

import hf.datasets as ds
from hf.datasets import SequenceTask

N = 400


def _generate(name, n, T, **kw):
    return ds.make_task(name, n, T, **kw)


ALL_TASKS = [
    ("addition", {}),
    ("multiplication", {}),
    ("xor", {}),
    ("temporal_order", {"bits": 2}),
    ("temporal_order", {"bits": 3}),
    ("random_permutation", {}),
    ("random_permutation", {"predict_all": True}),
    ("memorization", {"bits": 5}),
    ("memorization", {"bits": 20}),
    ("memorization", {"bits": 20, "predict_blanks": True}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ALL_TASKS]


def _oracle(task):
    """Correct predictions computed from the inputs by hand, per problem."""
    x, n = task.inputs, task.n_sequences
    cols = np.arange(n)
    last = task.lengths - 1
    if task.name in ("addition", "multiplication", "xor"):
        marked = x[..., 1] == 1
        assert np.all(marked.sum(axis=0) == 2)
        t1 = np.argmax(marked, axis=0)
        t2 = task.T_total - 1 - np.argmax(marked[::-1], axis=0)
        a, b = x[t1, cols, 0], x[t2, cols, 0]
        value = {"addition": a + b, "multiplication": a * b,
                 "xor": (a != b).astype(float)}[task.name]
        return value[:, None]
    if task.name == "temporal_order":
        sym = np.argmax(x, axis=-1)
        special = (sym == 4) | (sym == 5)
        label = np.zeros(n, dtype=int)
        for j in range(n):
            for s in sym[special[:, j], j]:  # in time order
                label[j] = 2 * label[j] + (s == 5)
        return np.eye(task.n_out)[label]
    if task.name == "random_permutation":
        first = np.argmax(x[0], axis=-1)
        out = np.zeros((task.T_total, n, task.n_out))
        out[:-1] = x[1:]  # the next symbol, visible in the inputs
        out[last, cols, first] = 1.0
        return out if task.per_step else out[-1]
    if task.name == "memorization":
        L, K = task.params["pattern_length"], task.params["alphabet_size"]
        pattern = np.argmax(x[:L], axis=-1)
        labels = np.full((task.T_total, n), K)
        labels[-L:] = pattern
        return np.eye(K + 1)[labels]
    raise AssertionError(task.name)


def _trivial(task):
    """A predictor that ignores the inputs."""
    n = task.n_sequences
    if task.output == "linear":
        return np.full((n, 1), float(np.mean(task.targets)))
    if task.output == "logistic":
        return np.full((n, 1), 0.5)
    if task.per_step:
        return np.broadcast_to(np.eye(task.n_out)[-1], (task.T_total, n, task.n_out))
    return np.broadcast_to(np.eye(task.n_out)[0], (n, task.n_out))


# ---------------------------------------------------------------------------
# Properties shared by every generator
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_shapes_dtypes_and_masks(name, kw):
    task = _generate(name, 37, 40, seed=3, **kw)
    assert isinstance(task, SequenceTask)
    T_total, n = task.T_total, task.n_sequences
    assert n == 37 == len(task)
    assert task.inputs.shape == (T_total, n, task.n_in)
    assert task.inputs.dtype == np.float64
    for m in (task.mask, task.target_mask, task.score_mask):
        assert m.shape == (T_total, n) and m.dtype == np.float64
        assert set(np.unique(m)) <= {0.0, 1.0}
    assert task.lengths.shape == (n,) and task.lengths.dtype == np.int64
    steps = np.arange(T_total)[:, None]
    np.testing.assert_array_equal(task.mask, steps < task.lengths)
    assert np.all(task.inputs[task.mask == 0] == 0)
    # Scored steps exist, and lie inside the loss mask.
    assert np.all(task.score_mask <= task.target_mask)
    assert np.all(task.target_mask <= task.mask)
    if task.per_step:
        assert task.targets.shape == (T_total, n) and task.targets.dtype == np.int64
    else:
        np.testing.assert_array_equal(task.target_mask, steps == task.lengths - 1)
        if task.output == "softmax":
            assert task.targets.shape == (n,) and task.targets.dtype == np.int64
        else:
            assert task.targets.shape == (n, 1) and task.targets.dtype == np.float64
    if task.output == "softmax":
        assert task.targets.min() >= 0 and task.targets.max() < task.n_out
        # One-hot inputs on every existing step.
        np.testing.assert_array_equal(task.inputs.sum(axis=-1), task.mask)
    assert not task.inputs.flags.writeable


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_determinism_and_seeds(name, kw):
    a = _generate(name, 20, 30, seed=11, **kw)
    b = _generate(name, 20, 30, seed=11, **kw)
    c = _generate(name, 20, 30, seed=12, **kw)
    d = _generate(name, 20, 30, rng=np.random.default_rng(11), **kw)
    for field in ("inputs", "targets", "target_mask", "mask", "lengths"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        np.testing.assert_array_equal(getattr(a, field), getattr(d, field))
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_global_rng_untouched(name, kw):
    state = np.random.get_state()
    _generate(name, 5, 30, **kw)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_oracle_solves_everything_trivial_predictor_does_not(name, kw):
    task = _generate(name, N, 60, seed=5, **kw)
    oracle = _oracle(task)
    assert task.score(oracle) == 1.0
    assert np.all(task.solved(oracle))
    limit = {"linear": 0.2, "logistic": 0.6, "softmax": 0.6}[task.output]
    assert task.score(_trivial(task)) < limit


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_dense_targets_are_the_targets_on_masked_steps(name, kw):
    task = _generate(name, 30, 40, seed=2, **kw)
    dense = task.dense_targets()
    assert dense.shape == (task.T_total, task.n_sequences, task.n_out)
    assert np.all(dense[task.target_mask == 0] == 0)
    # The dense targets themselves solve the task (at the scored steps).
    assert task.score(dense) == 1.0
    if task.output == "softmax":
        np.testing.assert_array_equal(dense.sum(axis=-1), task.target_mask)


# ---------------------------------------------------------------------------
# Addition, multiplication, xor
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["addition", "multiplication", "xor"])
def test_marked_problem_structure(name):
    T, n = 200, 1000
    task = _generate(name, n, T, seed=0)
    x = task.inputs
    assert task.n_in == 2 and task.T_total == 220
    cols = np.arange(n)
    # Lengths uniform on [T, 1.1T]: inside, and both ends reached.
    assert task.lengths.min() == 200 and task.lengths.max() == 220
    marker = x[..., 1]
    plus = marker == 1
    assert np.all(plus.sum(axis=0) == 2)
    t1 = np.argmax(plus, axis=0)
    t2 = task.T_total - 1 - np.argmax(plus[::-1], axis=0)
    # Documented windows at T=200: [2, 20) and [20, 100).
    assert t1.min() >= 2 and t1.max() < 20 and t2.min() >= 20 and t2.max() < 100
    assert t1.min() <= 3 and t1.max() >= 18 and t2.min() <= 22 and t2.max() >= 97
    # -1 at the first and the last step of each sequence, 0 elsewhere.
    minus = marker == -1
    assert np.all(minus[0]) and np.all(minus[task.lengths - 1, cols])
    assert np.all(minus.sum(axis=0) == 2)
    assert np.all((marker == 0) | plus | minus)
    a, b = x[t1, cols, 0], x[t2, cols, 0]
    values = x[..., 0][task.mask == 1]
    if name == "xor":
        assert set(np.unique(values)) == {0.0, 1.0}
        assert abs(values.mean() - 0.5) < 0.01
        np.testing.assert_array_equal(task.targets[:, 0], np.logical_xor(a, b))
    else:
        assert values.min() >= 0 and values.max() < 1
        assert abs(values.mean() - 0.5) < 0.005
        assert abs(values.var() - 1 / 12) < 0.002
        expected = a + b if name == "addition" else a * b
        np.testing.assert_allclose(task.targets[:, 0], expected, rtol=0, atol=1e-15)


def test_marked_windows_scale_with_T():
    assert ds.marker_windows(200) == ((2, 20), (20, 100))
    assert ds.marker_windows(20) == ((1, 2), (2, 10))
    assert ds.marker_windows(1000) == ((10, 100), (100, 500))
    task = ds.addition(300, 20, seed=4, variable_length=False)
    plus = task.inputs[..., 1] == 1
    np.testing.assert_array_equal(np.nonzero(plus[:2].any(axis=1))[0], [1])
    assert np.all(plus[1]) and not plus[10:].any()


def test_fixed_length_option():
    task = ds.addition(50, 40, seed=1, variable_length=False)
    assert task.T_total == 40 and np.all(task.lengths == 40) and np.all(task.mask == 1)
    np.testing.assert_array_equal(task.target_mask[-1], np.ones(50))


def test_linear_tolerance_is_0_04():
    task = ds.addition(100, 50, seed=6)
    y = task.targets
    assert task.score(y + 0.039) == 1.0
    assert task.score(y - 0.039) == 1.0
    assert task.score(y + 0.041) == 0.0
    assert task.score(y + 0.041, tolerance=0.05) == 1.0
    # One sequence off: exactly one unsolved.
    bad = y.copy()
    bad[7] += 1.0
    solved = task.solved(bad)
    assert solved.sum() == 99 and not solved[7]
    # Non-finite predictions never count.
    bad[3] = np.nan
    assert not task.solved(bad)[3]


def test_prediction_forms_are_equivalent():
    task = ds.addition(40, 30, seed=8)
    # (n,), (n, 1) and time-major outputs read at lengths - 1 agree.
    full = np.random.default_rng(0).normal(size=(task.T_total, 40, 1))
    full[task.lengths - 1, np.arange(40)] = task.targets
    assert task.score(full) == 1.0
    assert task.score(task.targets[:, 0]) == 1.0
    np.testing.assert_array_equal(task.final_outputs(full), task.targets)
    with pytest.raises(ValueError, match="shape"):
        task.score(np.zeros((40, 2)))
    with pytest.raises(ValueError, match="shape"):
        task.score(np.zeros(39))


def test_xor_logistic_threshold():
    task = ds.xor(200, 40, seed=9)
    y = task.targets
    assert task.score(0.2 + 0.6 * y) == 1.0  # p = 0.8 for ones, 0.2 for zeros
    assert task.score(1 - y) == 0.0
    assert 0.4 < task.score(np.full((200, 1), 0.5)) < 0.6


# ---------------------------------------------------------------------------
# Temporal order
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits,windows", [
    (2, [(1, 10), (40, 50)]),
    (3, [(1, 10), (30, 40), (50, 60)]),
])
def test_temporal_order_structure(bits, windows):
    T, n = 100, 800
    task = ds.temporal_order(n, T, bits=bits, seed=bits)
    assert ds.temporal_order_windows(T, bits) == tuple(windows)
    assert task.n_in == 8 and task.n_out == 2 ** bits
    assert ds.TEMPORAL_ORDER_SYMBOLS == ("a", "b", "c", "d", "X", "Y", "B", "E")
    sym = np.argmax(task.inputs, axis=-1)
    cols = np.arange(n)
    assert np.all(sym[0] == 7)  # E starts every sequence
    assert np.all(sym[task.lengths - 1, cols] == 6)  # B ends it
    assert np.all((sym == 6).sum(axis=0) == 1) and np.all((sym == 7).sum(axis=0) == 1)
    special = (sym == 4) | (sym == 5)
    assert np.all(special.sum(axis=0) == bits)
    label = np.zeros(n, dtype=int)
    for j in range(n):
        times = np.nonzero(special[:, j])[0]
        for (lo, hi), t in zip(windows, times):
            assert lo <= t < hi
            label[j] = 2 * label[j] + int(sym[t, j] == 5)
    np.testing.assert_array_equal(task.targets, label)
    # Balanced classes.
    counts = np.bincount(task.targets, minlength=2 ** bits)
    assert counts.max() - counts.min() <= 1
    # Distractors uniform on a-d over the existing steps.
    distract = sym[(task.mask == 1) & (sym < 4)]
    freq = np.bincount(distract, minlength=4) / distract.size
    np.testing.assert_allclose(freq, 0.25, atol=0.01)
    # Sequence classes beyond chance need both symbols: knowing only the last
    # one solves half of the 2-bit sequences.
    if bits == 2:
        last_only = np.eye(4)[label % 2]  # first symbol guessed as X
        assert 0.4 < task.score(last_only) < 0.6


def test_class_frequencies_with_small_batches():
    # Over many small calls the classes stay roughly uniform.
    rng = np.random.default_rng(0)
    labels = np.concatenate([ds.temporal_order(3, 30, bits=3, rng=rng).targets for _ in range(400)])
    freq = np.bincount(labels, minlength=8) / labels.size
    np.testing.assert_allclose(freq, 1 / 8, atol=0.03)
    first = [ds.random_permutation(1, 5, n_symbols=3, rng=rng).targets[0] for _ in range(400)]
    assert 0.4 < np.mean(first) < 0.6


# ---------------------------------------------------------------------------
# Random permutation
# ---------------------------------------------------------------------------


def test_random_permutation_structure():
    T, n = 60, 600
    task = ds.random_permutation(n, T, seed=1)
    assert task.n_in == task.n_out == 100 and task.T_total == T
    sym = np.argmax(task.inputs, axis=-1)
    assert set(np.unique(sym[0])) == {0, 1}
    assert sym[1:].min() >= 2 and sym[1:].max() <= 99
    assert len(np.unique(sym[1:])) == 98
    np.testing.assert_array_equal(task.targets, sym[0])
    assert abs(np.mean(sym[0]) - 0.5) <= 1 / n
    # Predicting the current symbol again, or a constant, fails.
    assert task.score(task.inputs[-1]) == 0.0
    assert task.score(np.eye(100)[np.zeros(n, dtype=int)]) == pytest.approx(0.5, abs=0.01)


def test_random_permutation_predict_all_judges_the_last_step_only():
    task = ds.random_permutation(50, 20, n_symbols=10, predict_all=True, seed=3)
    sym = np.argmax(task.inputs, axis=-1)
    assert task.per_step and task.n_out == 10
    np.testing.assert_array_equal(task.targets[:-1], sym[1:])
    np.testing.assert_array_equal(task.targets[-1], sym[0])
    assert np.all(task.target_mask == 1)
    np.testing.assert_array_equal(task.score_mask,
                                  np.broadcast_to(np.arange(20)[:, None] == 19, (20, 50)))
    # Right only at the last step: solved; right everywhere but there: not.
    right_last = np.zeros((20, 50, 10))
    right_last[-1, np.arange(50), sym[0]] = 1
    assert task.score(right_last) == 1.0
    wrong_last = np.eye(10)[task.targets].copy()
    wrong_last[-1] = np.eye(10)[5]
    assert task.score(wrong_last) == 0.0


# ---------------------------------------------------------------------------
# Memorization
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits,L,K", [(5, 5, 2), (20, 10, 4)])
def test_memorization_layout(bits, L, K):
    T, n = 30, 300
    task = ds.memorization(n, T, bits=bits, seed=bits)
    assert task.T_total == 2 * L + T + 1
    assert task.n_in == K + 2 and task.n_out == K + 1
    sym = np.argmax(task.inputs, axis=-1)
    blank, cue = K, K + 1
    assert sym[:L].max() < K
    assert np.all(sym[L:L + T] == blank)
    assert np.all(sym[L + T] == cue)
    assert np.all(sym[L + T + 1:] == blank)
    np.testing.assert_array_equal(task.targets[L + T + 1:], sym[:L])
    assert np.all(task.targets[:L + T + 1] == blank)
    recall = np.zeros((task.T_total, 1))
    recall[L + T + 1:] = 1
    np.testing.assert_array_equal(task.score_mask, np.broadcast_to(recall, (task.T_total, n)))
    np.testing.assert_array_equal(task.target_mask, task.score_mask)
    # Pattern symbols uniform over the alphabet.
    freq = np.bincount(sym[:L].ravel(), minlength=K) / (L * n)
    np.testing.assert_allclose(freq, 1 / K, atol=0.03)


def test_memorization_needs_every_recalled_symbol():
    task = ds.memorization(100, 10, bits=20, seed=0)
    pred = _oracle(task).copy()
    pred[-1, 4] = np.roll(pred[-1, 4], 1)  # one wrong symbol in sequence 4
    solved = task.solved(pred)
    assert not solved[4] and solved.sum() == 99
    # Wrong predictions outside the recall steps do not matter.
    pred = _oracle(task).copy()
    pred[:12] = np.eye(5)[0]
    assert task.score(pred) == 1.0
    with pytest.raises(ValueError, match="shape"):
        task.score(pred[-1])


def test_memorization_predict_blanks_mask():
    task = ds.memorization(10, 5, bits=5, predict_blanks=True, seed=0)
    assert np.all(task.target_mask == 1)
    assert task.score_mask.sum() == 5 * 10


# ---------------------------------------------------------------------------
# Containers, conversions, registry
# ---------------------------------------------------------------------------


def test_astype_and_take():
    task = ds.addition(20, 30, seed=0)
    f32 = task.astype("float32")
    assert f32.inputs.dtype == np.float32 and f32.targets.dtype == np.float32
    assert f32.mask.dtype == np.float32
    sub = task.take([3, 1])
    np.testing.assert_array_equal(sub.inputs, task.inputs[:, [3, 1]])
    np.testing.assert_array_equal(sub.targets, task.targets[[3, 1]])
    np.testing.assert_array_equal(sub.lengths, task.lengths[[3, 1]])
    mem = ds.memorization(8, 4, seed=0).take(slice(2, 5))
    assert mem.targets.shape == (mem.T_total, 3)
    assert ds.temporal_order(4, 30, seed=0, dtype=np.float32).inputs.dtype == np.float32


def test_make_task_registry():
    assert set(ds.TASKS) == {"addition", "multiplication", "xor", "temporal_order",
                             "random_permutation", "memorization"}
    assert ds.make_task("XOR", 3, 20, seed=0).output == "logistic"
    with pytest.raises(ValueError, match="name='adding'"):
        ds.make_task("adding", 3, 20)
    with pytest.raises(TypeError):
        ds.make_task("addition", 3, 20, bits=2)


def test_outputs_match_the_problem():
    expected = {"addition": "linear", "multiplication": "linear", "xor": "logistic",
                "temporal_order": "softmax", "random_permutation": "softmax",
                "memorization": "softmax"}
    for name, output in expected.items():
        assert ds.make_task(name, 2, 20, seed=0).output == output


# ---------------------------------------------------------------------------
# HDF5
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,kw", ALL_TASKS, ids=IDS)
def test_hdf5_round_trip(tmp_path, name, kw):
    task = _generate(name, 9, 25, seed=4, **kw)
    path = tmp_path / "task.h5"
    ds.write_hdf5(task, path)
    back = ds.read_hdf5(str(path))
    for field in ("inputs", "targets", "target_mask", "score_mask", "mask", "lengths"):
        a, b = getattr(task, field), getattr(back, field)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    for field in ("name", "T", "output", "n_out", "per_step", "params"):
        assert getattr(task, field) == getattr(back, field)
    # Plain datasets, examples on the documented axis.
    with h5py.File(path, "r") as f:
        for key in ("inputs", "target_mask", "score_mask", "mask"):
            assert isinstance(f[key], h5py.Dataset)
            assert f[key].attrs["example_axis"] == 1 and f[key].shape[1] == 9
        axis = int(f["targets"].attrs["example_axis"])
        assert f["targets"].shape[axis] == 9
        assert f["lengths"].attrs["example_axis"] == 0
    assert back.score(_oracle(back)) == 1.0


def test_hdf5_into_groups(tmp_path):
    path = tmp_path / "two.h5"
    a = ds.addition(5, 20, seed=0)
    b = ds.temporal_order(6, 20, bits=3, seed=0)
    with h5py.File(path, "w") as f:
        ds.write_hdf5(a, f.create_group("train"), compression="gzip", dense_targets=True)
        ds.write_hdf5(b, f.create_group("test"))
    with h5py.File(path, "r") as f:
        ra, rb = ds.read_hdf5(f["train"]), ds.read_hdf5(f["test"])
        np.testing.assert_array_equal(f["train/dense_targets"][()], a.dense_targets())
        assert f["train/dense_targets"].attrs["example_axis"] == 1
        assert "dense_targets" not in f["test"]
        with pytest.raises(ValueError, match="no SequenceTask"):
            ds.read_hdf5(f)
    np.testing.assert_array_equal(ra.inputs, a.inputs)
    np.testing.assert_array_equal(rb.targets, b.targets)
    assert rb.params["bits"] == 3
    with pytest.raises(TypeError):
        ds.write_hdf5(a.inputs, tmp_path / "x.h5")


# ---------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("call,match", [
    (lambda: ds.addition(0, 100), "n_sequences=0"),
    (lambda: ds.multiplication(-3, 100), "n_sequences=-3"),
    (lambda: ds.xor(10, 19), "T=19"),
    (lambda: ds.addition(10, 5), "T=5"),
    (lambda: ds.temporal_order(10, 10), "T=10"),
    (lambda: ds.temporal_order(10, 100, bits=4), "bits=4"),
    (lambda: ds.memorization(10, 100, bits=10), "bits=10"),
    (lambda: ds.memorization(10, 0), "T=0"),
    (lambda: ds.random_permutation(10, 1), "T=1"),
    (lambda: ds.random_permutation(10, 10, n_symbols=2), "n_symbols=2"),
    (lambda: ds.addition(10, 100, seed=1, rng=np.random.default_rng(1)), "seed=1"),
    (lambda: ds.addition(10, 100, dtype=np.int32), "dtype="),
    (lambda: ds.marker_windows(3), "T=3"),
    (lambda: ds.load_digits(0), "n=0"),
    (lambda: ds.load_digits(1798), "n=1798"),
])
def test_invalid_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call", [
    lambda: ds.addition(2.5, 100),
    lambda: ds.addition(True, 100),
    lambda: ds.temporal_order(10, 100.0),
    lambda: ds.addition(10, 100, rng=123),
    lambda: ds.addition(10, 100, bogus=1),
    lambda: ds.load_digits(3.0),
])
def test_wrong_types_raise_type_error(call):
    with pytest.raises(TypeError):
        call()


# ---------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------


def test_load_digits_all_rows():
    x = ds.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float64
    assert x.min() == 0.0 and x.max() == 1.0
    raw = ds.load_digits(scale=False)
    np.testing.assert_array_equal(raw, x * 16)
    assert set(np.unique(raw)) <= set(range(17))


def test_load_digits_subsets_and_labels():
    x, y = ds.load_digits(100, return_labels=True)
    assert x.shape == (100, 64) and y.shape == (100,) and y.dtype == np.int64
    np.testing.assert_array_equal(x, ds.load_digits()[:100])
    a, ya = ds.load_digits(200, seed=7, return_labels=True)
    b, yb = ds.load_digits(200, seed=7, return_labels=True)
    c = ds.load_digits(200, seed=8)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, ds.load_digits(200))
    # A shuffled row keeps its label: rows are matched against the originals.
    full, labels = ds.load_digits(return_labels=True)
    index = {row.tobytes(): lab for row, lab in zip(full, labels)}
    assert all(index[row.tobytes()] == lab for row, lab in zip(a, ya))
    assert set(ya) == set(range(10))
    assert ds.load_digits(5, dtype="float32").dtype == np.float32


def test_load_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install pytensor-hf\[examples\]"):
        ds.load_digits()


def test_hdf5_file_feeds_hf_dataset(tmp_path):
    """hf.Dataset reads a generator's HDF5 file batch by batch along the example axis."""
    import h5py

    import hf
    from hf.datasets import addition, write_hdf5

    task = addition(50, 30, seed=3, variable_length=False)
    write_hdf5(task, tmp_path / "add.h5", dense_targets=True)
    with h5py.File(tmp_path / "add.h5", "r") as f:
        arrays = [f["inputs"], f["dense_targets"], f["target_mask"]]
        assert all(f[n].attrs["example_axis"] == 1 for n in ("inputs", "dense_targets", "target_mask"))
        ds = hf.Dataset(arrays, batch_size=16, axis=1, rng=0)
        seen = np.zeros(50, dtype=int)
        for batch in ds.iterate():
            # Identify the batch's columns by their inputs and compare with the task.
            for j in range(batch[0].shape[1]):
                i = next(k for k in range(50) if np.array_equal(task.inputs[:, k], batch[0][:, j]))
                seen[i] += 1
                np.testing.assert_array_equal(batch[1][:, j], task.dense_targets()[:, i])
                np.testing.assert_array_equal(batch[2][:, j], task.target_mask[:, i])
        assert (seen == 1).all()


def test_public_names_from_package_and_pathological_module():
    """Every name of hf.datasets.pathological is importable from it and from hf.datasets,
    and the generators' docstrings are plain text (no template left to fill)."""
    import hf.datasets.pathological as pathological

    for name in pathological.__all__:
        assert getattr(ds, name) is getattr(pathological, name)
    for name in pathological.TASKS:
        assert "<<" not in getattr(ds, name).__doc__
    assert ":func:`marker_windows`" in ds.addition.__doc__
    assert "as for :func:`addition`" in ds.multiplication.__doc__
