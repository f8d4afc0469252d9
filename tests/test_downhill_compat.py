"""downhill 0.4.0 behaviours that code written for it relies on, as :mod:`hf.first_order` gives them.

Hyperparameters become shared scalars with downhill's attribute names once
``iterate`` starts (so a learning rate can change between updates without a
new compile); ``iterate`` takes every keyword downhill defines; ``Dataset``
takes the inputs downhill documents (one array, shared variables, pandas,
sparse, ``batch_size`` of 0) and names unnamed datasets as downhill does.
"""

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.sparse

import hf.first_order as downhill
from hf import _compile
from hf.dataset import InputTypeError

from .test_first_order import B0, W0, Model, gamma, make_data, np_grads

ALGOS = ["sgd", "nag", "rprop", "adagrad", "rmsprop", "adadelta", "esgd", "adam"]


def value(x):
    return float(x.get_value())


def build(algo, m=None, **kwargs):
    m = Model() if m is None else m
    return m, downhill.build(algo, m.loss, params=[m.W, m.b], inputs=[m.x, m.y], **kwargs)


def first(opt, data, **kwargs):
    """Start iterate() and return after its first update (the loop left with break)."""
    it = opt.iterate(data, progress=False, **kwargs)
    out = next(it)
    it.close()
    return out


# --------------------------------------------------------------------------- hyperparameters


@pytest.mark.parametrize("algo", ALGOS)
def test_hyperparameters_are_shared_scalars_with_downhills_names_and_defaults(algo):
    _, opt = build(algo)
    first(opt, [*make_data()])
    expected = {
        "sgd": dict(learning_rate=1e-4),
        "nag": dict(learning_rate=1e-4),
        "rprop": dict(learning_rate=1e-4, step_increase=1.01, step_decrease=0.99, min_step=0.0, max_step=100.0),
        "adagrad": dict(learning_rate=1e-4, epsilon=1e-8),
        "rmsprop": dict(learning_rate=1e-4, ewma=gamma(14), epsilon=1e-8),
        "adadelta": dict(ewma=gamma(14), epsilon=1e-8),
        "esgd": dict(learning_rate=1e-4, ewma=gamma(14), epsilon=1e-8),
        "adam": dict(learning_rate=1e-4, beta1=gamma(7), beta2=gamma(69), beta1_decay=1 - 1e-6, epsilon=1e-8),
    }[algo]
    for name, number in expected.items():
        shared = getattr(opt, name)
        assert isinstance(shared, pytensor.compile.SharedVariable), name
        assert shared.dtype == "float64" and shared.eval() == pytest.approx(number, rel=1e-15), name
    # The loop's settings and the step's structure stay plain values, as in downhill.
    assert (opt.momentum, opt.patience, opt.max_gradient_norm, opt.max_gradient_elem) == (0.0, 5, 0.0, 0.0)
    assert opt.nesterov is (algo == "nag")


def test_keywords_set_the_shared_scalars_and_keep_their_own_attributes():
    _, opt = build("adam")
    first(opt, [*make_data()], learning_rate=0.3, beta1_halflife=10, beta2_halflife=20, beta1_decay=0.5,
          rms_regularizer=11)
    assert [value(getattr(opt, n)) for n in ("learning_rate", "beta1", "beta2", "beta1_decay", "epsilon")] == \
        pytest.approx([0.3, gamma(10), gamma(20), 0.5, 11])
    assert (opt.beta1_halflife, opt.beta2_halflife, opt.rms_regularizer) == (10, 20, 11)
    _, opt = build("rprop")
    with pytest.warns(downhill.hyperparameters.HyperparameterWarning):  # out of range: accepted, as downhill
        first(opt, [*make_data()], rprop_increase=22, rprop_decrease=101, rprop_min_step=50, rprop_max_step=-10)
    assert [value(getattr(opt, n)) for n in ("step_increase", "step_decrease", "min_step", "max_step")] == \
        [22, 101, 50, -10]


def count_compiles(monkeypatch):
    calls = []
    real = _compile.function

    def counting(*args, **kwargs):
        calls.append(kwargs.get("name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_compile, "function", counting)
    return calls


def test_learning_rate_changes_between_updates_without_compiling(monkeypatch):
    m, opt = build("sgd")
    x, y = make_data()
    calls = count_compiles(monkeypatch)
    it = opt.iterate([x, y], batch_size=len(x), learning_rate=0.1, max_updates=3, progress=False)
    next(it)
    compiled = len(calls)
    assert compiled == 2  # the step and the evaluation
    W, b = m.W.get_value(), m.b.get_value()
    opt.learning_rate.set_value(0.5)
    next(it)
    gW, gb = np_grads(W, b, x, y)
    np.testing.assert_allclose(m.W.get_value(), W - 0.5 * gW, rtol=1e-12)
    np.testing.assert_allclose(m.b.get_value(), b - 0.5 * gb, rtol=1e-12)
    opt.learning_rate.set_value(0.0)  # a frozen step
    W = m.W.get_value()
    next(it)
    np.testing.assert_array_equal(m.W.get_value(), W)
    it.close()
    # A new call with another learning rate reuses the compiled step too.
    first(opt, [x, y], batch_size=len(x), learning_rate=0.01)
    assert len(calls) == compiled and value(opt.learning_rate) == 0.01


def test_halflife_and_regularizer_change_without_compiling(monkeypatch):
    _, opt = build("rmsprop")
    calls = count_compiles(monkeypatch)
    first(opt, [*make_data()], rms_halflife=5, rms_regularizer=1e-4)
    n = len(calls)
    first(opt, [*make_data()], rms_halflife=9, rms_regularizer=1e-2, learning_rate=0.2)
    assert len(calls) == n
    assert (value(opt.ewma), value(opt.epsilon), value(opt.learning_rate)) == pytest.approx((gamma(9), 1e-2, 0.2))


def test_rprop_step_sizes_start_from_the_learning_rate_of_each_call():
    m, opt = build("rprop")
    x, y = make_data()
    for lr in (0.01, 0.002):
        m.reset()
        first(opt, [x, y], batch_size=len(x), learning_rate=lr)
        # First step: no previous gradient, so every step size is the learning rate.
        gW, _ = np_grads(W0, B0, x, y)
        np.testing.assert_allclose(m.W.get_value(), W0 - lr * np.sign(gW), rtol=1e-12)


def test_a_symbolic_learning_rate_is_used_as_given():
    m, opt = build("sgd")
    x, y = make_data()
    lr = pytensor.shared(np.float64(0.1), name="my_lr")
    first(opt, [x, y], batch_size=len(x), learning_rate=lr)
    assert opt.learning_rate is lr
    gW, _ = np_grads(W0, B0, x, y)
    np.testing.assert_allclose(m.W.get_value(), W0 - 0.1 * gW, rtol=1e-12)


# --------------------------------------------------------------------------- keywords


def test_iterate_takes_downhills_build_and_minimize_keywords():
    m, opt = build("sgd", monitor_gradients=True)
    x, y = make_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimizer's own values: nothing to say
        tm, _ = first(opt, [x, y], monitor_gradients=True, algo="SGD", params=[m.W, m.b], inputs=[m.x, m.y],
                      updates=(), monitors=())
    assert "grad(W)" in tm
    with pytest.warns(UserWarning, match=r"monitor_gradients=False ignored: it is an argument of build\(\)"):
        first(opt, [x, y], monitor_gradients=False)
    with pytest.warns(UserWarning, match=r"algo='adam' ignored"):
        first(opt, [x, y], algo="adam")
    _, esgd = build("esgd", hv_method="lop")
    with pytest.warns(UserWarning, match=r"hv_method='rop' ignored"):
        first(esgd, [x, y], hv_method="rop")


def test_minimize_passes_hv_method_to_esgd_and_ignores_it_elsewhere(monkeypatch):
    m = Model()
    built = []
    real = downhill.base.build
    monkeypatch.setattr(downhill.base, "build", lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    downhill.minimize(m.loss, [*make_data()], algo="esgd", hv_method="grad", max_updates=1, progress=False)
    assert built[-1].hv_method == "grad"
    with pytest.warns(UserWarning, match=r"hv_method='grad' ignored"):
        downhill.minimize(m.loss, [*make_data()], algo="sgd", hv_method="grad", max_updates=1, progress=False)


def test_train_and_valid_batches_size_the_epoch_and_the_validation():
    _, opt = build("sgd")
    x, y = make_data()
    passes = []
    batches = opt._batches
    opt._batches = lambda ds: passes.append((ds.name, ds.iteration_size)) or batches(ds)
    first(opt, [x, y], batch_size=10, train_batches=2, valid_batches=1, valid=[x, y])
    assert passes == [("valid", 1), ("train", 2)]  # the first validation, then the first epoch
    with pytest.raises(TypeError, match="both train_batches and iteration_size"):
        opt.iterate([x, y], train_batches=2, iteration_size=3)


def test_a_misspelt_keyword_still_raises_naming_it():
    _, opt = build("sgd")
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) 'monitor_gradient'"):
        opt.iterate([*make_data()], monitor_gradient=True)
    with pytest.raises(TypeError, match=r"'learnig_rate'"):
        opt.get_updates(learnig_rate=0.1)


# --------------------------------------------------------------------------- params


def test_downhills_private_names_for_params_and_best_params():
    m, opt = build("sgd")
    assert opt._params == [m.W, m.b]
    opt._best_params = [np.ones((3, 2)), np.zeros(2)]
    opt.set_params("best")
    np.testing.assert_array_equal(m.W.get_value(), np.ones((3, 2)))
    assert opt._best_params is opt.best_params


# --------------------------------------------------------------------------- datasets


def test_unnamed_datasets_are_numbered_as_in_downhill():
    a, b = downhill.Dataset([np.zeros((4, 1))]), downhill.Dataset([np.zeros((4, 1))])
    assert a.name.startswith("dataset") and a.name[7:].isdigit()
    assert int(b.name[7:]) > int(a.name[7:])
    assert downhill.Dataset([np.zeros((4, 1))], name="foo").name == "foo"


@pytest.mark.parametrize("size", [0, -1])
def test_batch_size_zero_or_less_is_one_batch_of_everything(size):
    x = np.arange(40.0).reshape(20, 2)
    ds = downhill.Dataset([x], batch_size=size)
    assert (ds.batch_size, ds.n_batches, ds.iteration_size) == (20, 1, 1)
    (batch,) = list(ds)
    np.testing.assert_array_equal(batch[0], x)


def test_iteration_size_batches_per_call_from_a_persistent_cursor():
    x = np.arange(40.0)[:, None]
    ds = downhill.Dataset([x], batch_size=5, iteration_size=3, rng=0)
    seen = [b[0][0, 0] for _ in range(3) for b in ds]  # 9 batches: one pass of 8, then one more
    assert len(seen) == 9 and sorted(seen[:8]) == list(range(0, 40, 5)) and ds.epoch == 1


def test_one_array_alone_is_a_dataset_of_one_input():
    x = np.random.default_rng(0).normal(size=(12, 3))
    alone, listed = downhill.Dataset(x, batch_size=5, rng=1), downhill.Dataset([x], batch_size=5, rng=1)
    for a, b in zip(alone, listed):
        assert len(a) == 1
        np.testing.assert_array_equal(a[0], b[0])


def test_shared_variable_inputs_give_their_values():
    x = np.random.default_rng(0).normal(size=(40, 2))
    ds = downhill.Dataset([pytensor.shared(x)], batch_size=10, rng=4)
    batches = list(ds)
    assert len(batches) == 4 and all(isinstance(b[0], np.ndarray) and b[0].shape == (10, 2) for b in batches)
    np.testing.assert_array_equal(np.sort(np.concatenate([b[0] for b in batches]), axis=0), np.sort(x, axis=0))


def test_pandas_and_sparse_inputs():
    pd = pytest.importorskip("pandas")
    x = np.random.default_rng(0).normal(size=(40, 2))
    ds = downhill.Dataset([pd.DataFrame(x)], batch_size=10)
    assert ds.n_batches == 4 and all(isinstance(b[0], np.ndarray) for b in ds)
    for fmt in (scipy.sparse.csr_matrix, scipy.sparse.csc_matrix):
        ds = downhill.Dataset([fmt(x)], batch_size=10)
        batches = list(ds)
        assert len(batches) == 4 and all(b[0].format == fmt(x).format and b[0].shape == (10, 2) for b in batches)


def test_an_input_that_is_not_an_array_raises_type_and_value_error():
    with pytest.raises(InputTypeError, match=r"input 0 has type list") as info:
        downhill.Dataset([[1]])
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_minimize_takes_one_array_and_a_dataset_is_checked_against_the_graph():
    x = pt.matrix("x")
    w = pytensor.shared(np.zeros(3), name="w")
    loss = ((x.dot(w) - 1) ** 2).mean()
    downhill.minimize(loss, np.ones((64, 3)), algo="sgd", learning_rate=0.1, max_updates=3, progress=False)
    assert w.get_value() == pytest.approx(np.full(3, w.get_value()[0])) and w.get_value()[0] > 0
    with pytest.raises(ValueError, match="gives 2 arrays per batch but the graph has 1 inputs"):
        downhill.minimize(loss, downhill.Dataset([np.ones((4, 3)), np.ones((4, 3))]), max_updates=1)
    v = pytensor.shared(np.zeros(2), name="v")
    with pytest.raises(ValueError, match="train is a Dataset but the graph has no inputs; give train=None"):
        downhill.minimize(((v - 1) ** 2).sum(), downhill.Dataset(np.zeros((1, 1))), max_updates=1)


def test_nag_minimizes_rosenbrock_in_shared_variables_with_no_data():
    """downhill's NAG example on a graph without inputs: train=None, patience in validations."""
    x = pytensor.shared(-3 + np.zeros(2, "f"), name="x")
    loss = (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()
    downhill.minimize(loss, None, algo="nag", learning_rate=0.001, momentum=0.9, patience=1, min_improvement=0.1,
                      max_gradient_norm=1, progress=False)
    np.testing.assert_allclose(x.get_value(), [1, 1], atol=1e-4)


# --------------------------------------------------------------------------- the bench script


def test_suite_rewrites_are_mechanical():
    from bench.downhill_suite import rewrite

    text = ("import downhill\nimport theano\nimport theano.tensor as TT\nx = theano.shared(1)\n"
            "isinstance(f, ss.csc.csc_matrix)\nimport downhill_extra\n")
    assert rewrite(text) == ("import hf.first_order as downhill\nimport pytensor\nimport pytensor.tensor as TT\n"
                             "x = pytensor.shared(1)\nisinstance(f, ss.csc_matrix)\nimport downhill_extra\n")
