"""The forward cache under a byte budget: the same products, bounded memory."""

import numpy as np
import pytest

import hf
from hf.reduce import Batch, ExampleMean

from . import models


def _numpy_product():
    """A forward pass and a product in numpy: cache = 2x, product = mean of (cache · v) per row."""
    calls = {"forward": 0}

    def forward(x):
        calls["forward"] += 1
        return [2.0 * x]

    def fn(x, cache, v):
        return [np.mean(cache @ v)]

    return forward, fn, calls


def test_budget_bounds_the_cache_and_keeps_the_products():
    X = np.random.default_rng(0).normal(size=(10, 3))
    batch, v = Batch((X,), (0,)), np.array([1.0, -2.0, 0.5])
    reference = np.mean(2.0 * X @ v)  # the whole batch's mean, by hand
    forward, fn, calls = _numpy_product()
    full = ExampleMean(chunk_size=2).cached(forward, fn, batch)
    assert full.nbytes == X.nbytes * 1 and calls["forward"] == 5
    chunk_bytes = 2 * 3 * 8
    forward, fn, calls = _numpy_product()
    bounded = ExampleMean(chunk_size=2).cached(forward, fn, batch, max_bytes=2 * chunk_bytes)
    assert bounded.nbytes == 2 * chunk_bytes  # two of the five chunks kept
    before = calls["forward"]
    for _ in range(3):
        np.testing.assert_allclose(bounded(v)[0], reference, rtol=1e-14)
        np.testing.assert_allclose(full(v)[0], reference, rtol=1e-14)
    assert calls["forward"] - before == 3 * 3  # the three uncached chunks, in every product


def test_optimizer_update_is_the_same_under_a_budget():
    m = models.mlp("softmax", n=24, seed=2)
    X, Y = m.data
    values = [p.get_value().copy() for p in m.params]
    runs = {}
    for budget in (None, 1):
        for p, v0 in zip(m.params, values):
            p.set_value(v0.copy())
        opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, chunk_size=6, cache_bytes=budget, max_cg_iters=20)
        tm, _ = next(opt.iterate([X, Y], max_updates=1, progress=False))
        runs[budget] = (tm, [p.get_value().copy() for p in m.params], opt.forward_cache_bytes)
    (a, pa, bytes_a), (b, pb, bytes_b) = runs[None], runs[1]
    assert bytes_a > 0 and bytes_b == 0
    assert a["cg_iters"] == b["cg_iters"] and a["rho"] == pytest.approx(b["rho"], rel=1e-10)
    for x, y in zip(pa, pb):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-14)


def test_cache_bytes_must_be_positive():
    m = models.mlp("softmax", n=4)
    with pytest.raises(ValueError, match="cache_bytes"):
        hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, cache_bytes=0)


def test_forward_cache_holds_about_what_a_hand_written_product_keeps():
    """A hand-written Gauss-Newton product of a logistic autoencoder keeps, per row, each
    layer's output and each hidden layer's derivative h(1 - h); hf's cache stays within
    1.5x of that (repeated forward values merged, cheap arithmetic recomputed), and its
    products equal the uncached ones."""
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    sizes, n = (20, 64, 32, 4, 32, 64, 20), 5
    x = pt.matrix("x")
    h, params = x, []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = pytensor.shared(rng.normal(size=(a, b)) / np.sqrt(a), name=f"W{i}")
        c = pytensor.shared(np.zeros(b), name=f"c{i}")
        params += [W, c]
        h = pt.dot(h, W) + c
        if i not in (2, len(sizes) - 2):  # linear code layer and output pre-sigmoid
            h = pt.sigmoid(h)
    cost = pt.mean(pt.sum(pt.softplus(h) - x * h, axis=1))
    opt = hf.HFOptimizer(cost, h, params, [x])
    batch = Batch((rng.random((n, sizes[0])),), (0,))
    cached = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
    hidden = [b for i, b in enumerate(sizes[1:-1]) if i != 2]
    hand_written = 8 * n * (sum(sizes[1:]) + sum(hidden))
    assert cached.nbytes <= 1.5 * hand_written, (cached.nbytes, hand_written)
    v = rng.normal(size=opt.n_params)
    np.testing.assert_allclose(cached(v)[0], opt.gv(v, batch), rtol=1e-12, atol=1e-14)


def test_means_in_place_are_the_same_bits_and_leave_callers_arrays_alone():
    """The size-weighted mean scales a compiled function's fresh outputs in place: the
    result has the bits of Σ_c n_c·f_c / N in numpy, and an array a plain Python
    function returns (and may keep) is never overwritten."""
    import pytensor
    import pytensor.tensor as pt

    x = pt.matrix("x")
    f = pytensor.function([x], [x.mean(axis=0) * 3.0, x.mean()])
    X = np.random.default_rng(3).normal(size=(7, 4))
    batch = Batch((X,), (0,))
    reduce = ExampleMean(chunk_size=3)  # chunks of 3, 3, 1 examples
    parts = [(*f(X[i:i + 3]), len(X[i:i + 3])) for i in (0, 3, 6)]  # each chunk's own outputs
    ref = (parts[0][2] * parts[0][0] + parts[1][2] * parts[1][0] + parts[2][2] * parts[2][0]) / 7
    for _ in range(2):
        vec, scalar = reduce(f, batch)
        np.testing.assert_array_equal(vec, ref)
        assert scalar == (3 * parts[0][1] + 3 * parts[1][1] + 1 * parts[2][1]) / 7
    kept = np.arange(4.0)

    def plain(x):
        return [kept]

    np.testing.assert_array_equal(reduce(plain, batch)[0], kept)
    np.testing.assert_array_equal(kept, np.arange(4.0))  # not scaled in place


def test_one_chunk_mean_is_the_functions_outputs_and_the_callers_own():
    """A batch of one chunk: the mean is the function's own outputs bit for bit (no ·n/n round trip), in
    arrays the caller may overwrite without touching what a plain Python function keeps; a weightless
    chunk (n = 0) still has no mean."""
    import pytensor
    import pytensor.tensor as pt

    x = pt.matrix("x")
    f = pytensor.function([x], [x.mean(axis=0) * 3.0, x.mean()])
    X = np.random.default_rng(4).normal(size=(7, 4))
    vec, scalar = f(X)
    for reduce in (ExampleMean(), ExampleMean(chunk_size=7)):
        got_vec, got_scalar = reduce(f, Batch((X,), (0,)))
        np.testing.assert_array_equal(got_vec, vec)
        assert got_scalar == scalar and isinstance(got_scalar, np.float64)
        got_vec[:] = 0.0  # the caller's own array
        np.testing.assert_array_equal(reduce(f, Batch((X,), (0,)))[0], vec)
    kept = np.arange(4.0)
    out = ExampleMean()(lambda x: [kept], Batch((X,), (0,)))[0]
    out += 1.0
    np.testing.assert_array_equal(kept, np.arange(4.0))
    cached = ExampleMean().cached(lambda x: [2.0 * x], lambda x, c, v: [np.mean(c @ v, keepdims=True)],
                                  Batch((X,), (0,)))
    v = np.arange(4.0)
    np.testing.assert_array_equal(cached(v)[0], [np.mean(2.0 * X @ v)])
    with pytest.raises(ValueError, match="no examples"):
        ExampleMean()._mean(iter([([np.ones(2)], 0, True)]))
