"""``import hf.first_order as downhill`` runs downhill 0.4.0 code unchanged.

Each test is one behaviour that downhill documents (its README quick start, its
user guide and its API reference), checked against a numpy reference of the
documented update equations where numbers are involved.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse

import hf
import hf.first_order as downhill
from hf.first_order import hyperparameters

from .test_first_order import B0, W0, Model, Reference, gamma, make_data, np_grads, np_loss

QUICKSTART = pathlib.Path(__file__).with_name("downhill_quickstart.py")


def parts(out):
    """The quick start's output, split at its PART markers."""
    chunks, name = {"head": []}, "head"
    for line in out.splitlines():
        if line.startswith("PART") and " " not in line:
            name = line
            chunks[name] = []
        else:
            chunks[name].append(line)
    return chunks


def value_after(lines, prefix):
    return float(next(line for line in lines if line.startswith(prefix)).split()[-1])


def test_the_quick_start_runs_unchanged_and_trains():
    env = dict(os.environ)
    # Part 3 calls pytensor.function itself: give it the C linker (PyTensor's own
    # default, numba, takes minutes to compile), without touching the user's code.
    env["PYTENSOR_FLAGS"] = ",".join(filter(None, [env.get("PYTENSOR_FLAGS", ""), "linker=cvm"]))
    proc = subprocess.run([sys.executable, str(QUICKSTART)], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = parts(proc.stdout)
    initial = float(out["head"][0].split()[-1])

    # Part 1: downhill.minimize(...) prints one line per epoch with the monitors, and the
    # validations; patience=0 stops at the first validation without improvement.
    epochs = [line for line in out["head"] if line.startswith("RMSProp ")]
    assert epochs and epochs[0].startswith("RMSProp 1 loss=")
    for key in ("loss=", "err=", "|u|<0.1=", "|v|<0.1=", "grad(u)=", "grad(v)="):
        assert key in epochs[0]
    validations = [line for line in out["head"] if line.startswith("validation after update")]
    assert validations[0].startswith("validation after update 0: loss=") and validations[0].endswith(" *")
    assert not validations[-1].endswith(" *")  # patience=0 ends the run at the first miss
    assert int(epochs[-1].split()[1]) % 10 == 0  # validations every 10 epochs (downhill's default)
    part1 = value_after(out["head"], "PART1 final loss")
    assert part1 < 0.5 * initial

    # Part 2: build() + iterate(train=[[y]], batch_size=A, ...) yields downhill's monitors.
    dicts = [line for line in out["PART2"] if line.startswith("OrderedDict(")]
    assert len(dicts) == len(epochs)
    assert "'grad(u)'" in dicts[0] and "'|v|<0.1'" in dicts[0]
    # Same algorithm, data and start as part 1: the same result.
    assert value_after(out["PART2"], "PART2 final loss") == pytest.approx(part1, rel=1e-12)

    # Part 3: get_updates(batch_size=A, ...) compiled by the user, 100 calls.
    losses = [float(line) for line in out["PART3"]]
    assert len(losses) == 100
    assert losses[0] == pytest.approx(initial, rel=1e-12) and losses[-1] < 0.5 * initial


# --------------------------------------------------------------------------- data


def sgd(m, **kw):
    return downhill.build("sgd", m.loss, params=[m.W, m.b], inputs=[m.x, m.y], **kw)


def run_reference(algo, hp, batches, params=None):
    ref, params = Reference(algo, hp), params or [W0.copy(), B0.copy()]
    for bx, by in batches:
        params = ref.step(params, bx, by)
    return params


def test_train_as_a_list_of_batches():
    m = Model()
    x, y = make_data()
    batches = [[x[:6], y[:6]], [x[6:], y[6:]]]
    for _ in downhill.build("sgd", m.loss, params=[m.W, m.b], inputs=[m.x, m.y]).iterate(
            train=batches, max_updates=2, validate_every=100, learning_rate=0.1, progress=False):
        pass
    want = run_reference("sgd", dict(learning_rate=0.1), batches * 2)  # each epoch: both, in order
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


@pytest.mark.parametrize("rng", [3, np.random.RandomState(3)], ids=["seed", "RandomState"])
def test_dataset_keywords_in_iterate(rng):
    m = Model()
    x, y = make_data()
    opt = sgd(m)
    kw = dict(batch_size=4, iteration_size=2)
    for _ in opt.iterate([x, y], max_updates=3, validate_every=100, learning_rate=0.1, progress=False, rng=rng,
                         **kw):
        last = m.values()  # read at the yield: the end of the call may restore better ones
    # The same Dataset built by hand gives the batches the epochs went through.
    again = np.random.RandomState(3) if isinstance(rng, np.random.RandomState) else 3
    ds = hf.Dataset([x, y], rng=again, **kw)
    want = run_reference("sgd", dict(learning_rate=0.1), [ds.next_batch() for _ in range(6)])
    for got, w in zip(last, want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


def test_dataset_keywords_in_get_updates_are_accepted():
    m = Model()
    x, y = make_data()
    updates = sgd(m).get_updates(batch_size=5, iteration_size=3, axis=0, rng=1, learning_rate=0.1)
    step = hf.function([m.x, m.y], m.loss, updates=list(updates))
    step(x, y)
    want = [p - 0.1 * g for p, g in zip([W0, B0], np_grads(W0, B0, x, y))]
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


def test_a_callable_gives_len_batches_per_epoch_else_100():
    m = Model()
    x, y = make_data()
    calls = []

    def draw():
        calls.append(1)
        return [x[:4], y[:4]]

    class Sized:
        def __call__(self):
            return draw()

        def __len__(self):
            return 3

    for source, per_epoch in ((Sized(), 3), (draw, 100)):
        calls.clear()
        list(sgd(m).iterate(source, [x, y], max_updates=1, learning_rate=1e-3, progress=False))
        assert len(calls) == per_epoch


def test_pandas_dataframes_as_inputs():
    pd = pytest.importorskip("pandas")
    x, y = make_data()
    runs = []
    for data in ([x, y], [pd.DataFrame(x), pd.DataFrame(y)]):
        m = Model()
        downhill.minimize(m.loss, data, params=[m.W, m.b], inputs=[m.x, m.y], algo="sgd", batch_size=5,
                          rng=0, learning_rate=0.05, max_updates=3, progress=False)
        runs.append(m.values())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_scipy_sparse_matrices_as_inputs(fmt):
    import pytensor.sparse as S

    x, y = make_data()
    x[np.abs(x) < 0.5] = 0.0  # mostly zeros
    sparse_x = scipy.sparse.csr_matrix(x) if fmt == "csr" else scipy.sparse.csc_matrix(x)
    runs = []
    for data, xs in (([x, y], pt.matrix("x")), ([sparse_x, y], getattr(S, f"{fmt}_matrix")("x", dtype="float64"))):
        m = Model(x=xs)
        out = S.structured_dot(xs, m.W) if fmt and not isinstance(data[0], np.ndarray) else xs @ m.W
        r = out + m.b - m.y
        loss = 0.5 * (r**2).sum(axis=1).mean()
        downhill.minimize(loss, data, params=[m.W, m.b], inputs=[xs, m.y], algo="sgd", batch_size=4, rng=0,
                          learning_rate=0.05, max_updates=2, progress=False)
        runs.append(m.values())
    for a, b in zip(*runs):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- the loop


def test_validation_before_the_first_update():
    m = Model()
    x, y = make_data()
    xv, yv = make_data(seed=5)
    first = next(iter(sgd(m).iterate([x, y], [xv, yv], learning_rate=0.1, progress=False)))
    assert first[1]["loss"] == pytest.approx(np_loss(W0, B0, xv, yv), rel=1e-12)


def test_monitor_gradients_uses_downhill_names_and_squared_norms():
    x, y = make_data()
    xs, ys = pt.matrix("x"), pt.matrix("y")
    W = pytensor.shared(W0.copy(), name="W")
    b = pytensor.shared(B0.copy())  # unnamed
    loss = 0.5 * ((xs @ W + b - ys) ** 2).sum(axis=1).mean()
    opt = downhill.build("sgd", loss, params=[W, b], inputs=[xs, ys], monitor_gradients=True)
    tm, _ = next(iter(opt.iterate([x, y], batch_size=len(x), learning_rate=0.1, progress=False)))
    gW, gb = np_grads(W0, B0, x, y)
    assert list(tm)[1:4] == ["loss", "grad(W)", "grad(unnamed0)"]
    assert tm["grad(W)"] == pytest.approx(float((gW**2).sum()), rel=1e-12)
    assert tm["grad(unnamed0)"] == pytest.approx(float((gb**2).sum()), rel=1e-12)


def test_settings_are_attributes_once_iterate_starts():
    m = Model()
    opt = sgd(m)
    it = opt.iterate([*make_data()], patience=3, min_improvement=0.1, validate_every=2, learning_rate=0.2,
                     momentum=0.5, max_gradient_norm=2.0, progress=False)
    next(it)
    assert (opt.patience, opt.min_improvement, opt.validate_every) == (3, 0.1, 2)
    assert (opt.learning_rate.get_value(), opt.momentum, opt.max_gradient_norm, opt.nesterov) == (0.2, 0.5, 2.0, False)


def test_max_updates_counts_this_call_and_accumulators_start_afresh():
    m = Model()
    x, y = make_data()
    opt = downhill.build("rmsprop", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    hp = dict(learning_rate=0.01, rms_halflife=5)
    for call in range(2):
        rows = list(opt.iterate([x, y], batch_size=len(x), max_updates=2, validate_every=100, progress=False,
                                **hp))
        assert [tm["update"] for tm, _ in rows] == [2 * call + 1, 2 * call + 2]
    # Two calls of two full-batch steps each, the second starting from zero averages.
    mid = run_reference("rmsprop", hp, [(x, y)] * 2)
    want = run_reference("rmsprop", hp, [(x, y)] * 2, params=mid)
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


def test_minimize_prints_one_line_per_epoch(capsys):
    m = Model()
    downhill.minimize(m.loss, [*make_data()], params=[m.W, m.b], inputs=[m.x, m.y], algo="sgd",
                      learning_rate=0.05, max_updates=4, monitors=[("err", m.err)])
    lines = capsys.readouterr().out.splitlines()
    epochs = [line for line in lines if line.startswith("SGD ")]
    assert [line.split()[1] for line in epochs] == ["1", "2", "3", "4"]
    assert all("loss=" in line and "err=" in line for line in epochs)


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("method", ["rop", "lop", "grad", "LOP"])
def test_esgd_hv_method(method):
    x, y = make_data()
    m = Model()
    opt = downhill.ESGD(m.loss, params=[m.W, m.b], inputs=[m.x, m.y], hv_method=method)
    list(opt.iterate([x, y], batch_size=len(x), max_updates=3, validate_every=100, learning_rate=0.05,
                     progress=False))
    want = run_reference("esgd", dict(learning_rate=0.05), [(x, y)] * 3)
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)


def test_esgd_hv_method_through_build_and_bad_values():
    m = Model()
    assert downhill.build("esgd", m.loss, hv_method="grad").hv_method == "grad"
    with pytest.raises(ValueError, match="hv_method"):
        downhill.ESGD(m.loss, hv_method="fd")
    with pytest.raises(TypeError, match="hv_method"):
        downhill.ESGD(m.loss, hv_method=1)


def numpy_adam(grads_of, params, steps, lr, h1, h2, decay, eps, kingma_ba):
    """downhill's documented Adam (t from 0, β₁ decayed each step), or Kingma & Ba's bias terms."""
    b1, b2 = gamma(h1), gamma(h2)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(steps):
        b1t = b1 * decay**t
        grads = grads_of(params)
        for i, g in enumerate(grads):
            m[i] = b1t * m[i] + (1 - b1t) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            if kingma_ba:
                m_hat, v_hat = m[i] / (1 - b1 ** (t + 1)), v[i] / (1 - b2 ** (t + 1))
            else:
                m_hat, v_hat = m[i] / (1 - b1t), v[i] / (1 - b2)
            params[i] = params[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize("kingma_ba", [False, True])
def test_adam_ten_updates_follow_the_documented_equations(kingma_ba):
    x, y = make_data()
    m = Model()
    hp = dict(learning_rate=0.02, beta1_halflife=4, beta2_halflife=20, beta1_decay=0.95, rms_regularizer=1e-8)
    opt = downhill.build("adam", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    list(opt.iterate([x, y], batch_size=len(x), max_updates=10, validate_every=100, progress=False,
                     kingma_ba=kingma_ba, **hp))
    want = numpy_adam(lambda p: np_grads(*p, x, y), [W0.copy(), B0.copy()], 10, 0.02, 4, 20, 0.95, 1e-8,
                      kingma_ba)
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)
    other = numpy_adam(lambda p: np_grads(*p, x, y), [W0.copy(), B0.copy()], 10, 0.02, 4, 20, 0.95, 1e-8,
                       not kingma_ba)
    assert np.abs(other[0] - want[0]).max() > 1e-3  # the two corrections differ visibly


def test_values_downhill_accepts_are_accepted_with_a_warning():
    m = Model()
    x, y = make_data()
    with pytest.warns(hyperparameters.HyperparameterWarning, match="momentum = 1.0 is outside"):
        list(sgd(m).iterate([x, y], max_updates=1, momentum=1.0, learning_rate=1e-3, progress=False))
    with pytest.raises(TypeError, match="learnig_rate"):  # an unknown keyword is still an error
        sgd(m).iterate([x, y], learnig_rate=0.1)


def test_divergence_stops_training_with_finite_parameters():
    """A learning rate that blows the loss up to inf ends training with FloatingPointError
    (as HF does), the parameters put back to the last finite ones."""
    m = Model()
    x, y = make_data()
    seen = []
    with pytest.raises(FloatingPointError, match="diverged at update"):
        for _ in sgd(m).iterate([x, y], batch_size=len(x), learning_rate=1e3, validate_every=1000, progress=False):
            seen.append(m.values())
    assert len(seen) < 500 and all(np.all(np.isfinite(v)) for v in m.values())
    for got, w in zip(m.values(), seen[-1]):
        np.testing.assert_array_equal(got, w)


def test_rprop_clips_every_step_size_as_downhill():
    """A learning rate above rprop_max_step: the very first step is already clipped to it."""
    m = Model()
    x, y = make_data()
    opt = downhill.build("rprop", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    list(opt.iterate([x, y], batch_size=len(x), max_updates=1, validate_every=100, learning_rate=0.5,
                     rprop_max_step=0.1, progress=False))
    want = [p - 0.1 * np.sign(g) for p, g in zip([W0, B0], np_grads(W0, B0, x, y))]
    for got, w in zip(m.values(), want):
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-15)
