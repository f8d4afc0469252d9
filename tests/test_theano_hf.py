"""hf.theano_hf: theano-hf's API on top of HFOptimizer.

References are independent of the code under test: numpy forward passes,
complex-step Jacobians (exact to rounding) and dense products, plain numpy means
over items, and theano-hf's two examples (tests/theano_hf_examples.py) checked
with numpy forward passes of the parameters ``train`` returned.
"""

import h5py
import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
from hf import checkpoint
from hf.theano_hf import SequenceDataset, hf_optimizer

from . import theano_hf_examples as ex

# --------------------------------------------------------------------------- helpers


def unflatten(theta, shapes):
    out, start = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        out.append(theta[start:start + n].reshape(shape))
        start += n
    return out


def complex_step_jacobian(fun, theta, eps=1e-30):
    """Jacobian of ``fun`` (real-analytic, flattened output) at ``theta`` by the complex step."""
    cols = []
    for k in range(theta.size):
        t = theta.astype(np.complex128)
        t[k] += 1j * eps
        cols.append(np.imag(np.ravel(fun(t))) / eps)
    return np.stack(cols, axis=1)


def values(params):
    return np.concatenate([np.ravel(p.get_value()) for p in params]).astype(np.float64)


# --------------------------------------------------------------------------- the examples, small


@pytest.fixture(scope="module")
def xor():
    """theano-hf's example_NN (2-50-40-30-1) on 400 items of 50 rows."""
    out = ex.example_NN(n_items=400, rows=50, gradient_items=100, cg_items=20, valid_items=100,
                        num_updates=12, seed=1)
    out["model_after_train"] = [p.get_value().copy() for p in out["optimizer"].p]
    return out


@pytest.fixture(scope="module")
def memorization():
    """theano-hf's example_RNN at T=8 with 50 hidden units."""
    return ex.example_RNN(T=8, nh=50, n_sequences=600, gradient_items=60, cg_items=20, valid_items=100,
                          num_updates=5, seed=2)


def test_xor_is_solved(xor):
    np.testing.assert_array_equal(xor["truth_table"], [0, 1, 1, 0])
    history = xor["optimizer"].optimizer.history
    assert min(r["valid_costs[1]"] for r in history if "valid_costs[1]" in r) == 0.0  # no wrong output


def test_memorization_is_solved(memorization):
    np.random.seed(123)
    (xs,) = ex.memorization_items(300, 8)  # fresh sequences
    outputs = ex.rnn_outputs(memorization["best"], xs)
    np.testing.assert_array_equal(np.round(outputs), [x[0, 0] for x in xs])
    assert memorization["valid_error"] == 0.0


def test_train_returns_and_restores_the_best_parameters(xor):
    history = xor["optimizer"].optimizer.history
    best_row = min((r for r in history if "valid_loss" in r), key=lambda r: r["valid_loss"])
    assert best_row["valid_loss"] == xor["optimizer"].optimizer.best_loss
    for value, model in zip(xor["best"], xor["model_after_train"]):
        np.testing.assert_array_equal(value, model)


# --------------------------------------------------------------------------- products against dense numpy


def rnn_forward(theta, x, shapes):
    """Last-step output ``s`` and logistic-scaled hidden states ``(tanh(a) + 1)/2`` of the example's RNN."""
    Wx, Wh, Wy, bh, by, h0 = unflatten(theta, shapes)
    h, hidden = h0, []
    for x_t in x:
        h = np.tanh(x_t @ Wx + h @ Wh + bh)
        hidden.append(0.5 * (h + 1))
    return (h @ Wy + by)[0], np.array(hidden)


def test_structural_damping_product_matches_dense_numpy(memorization):
    opt = memorization["optimizer"]
    shapes = [p.get_value().shape for p in opt.p]
    theta = values(opt.p)
    rng = np.random.default_rng(0)
    items = [rng.integers(0, 2, size=(T, 1)).astype(np.float64) for T in (4, 7)]
    lam, mu = 0.7, 0.3
    v = rng.normal(size=theta.size)
    # Dense reference, item by item: G = J_sᵀ σ'(s) J_s (logistic output, cross-entropy) and
    # S = J_hᵀ diag(1 / (h (1 - h))) J_h / T for h = (tanh + 1)/2; the product is their plain mean.
    products = []
    for x in items:
        J_s = complex_step_jacobian(lambda t: rnn_forward(t, x, shapes)[0], theta)
        J_h = complex_step_jacobian(lambda t: rnn_forward(t, x, shapes)[1], theta)
        s, h = rnn_forward(theta, x, shapes)
        y = 1 / (1 + np.exp(-s))
        Gv = J_s.T @ (y * (1 - y) * (J_s @ v))
        Sv = J_h.T @ ((J_h @ v) / (h * (1 - h)).ravel()) / len(x)
        products.append(Gv + lam * mu * Sv)
    expected = np.mean(products, axis=0) + lam * v

    opt.cg_dataset = SequenceDataset([items], batch_size=None, number_batches=2, rng=0)
    opt.lambda_, opt.mu = lam, mu
    np.testing.assert_allclose(opt.batch_Gv(v), expected, rtol=1e-7, atol=1e-10)
    # The product CG uses in training (forward pass cached once per update) is the same one.
    inner = opt.optimizer
    batch = inner._items(opt.cg_dataset.iterate(update=False), "cg")
    cached = inner.reduce.cached(inner._f_forward, inner._f_gv_cached, batch)
    np.testing.assert_allclose(cached(v, lam * mu)[0] + lam * v, expected, rtol=1e-7, atol=1e-10)


def test_structural_damping_spec_checks_hidden():
    a = pt.matrix("a")
    with pytest.raises(ValueError, match="not a function of preactivation"):
        hf.StructuralDamping(a, hidden=pt.matrix("other"))
    with pytest.raises(ValueError, match="mask is not supported"):
        hf.StructuralDamping(a, hidden=0.5 * (pt.tanh(a) + 1), mask=pt.matrix("m"))


def network_forward(theta, x, shapes):
    y = x
    params = unflatten(theta, shapes)
    for W, b in zip(params[::2], params[1::2]):
        s = y @ W + b
        y = 1 / (1 + np.exp(-s))
    return s, y


def test_gradient_and_product_are_plain_means_over_items(xor):
    opt = xor["optimizer"]
    rng = np.random.default_rng(1)
    for p in opt.p:  # moderate weights keep the numpy reference away from saturation
        p.set_value(0.3 * rng.normal(size=p.get_value().shape))
    shapes = [p.get_value().shape for p in opt.p]
    theta = values(opt.p)
    items = []
    for rows in (3, 8):  # items of different sizes: a mean over rows would weigh them 3:8
        x = rng.integers(0, 2, size=(rows, 2)).astype(np.float64)
        items.append([x, (x[:, :1] != x[:, 1:]).astype(np.float64)])

    def item_loss(t, x, target):
        y = network_forward(t, x, shapes)[1]
        return np.mean(-target * np.log(y) - (1 - target) * np.log(1 - y))

    losses = [item_loss(theta, x, t) for x, t in items]
    grads = [complex_step_jacobian(lambda th: item_loss(th, x, t), theta)[0] for x, t in items]
    inner = opt.optimizer
    loss, _, g = inner.loss_grad(inner._items(items, "items"))
    assert loss == pytest.approx(np.mean(losses), rel=1e-12)
    np.testing.assert_allclose(g, np.mean(grads, axis=0), rtol=1e-8, atol=1e-12)
    assert abs(loss - (3 * losses[0] + 8 * losses[1]) / 11) > 1e-3  # the test tells the two means apart
    # Martens' preconditioner squares per-item gradients (not per-row ones).
    squares = inner.mean_square_gradients(inner._items(items, "items"), 2)
    np.testing.assert_allclose(squares, np.mean(np.square(grads), axis=0), rtol=1e-8, atol=1e-16)

    v = rng.normal(size=theta.size)
    products = []
    for x, _ in items:
        J_s = complex_step_jacobian(lambda th: network_forward(th, x, shapes)[0], theta)
        y = network_forward(theta, x, shapes)[1].ravel()
        products.append(J_s.T @ (y * (1 - y) * (J_s @ v)) / len(x))
    opt.cg_dataset = SequenceDataset([[x for x, _ in items], [t for _, t in items]], None, 2, rng=0)
    np.testing.assert_allclose(opt.batch_Gv(v, lambda_=0.25), np.mean(products, axis=0) + 0.25 * v,
                               rtol=1e-8, atol=1e-12)


# --------------------------------------------------------------------------- checkpoint and resume


def small_xor(num_updates, optimizer=None, **train):
    """A theano-hf script: seed, model, data, datasets, train (a 2-6-1 network, 150 items)."""
    np.random.seed(5)
    p, inputs, s, costs = ex.sigmoid_network((2, 6, 1))
    train_data, valid_data = ex.xor_items(150, 20), ex.xor_items(50, 20)
    gradient = SequenceDataset(train_data, None, 40)
    cg = SequenceDataset(train_data, None, 10)
    valid = SequenceDataset(valid_data, None, 50)
    optimizer = optimizer or hf_optimizer(p, inputs, s, costs)
    best = optimizer.train(gradient, cg, initial_lambda=1.0, preconditioner=True, validation=valid,
                           num_updates=num_updates, **train)
    return optimizer, best


@pytest.mark.filterwarnings("ignore:.*resuming from:UserWarning")  # num_updates 3, then 6
def test_second_call_resumes_from_save_progress(tmp_path):
    path = tmp_path / "progress.h5"
    whole, whole_best = small_xor(6)
    whole_rows = list(whole.optimizer.history)
    first, _ = small_xor(3, save_progress=path)
    assert len(first.optimizer.history) == 3
    with h5py.File(path, "r") as f:  # hf's HDF5 checkpoint, with the datasets' state
        assert {"gradient", "cg", "validation"} <= set(f["datasets"])
    # The script run again (same seed, same data) continues at update 4. It reuses the compiled
    # optimizer of the first run to save a compilation: resuming replaces all of its state.
    second, best = small_xor(6, optimizer=whole, save_progress=path)
    rows = second.optimizer.history
    assert [r["update"] for r in rows] == [1, 2, 3, 4, 5, 6]
    for resumed, uninterrupted in zip(rows, whole_rows):
        assert resumed["loss"] == uninterrupted["loss"]
        assert resumed["valid_loss"] == uninterrupted["valid_loss"]
    for a, b in zip(best, whole_best):
        np.testing.assert_array_equal(a, b)
    assert checkpoint.load(path)["loop"]["call_updates"] == 6


# --------------------------------------------------------------------------- SequenceDataset


def test_sequence_dataset_cuts_sequences_into_items():
    seq = [np.arange(25.0).reshape(25, 1)]
    lengths = lambda ds: sorted(len(item[0]) for item in ds.items)  # noqa: E731
    assert lengths(SequenceDataset([seq], 10, 1, rng=0)) == [10, 10]  # the 5-step tail is dropped
    assert lengths(SequenceDataset([seq], 10, 1, minimum_size=5, rng=0)) == [5, 10, 10]
    assert lengths(SequenceDataset([seq], 4, 1, minimum_size=22, rng=0)) == [4]  # theano-hf's rule
    whole = SequenceDataset([seq, [np.ones(25)]], None, 1, rng=0)
    assert len(whole.items) == 1 and len(whole.items[0]) == 2
    starts = sorted(item[0][0, 0] for item in SequenceDataset([seq], 10, 1, rng=0).items)
    assert starts == [0.0, 10.0]


def test_sequence_dataset_passes_wrap_and_reshuffle():
    ds = SequenceDataset([[np.full((2, 1), float(i)) for i in range(5)]], None, 2, rng=0)
    ids = lambda items: [int(item[0][0, 0]) for item in items]  # noqa: E731
    order = ids(ds.items)
    assert ids(ds.iterate(update=False)) == ids(ds.iterate(update=False)) == order[:2]
    assert ids(ds.iterate()) == order[:2]
    assert ids(ds.iterate()) == order[2:4]
    assert ids(ds.iterate()) == [order[4], order[0]]  # wraps around the list
    assert ds.current_batch == 0 and sorted(ids(ds.items)) == [0, 1, 2, 3, 4]  # then reshuffles


def test_sequence_dataset_order_follows_numpy_seed_and_state_round_trips(tmp_path):
    data = [[np.full((3, 1), float(i)) for i in range(7)]]
    np.random.seed(11)
    a = SequenceDataset(data, None, 3)
    np.random.seed(11)
    b = SequenceDataset(data, None, 3)
    assert [x[0][0, 0] for x in a.items] == [x[0][0, 0] for x in b.items]
    for _ in range(4):
        list(a.iterate())
    checkpoint.save(tmp_path / "ds.h5", {"ds": a.state_dict()})
    c = SequenceDataset(data, None, 3, rng=99)
    c.load_state_dict(checkpoint.load(tmp_path / "ds.h5")["ds"])
    for _ in range(6):
        assert [x[0][0, 0] for x in a.iterate()] == [x[0][0, 0] for x in c.iterate()]
    with pytest.raises(ValueError, match="number_batches"):
        SequenceDataset(data, None, 2).load_state_dict(a.state_dict())


def test_sequence_dataset_errors_name_the_argument():
    seqs = [np.zeros((12, 1))]
    with pytest.raises(ValueError, match="number_batches must be a positive integer, got 0"):
        SequenceDataset([seqs], None, 0)
    with pytest.raises(ValueError, match="batch_size.*-3"):
        SequenceDataset([seqs], -3, 1)
    with pytest.raises(TypeError, match="data must be a list"):
        SequenceDataset(np.zeros((2, 3)), None, 1)
    with pytest.raises(ValueError, match="same number of sequences"):
        SequenceDataset([seqs, seqs * 2], None, 1)
    with pytest.raises(ValueError, match="same length"):
        SequenceDataset([seqs, [np.zeros((11, 1))]], 5, 1)
    with pytest.raises(ValueError, match="minimum_size=20"):
        SequenceDataset([seqs], 5, 1, minimum_size=20)
    with pytest.raises(ValueError, match=r"data\[0\]\[0\] holds NaN"):
        SequenceDataset([[np.full((3, 1), np.nan)]], None, 1)


# --------------------------------------------------------------------------- hf_optimizer's arguments


def tiny_datasets():
    np.random.seed(0)
    data = ex.xor_items(30, 8)
    return (SequenceDataset(data, None, 10), SequenceDataset(data, None, 5), SequenceDataset(data, None, 10))


def test_train_refuses_unknown_keywords_and_bad_values(xor):
    opt = xor["optimizer"]
    g, c, _ = tiny_datasets()
    with pytest.raises(TypeError, match="learning_rate"):
        opt.train(g, c, learning_rate=0.1)
    bad = [("initial_lambda", -1.0), ("mu", float("nan")), ("num_updates", 0), ("patience", -2),
           ("max_cg_iterations", 0), ("validation_frequency", 0)]
    for name, value in bad:
        with pytest.raises(ValueError, match=f"{name}.*{value}"):
            opt.train(g, c, **{name: value})
    with pytest.raises(TypeError, match="validation"):
        opt.train(g, c, validation=3)
    with pytest.raises(TypeError, match="cg_dataset"):
        opt.train(g, [[1.0]])
    with pytest.raises(TypeError, match="preconditioner"):
        opt.train(g, c, preconditioner="yes")


def test_constructor_errors():
    x = pytensor.shared(np.zeros(3))
    s = pt.sum(x)
    with pytest.raises(ValueError, match="costs is an empty list"):
        hf_optimizer([x], [], s, [])
    with pytest.raises(ValueError, match="ha=.*without h"):
        hf_optimizer([x], [], s, [s**2], ha=s)


def test_validation_callable_none_and_global_backtracking(xor):
    opt = xor["optimizer"]
    g, c, v = tiny_datasets()
    opt.train(g, c, validation=lambda: [0.5, 2.0], num_updates=1)
    row = opt.optimizer.history[-1]
    assert row["valid_loss"] == 0.5 and row["valid_costs[1]"] == 2.0
    # Without validation, nothing is validated and the last parameters come back, whatever patience says.
    best = opt.train(g, c, num_updates=2, patience=0)
    assert "valid_loss" not in opt.optimizer.history[-1] and opt.optimizer.call_updates == 2
    for value, p in zip(best, opt.p):
        np.testing.assert_array_equal(value, p.get_value())
    opt.train(g, c, validation=v, global_backtracking=True, num_updates=1)
    assert opt.optimizer.config.backtracking == "global"  # the lowest kept iterate (hf.damping.backtrack)
    opt.train(g, c, validation=v, num_updates=1)
    assert opt.optimizer.config.backtracking == "martens"


def test_theano_hf_pickle_at_save_progress_is_refused(xor, tmp_path):
    import pickle

    path = tmp_path / "theano_hf_progress.pkl"
    path.write_bytes(pickle.dumps((None, [0, np.inf, None], 0.1, 3, [])))
    before = [p.get_value().copy() for p in xor["optimizer"].p]
    g, c, _ = tiny_datasets()
    with pytest.raises(checkpoint.CheckpointError):
        xor["optimizer"].train(g, c, save_progress=path)
    for value, p in zip(before, xor["optimizer"].p):
        np.testing.assert_array_equal(value, p.get_value())


def test_cg_helper_solves_a_linear_system(xor):
    # theano-hf's test_cg drives cg(b) with batch_Gv and quick_cost replaced; do the same.
    opt = xor["optimizer"]
    rng = np.random.default_rng(2)
    Q = np.linalg.qr(rng.normal(size=(20, 20)))[0]
    A = Q @ np.diag(np.linspace(1.0, 10.0, 20)) @ Q.T
    b = rng.normal(size=20)
    opt.batch_Gv = lambda v: A @ v
    opt.quick_cost = lambda delta=0: 0.0
    opt.preconditioner = opt.global_backtracking = False
    try:
        cost, x, iteration, iterations = opt.cg(b)
    finally:
        del opt.batch_Gv, opt.quick_cost, opt._cg_last_x
    assert cost == 0.0 and iteration == iterations <= 60
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)


def test_products_without_the_forward_cache_give_the_same_update(memorization):
    # Over its budget the forward pass is recomputed in every product (theano-hf's way).
    from hf.update import DampingState

    opt, inner = memorization["optimizer"], memorization["optimizer"].optimizer
    np.random.seed(4)
    (xs,) = ex.memorization_items(12, 8)
    # From a fresh start like the example's: near a solution CG magnifies the products' last-bit
    # differences (the two graphs round differently) far more.
    start = [0.2 * np.random.uniform(-1, 1, p.get_value().shape) for p in opt.p]
    rows = []
    for budget in (2**30, 0):
        for p, value in zip(opt.p, start):
            p.set_value(value)
        inner.state = DampingState(0.5, None)
        inner.forward_cache_budget = budget
        opt.train(SequenceDataset([xs], None, 12, rng=0), SequenceDataset([xs], None, 6, rng=1),
                  initial_lambda=0.5, mu=1.0, num_updates=1)
        rows.append(dict(inner.history[-1], cached=inner.forward_cache))
    del inner.forward_cache_budget
    assert rows[0]["cached"] and not rows[1]["cached"]
    assert rows[0]["cg_iters"] == rows[1]["cg_iters"]
    assert rows[1]["new_loss"] == pytest.approx(rows[0]["new_loss"], rel=1e-9)
    assert rows[1]["step_norm"] == pytest.approx(rows[0]["step_norm"], rel=1e-9)
