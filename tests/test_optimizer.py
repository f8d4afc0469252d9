"""HFOptimizer end to end, each against an independent reference."""

import logging
import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.optimize

import hf
from hf._compile import function


def least_squares(n=60, d=5, seed=0, dtype="float64", shared_data=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = (X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)).astype(dtype)
    w = pytensor.shared(np.zeros(d, dtype=dtype), name="w")
    b = pytensor.shared(np.asarray(0.0, dtype=dtype), name="b")
    if shared_data:
        x_in, y_in = pytensor.shared(X, name="X"), pytensor.shared(y, name="y")
        inputs = None
    else:
        x_in, y_in = pt.matrix("x", dtype=dtype), pt.vector("y", dtype=dtype)
        inputs = [x_in, y_in]
    s = x_in @ w + b
    cost = 0.5 * pt.mean((s - y_in) ** 2)
    A = np.hstack([X.astype(np.float64), np.ones((n, 1))])
    ref = np.linalg.lstsq(A, y.astype(np.float64), rcond=None)[0]
    return cost, s, [w, b], inputs, [X, y], ref


def test_least_squares_converges_to_lstsq():
    cost, s, params, inputs, data, ref = least_squares()
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=1e-3, cg_fraction=1.0)
    for tm, _ in opt.iterate(data, max_updates=5):
        pass
    got = np.concatenate([params[0].get_value(), [params[1].get_value()]])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)
    assert tm["update"] == 5 and len(opt.history) == 5  # five updates, none skipped


def test_train_with_no_arguments_on_shared_data():
    cost, s, params, inputs, data, ref = least_squares(shared_data=True)
    opt = hf.HFOptimizer(cost, s, params, damping=1e-3)
    train_metrics, valid_metrics = opt.train()
    got = np.concatenate([params[0].get_value(), [params[1].get_value()]])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)
    # Patience ended the run well before the update cap, and best params are in place.
    assert train_metrics["update"] < 100
    assert valid_metrics["best_loss"] == pytest.approx(float(function([], cost)()), rel=1e-12)


def test_float32_least_squares():
    cost, s, params, inputs, data, ref = least_squares(dtype="float32")
    opt = hf.HFOptimizer(cost, s, params, inputs, damping=1e-3, cg_fraction=1.0)
    opt.train(data, max_updates=8)
    assert params[0].get_value().dtype == np.float32
    got = np.concatenate([params[0].get_value(), [params[1].get_value()]])
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)


def test_logistic_regression_matches_scipy_minimize():
    rng = np.random.default_rng(1)
    n, d = 200, 4
    X = rng.normal(size=(n, d))
    true_w = rng.normal(size=d)
    Y = (rng.random(n) < 1 / (1 + np.exp(-(X @ true_w)))).astype(np.float64)
    w = pytensor.shared(np.zeros(d), name="w")
    b = pytensor.shared(0.0, name="b")
    x, y = pt.matrix("x"), pt.vector("y")
    s = x @ w + b
    cost = pt.mean(pt.softplus(s) - y * s)  # cross-entropy of sigmoid(s)
    opt = hf.HFOptimizer(cost, s, [w, b], [x, y], damping=1e-2, cg_fraction=1.0)
    opt.train([X, Y], max_updates=30, patience=3)
    hf_loss = float(function([x, y], cost)(X, Y))

    def f(theta):
        z = X @ theta[:d] + theta[d]
        return np.mean(np.logaddexp(0, z) - Y * z)

    def grad(theta):
        z = X @ theta[:d] + theta[d]
        r = 1 / (1 + np.exp(-z)) - Y
        return np.concatenate([X.T @ r / n, [r.mean()]])

    ref = scipy.optimize.minimize(f, np.zeros(d + 1), jac=grad, method="BFGS", options={"gtol": 1e-12})
    assert hf_loss == pytest.approx(ref.fun, rel=1e-6)


@pytest.fixture(scope="module")
def autoencoder():
    digits = pytest.importorskip("sklearn.datasets").load_digits().data[:200] / 16.0
    rng = np.random.default_rng(0)
    sizes = [64, 24, 8, 24, 64]
    params, x = [], pt.matrix("x")
    h = x
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = pytensor.shared(rng.normal(size=(a, b)) / np.sqrt(a), name=f"W{i}")
        c = pytensor.shared(np.zeros(b), name=f"b{i}")
        params += [W, c]
        h = h @ W + c
        if i < len(sizes) - 2:
            h = pt.tanh(h)
    s = h
    cost = pt.mean(pt.sum(pt.softplus(s) - x * s, axis=1))
    initial = [p.get_value() for p in params]
    return cost, s, params, [x], [digits], initial


def test_autoencoder_never_keeps_a_step_that_raises_the_loss(autoencoder):
    cost, s, params, inputs, data, initial = autoencoder
    for p, v in zip(params, initial):  # fresh start: other tests may have trained the shared model
        p.set_value(v.copy())
    loss = function(inputs, cost)  # independent of the optimizer's functions
    snapshots = [[p.get_value() for p in params]]
    metrics = []

    def record(tm, vm):
        snapshots.append([p.get_value() for p in params])
        metrics.append(tm)

    opt = hf.HFOptimizer(cost, s, params, inputs, damping=1.0, max_cg_iters=40)
    opt.train(data, max_updates=12, callback=record, restore_best=False)
    losses = []
    for snap in snapshots:
        for p, v in zip(params, snap):
            p.set_value(v)
        losses.append(float(loss(*data)))
    assert len(metrics) == 12
    for i, m in enumerate(metrics):
        if m["accepted"]:
            assert losses[i + 1] < losses[i]
            assert m["new_loss"] == pytest.approx(losses[i + 1], rel=1e-10)
        else:
            assert losses[i + 1] == losses[i]
        assert m["loss"] == pytest.approx(losses[i], rel=1e-10)
    assert losses[-1] < 0.9 * losses[0]
    assert {"rho", "damping", "cg_iters", "cg_status", "backtrack", "step_rate", "step_norm", "seconds"} <= set(
        metrics[0]
    )


def test_step_with_nan_is_rejected_and_damping_raised():
    # L(s) = sum(s - log s) is convex in s = theta; from theta = 3 the Newton step
    # lands at negative theta where the loss is NaN.
    theta = pytensor.shared(np.array([3.0, 3.0]), name="theta")
    s = theta * 1.0
    cost = pt.sum(s - pt.log(s))
    opt = hf.HFOptimizer(cost, s, [theta], damping=1e-6, line_search=False, cg_decay=0.0)
    (tm, _), = list(opt.iterate(max_updates=1))
    assert tm["accepted"] is False
    assert tm["rho"] == -math.inf
    assert tm["new_damping"] > tm["damping"]
    np.testing.assert_array_equal(theta.get_value(), [3.0, 3.0])
    # The line search instead finds a shorter step that lowers the loss.
    opt = hf.HFOptimizer(cost, s, [theta], damping=1e-6, line_search=True, cg_decay=0.0)
    (tm, _), = list(opt.iterate(max_updates=1))
    assert tm["accepted"] and 0 < tm["step_rate"] < 1
    assert np.all(theta.get_value() > 0)


def test_structural_damping_with_zero_weight_reduces_to_gv():
    from . import models

    m = models.rnn()
    spec = hf.StructuralDamping(m.a, "tanh", weight=0.0)
    plain = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs)
    damped = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, structural_damping=spec)
    batch = hf.Batch(tuple(m.data), (1, 1))
    v = np.random.default_rng(0).normal(size=plain.n_params)
    np.testing.assert_array_equal(damped.gv(v, batch, 0.0), plain.gv(v, batch))
    assert not np.allclose(damped.gv(v, batch, 1.0), plain.gv(v, batch))


def test_chunked_sums_equal_whole_batch():
    cost, s, params, inputs, data, ref = least_squares(n=37)
    whole = hf.HFOptimizer(cost, s, params, inputs)
    chunked = hf.HFOptimizer(cost, s, params, inputs, chunk_size=5)
    batch = hf.Batch(tuple(data), (0, 0))
    v = np.random.default_rng(0).normal(size=whole.n_params)
    np.testing.assert_allclose(chunked.gv(v, batch), whole.gv(v, batch), rtol=1e-12)
    theta = np.random.default_rng(1).normal(size=whole.n_params)
    assert chunked.loss_at(theta, batch) == pytest.approx(whole.loss_at(theta, batch), rel=1e-12)


def test_preconditioner_uses_per_example_gradients():
    import scipy.sparse.linalg

    cost, s, params, inputs, data, ref = least_squares(n=20)
    lam = 1e-3
    opt = hf.HFOptimizer(cost, s, params, inputs, preconditioner=True, cg_fraction=1.0, damping=lam,
                         max_cg_iters=2)
    batch = hf.Batch(tuple(data), (0, 0))
    sq = opt.mean_square_gradients(batch, 100)
    X, y = data
    r = X @ params[0].get_value() + params[1].get_value() - y  # per-example residuals
    per_example = np.hstack([X * r[:, None], r[:, None]])  # gradient of 0.5 r_i² per example
    np.testing.assert_allclose(sq, np.mean(per_example**2, axis=0), rtol=1e-12)
    # Two CG iterations on the dense damped system with M = (sq + λ)^0.75 (scipy's PCG):
    # the truncated solution depends on M, and the update must take exactly that step
    # (the quadratic loss is its own model: ρ = 1, the full step passes Armijo).
    A = np.hstack([X, np.ones((20, 1))])
    G = A.T @ A / 20 + lam * np.eye(A.shape[1])
    g = A.T @ r / 20
    M = (sq + lam) ** 0.75
    x2, _ = scipy.sparse.linalg.cg(G, -g, maxiter=2, M=scipy.sparse.diags(1 / M), rtol=1e-14)
    plain, _ = scipy.sparse.linalg.cg(G, -g, maxiter=2, rtol=1e-14)
    assert np.linalg.norm(x2 - plain) > 1e-3 * np.linalg.norm(x2)  # the preconditioner matters here
    (tm, _), = opt.iterate(data, max_updates=1)
    assert tm["cg_iters"] == 2 and tm["step_rate"] == 1.0
    got = np.concatenate([params[0].get_value(), [params[1].get_value()]])
    np.testing.assert_allclose(got, x2, rtol=1e-9, atol=1e-12)
    opt.train(data, max_updates=60, patience=60)
    got = np.concatenate([params[0].get_value(), [params[1].get_value()]])
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-8)


def test_one_log_line_per_update(caplog):
    cost, s, params, inputs, data, ref = least_squares(n=10)
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with caplog.at_level(logging.INFO, logger="hf"):
        list(opt.iterate(data, max_updates=2, patience=100))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("update")]
    assert len(lines) == 2 and "damping 1.000e+00" in lines[0]


def test_bad_arguments_raise_clear_errors():
    cost, s, params, inputs, data, ref = least_squares(n=10)
    with pytest.raises(TypeError, match="unexpected keyword"):
        hf.HFOptimizer(cost, s, params, inputs, dampnig=1.0)
    with pytest.raises(TypeError, match=r"params\[0\]"):
        hf.HFOptimizer(cost, s, [pt.vector("w")], inputs)
    with pytest.raises(ValueError, match="free inputs"):
        hf.HFOptimizer(cost, s, params)
    with pytest.raises(ValueError, match="max_cg_iters"):
        hf.HFOptimizer(cost, s, params, inputs, max_cg_iters=0)
    with pytest.raises(ValueError, match="damping"):
        hf.HFOptimizer(cost, s, params, inputs, damping=-1.0)
    with pytest.raises(ValueError, match="preconditioner"):
        c2, s2, p2, _, _, _ = least_squares(n=10, shared_data=True)
        hf.HFOptimizer(c2, s2, p2, preconditioner=True)
    opt = hf.HFOptimizer(cost, s, params, inputs)
    with pytest.raises(TypeError, match="unexpected keyword"):
        opt.train(data, max_update=3)
    with pytest.raises(TypeError, match="single array"):
        opt.train(data[0])
    with pytest.raises(ValueError, match="max_updates"):
        list(opt.iterate(data, max_updates=0))


@pytest.mark.parametrize("case", ["mlp", "rnn_structural_chunked"])
def test_forward_cache_gives_the_same_products_and_updates(case):
    """The cached forward pass is an optimization only: the same Gv products to
    rounding, so the same update (CG amplifies rounding a little over its iterations)."""
    from . import models

    runs = []
    for cache in (True, False):
        if case == "mlp":
            m = models.mlp("softmax", n=40, seed=3)
            kw, axes = {}, (0, 0)
        else:
            m = models.rnn(T=6, n=12, seed=3, masked=True)
            kw = dict(structural_damping=hf.StructuralDamping(m.a, "tanh", weight=0.3, mask=m.inputs[2]),
                      chunk_size=5)
            axes = (1, 1, 1)
        opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, forward_cache=cache, damping=0.1, max_cg_iters=30,
                             **kw)
        batch = hf.Batch(tuple(m.data), axes)
        if cache:
            rng = np.random.default_rng(0)
            products = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
            coef = () if case == "mlp" else (0.7,)
            for _ in range(3):
                v = rng.normal(size=opt.n_params)
                np.testing.assert_allclose(products(v, *coef)[0], opt.gv(v, batch, *coef), rtol=1e-11, atol=1e-13)
        tm = opt.step(batch)
        runs.append((tm, [p.get_value() for p in m.params], opt.forward_cache_bytes))
    (cached, p_cached, nbytes), (plain, p_plain, zero) = runs
    assert nbytes > 0 and zero == 0
    assert cached["cg_iters"] == plain["cg_iters"] and cached["backtrack"] == plain["backtrack"]
    assert cached["new_loss"] == pytest.approx(plain["new_loss"], rel=1e-8)
    for a, b in zip(p_cached, p_plain):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_time_spent_in_each_compiled_function_is_recorded_on_request():
    import collections

    cost, s, params, inputs, data, ref = least_squares(n=30)
    batch = hf.Batch(tuple(data), (0, 0))
    # A CG batch of its own: ρ's pᵀGp on the gradient batch is one hf_gv_form call.
    opt = hf.HFOptimizer(cost, s, params, inputs, rho_batch="gradient")
    opt.step(batch, batch.head(15))  # first calls load the compiled modules
    assert opt.reduce.timings is None  # off by default: no clock reads
    opt.reduce.timings = collections.Counter()
    tm = opt.step(batch, batch.head(15))
    names = set(opt.reduce.timings)
    assert {"hf_loss_grad", "hf_forward", "hf_gv_cached", "hf_loss_at", "hf_gv_form"} <= names
    assert "hf_gv" not in names and "hf_gv" not in opt.compile_seconds
    assert 0 < sum(opt.reduce.timings.values()) <= tm["seconds"]
    # One batch for both: ρ's model is CG's own value, and no product or form is called or compiled.
    opt = hf.HFOptimizer(cost, s, params, inputs, rho_batch="gradient")
    opt.reduce.timings = collections.Counter()
    opt.step(batch)
    for name in ("hf_gv", "hf_gv_form"):
        assert name not in opt.reduce.timings and name not in opt.compile_seconds
    assert {"hf_loss_grad", "hf_forward", "hf_gv_cached"} <= set(opt.reduce.timings)


def test_op_jv_with_forward_cache_on_a_scan_rnn():
    """jv='op' (the ops' own R-ops; the graph uses pt.dot) with the cached forward pass gives
    the products of the default path on a scan RNN (a view of the input once broke the cache)."""
    rng = np.random.default_rng(0)
    x, y = pt.tensor3("x"), pt.tensor3("y")
    W = pytensor.shared(rng.normal(size=(2, 5)) * 0.5, name="W")
    U = pytensor.shared(rng.normal(size=(5, 5)) * 0.4, name="U")
    V = pytensor.shared(rng.normal(size=(5, 1)) * 0.5, name="V")

    def step(x_t, h_tm1):
        return pt.tanh(pt.dot(x_t, W) + pt.dot(h_tm1, U))

    h = pytensor.scan(step, sequences=x, outputs_info=[pt.zeros((x.shape[1], 5))], return_updates=False)
    s = pt.dot(h, V)
    cost = 0.5 * pt.sum((s - y) ** 2) / pt.cast(x.shape[1], "float64")
    data = (rng.normal(size=(7, 4, 2)), rng.normal(size=(7, 4, 1)))
    batch = hf.Batch(data, (1, 1))
    ref = hf.HFOptimizer(cost, s, [W, U, V], [x, y], forward_cache=False)
    op = hf.HFOptimizer(cost, s, [W, U, V], [x, y], jv="op")
    products = op.reduce.cached(op._f_forward, op._f_gv_cached, batch)
    v = rng.normal(size=ref.n_params)
    np.testing.assert_allclose(products(v)[0], ref.gv(v, batch), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("rho_batch", ["cg", "gradient"])
def test_an_update_on_one_batch_evaluates_the_loss_once_per_point(rho_batch):
    """With the CG batch equal to the gradient batch, ρ's loss at θ is the gradient's own and
    the line search's first probe is the backtracked iterate's loss: no point is evaluated
    twice, and θ itself not at all (the step and metrics are those of an update that does)."""
    cost, s, params, inputs, data, _ = least_squares(n=30)
    batch = hf.Batch(tuple(data), (0, 0))
    start = [p.get_value().copy() for p in params]
    steps = []
    for share in (True, False):
        for p, v in zip(params, start):
            p.set_value(v.copy())
        opt = hf.HFOptimizer(cost, s, params, inputs, rho_batch=rho_batch, damping=0.1, max_cg_iters=20)
        points, plain = [], opt.loss_at

        def counted(theta, b, plain=plain):
            points.append(theta.copy())
            return plain(theta, b)

        opt.loss_at = counted
        theta = opt._theta()
        tm = opt.step(batch, batch if share else hf.Batch(tuple(a.copy() for a in data), (0, 0)))
        steps.append((tm, opt._theta() - theta, points))
    (tm, step, points), (tm_ref, step_ref, points_ref) = steps
    assert len(points_ref) > len(points)  # the separate (equal) CG batch repeats points
    assert not any(np.array_equal(p, theta) for p in points)
    assert all(not np.array_equal(a, b) for i, a in enumerate(points) for b in points[i + 1:])
    np.testing.assert_allclose(step, step_ref, rtol=1e-12, atol=1e-14)
    assert tm["rho"] == pytest.approx(tm_ref["rho"], rel=1e-9)
