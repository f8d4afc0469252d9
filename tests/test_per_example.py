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
    expr, n = square_gradient_sums(m.cost, m.params, m.inputs)
    got, count = function(m.inputs, [expr, n], mode=PY)(*m.data)
    assert count == 7
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
    expr, _ = square_gradient_sums(cost, params, [x])
    got = function([x], expr, mode=PY)(X)
    np.testing.assert_allclose(got, loop_reference(cost, params, [x], [X]), rtol=1e-10, atol=1e-14)


def test_no_closed_form_for_a_scan_or_a_reused_parameter():
    r = models.rnn()
    assert square_gradient_sums(r.cost, r.params, r.inputs) is None
    x = pt.matrix("x")
    W = pytensor.shared(np.ones((3, 3)), name="W")
    tied = pt.mean(pt.sum(pt.dot(pt.tanh(pt.dot(x, W)), W), axis=1))  # W used twice
    assert square_gradient_sums(tied, [W], [x]) is None


# --------------------------------------------------------------------------- in the optimizer
import hf  # noqa: E402


def _mlp_batch(m):
    return hf.Batch(tuple(m.data), (0, 0))


def test_optimizer_preconditioner_squares_match_the_loop():
    m = models.mlp("softmax", n=9, seed=4)
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, preconditioner=True)
    got = opt.mean_square_gradients(_mlp_batch(m), 6)
    ref = loop_reference(m.cost, m.params, m.inputs, [d[:6] for d in m.data]) / 6
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-14)
    assert opt._square_means_ok and "hf_square_means" in opt.compile_seconds


def test_rows_that_are_not_examples_fall_back_to_the_loop(caplog):
    """Centering over the batch couples the rows: the closed form's assumption fails, the check sees it."""
    m = models.mlp("squared", n=8, seed=5)
    x = m.inputs[0]
    W1, b1, W2, b2 = m.params
    s = pt.tanh(x @ W1 + b1) @ W2 + b2
    s = s - s.mean(axis=0)
    cost = 0.5 * pt.mean(pt.sum((s - m.inputs[1]) ** 2, axis=1))
    opt = hf.HFOptimizer(cost, s, m.params, m.inputs, preconditioner=True)
    with caplog.at_level("WARNING", logger="hf"):
        got = opt.mean_square_gradients(_mlp_batch(m), 8)
    assert opt._square_means_ok is False and "disagree" in caplog.text
    np.testing.assert_allclose(got, loop_reference(cost, m.params, m.inputs, m.data) / 8, rtol=1e-10, atol=1e-14)


def test_functions_are_compiled_when_first_used():
    m = models.mlp("softmax", n=8, seed=1)
    opt = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs, rho_batch="cg")
    assert opt.compile_seconds == {}
    opt.train(m.data, max_updates=1, progress=False)
    used = {"hf_loss_grad", "hf_loss_at", "hf_forward", "hf_gv_cached"}
    assert used <= set(opt.compile_seconds)
    assert "hf_gv" not in opt.compile_seconds and "hf_loss" not in opt.compile_seconds
    assert set(opt.compile()) == used  # what compile() compiles ahead is what the update used
    assert "hf_gv_form" not in opt.compile_seconds
    other = hf.HFOptimizer(m.cost, m.s, m.params, m.inputs)  # ρ on the gradient batch takes one pᵀGp there
    assert set(other.compile()) == used | {"hf_gv_form"}
    with pytest.raises(ValueError, match="no function named"):
        opt.compile(["hf_nope"])
