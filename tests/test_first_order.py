"""hf.first_order against hand-written numpy references and downhill 0.4.0 usage.

Compiling is what costs here. The reference cases share compiled functions:
each case trains its own copy of the model, and one function steps several
cases together on the same mini-batches. Every case runs on PyTensor's Python
implementations (no C compiler, little rewriting: seconds, even with an empty
compile cache); one case per algorithm, together covering every variant, runs
again compiled as ``hf`` compiles (C backend, ``FAST_RUN`` rewrites).
"""

import collections
import functools
import importlib.util
import math
import pathlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

import hf
import hf.first_order as downhill
from hf.dataset import Dataset
from hf.first_order import hyperparameters

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALGOS = ["sgd", "nag", "rprop", "adagrad", "rmsprop", "adadelta", "esgd", "adam"]

# --------------------------------------------------------------------------- tiny model
# Least squares with a bias: loss = 1/(2N) Σ_n ‖x_n W + b − y_n‖², gradients by hand.

N, D_IN, D_OUT = 13, 3, 2


def make_data(seed=0, n=N, dtype=np.float64):
    rs = np.random.default_rng(seed)
    x = rs.normal(size=(n, D_IN))
    y = x @ rs.normal(size=(D_IN, D_OUT)) + 0.5 + 0.1 * rs.normal(size=(n, D_OUT))
    return x.astype(dtype), y.astype(dtype)


W0 = np.array([[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]])
B0 = np.array([0.05, -0.1])


class Model:
    """A fresh graph with its own shared parameters (on the given inputs, or new ones)."""

    def __init__(self, dtype="float64", x=None, y=None):
        self.x = pt.matrix("x", dtype=dtype) if x is None else x
        self.y = pt.matrix("y", dtype=dtype) if y is None else y
        self.W = pytensor.shared(W0.astype(dtype), name="W")
        self.b = pytensor.shared(B0.astype(dtype), name="b")
        r = self.x @ self.W + self.b - self.y
        self.loss = 0.5 * (r**2).sum(axis=1).mean()
        self.err = abs(r).mean()

    def reset(self):
        self.W.set_value(W0.astype(self.W.dtype))
        self.b.set_value(B0.astype(self.b.dtype))

    def values(self):
        return [self.W.get_value(), self.b.get_value()]


def np_loss(W, b, x, y):
    r = x @ W + b - y
    return 0.5 * (r**2).sum(1).mean()


def np_grads(W, b, x, y):
    r = (x @ W + b - y) / len(x)
    return [x.T @ r, r.sum(0)]


def np_hv_blocks(vW, vb, x):
    """Each parameter's own Hessian block times its v (what ESGD uses, as downhill):
    H_WW vW = xᵀ x vW / N and H_bb vb = vb for this quadratic loss."""
    return [x.T @ (x @ vW) / len(x), vb.copy()]


def gamma(halflife):
    return math.exp(-math.log(2) / halflife)


class Reference:
    """Every algorithm's update equations, in numpy, as downhill 0.4.0 documents and computes them.

    It reads only the hyperparameters the algorithm documents; any other in
    ``hp`` must have no effect.
    """

    def __init__(self, algo, hp, nesterov=None):
        self.algo, self.hp = algo, dict(hp)
        self.nesterov = (hp.get("nesterov", False) or algo == "nag") if nesterov is None else nesterov
        self.state = collections.defaultdict(float)
        self.t = 0
        self.gen = np.random.default_rng(0)  # ESGD's default seed
        self.clipped = self.flipped = False

    def clip(self, g):
        elem, norm = self.hp.get("max_gradient_elem", 0), self.hp.get("max_gradient_norm", 0)
        if elem > 0:
            self.clipped |= bool(np.any(np.abs(g) > elem))
            return np.clip(g, -elem, elem)
        if norm > 0:
            n = np.sqrt((g * g).sum())
            self.clipped |= bool(n > norm)
            return g * min(1.0, norm / n)
        return g

    def delta(self, i, g, hv):
        hp, s, a = self.hp, self.state, self.algo
        lr = hp.get("learning_rate", 1e-4)
        eps = hp.get("rms_regularizer", 1e-8)
        if a in ("sgd", "nag"):
            return lr * g
        if a == "adagrad":
            s["G", i] = s["G", i] + g * g
            return lr * g / np.sqrt(s["G", i] + eps)
        if a == "rmsprop":
            c = gamma(hp.get("rms_halflife", 14))
            s["f", i] = c * s["f", i] + (1 - c) * g
            s["s", i] = c * s["s", i] + (1 - c) * g * g
            return lr * g / np.sqrt(s["s", i] - s["f", i] ** 2 + eps)
        if a == "adadelta":  # no learning rate
            c = gamma(hp.get("rms_halflife", 14))
            s["g2", i] = c * s["g2", i] + (1 - c) * g * g
            d = g * np.sqrt(s["x2", i] + eps) / np.sqrt(s["g2", i] + eps)
            s["x2", i] = c * s["x2", i] + (1 - c) * d * d
            return d
        if a == "esgd":
            c = gamma(hp.get("rms_halflife", 14))
            s["D", i] = c * s["D", i] + (1 - c) * hv * hv
            return lr * g / (np.sqrt(s["D", i]) + eps)
        if a == "adam":  # t counts the steps before this one (self.t includes it)
            b1, b2 = gamma(hp.get("beta1_halflife", 7)), gamma(hp.get("beta2_halflife", 69))
            b1t = b1 * hp.get("beta1_decay", 1 - 1e-6) ** (self.t - 1)
            s["m", i] = b1t * s["m", i] + (1 - b1t) * g
            s["v", i] = b2 * s["v", i] + (1 - b2) * g * g
            if hp.get("kingma_ba", False):  # Kingma & Ba's Algorithm 1 bias terms
                m_hat, v_hat = s["m", i] / (1 - b1**self.t), s["v", i] / (1 - b2**self.t)
            else:  # downhill's: the decayed β₁,ₜ and the constant (1 − β₂)
                m_hat, v_hat = s["m", i] / (1 - b1t), s["v", i] / (1 - b2)
            return lr * m_hat / (np.sqrt(v_hat) + eps)
        if a == "rprop":  # iRprop−
            up, down = hp.get("rprop_increase", 1.01), hp.get("rprop_decrease", 0.99)
            lo, hi = hp.get("rprop_min_step", 0), hp.get("rprop_max_step", 100)
            step = s["step", i] if ("step", i) in s else np.full_like(g, lr)
            prev = s["grad", i] if ("grad", i) in s else np.zeros_like(g)
            prod = g * prev
            step = np.minimum(np.maximum(step * np.where(prod > 0, up, np.where(prod < 0, down, 1.0)), lo), hi)
            self.flipped |= bool(np.any(prod < 0))
            g = np.where(prod < 0, 0.0, g)
            s["step", i], s["grad", i] = step, g
            return np.sign(g) * step
        raise AssertionError(a)

    def step(self, params, x, y):
        self.t += 1
        grads = np_grads(*params, x, y)
        hvs = [None, None]
        if self.algo == "esgd":
            vs = [self.gen.normal(size=p.shape) for p in params]
            hvs = np_hv_blocks(*vs, x)
        mu = self.hp.get("momentum", 0)
        out = []
        for i, (p, g, hv) in enumerate(zip(params, grads, hvs)):
            d = self.delta(i, self.clip(g), hv)
            if mu == 0:
                out.append(p - d)
                continue
            v = self.state["vel", i]
            v = mu * mu * v - (1 + mu) * d if self.nesterov else mu * v - d
            self.state["vel", i] = v
            out.append(p + v)
        return out


# The hyperparameters each algorithm uses (downhill 0.4.0's documented keywords).
SHARED = {"learning_rate", "momentum", "nesterov", "max_gradient_norm", "max_gradient_elem"}
USES = {
    "sgd": SHARED,
    "nag": SHARED,
    "rprop": SHARED | {"rprop_increase", "rprop_decrease", "rprop_min_step", "rprop_max_step"},
    "adagrad": SHARED | {"rms_regularizer"},
    "rmsprop": SHARED | {"rms_halflife", "rms_regularizer"},
    "adadelta": SHARED - {"learning_rate"} | {"rms_halflife", "rms_regularizer"},
    "esgd": SHARED | {"rms_halflife", "rms_regularizer"},
    "adam": SHARED | {"beta1_halflife", "beta2_halflife", "beta1_decay", "rms_regularizer", "kingma_ba"},
}
# Valid, far-from-default values given to every algorithm that does not use them:
# accepted, and without effect (the reference ignores them).
FOREIGN = dict(learning_rate=7.0, rms_halflife=1.5, rms_regularizer=0.5, beta1_halflife=1.2, beta2_halflife=2.5,
               beta1_decay=0.3, rprop_increase=3.0, rprop_decrease=0.1, rprop_min_step=2.0, rprop_max_step=5.0,
               kingma_ba=True)

ALGO_HP = {
    "sgd": dict(learning_rate=0.1),
    "nag": dict(learning_rate=0.1),
    "rprop": dict(learning_rate=0.05, rprop_increase=1.3, rprop_decrease=0.4, rprop_min_step=0.01,
                  rprop_max_step=0.08),
    "adagrad": dict(learning_rate=0.1, rms_regularizer=1e-6),
    "rmsprop": dict(learning_rate=0.01, rms_halflife=5),
    "adadelta": dict(rms_halflife=3, rms_regularizer=1e-4),
    "esgd": dict(learning_rate=0.05, rms_halflife=4),
    "adam": dict(learning_rate=0.05, beta1_halflife=3, beta2_halflife=10, beta1_decay=0.9),
}
VARIANTS = {
    "plain": {},
    "momentum": dict(momentum=0.5),
    "nesterov": dict(momentum=0.5, nesterov=True),
    "norm": dict(max_gradient_norm=0.3),
    "elem": dict(max_gradient_elem=0.05),
}
# NAG takes Nesterov steps whatever ``nesterov`` says.
EXTRA_VARIANTS = {"nag": {"nesterov_false": dict(momentum=0.5, nesterov=False)},
                  "adam": {"kingma_ba": dict(kingma_ba=True)}}
CASES = {algo: {**VARIANTS, **EXTRA_VARIANTS.get(algo, {})} for algo in ALGOS}
STEPS, BATCH, EPOCH = 6, 4, 3  # two epochs of three mini-batches of 4 of the N = 13 examples


def case_kwargs(algo, variant):
    foreign = {k: v for k, v in FOREIGN.items() if k not in USES[algo]}
    return {**foreign, **ALGO_HP[algo], **CASES[algo][variant]}


def reference_run(algo, hp, batches, **kw):
    """Losses before each step and parameters after it, in numpy."""
    ref, params, out = Reference(algo, hp, **kw), [W0.copy(), B0.copy()], []
    for bx, by in batches:
        loss = np_loss(*params, bx, by)
        params = ref.step(params, bx, by)
        out.append((loss, params))
    return ref, out


# Python implementations of every op, next to no graph rewriting.
PYTHON_MODE = Mode(linker="py", optimizer="fast_compile")
# One case per algorithm, compiled by hf's default mode; every variant appears.
COMPILED_CASES = [("sgd", "elem"), ("nag", "nesterov_false"), ("rprop", "momentum"), ("adagrad", "norm"),
                  ("rmsprop", "nesterov"), ("adadelta", "elem"), ("esgd", "plain"), ("adam", "nesterov")]


@functools.cache
def stepped(cases, python=True):
    """Each ``(algo, variant)`` of ``cases`` trains its own model; one function steps them all.

    Returns the mini-batches and, per case, ``(loss before the step, [W, b] after it)``
    for each step. ``python``: PyTensor's Python implementations, else hf's default mode.
    """
    x, y = pt.matrix("x"), pt.matrix("y")
    models, losses, updates = {}, [], []
    for algo, variant in cases:
        m = Model(x=x, y=y)
        opt = downhill.build(algo, m.loss, params=[m.W, m.b], inputs=[x, y])
        updates += opt.get_updates(**case_kwargs(algo, variant))
        models[algo, variant] = m
        losses.append(m.loss)
    step = hf.function([x, y], losses, updates=updates, mode=PYTHON_MODE if python else None)
    data = Dataset([*make_data()], batch_size=BATCH, iteration_size=EPOCH, rng=7)
    batches, runs = [], {case: [] for case in models}
    for _ in range(STEPS):
        bx, by = data.next_batch()
        batches.append((bx, by))
        for (case, m), loss in zip(models.items(), step(bx, by)):
            runs[case].append((float(loss), m.values()))
    return batches, runs


@pytest.mark.parametrize("algo,variant", COMPILED_CASES)
def test_compiled_updates_match_numpy_reference(algo, variant):
    batches, runs = stepped(tuple(COMPILED_CASES), python=False)
    _, want = reference_run(algo, case_kwargs(algo, variant), batches)
    for t, ((loss, params), (want_loss, want_params)) in enumerate(zip(runs[algo, variant], want)):
        assert loss == pytest.approx(want_loss, abs=1e-12), t
        for got, w in zip(params, want_params):
            np.testing.assert_allclose(got, w, rtol=0, atol=1e-12, err_msg=f"after step {t}")


def test_compiled_cases_cover_every_variant():
    assert {v for _, v in COMPILED_CASES} == {*VARIANTS, *EXTRA_VARIANTS["nag"]}
    assert [a for a, _ in COMPILED_CASES] == ALGOS


@pytest.mark.parametrize("algo,variant", [(a, v) for a in ALGOS for v in CASES[a]])
def test_updates_match_numpy_reference(algo, variant):
    batches, runs = stepped(tuple((algo, v) for v in CASES[algo]))
    hp = case_kwargs(algo, variant)
    ref, want = reference_run(algo, hp, batches)
    assert len(runs[algo, variant]) == len(want) == STEPS
    for t, ((loss, params), (want_loss, want_params)) in enumerate(zip(runs[algo, variant], want)):
        assert loss == pytest.approx(want_loss, abs=1e-12), t  # the loss before step t
        for got, w in zip(params, want_params):
            np.testing.assert_allclose(got, w, rtol=0, atol=1e-12, err_msg=f"after step {t}")
    assert not np.allclose(want[-1][1][0], W0)
    if variant in ("norm", "elem"):
        assert ref.clipped, "the test must exercise clipping"
    if algo == "rprop":
        assert ref.flipped, "the test must exercise a sign change"
    if CASES[algo][variant].get("momentum"):
        # The two forms of momentum give different trajectories here, so the
        # comparison above tells them apart (NAG: always Nesterov's).
        _, other = reference_run(algo, hp, batches, nesterov=not ref.nesterov)
        assert np.abs(other[-1][1][0] - want[-1][1][0]).max() > 1e-6


@pytest.fixture(scope="module")
def model():
    return Model()


def test_nag_is_sgd_with_nesterov(model):
    # NAG's steps (Nesterov's, even with nesterov=False) are checked above ("nag-nesterov_false").
    assert isinstance(downhill.build("nag", model.loss), downhill.SGD)


def test_iterate_epochs_follow_the_reference():
    """iterate(): the step function it compiles, each epoch's loss (the mean over
    its examples, each taken before its step), and accumulators (Adam's moments and
    step count, the momentum velocity) that start afresh with each call, as in
    downhill. Validating the training data (no valid= given) never moves their
    cursor, so the training batches are the dataset's own sequence."""
    m = Model()
    hp = dict(learning_rate=0.05, beta1_halflife=3, beta2_halflife=10, beta1_decay=0.9, momentum=0.5, nesterov=True)
    opt = downhill.build("adam", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    x, y = make_data()
    train = Dataset([x, y], batch_size=BATCH, iteration_size=EPOCH, rng=7)
    history, seen, after_call = [], [], []
    for max_updates in (2, 1):  # two calls: 3 epochs in all
        for train_monitors, _ in opt.iterate(train, max_updates=max_updates, validate_every=100, **hp):
            history.append(train_monitors)
            seen.append(m.values())
        after_call.append(m.values())
    assert [h["update"] for h in history] == [1, 2, 3]
    for got, w in zip(after_call[0], seen[1]):  # the call's last epoch was its best: kept
        np.testing.assert_array_equal(got, w)

    ref_ds = Dataset([x, y], batch_size=BATCH, iteration_size=EPOCH, rng=7)
    batches = [ref_ds.next_batch() for _ in range(3 * EPOCH)]
    _, first = reference_run("adam", hp, batches[:2 * EPOCH])
    ref, params, second = Reference("adam", hp), [w.copy() for w in first[-1][1]], []
    for bx, by in batches[2 * EPOCH:]:  # a fresh Reference: fresh moments, step count, velocity
        loss = np_loss(*params, bx, by)
        params = ref.step(params, bx, by)
        second.append((loss, params))
    want = first + second
    for epoch in range(3):
        rows = want[epoch * EPOCH:(epoch + 1) * EPOCH]
        sizes = [len(bx) for bx, _ in batches[epoch * EPOCH:(epoch + 1) * EPOCH]]
        mean = np.dot([loss for loss, _ in rows], sizes) / sum(sizes)
        assert history[epoch]["loss"] == pytest.approx(mean, abs=1e-12)
        for got, w in zip(seen[epoch], rows[-1][1]):
            np.testing.assert_allclose(got, w, rtol=0, atol=1e-12)
    # With accumulators carried over, the third epoch would have gone elsewhere.
    _, carried = reference_run("adam", hp, batches)
    assert np.abs(carried[-1][1][0] - want[-1][1][0]).max() > 1e-6


# --------------------------------------------------------------------------- downhill usage


@pytest.fixture(scope="module")
def sgd_opt():
    """One compiled optimizer reused by the cheap tests below."""
    m = Model()
    opt = downhill.build("sgd", loss=m.loss, params=[m.W, m.b], inputs=[m.x, m.y],
                         monitors=[("err", m.err)], monitor_gradients=True)
    return m, opt


def test_build_iterate_loop_as_downhill_users_write_it():
    m = Model()
    x, y = make_data(1, n=64)
    xv, yv = make_data(2, n=32)
    opt = downhill.build("rmsprop", loss=m.loss, params=[m.W, m.b], inputs=[m.x, m.y],
                         monitors=[("err", m.err)], monitor_gradients=True)
    seen = []
    for train_monitors, valid_monitors in opt.iterate([x, y], [xv, yv], learning_rate=0.01, momentum=0.5,
                                                        validate_every=2, max_updates=6):
        seen.append(train_monitors["loss"])
        assert list(train_monitors)[:5] == ["update", "loss", "err", "grad(W)", "grad(b)"]
        if train_monitors["update"] >= 2:
            assert set(valid_monitors) >= {"loss", "err", "grad(W)", "grad(b)"}
    assert len(seen) == 6 and seen[-1] < seen[0]
    # evaluate() weights batches by their size (64 = 32 + 32; 32 = 32 here).
    ev = opt.evaluate(Dataset([xv, yv], batch_size=5))
    assert ev["loss"] == pytest.approx(np_loss(*m.values(), xv, yv), rel=1e-12)


def test_get_updates_compiled_by_the_user():
    m = Model()
    x, y = make_data()
    opt = downhill.build("sgd", loss=m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    updates = list(opt.get_updates(learning_rate=0.1, momentum=0.9))
    f = hf.function([m.x, m.y], m.loss, updates=updates)  # pytensor.function with the C backend
    params, vel = [W0.copy(), B0.copy()], [0.0, 0.0]
    for _ in range(3):
        before = f(x, y)
        assert before == pytest.approx(np_loss(*params, x, y), rel=1e-12)
        g = np_grads(*params, x, y)
        vel = [0.9 * v - 0.1 * gi for v, gi in zip(vel, g)]
        params = [p + v for p, v in zip(params, vel)]
    for got, want in zip(m.values(), params):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # The accumulators belong to the optimizer: they are in its state.
    assert set(opt.state_dict()["optimizer"]["slots"]["W"]) == {"vel"}


def _load_example():
    spec = importlib.util.spec_from_file_location("matrix_factorization", ROOT / "examples" / "matrix_factorization.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_start_matrix_factorization():
    example = _load_example()
    initial, final, train, _ = example.main(max_updates=300, verbose=False)
    # Exactly rank-3 data and small penalties: the reconstruction error's optimum is ~0.
    assert final < 1e-3 * initial
    assert {"err", "|u|<0.1", "|v|<0.1", "grad(u)", "grad(v)"} <= set(train)


@pytest.fixture(scope="module")
def diverging():
    """Full-batch SGD whose validation loss falls for a few epochs, then grows.

    The learning rate is 2.3 / λ_max (λ_max: the loss's largest curvature), so
    the error along the top eigenvector grows by 1.3 per step, while the start
    lies mostly along the lowest one, where the error shrinks fast.
    """
    rs = np.random.default_rng(11)
    x = rs.normal(size=(40, D_IN))
    y = x @ rs.normal(size=(D_IN, D_OUT)) + 0.5
    z = np.hstack([x, np.ones((len(x), 1))])
    curvature, vectors = np.linalg.eigh(z.T @ z / len(x))
    best = np.linalg.lstsq(z, y, rcond=None)[0]  # rows: W, then b
    start = best + 0.01 * vectors[:, -1:] + 1.0 * vectors[:, :1]
    return x, y, 2.3 / curvature[-1], [start[:-1], start[-1]]


def test_minimize_returns_monitors_and_restores_best(sgd_opt, diverging):
    m, _ = sgd_opt
    x, y, lr, start = diverging
    m.W.set_value(start[0])
    m.b.set_value(start[1])
    seen = []  # the parameters after each epoch

    def callback(train_monitors, valid_monitors):
        seen.append(m.values())

    train, valid = downhill.minimize(m.loss, [x, y], valid=[x, y], params=[m.W, m.b], inputs=[m.x, m.y],
                                     algo="sgd", batch_size=len(x), learning_rate=lr, max_updates=12,
                                     validate_every=1, patience=20, callback=callback)
    assert train["update"] == 12 and len(seen) == 12
    assert {"loss", "best_loss"} <= set(valid)
    losses = [np_loss(*p, x, y) for p in seen]  # validation loss of each epoch, in numpy
    best = int(np.argmin(losses))
    assert 0 < best < 8 and losses[-1] > 10 * losses[best], "falls, then grows"
    for got, want in zip(m.values(), seen[best]):
        np.testing.assert_array_equal(got, want)
    assert valid["best_loss"] == pytest.approx(losses[best], rel=1e-12)
    assert valid["loss"] == pytest.approx(losses[-1], rel=1e-12)


def test_early_stopping_restores_best_params(sgd_opt):
    m, _ = sgd_opt
    m.reset()
    opt = downhill.build("sgd", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    # Train towards W = A, validate towards W = 0.3 A: validation loss falls, then rises.
    rs = np.random.default_rng(5)
    x = rs.normal(size=(32, D_IN))
    a = np.array([[2.0, -1.0], [1.0, 3.0], [-2.0, 0.5]])
    y, yv = x @ a, x @ (0.3 * a)
    snapshots, vlosses = [], []
    for tm, vm in opt.iterate(Dataset([x, y], batch_size=32), Dataset([x, yv], batch_size=32),
                              learning_rate=0.05, validate_every=1, patience=3, max_updates=200):
        snapshots.append(m.values())
        vlosses.append(vm["loss"])
    best = int(np.argmin(vlosses))
    assert 0 < best < len(vlosses) - 4  # fell, then rose until patience ran out
    assert len(vlosses) == best + 5  # patience 3: stopped at the 4th bad validation
    for got, want in zip(m.values(), snapshots[best]):
        np.testing.assert_array_equal(got, want)
    assert opt.best_loss == vlosses[best]


def test_set_params(sgd_opt):
    m, opt = sgd_opt
    opt.best_params = [W0 * 2, B0 * 2]
    opt.set_params("best")
    np.testing.assert_array_equal(m.W.get_value(), W0 * 2)
    opt.set_params([W0, B0])
    np.testing.assert_array_equal(m.W.get_value(), W0)
    for bad in ("worst", 3, np.zeros(3)):
        with pytest.raises(TypeError):
            opt.set_params(bad)


def _train_diverging(m, diverging, with_valid, stop_at=None):
    """Train ``diverging`` with SGD (validating every epoch); return the optimizer and
    the parameters after each epoch. ``stop_at``: press Ctrl-C after that epoch."""
    x, y, lr, start = diverging
    m.W.set_value(start[0])
    m.b.set_value(start[1])
    opt = downhill.build("sgd", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    seen = []

    def callback(train, valid):
        seen.append(m.values())
        if train["update"] == stop_at:
            raise KeyboardInterrupt

    opt.minimize(Dataset([x, y], batch_size=len(x)), [x, y] if with_valid else None, learning_rate=lr,
                 validate_every=1, patience=20, callback=callback, max_updates=12)
    return opt, seen


def test_interrupt_restores_best(sgd_opt, diverging):
    m, _ = sgd_opt
    x, y = diverging[:2]
    opt, seen = _train_diverging(m, diverging, with_valid=True, stop_at=9)
    assert opt.updates == 9 == len(seen)
    losses = [np_loss(*p, x, y) for p in seen]
    best = int(np.argmin(losses))
    assert best < 8 and losses[-1] > 10 * losses[best]
    for got, want in zip(m.values(), seen[best]):
        np.testing.assert_array_equal(got, want)


def test_best_params_without_validation_data(sgd_opt, diverging):
    # The training data are evaluated after an epoch, so the loss that makes an
    # epoch the best is that of the parameters kept as the best.
    m, _ = sgd_opt
    x, y = diverging[:2]
    opt, seen = _train_diverging(m, diverging, with_valid=False)
    losses = [np_loss(*p, x, y) for p in seen]
    best = int(np.argmin(losses))
    assert opt.best_loss == pytest.approx(losses[best], rel=1e-12)
    for got, want in zip(m.values(), seen[best]):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- keywords


DEFAULTS = dict(learning_rate=1e-4, momentum=0, nesterov=False, patience=5, validate_every=10, min_improvement=0,
                max_gradient_norm=0, max_gradient_elem=0, rms_halflife=14, rms_regularizer=1e-8,
                beta1_halflife=7, beta2_halflife=69, beta1_decay=1 - 1e-6, rprop_increase=1.01,
                rprop_decrease=0.99, rprop_min_step=0, rprop_max_step=100, kingma_ba=False)


def test_defaults_table():
    table = {**downhill.HYPERPARAMETERS, **downhill.LOOP_KEYWORDS}
    assert set(table) == {*DEFAULTS, "checkpoint", "checkpoint_every", "callback", "progress"}
    for k, v in DEFAULTS.items():
        assert table[k] == v, k
    for h in hyperparameters.ALL:  # each default passes its own check
        assert h.check(h.default, "test") == h.default


@pytest.mark.parametrize("algo", ALGOS)
def test_each_algorithm_declares_what_it_uses(algo):
    cls = downhill.Optimizer._registry[algo]
    own = cls._own_hyperparameters()
    assert set(own) == USES[algo]
    assert all(own[k] is hyperparameters.BY_NAME[k] for k in own)  # one declaration per name
    # The docstring's list comes from the declarations: each used one with its
    # default, the others named as accepted and ignored.
    section = cls.__doc__.split("Hyperparameters\n---------------\n", 1)[1]
    listed, ignored = section.split("Accepted and ignored", 1)
    for name in downhill.HYPERPARAMETERS:
        assert (f"\n{name} : " in "\n" + listed) == (name in USES[algo]), name
        assert (name in ignored) == (name not in USES[algo]), name


@pytest.mark.parametrize("algo", ALGOS)
def test_every_keyword_accepted(model, algo):
    opt = downhill.build(algo, model.loss, params=[model.W, model.b], inputs=[model.x, model.y])
    updates = list(opt.get_updates(**DEFAULTS, checkpoint=None, checkpoint_every=1, callback=None))
    targets = {u[0] for u in updates}
    assert model.W in targets and model.b in targets


@pytest.mark.parametrize("call", ["get_updates", "iterate", "minimize"])
def test_misspelt_keyword_raises(sgd_opt, call):
    m, opt = sgd_opt
    with pytest.raises(TypeError, match="learning_rat"):
        if call == "get_updates":
            opt.get_updates(learning_rat=0.1)
        elif call == "iterate":
            opt.iterate([*make_data()], learning_rat=0.1)
        else:
            downhill.minimize(m.loss, [*make_data()], learning_rat=0.1)


@pytest.mark.parametrize("name,value", [
    ("learning_rate", float("nan")), ("learning_rate", pt.vector()), ("max_gradient_elem", float("inf")),
    ("rms_halflife", 0), ("beta1_halflife", -7), ("beta2_halflife", 0),
])
def test_hyperparameter_that_cannot_be_used_raises(sgd_opt, name, value):
    # SGD does not use most of them: every hyperparameter is checked all the same.
    _, opt = sgd_opt
    with pytest.raises(ValueError, match=name):
        opt.get_updates(**{name: value})


@pytest.mark.parametrize("name,value", [
    ("learning_rate", 0), ("learning_rate", -1.0), ("momentum", 1.0), ("momentum", -0.1),
    ("max_gradient_norm", -1), ("rms_regularizer", -1e-8), ("beta1_decay", 1.5), ("beta1_decay", 0),
    ("rprop_increase", 0.9), ("rprop_decrease", 1.1), ("rprop_min_step", -1), ("rprop_max_step", 0),
])
def test_hyperparameter_outside_its_range_warns_and_is_used(name, value):
    """downhill accepts these; so does hf, with a warning that names the value and the range."""
    m = Model()
    algo = {"rprop_increase": "rprop", "rprop_decrease": "rprop", "rprop_min_step": "rprop",
            "rprop_max_step": "rprop", "beta1_decay": "adam", "rms_regularizer": "adagrad"}.get(name, "sgd")
    opt = downhill.build(algo, m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    with pytest.warns(hyperparameters.HyperparameterWarning, match=rf"{name} = {value!r} is outside"):
        list(opt.get_updates(**{name: value}))
    used = getattr(opt, name)  # learning_rate and beta1_decay are shared scalars of the same name
    assert (used.get_value() if hasattr(used, "get_value") else used) == value  # used as given


@pytest.mark.parametrize("name,value", [
    ("learning_rate", "fast"), ("learning_rate", None), ("nesterov", "yes"), ("nesterov", 1),
    ("rms_halflife", pt.scalar()), ("max_gradient_norm", True),
])
def test_wrong_type_of_hyperparameter_raises(sgd_opt, name, value):
    _, opt = sgd_opt
    with pytest.raises(TypeError, match=name):
        opt.get_updates(**{name: value})


def test_unused_hyperparameters_leave_the_compiled_step_alone(model):
    opt = downhill.build("adadelta", model.loss, params=[model.W, model.b], inputs=[model.x, model.y])
    hyper, _ = opt._split_kwargs(dict(learning_rate=0.1, rms_halflife=3, patience=2), "test")
    assert "learning_rate" not in hyper and hyper["rms_halflife"] == 3
    step = opt._compile_step(hyper)
    hyper, _ = opt._split_kwargs(dict(learning_rate=0.5, beta1_decay=0.5, rms_halflife=3), "test")
    assert opt._compile_step(hyper) is step and len(opt._step_fns) == 1


def test_rprop_bounds_checked(model):
    opt = downhill.build("rprop", model.loss, params=[model.W, model.b])
    with pytest.warns(hyperparameters.HyperparameterWarning, match="rprop_min_step.*exceeds rprop_max_step"):
        opt.get_updates(rprop_min_step=2, rprop_max_step=1)


@pytest.mark.parametrize("name,value", [("patience", -1), ("validate_every", 0), ("min_improvement", -0.1),
                                        ("checkpoint_every", 0), ("max_updates", 0)])
def test_bad_loop_keyword_raises(sgd_opt, name, value):
    m, opt = sgd_opt
    with pytest.raises(ValueError, match=name):  # when iterate() is called, before any epoch
        opt.iterate([*make_data()], learning_rate=0.1, **{name: value})


def test_unknown_algorithm_and_registry(model):
    with pytest.raises(ValueError, match="adam.*rmsprop"):
        downhill.build("adamw", model.loss)
    assert isinstance(downhill.build("RMSProp", model.loss), downhill.RMSProp)

    class MySGD(downhill.SGD):
        pass

    assert isinstance(downhill.build("mysgd", model.loss), MySGD)


def test_params_and_inputs_found_from_graph():
    m = Model()
    opt = downhill.build("sgd", m.loss)
    assert opt.params == [m.W, m.b]  # first appearance in x @ W + b - y
    assert opt.inputs == [m.x, m.y]  # sorted by name


# --------------------------------------------------------------------------- state


@pytest.mark.parametrize("algo,extra", [("esgd", dict(momentum=0.5)), ("adam", dict(nesterov=True, momentum=0.3))])
def test_checkpoint_resume_is_bit_identical(tmp_path, algo, extra):
    x, y = make_data(6, n=30)
    hp = {**ALGO_HP[algo], **extra, "validate_every": 2}

    def run(max_updates, checkpoint=None):
        m = Model()
        opt = downhill.build(algo, m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
        train = Dataset([x, y], batch_size=7, iteration_size=2, rng=3)
        for _ in opt.iterate(train, max_updates=max_updates, checkpoint=checkpoint, **hp):
            pass
        return m, opt

    full, full_opt = run(6)
    path = tmp_path / "run.h5"
    run(3, path)  # stops after 3 epochs, writes the checkpoint
    resumed, opt = run(6, path)  # a fresh process would do the same: resume at epoch 3
    assert opt.updates == 6
    assert [h["loss"] for h in opt.history] == [h["loss"] for h in full_opt.history]
    # Both runs restored their best parameters at the end; compare the final state too.
    for got, want in zip(resumed.values(), full.values()):
        np.testing.assert_array_equal(got, want)


def test_state_dict_round_trip_continues_exactly():
    x, y = make_data(8, n=30)
    hp = dict(learning_rate=0.05, momentum=0.5, validate_every=100)

    def fresh():
        m = Model()
        return m, downhill.ESGD(m.loss, params=[m.W, m.b], inputs=[m.x, m.y], rng=4)

    m1, a = fresh()
    ds1 = Dataset([x, y], batch_size=7, rng=3)
    for _ in a.iterate(ds1, max_updates=2, **hp):
        pass
    state, ds_state = a.state_dict(), ds1.state_dict()
    for _ in a.iterate(ds1, max_updates=2, **hp):  # max_updates counts this call's epochs
        pass
    assert a.updates == 4

    m2, b = fresh()
    b.load_state_dict(state)  # before b ever compiled: accumulators are created from the state
    ds2 = Dataset([x, y], batch_size=7, rng=99)
    ds2.load_state_dict(ds_state)
    for _ in b.iterate(ds2, max_updates=2, **hp):
        pass
    assert b.updates == 4
    for got, want in zip(m2.values(), m1.values()):
        np.testing.assert_array_equal(got, want)
    assert set(state["optimizer"]["slots"]["W"]) == {"hv2_ewma", "vel"}
    assert state["optimizer"]["rng"]["bit_generator"] == "PCG64"


def test_esgd_seed():
    m = Model()
    x, y = make_data()
    runs = []
    for seed in (1, 1, 2):
        m.reset()
        opt = downhill.ESGD(m.loss, params=[m.W, m.b], inputs=[m.x, m.y], rng=seed)
        opt.minimize([x, y], learning_rate=0.05, max_updates=1)
        runs.append(m.values())
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert not np.array_equal(runs[0][0], runs[2][0])
    with pytest.raises(TypeError, match="rng"):
        downhill.ESGD(m.loss, rng="seed")
    with pytest.raises(ValueError, match="rng"):
        downhill.ESGD(m.loss, rng=-1)


def test_min_improvement_with_float32_losses():
    m = Model("float32")
    x, y = make_data(9, n=64, dtype=np.float32)
    opt = downhill.build("adam", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    vlosses = []
    for tm, vm in opt.iterate(Dataset([x, y], batch_size=16, rng=0), Dataset([x, y], batch_size=64),
                              learning_rate=0.05, validate_every=1, patience=2, min_improvement=0.01,
                              max_updates=30):
        vlosses.append(vm["loss"])
    assert m.W.dtype == "float32" and m.W.get_value().dtype == np.float32
    # Validation improved by more than 1% many times: training was not stopped at patience + 1.
    assert len(vlosses) > 10
    assert np.isfinite(opt.best_loss) and opt.best_loss < 0.5 * vlosses[0]
    assert opt.best_params is not None


def test_float32_updates_keep_dtype():
    m = Model("float32")
    for algo in ("rmsprop", "esgd", "adam", "rprop"):
        opt = downhill.build(algo, m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
        for var, expr in opt.get_updates(momentum=0.5, nesterov=True, max_gradient_norm=1.0):
            if var in (m.W, m.b):
                assert expr.dtype == "float32", (algo, var)


def test_symbolic_learning_rate_schedule(model):
    model.reset()
    lr = pytensor.shared(np.float64(0.1), name="lr")
    opt = downhill.build("sgd", model.loss, params=[model.W, model.b], inputs=[model.x, model.y])
    f = hf.function([model.x, model.y], model.loss, updates=list(opt.get_updates(learning_rate=lr)))
    x, y = make_data()
    lr.set_value(0.0)
    f(x, y)
    np.testing.assert_array_equal(model.W.get_value(), W0)
    lr.set_value(0.1)
    g = np_grads(W0, B0, x, y)
    f(x, y)
    np.testing.assert_allclose(model.W.get_value(), W0 - 0.1 * g[0], atol=1e-12)


def test_data_in_shared_variables():
    # No graph inputs: train=None, one step per epoch (as downhill allowed).
    x, y = make_data()
    xs, ys = pytensor.shared(x, name="xs"), pytensor.shared(y, name="ys")
    w = pytensor.shared(np.zeros((D_IN, D_OUT)), name="w")
    loss = 0.5 * ((xs @ w - ys) ** 2).sum(1).mean()
    opt = downhill.build("sgd", loss, params=[w])
    assert opt.inputs == []
    train, _ = opt.minimize(learning_rate=0.1, max_updates=3)
    want = np.zeros((D_IN, D_OUT))
    for _ in range(3):
        want = want - 0.1 * x.T @ (x @ want - y) / len(x)
    np.testing.assert_allclose(w.get_value(), want, atol=1e-12)
    with pytest.raises(ValueError, match="no inputs"):
        opt.minimize([x, y], max_updates=1)


def test_monitor_validation(model):
    opt = downhill.build("sgd", model.loss, monitors={"err": model.err})
    assert opt.monitor_names == ["loss", "err"]
    with pytest.raises(ValueError, match="reserved"):
        downhill.build("sgd", model.loss, monitors=[("loss", model.err)])
    with pytest.raises(ValueError, match="scalar"):
        downhill.build("sgd", model.loss, monitors=[("r", model.x)])
    with pytest.raises(TypeError, match="pair"):
        downhill.build("sgd", model.loss, monitors=[model.err])
    with pytest.raises(ValueError, match="'unused'.*not connected"):
        downhill.build("sgd", model.loss, params=[model.W, pytensor.shared(np.zeros(2), name="unused")])


def test_unused_or_missing_inputs_named_at_build():
    w = pytensor.shared(np.zeros(2), name="w")
    x, unused = pt.vector("x"), pt.vector("unused")
    loss = pt.sum((x - w) ** 2)
    with pytest.raises(ValueError, match=r"Adam: inputs\[1\] \(unused\) not used"):
        downhill.build("adam", loss, params=[w], inputs=[x, unused])
    with pytest.raises(ValueError, match=r"not listed in inputs"):
        downhill.build("adam", loss + pt.sum(unused), params=[w], inputs=[x])
    with pytest.raises(TypeError, match=r"Adam: inputs\[1\] must be a symbolic input variable"):
        downhill.build("adam", loss, params=[w], inputs=[x, w])
