"""Per-example squared gradients in one pass against one gradient per example."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode

from hf.per_example import square_gradient_sums

from . import models

# Tiny graphs: PyTensor's Python implementations compile in a fraction of a second.
function = pytensor.function
PY = Mode(linker="py", optimizer="fast_compile")


def loop_reference(cost, params, inputs, data):
    """Σ_i (∇f_i)², each example's gradient from its own compiled call on a batch of one."""
    grad = function(inputs, [pt.concatenate([g.flatten() for g in pytensor.grad(cost, params)])], mode=PY)
    n = len(data[0])
    return sum(grad(*[d[i:i + 1] for d in data])[0] ** 2 for i in range(n))


@pytest.mark.parametrize("loss", ["softmax", "logistic", "squared"])
def test_mlp_matches_the_loop(loss):
    m = models.mlp(loss, n=7, seed=3)
    expr = square_gradient_sums(m.cost, m.params, m.inputs)
    assert expr is not None
    got = function(m.inputs, expr, mode=PY)(*m.data)
    np.testing.assert_allclose(got, loop_reference(m.cost, m.params, m.inputs, m.data), rtol=1e-10, atol=1e-14)


def test_deep_autoencoder_with_dot_and_shared_output():
    """pt.dot layers, a linear code layer, and two monitors of the same z: the bench's autoencoder shape."""
    rng = np.random.default_rng(0)
    x = pt.matrix("x")
    sizes = [6, 4, 2, 4, 6]
    h, params = x, []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = pytensor.shared(rng.normal(size=(a, b)), name=f"W{i}")
        c = pytensor.shared(rng.normal(size=b) * 0.1, name=f"c{i}")
        params += [W, c]
        h = pt.dot(h, W) + c
        if i != 1 and i < len(sizes) - 2:
            h = pt.sigmoid(h)
    cost = pt.mean(pt.sum(pt.softplus(h) - x * h, axis=1))
    X = rng.random((9, 6))
    expr = square_gradient_sums(cost, params, [x])
    got = function([x], expr, mode=PY)(X)
    np.testing.assert_allclose(got, loop_reference(cost, params, [x], [X]), rtol=1e-10, atol=1e-14)


def test_no_closed_form_for_a_scan_or_a_reused_parameter():
    r = models.rnn()
    assert square_gradient_sums(r.cost, r.params, r.inputs) is None
    x = pt.matrix("x")
    W = pytensor.shared(np.ones((3, 3)), name="W")
    tied = pt.mean(pt.sum(pt.dot(pt.tanh(pt.dot(x, W)), W), axis=1))  # W used twice
    assert square_gradient_sums(tied, [W], [x]) is None
