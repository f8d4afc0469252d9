"""Gauss-Newton and structural damping products against dense numpy references."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
from hf import function as compile_function
from hf.curvature import flatten, unflatten
from hf.graph import FlatConcat

from . import models


def compiled_product(model, product):
    v = pt.vector("v", dtype="float64")
    out = flatten(product(unflatten(v, model.params)))
    f = compile_function(model.inputs + [v], out, on_unused_input="ignore")
    return lambda vec: np.asarray(f(*model.data, vec), dtype=np.float64)


def gv_function(model):
    return compiled_product(model, lambda vs: hf.gauss_newton_product(model.cost, model.s, model.params, vs))


def loss_hessian(model, s_value):
    """Dense H_L = d²L/ds² of the mean loss, in closed form per matching pair."""
    if model.loss == "softmax":
        n, k = s_value.shape
        z = s_value - s_value.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        blocks = [np.diag(pi) - np.outer(pi, pi) for pi in p]
        H = np.zeros((n * k, n * k))
        for i, b in enumerate(blocks):
            H[i * k : (i + 1) * k, i * k : (i + 1) * k] = b
        return H / n
    if model.loss == "logistic":
        p = 1 / (1 + np.exp(-s_value.ravel()))
        return np.diag(p * (1 - p)) / s_value.shape[0]
    if model.loss == "squared":
        return np.eye(s_value.size) / s_value.shape[0]
    if model.loss == "squared_sum":  # RNN: 0.5 * sum(mask * err²) / batch
        T, n, k = s_value.shape
        m = model.data[2] if len(model.data) > 2 else np.ones((T, n))
        return np.diag(np.repeat(m.ravel(), k)) / n
    raise ValueError(model.loss)


def dense_G(model):
    theta = models.flat_values(model.params)
    s_fun = models.s_at_theta(model)
    J = models.jacobian_fd(s_fun, theta)
    return J.T @ loss_hessian(model, s_fun(theta)) @ J


CASES = [
    ("softmax", lambda: models.mlp("softmax")),
    ("logistic", lambda: models.mlp("logistic")),
    ("squared", lambda: models.mlp("squared")),
    ("rnn", lambda: models.rnn()),
    ("rnn_masked", lambda: models.rnn(masked=True)),
    # One input feature: the input weight is (1, H), whose first axis must not
    # become broadcastable when the flat vector is split (scan rejects it).
    ("rnn_n_in_1", lambda: models.rnn(n_in=1)),
    ("rnn_n_in_1_masked", lambda: models.rnn(n_in=1, masked=True)),
    # Length-1 axes first and last: W is (1, H), V is (H, 1), c is (1,).
    ("rnn_n_in_1_n_out_1", lambda: models.rnn(n_in=1, n_out=1)),
]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def case(request):
    model = request.param[1]()
    if request.param[0].endswith("_masked"):
        model.data[2][2:, 1] = 0.0  # second sequence is 2 steps long
    return model, gv_function(model), dense_G(model)


def test_gv_matches_dense_jt_h_j(case):
    model, gv, G = case
    rng = np.random.default_rng(1)
    for _ in range(3):
        v = rng.normal(size=G.shape[0])
        np.testing.assert_allclose(gv(v), G @ v, rtol=1e-6, atol=1e-8)


def test_gauss_newton_form_is_v_dense_g_v(case):
    """The quadratic form ρ uses, vᵀGv, against the dense Jᵀ H J (its own graph, no product)."""
    model, _, G = case
    v = pt.vector("v", dtype="float64")
    form = hf.gauss_newton_form(model.cost, model.s, model.params, unflatten(v, model.params))
    assert form.ndim == 0
    f = compile_function(model.inputs + [v], form, on_unused_input="ignore")
    rng = np.random.default_rng(5)
    for _ in range(2):
        u = rng.normal(size=G.shape[0])
        assert float(f(*model.data, u)) == pytest.approx(u @ G @ u, rel=1e-6, abs=1e-9)


def test_gv_symmetric_and_psd(case):
    _, gv, G = case
    rng = np.random.default_rng(2)
    for _ in range(5):
        u, v = rng.normal(size=(2, G.shape[0]))
        assert u @ gv(v) == pytest.approx(v @ gv(u), rel=1e-10, abs=1e-12)
        assert v @ gv(v) >= -1e-12
    # The dense reference itself is PSD, so the test above compares like with like.
    assert np.linalg.eigvalsh((G + G.T) / 2).min() > -1e-8


def test_gv_repeatable(case):
    """Two identical products agree exactly (no randomness in the graph)."""
    _, gv, G = case
    v = np.random.default_rng(3).normal(size=G.shape[0])
    np.testing.assert_array_equal(gv(v), gv(v))


def test_gv_float32_close_to_float64():
    m64 = models.mlp("softmax")
    m32 = models.mlp("softmax", dtype="float32")
    v = np.random.default_rng(4).normal(size=sum(p.get_value().size for p in m64.params))
    g64 = gv_function(m64)(v)
    g32 = gv_function(m32)(v)
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_in", [2, 1])
def test_structural_damping_matches_dense(n_in):
    model = models.rnn(n_in=n_in, masked=True)
    model.data[2][3:, 0] = 0.0
    spec = hf.StructuralDamping(model.a, "tanh", weight=0.5, mask=model.mask)
    sd = compiled_product(model, lambda vs: hf.structural_damping_product(spec, model.params, vs))
    # Dense reference: J_aᵀ D J_a / n with D = mask * (1 - tanh(a)²).
    theta = models.flat_values(model.params)
    a_sym = model.a
    f_a = compile_function(
        model.inputs + [th := pt.vector("th", dtype="float64")],
        a_sym,
        givens=list(zip(model.params, unflatten(th, model.params))),
        on_unused_input="ignore",
    )
    a_fun = lambda t: np.asarray(f_a(*model.data, t))  # noqa: E731
    J = models.jacobian_fd(a_fun, theta)
    a0 = a_fun(theta)
    T, n, k = a0.shape
    D = (1 - np.tanh(a0) ** 2) * model.data[2][:, :, None]
    ref = J.T @ np.diag(D.ravel() / n) @ J
    v = np.random.default_rng(5).normal(size=theta.size)
    np.testing.assert_allclose(sd(v), ref @ v, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("n_in", [2, 1])
def test_structural_damping_logistic_matches_dense(n_in):
    model = models.rnn(n_in=n_in)
    spec = hf.StructuralDamping(model.a, "logistic", weight=1.0)
    sd = compiled_product(model, lambda vs: hf.structural_damping_product(spec, model.params, vs))
    theta = models.flat_values(model.params)
    th = pt.vector("th", dtype="float64")
    f_a = compile_function(
        model.inputs + [th], model.a, givens=list(zip(model.params, unflatten(th, model.params))),
        on_unused_input="ignore",
    )
    a_fun = lambda t: np.asarray(f_a(*model.data, t))  # noqa: E731
    J = models.jacobian_fd(a_fun, theta)
    h = 1 / (1 + np.exp(-a_fun(theta)))
    ref = J.T @ np.diag((h * (1 - h)).ravel() / h.shape[1]) @ J
    v = np.random.default_rng(6).normal(size=theta.size)
    np.testing.assert_allclose(sd(v), ref @ v, rtol=1e-6, atol=1e-8)


def test_errors_name_the_problem():
    m = models.mlp("squared")
    v = [pt.zeros_like(p) for p in m.params]
    with pytest.raises(ValueError, match="scalar"):
        hf.gauss_newton_product(m.s, m.s, m.params, v)
    stray = pytensor.shared(np.zeros(2), name="stray")
    with pytest.raises(ValueError, match="stray"):
        hf.gauss_newton_product(m.cost + pt.sum(stray**2), m.s, m.params + [stray], v + [pt.zeros(2)])
    with pytest.raises(TypeError, match=r"params\[0\]"):
        hf.gauss_newton_product(m.cost, m.s, [pt.matrix("W")], v[:1])
    with pytest.raises(ValueError, match="one tensor per parameter"):
        hf.gauss_newton_product(m.cost, m.s, m.params, v[:2])
    with pytest.raises(ValueError, match="does not depend on s"):
        hf.gauss_newton_product(m.cost, pt.matrix("other"), m.params, v)
    with pytest.raises(ValueError, match="nonlinearity"):
        hf.StructuralDamping(m.s, "relu")
    with pytest.raises(ValueError, match="weight"):
        hf.StructuralDamping(m.s, "tanh", weight=-1.0)


@pytest.mark.parametrize("n_in", [2, 1])
def test_fused_damped_product_equals_sum_of_parts(n_in):
    model = models.rnn(n_in=n_in, masked=True)
    model.data[2][2:, 0] = 0.0
    spec = hf.StructuralDamping(model.a, "tanh", weight=1.0, mask=model.mask)
    coef = 0.37
    fused = compiled_product(
        model, lambda vs: hf.damped_gauss_newton_product(model.cost, model.s, model.params, vs, spec, coef)
    )
    gv = gv_function(model)
    sd = compiled_product(model, lambda vs: hf.structural_damping_product(spec, model.params, vs))
    v = np.random.default_rng(7).normal(size=sum(p.get_value().size for p in model.params))
    np.testing.assert_allclose(fused(v), gv(v) + coef * sd(v), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- n_in = 1


def test_unflatten_keeps_the_parameters_broadcast_pattern():
    """A (1, H) parameter's piece is not broadcastable unless the parameter's type is."""
    rng = np.random.default_rng(8)
    W = pytensor.shared(rng.normal(size=(1, 3)), name="W")  # type shape (None, None)
    one = pytensor.shared(rng.normal(size=(1,)), name="one")
    Ws = pytensor.shared(rng.normal(size=(1, 3)), name="Ws", shape=(1, 3))  # static by choice
    k = pytensor.shared(np.float64(0.5), name="k")
    params = [W, one, Ws, k]
    flat = pt.vector("flat", dtype="float64")
    pieces = unflatten(flat, params)
    for p, piece in zip(params, pieces):
        assert piece.type.broadcastable == p.type.broadcastable, (p.name, piece.type)
        assert p.type.is_super(piece.type)
    theta = models.flat_values(params)
    values = compile_function([flat], pieces)(theta)
    for p, value in zip(params, values):
        np.testing.assert_array_equal(value, p.get_value())
    np.testing.assert_array_equal(compile_function([flat], flatten(pieces))(theta), theta)


def test_flat_pieces_differentiate_as_slices():
    """The flat-vector ops' gradients and R-ops are the slice's and the concatenation's (by hand):
    d/dθ Σ c ⊙ piece(θ) scatters c into the piece's place; d/dt_i cᵀ flatten(t) is c's part for t_i;
    the R-op of a piece is the piece of the direction."""
    rng = np.random.default_rng(9)
    params = [pytensor.shared(rng.normal(size=(2, 3)), name="A"), pytensor.shared(rng.normal(size=(4,)), name="b")]
    flat = pt.vector("flat", dtype="float64")
    pieces = unflatten(flat, params)
    c = rng.normal(size=4)
    theta, direction = rng.normal(size=10), rng.normal(size=10)
    grad = compile_function([flat], pytensor.grad(pt.sum(pieces[1] * c), flat))(theta)
    expected = np.zeros(10)
    expected[6:] = c
    np.testing.assert_array_equal(grad, expected)
    d = pt.vector("d", dtype="float64")
    (rop,) = pytensor.gradient.pushforward([pieces[0]], [flat], [d], use_op_pushforward=True)
    rop = compile_function([flat, d], rop, on_unused_input="ignore")
    np.testing.assert_array_equal(rop(theta, direction), direction[:6].reshape(2, 3))
    terms = [pt.matrix("A"), pt.vector("b")]
    w = rng.normal(size=10)
    grads = compile_function(terms, pytensor.grad(pt.dot(flatten(terms), w), terms))(np.ones((2, 3)), np.ones(4))
    np.testing.assert_array_equal(grads[0], w[:6].reshape(2, 3))
    np.testing.assert_array_equal(grads[1], w[6:])


def test_flat_vector_of_the_wrong_length_names_the_length():
    params = [pytensor.shared(np.zeros((2, 3)), name="A"), pytensor.shared(np.zeros(4), name="b")]
    flat = pt.vector("flat", dtype="float64")
    f = compile_function([flat], unflatten(flat, params))
    with pytest.raises(ValueError, match=r"vector \(flat\) must have 10 values.*got 9"):
        f(np.zeros(9))
    with pytest.raises(ValueError, match="FlatConcat: needs at least one tensor"):
        FlatConcat()()


def test_flatten_pushes_tangents_forward_as_their_concatenation():
    """The R-op of the concatenation is the concatenation of the tangents (by hand), with zeros in the place
    of a term the tangents do not reach."""
    rng = np.random.default_rng(4)
    terms = [pt.matrix("A"), pt.vector("b")]
    tangents = [pt.matrix("dA"), pt.vector("db")]
    a, b, da, db = rng.normal(size=(2, 3)), rng.normal(size=4), rng.normal(size=(2, 3)), rng.normal(size=4)
    (both,) = pytensor.gradient.pushforward([flatten(terms)], terms, tangents, use_op_pushforward=True)
    f = compile_function(terms + tangents, both, on_unused_input="ignore")
    np.testing.assert_array_equal(f(a, b, da, db), np.concatenate([da.ravel(), db]))
    (first,) = pytensor.gradient.pushforward([flatten(terms)], terms[:1], tangents[:1], use_op_pushforward=True)
    f = compile_function(terms + tangents[:1], first, on_unused_input="ignore")
    np.testing.assert_array_equal(f(a, b, da), np.concatenate([da.ravel(), np.zeros(4)]))


def test_unflatten_substitutes_a_scan_parameter():
    """``givens`` put the pieces in place of a (1, H) weight used inside a scan."""
    model = models.rnn(n_in=1)
    with pytensor.config.change_flags(on_opt_error="raise"):  # no rewrite may trip over it either
        s_fun = models.s_at_theta(model)
    theta = models.flat_values(model.params)
    direct = compile_function(model.inputs, model.s, on_unused_input="ignore")(*model.data)
    np.testing.assert_allclose(s_fun(theta), direct, rtol=1e-12)


@pytest.mark.parametrize("structural", [False, True], ids=["plain", "structural"])
def test_hf_optimizer_with_one_input_feature(structural):
    """HFOptimizer compiles an RNN with a (1, H) input weight and its G·v matches the dense reference."""
    model = models.rnn(n_in=1, masked=True)
    model.data[2][3:, 0] = 0.0
    spec = hf.StructuralDamping(model.a, "tanh", weight=0.5, mask=model.mask) if structural else None
    # A graph rewrite that folds the pieces' length-1 axis to a static 1 and then
    # rebuilds the scan fails too; by default PyTensor only logs that and skips it.
    with pytensor.config.change_flags(on_opt_error="raise"):
        opt = hf.HFOptimizer(model.cost, model.s, model.params, inputs=model.inputs, structural_damping=spec)
    batch = hf.Batch(tuple(model.data), axes=(1, 1, 1), mask_index=2)
    v = np.random.default_rng(9).normal(size=opt.n_params)
    coef = 0.25 if structural else 0.0
    expected = dense_G(model) @ v
    if structural:
        sd = compiled_product(model, lambda vs: hf.structural_damping_product(spec, model.params, vs))
        expected = expected + coef * sd(v)
    np.testing.assert_allclose(opt.gv(v, batch, coef), expected, rtol=1e-6, atol=1e-8)
    theta = models.flat_values(model.params)
    loss = float(compile_function(model.inputs, model.cost)(*model.data))
    assert opt.loss_at(theta, batch) == pytest.approx(loss, rel=1e-12)


# --------------------------------------------------------------------------- disconnected parameters


def test_unconnected_parameter_is_named():
    m = models.mlp("squared")
    v = [pt.zeros_like(p) for p in m.params]
    named = pytensor.shared(np.zeros(2), name="stray")
    unnamed = pytensor.shared(np.zeros(2))
    with pytest.raises(ValueError, match=r"parameter 'stray' \(params\[4\]\) is not connected to s"):
        hf.gauss_newton_product(m.cost, m.s, m.params + [named], v + [pt.zeros(2)])
    with pytest.raises(ValueError, match=r"parameter params\[4\] is not connected to s"):
        hf.gauss_newton_product(m.cost, m.s, m.params + [unnamed], v + [pt.zeros(2)])
    with pytest.raises(ValueError, match=r"parameters 'stray' \(params\[0\]\), params\[2\] are not connected to s"):
        hf.gauss_newton_product(
            m.cost, m.s, [named, m.params[0], unnamed], [pt.zeros(2), v[0], pt.zeros(2)]
        )


def test_unconnected_parameter_in_structural_damping_is_named():
    model = models.rnn()
    spec = hf.StructuralDamping(model.a, "tanh")
    V, c = model.params[3:]
    vs = [pt.zeros_like(p) for p in model.params]
    # Parameters past the hidden units get a zero structural term ...
    out = hf.structural_damping_product(spec, model.params, vs)
    assert len(out) == len(model.params)
    # ... but a preactivation reached by none of them is an error naming them all.
    none_of = r"not connected to any parameter: none of 'V' \(params\[0\]\), 'c' \(params\[1\]\)"
    with pytest.raises(ValueError, match=none_of):
        hf.structural_damping_product(spec, [V, c], vs[3:])
    unrelated = hf.StructuralDamping(pt.tanh(pt.matrix("z")), "tanh")
    with pytest.raises(ValueError, match=r"preactivation .* is not connected to any parameter"):
        hf.damped_gauss_newton_product(model.cost, model.s, model.params, vs, unrelated, 0.1)


def test_cost_linear_in_s_is_a_value_error():
    """A loss with no curvature in s used to raise an unnamed DisconnectedInputError."""
    m = models.mlp("squared")
    v = [pt.zeros_like(p) for p in m.params]
    with pytest.raises(ValueError, match="cost is linear in s"):
        hf.gauss_newton_product(pt.mean(m.s), m.s, m.params, v)


def test_check_connected_names_the_output():
    from hf.graph import check_connected

    m = models.mlp("squared")
    stray = pytensor.shared(np.zeros(2), name="stray")
    check_connected(m.cost, m.params, "the cost")  # all connected: no error
    with pytest.raises(ValueError, match=r"^Opt: parameter 'stray' \(params\[4\]\) is not connected to the cost$"):
        check_connected(m.cost, m.params + [stray], "the cost", owner="Opt")
    with pytest.raises(ValueError, match=r"w\[1\] is not connected to the loss: why$"):
        check_connected([m.cost], [m.params[0], pytensor.shared(np.zeros(1))], "the loss", why=": why", name="w")


# --------------------------------------------------------------------------- graph helpers


def test_graph_helpers_are_reexported():
    import hf.curvature
    import hf.graph

    for name in ("free_inputs", "check_inputs_used", "check_params", "flatten", "unflatten"):
        assert getattr(hf.curvature, name) is getattr(hf.graph, name)


def test_roots_are_in_depth_first_order():
    from hf.graph import free_inputs, roots, trainable_params

    x = pt.matrix("x")
    W = pytensor.shared(np.ones((2, 2)), name="W")
    b = pytensor.shared(np.ones(2), name="b")
    n = pytensor.shared(np.int64(3), name="n")
    out = (x @ W + b) * n
    assert roots([out]) == [x, W, b, n]
    assert free_inputs([out]) == [x]
    assert trainable_params([out]) == [W, b]
    assert trainable_params([out], exclude=[W]) == [b]


def test_find_inputs_and_params_order():
    """Inputs sorted by name (from the loss and the extra outputs), parameters in
    order of first appearance, update targets left out."""
    from hf.graph import find_inputs_and_params

    m = models.mlp("softmax")  # s = tanh(x @ W1 + b1) @ W2 + b2, inputs x, y
    W1, b1, W2, b2 = m.params
    x, y = m.inputs
    z = pt.vector("a_extra")
    inputs, params = find_inputs_and_params(m.cost)
    assert inputs == [x, y] and params == [W1, b1, W2, b2]
    inputs, params = find_inputs_and_params(m.cost, extra=[pt.sum(z)], exclude=[W2])
    assert inputs == [z, x, y] and params == [W1, b1, b2]
