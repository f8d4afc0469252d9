"""hf.first_order against hand-written numpy references and downhill 0.4.0 usage."""

import collections
import importlib.util
import math
import pathlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf.first_order as downhill
from hf.dataset import Dataset

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
    """A fresh graph with its own shared parameters."""

    def __init__(self, dtype="float64"):
        self.x = pt.matrix("x", dtype=dtype)
        self.y = pt.matrix("y", dtype=dtype)
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


def np_hv(vW, vb, x):
    """Hessian of the loss times (vW, vb): the loss is quadratic, H v = ∂g/∂θ · v."""
    q = (x @ vW + vb) / len(x)
    return [x.T @ q, q.sum(0)]


def gamma(halflife):
    return math.exp(-math.log(2) / halflife)


class Reference:
    """Every algorithm's update equations, in numpy, from the papers/ALGORITHM.md."""

    def __init__(self, algo, hp):
        self.algo, self.hp = algo, dict(hp)
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
        if a == "adadelta":
            c = gamma(hp.get("rms_halflife", 14))
            s["g2", i] = c * s["g2", i] + (1 - c) * g * g
            d = g * np.sqrt(s["x2", i] + eps) / np.sqrt(s["g2", i] + eps)
            s["x2", i] = c * s["x2", i] + (1 - c) * d * d
            return d
        if a == "esgd":
            c = gamma(hp.get("rms_halflife", 14))
            s["D", i] = c * s["D", i] + (1 - c) * hv * hv
            return lr * g / (np.sqrt(s["D", i]) + eps)
        if a == "adam":
            b1, b2 = gamma(hp.get("beta1_halflife", 7)), gamma(hp.get("beta2_halflife", 69))
            b1t = b1 * hp.get("beta1_decay", 1 - 1e-6) ** (self.t - 1)
            s["m", i] = b1t * s["m", i] + (1 - b1t) * g
            s["v", i] = b2 * s["v", i] + (1 - b2) * g * g
            rate = lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
            return rate * s["m", i] / (np.sqrt(s["v", i]) + eps)
        if a == "rprop":  # iRprop−
            up, down = hp.get("rprop_increase", 1.01), hp.get("rprop_decrease", 0.99)
            lo, hi = hp.get("rprop_min_step", 0), hp.get("rprop_max_step", 100)
            step = s["step", i] if ("step", i) in s else np.full_like(g, lr)
            prev = s["grad", i] if ("grad", i) in s else np.zeros_like(g)
            prod = g * prev
            step = np.where(prod > 0, np.minimum(step * up, hi), np.where(prod < 0, np.maximum(step * down, lo), step))
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
            hvs = np_hv(*vs, x)
        mu = self.hp.get("momentum", 0)
        nesterov = self.hp.get("nesterov", False) or self.algo == "nag"
        out = []
        for i, (p, g, hv) in enumerate(zip(params, grads, hvs)):
            d = self.delta(i, self.clip(g), hv)
            if mu == 0:
                out.append(p - d)
                continue
            v = self.state["vel", i]
            v = mu * mu * v - (1 + mu) * d if nesterov else mu * v - d
            self.state["vel", i] = v
            out.append(p + v)
        return out


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


@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("algo", ALGOS)
def test_updates_match_numpy_reference(model, algo, variant):
    model.reset()
    hp = {**ALGO_HP[algo], **VARIANTS[variant]}
    x, y = make_data()
    opt = downhill.build(algo, model.loss, params=[model.W, model.b], inputs=[model.x, model.y])
    train = Dataset([x, y], batch_size=4, iteration_size=3, rng=7)
    history = list(opt.iterate(train, max_updates=2, validate_every=100, **hp))
    assert [m["update"] for m, _ in history] == [1, 2]

    ref = Reference(algo, hp)
    ref_ds = Dataset([x, y], batch_size=4, iteration_size=3, rng=7)
    params = [W0.copy(), B0.copy()]
    for epoch in range(2):
        losses, sizes = [], []
        for _ in range(3):
            bx, by = ref_ds.next_batch()
            losses.append(np_loss(*params, bx, by))
            sizes.append(len(bx))
            params = ref.step(params, bx, by)
        # The epoch's loss: mean over its examples, each taken before its step.
        assert history[epoch][0]["loss"] == pytest.approx(np.dot(losses, sizes) / sum(sizes), abs=1e-12)
    for got, want in zip(model.values(), params):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert not np.allclose(params[0], W0)
    if variant in ("norm", "elem"):
        assert ref.clipped, "the test must exercise clipping"
    if algo == "rprop":
        assert ref.flipped, "the test must exercise a sign change"


def test_nag_is_sgd_with_nesterov(model):
    assert isinstance(downhill.build("nag", model.loss), downhill.SGD)
    assert downhill.NAG.fixed_hyperparameters == {"nesterov": True}


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


def test_get_updates_with_pytensor_function():
    m = Model()
    x, y = make_data()
    opt = downhill.build("sgd", loss=m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    updates = list(opt.get_updates(learning_rate=0.1, momentum=0.9))
    f = pytensor.function([m.x, m.y], m.loss, updates=updates)
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
    initial, final, train = example.main(max_updates=300, verbose=False)
    # Exactly rank-3 data and small penalties: the reconstruction error's optimum is ~0.
    assert final < 1e-3 * initial
    assert {"err", "|u|<0.1", "|v|<0.1", "grad(u)", "grad(v)"} <= set(train)


def test_minimize_returns_monitors_and_restores_best(sgd_opt):
    m, _ = sgd_opt
    m.reset()
    x, y = make_data(3, n=40)
    train, valid = downhill.minimize(m.loss, [x, y], valid=[x[:20], y[:20]], params=[m.W, m.b],
                                     inputs=[m.x, m.y], algo="adam", batch_size=8, train_batches=2,
                                     learning_rate=0.05, max_updates=4, validate_every=2)
    assert train["update"] == 4 and "loss" in valid and "best_loss" in valid


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


def test_interrupt_restores_best(sgd_opt):
    m, _ = sgd_opt
    m.reset()
    opt = downhill.build("sgd", m.loss, params=[m.W, m.b], inputs=[m.x, m.y])
    x, y = make_data(4)

    def callback(train, valid):
        if train["update"] == 3:
            raise KeyboardInterrupt

    train, _ = opt.minimize([x, y], learning_rate=0.1, validate_every=1, callback=callback, max_updates=10)
    assert opt.updates == 3
    for got, want in zip(m.values(), opt.best_params):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- keywords


DEFAULTS = dict(learning_rate=1e-4, momentum=0, nesterov=False, patience=5, validate_every=10, min_improvement=0,
                max_gradient_norm=0, max_gradient_elem=0, rms_halflife=14, rms_regularizer=1e-8,
                beta1_halflife=7, beta2_halflife=69, beta1_decay=1 - 1e-6, rprop_increase=1.01,
                rprop_decrease=0.99, rprop_min_step=0, rprop_max_step=100)


def test_defaults_table():
    table = {**downhill.HYPERPARAMETERS, **downhill.LOOP_KEYWORDS}
    for k, v in DEFAULTS.items():
        assert table[k] == v, k
    for algo in ALGOS:
        own = downhill.build(algo, Model().loss)._own_hyperparameters()
        for k, h in own.items():
            assert downhill.HYPERPARAMETERS[k] == h.default, (algo, k)


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
    ("learning_rate", 0), ("learning_rate", -1.0), ("learning_rate", float("nan")),
    ("momentum", 1.0), ("momentum", -0.1), ("max_gradient_norm", -1),
    ("max_gradient_elem", float("inf")), ("rms_halflife", 0), ("rms_regularizer", -1e-8),
    ("beta1_halflife", -7), ("beta2_halflife", 0), ("beta1_decay", 1.5), ("beta1_decay", 0),
    ("rprop_increase", 0.9), ("rprop_decrease", 1.1), ("rprop_min_step", -1), ("rprop_max_step", 0),
])
def test_bad_hyperparameter_raises(sgd_opt, name, value):
    _, opt = sgd_opt
    with pytest.raises(ValueError, match=name):
        opt.get_updates(**{name: value})


@pytest.mark.parametrize("name,value", [("learning_rate", "fast"), ("nesterov", "yes"), ("nesterov", 1)])
def test_wrong_type_of_hyperparameter_raises(sgd_opt, name, value):
    _, opt = sgd_opt
    with pytest.raises(TypeError, match=name):
        opt.get_updates(**{name: value})


def test_rprop_bounds_checked(model):
    opt = downhill.build("rprop", model.loss, params=[model.W, model.b])
    with pytest.raises(ValueError, match="rprop_min_step"):
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
    for _ in a.iterate(ds1, max_updates=4, **hp):  # max_updates counts epochs in total
        pass
    assert a.updates == 4

    m2, b = fresh()
    b.load_state_dict(state)  # before b ever compiled: accumulators are created from the state
    ds2 = Dataset([x, y], batch_size=7, rng=99)
    ds2.load_state_dict(ds_state)
    for _ in b.iterate(ds2, max_updates=4, **hp):
        pass
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
    f = pytensor.function([model.x, model.y], model.loss, updates=list(opt.get_updates(learning_rate=lr)))
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
    with pytest.raises(ValueError, match="does not depend"):
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
