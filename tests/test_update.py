"""One HF update (hf.update.hf_update) against a dense numpy reference.

The problem is explicit: a gradient g, a symmetric positive definite G, and a
loss along the step written in closed form, so the damped Newton step is
``numpy.linalg.solve(G + λI, -g)``, ρ and the Armijo rate are computed from
their definitions, and the Levenberg-Marquardt outcome is read off the region ρ
falls in, chosen by construction.
"""

import math

import numpy as np
import pytest

from hf.update import DampingState, UpdateConfig, hf_update

N = 6


def problem(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(N, N))
    G = A @ A.T + 0.5 * np.eye(N)  # SPD, condition number small enough for CG in N steps
    g = rng.normal(size=N)
    return G, g


def quadratic(G, g, f0=2.0, quartic=0.0):
    """f(θ + x) = f0 + gᵀx + ½ xᵀGx + quartic·|x|⁴ (the model is exact when quartic = 0)."""
    return lambda x: f0 + g @ x + 0.5 * x @ G @ x + quartic * float(x @ x) ** 2


def run(G, g, loss, *, lam=1e-3, S=None, mu=0.0, cg_x=None, cg_loss=None, **config):
    """One update. Backtracking sees the damped model CG minimizes (which CG lowers at
    every iteration, so the last kept iterate wins) unless ``cg_loss`` is given. ρ is
    measured on the gradient batch against the undamped model (``rho_batch='gradient'``),
    the ρ these tests derive by hand, unless ``rho_batch`` is given."""
    config.setdefault("rho_batch", "gradient")
    S = np.zeros_like(G) if S is None else S
    if cg_loss is None:
        A = G + lam * np.eye(N) + lam * mu * S
        cg_loss = lambda x: g @ x + 0.5 * x @ A @ x  # noqa: E731
    calls = {"loss_grad": 0}

    def loss_grad():
        calls["loss_grad"] += 1
        return loss(np.zeros(N)), g

    result = hf_update(
        loss_grad,
        lambda v, coef: G @ v + coef * (S @ v),
        loss,
        DampingState(lam, cg_x),
        UpdateConfig(structural_weight=mu, **config),
        cg_loss_at=cg_loss,
    )
    assert calls["loss_grad"] == 1
    return result


def test_step_is_the_damped_newton_step_and_rho_is_one_on_an_exact_model():
    G, g = problem()
    lam = 1e-3
    r = run(G, g, quadratic(G, g), lam=lam)
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    # The loss is its own quadratic model: ρ = 1 exactly (up to rounding) → λ·2/3.
    assert r.metrics["rho"] == pytest.approx(1.0, abs=1e-9)
    assert r.state.damping == pytest.approx(lam * 2 / 3, rel=1e-15)
    assert r.metrics["accepted"] and r.metrics["step_rate"] == 1.0
    assert r.metrics["new_loss"] == pytest.approx(quadratic(G, g)(p), rel=1e-12)
    assert r.metrics["loss"] == 2.0 and r.metrics["damping"] == lam
    np.testing.assert_allclose(r.state.cg_x, p, rtol=1e-8, atol=1e-10)  # the next warm start


def test_rho_between_a_quarter_and_three_quarters_keeps_damping():
    G, g = problem(1)
    lam = 0.1
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    q = g @ p + 0.5 * p @ G @ p
    # f(p) - f0 = q + c|p|⁴; choose c so that ρ = 1 + c|p|⁴/q = 1/2.
    c = -0.5 * q / float(p @ p) ** 2
    r = run(G, g, quadratic(G, g, quartic=c), lam=lam)
    assert r.metrics["rho"] == pytest.approx(0.5, rel=1e-8)
    assert r.state.damping == lam
    # Armijo at a = 1: q + c|p|⁴ = q/2 ≤ 0.01·gᵀp holds (q/2 < 0.01 gᵀp since q ≤ gᵀp/2).
    assert r.metrics["step_rate"] == 1.0
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)


def test_low_rho_raises_damping_and_armijo_shrinks_the_rate_once():
    G, g = problem(2)
    lam = 0.5
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    s, c2, P = g @ p, p @ G @ p, float(p @ p) ** 2

    def c_max(a):  # largest quartic weight for which rate a passes Armijo (c = 1e-2)
        return (0.01 * a * s - a * s - 0.5 * a * a * c2) / (a**4 * P)

    q = s + 0.5 * c2
    # Above c_max(1) the full step fails Armijo; below -q/P it still lowers the loss
    # (so 0 < ρ < 1/4); below c_max(0.8) the rate 0.8 passes.
    assert c_max(0.8) > c_max(1.0) > 0 and -q / P > c_max(1.0)
    c = 0.5 * (c_max(1.0) + min(c_max(0.8), -q / P))
    r = run(G, g, quadratic(G, g, quartic=c), lam=lam)
    rho = (q + c * P) / q
    assert 0 < rho < 0.25  # by construction
    assert r.metrics["rho"] == pytest.approx(rho, rel=1e-8)
    assert r.state.damping == pytest.approx(lam * 1.5, rel=1e-15)
    assert r.metrics["accepted"] and r.metrics["step_rate"] == pytest.approx(0.8, rel=1e-15)
    np.testing.assert_allclose(r.step, 0.8 * p, rtol=1e-8, atol=1e-10)


def test_a_full_step_that_raises_the_loss_has_rho_minus_infinity():
    G, g = problem(2)
    lam = 0.5
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    q = g @ p + 0.5 * p @ G @ p
    c = -2 * q / float(p @ p) ** 2  # f(p) - f0 = q + c|p|⁴ = -q > 0
    r = run(G, g, quadratic(G, g, quartic=c), lam=lam)
    assert r.metrics["rho"] == -math.inf  # by definition when the loss went up
    assert r.state.damping == pytest.approx(1.5 * lam, rel=1e-15)
    # A shorter step still lowers the loss (the quartic term vanishes faster): accepted.
    assert r.metrics["accepted"] and 0 < r.metrics["step_rate"] < 1


def test_a_step_that_raises_the_loss_everywhere_is_rejected():
    G, g = problem(3)
    lam = 1.0
    r = run(G, g, lambda x: 2.0 + 1e3 * math.sqrt(float(x @ x)), lam=lam)
    assert r.metrics["rho"] == -math.inf and not r.metrics["accepted"]
    assert r.metrics["step_rate"] == 0.0 and r.metrics["new_loss"] == 2.0
    np.testing.assert_array_equal(r.step, np.zeros(N))
    # Raised once by the Levenberg-Marquardt rule (ρ = −∞), not a second time for the rejection.
    assert r.state.damping == pytest.approx(1.5 * lam, rel=1e-15)
    # The warm start is CG's solution all the same.
    np.testing.assert_allclose(r.state.cg_x, np.linalg.solve(G + lam * np.eye(N), -g), rtol=1e-8)


def test_without_line_search_the_full_step_is_taken_when_it_lowers_the_loss():
    G, g = problem(4)
    lam = 1.0
    r = run(G, g, quadratic(G, g), lam=lam, line_search=False)
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    assert r.metrics["step_rate"] == 1.0 and r.state.damping == pytest.approx(lam * 2 / 3)
    r = run(G, g, lambda x: 2.0 + float(x @ x), lam=lam, line_search=False)
    assert not r.metrics["accepted"] and r.metrics["step_rate"] == 0.0
    np.testing.assert_array_equal(r.step, np.zeros(N))


def test_damping_is_clipped_to_its_range():
    G, g = problem(5)
    r = run(G, g, quadratic(G, g), lam=1e-6, min_damping=1e-6)
    assert r.state.damping == 1e-6  # ρ = 1 asks for 2/3·1e-6, the floor holds
    r = run(G, g, lambda x: 3.0 + float(x @ x), lam=1e6, max_damping=1e6)
    assert r.state.damping == 1e6 and not r.metrics["accepted"]


def test_structural_damping_solves_the_damped_system():
    G, g = problem(6)
    rng = np.random.default_rng(7)
    B = rng.normal(size=(N, N))
    S = B @ B.T
    lam, mu = 0.3, 0.5
    r = run(G, g, quadratic(G, g), lam=lam, S=S, mu=mu)
    # CG solves (G + λI + λμS) p = -g; ρ uses the undamped model gᵀp + ½pᵀGp.
    p = np.linalg.solve(G + lam * np.eye(N) + lam * mu * S, -g)
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    assert r.metrics["rho"] == pytest.approx(1.0, abs=1e-9)


def test_warm_start_uses_decayed_previous_solution_and_converges_to_the_same_step():
    G, g = problem(8)
    lam = 0.01
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    # Starting exactly at the solution / 0.95 means x0 = p: CG is done at iteration 0.
    r = run(G, g, quadratic(G, g), lam=lam, cg_x=p / 0.95, cg_decay=0.95)
    assert r.metrics["cg_iters"] == 0
    np.testing.assert_allclose(r.step, p, rtol=1e-10)
    # cg_decay = 0 ignores the previous solution: CG starts from zero and needs iterations.
    r0 = run(G, g, quadratic(G, g), lam=lam, cg_x=p / 0.95, cg_decay=0.0)
    assert r0.metrics["cg_iters"] > 0
    np.testing.assert_allclose(r0.step, p, rtol=1e-8, atol=1e-10)


def test_shrink_warm_start_starts_cg_from_the_damped_models_best_multiple_of_the_previous_solution():
    G, g = problem(10)
    lam = 0.05
    A = G + lam * np.eye(N)
    p = np.linalg.solve(A, -g)
    # The previous solution pointed uphill: the shrunk start is zero, and the update is the cold one.
    r = run(G, g, quadratic(G, g), lam=lam, cg_x=-3.0 * p, shrink_warm_start=True, max_cg_iters=3)
    cold = run(G, g, quadratic(G, g), lam=lam, cg_decay=0.0, max_cg_iters=3)
    assert r.metrics["cg_start"] == 0.0 and cold.metrics["cg_start"] == 0.0
    np.testing.assert_allclose(r.step, cold.step, rtol=1e-12)
    plain = run(G, g, quadratic(G, g), lam=lam, cg_x=-3.0 * p, max_cg_iters=3)
    assert plain.metrics["cg_start"] == 0.95
    # Four times too long: the damped model is lowest at a quarter of it along that line.
    r = run(G, g, quadratic(G, g), lam=lam, cg_x=4.0 * p / 0.95, shrink_warm_start=True)
    assert r.metrics["cg_start"] == pytest.approx(0.95 / 4.0, rel=1e-9)
    assert r.metrics["cg_iters"] == 0
    np.testing.assert_allclose(r.step, p, rtol=1e-9)


def test_cold_restart_reruns_cg_from_zero_when_no_kept_warm_iterate_lowers_the_cg_batch_loss():
    G, g = problem(10)
    lam = 0.05
    A = G + lam * np.eye(N)
    p = np.linalg.solve(A, -g)
    # Far uphill: three iterations from 0.95 · (-40 p) keep the damped model (the CG-batch loss
    # here) above its value at 0, so every kept warm iterate raises it.
    bad = -40.0 * p
    plain = run(G, g, quadratic(G, g), lam=lam, cg_x=bad, max_cg_iters=3)
    assert not plain.metrics["cold_restart"] and plain.metrics["cg_start"] == 0.95
    assert all(plain.cg.phi[i] > 0 for i, _ in plain.cg.kept)  # the premise
    r = run(G, g, quadratic(G, g), lam=lam, cg_x=bad, max_cg_iters=3, cold_restart=True)
    assert r.metrics["cold_restart"] and r.metrics["cg_start"] == 0.0
    assert r.metrics["cg_iters"] == 6  # both runs
    # The update goes on with CG's third iterate from zero, which the Krylov subspace defines.
    x3 = krylov_iterate(A, -g, 3)
    np.testing.assert_allclose(r.step, x3, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r.state.cg_x, x3, rtol=1e-8, atol=1e-12)  # the next warm start
    # A start at the solution lowers the loss: no second run, the same update as without the option.
    good = run(G, g, quadratic(G, g), lam=lam, cg_x=p / 0.95, cold_restart=True)
    assert not good.metrics["cold_restart"] and good.metrics["cg_iters"] == 0
    np.testing.assert_allclose(good.step, p, rtol=1e-10)


def test_cold_restart_keeps_the_warm_run_when_its_choice_is_lower_on_the_cg_batch():
    G, g = problem(10)
    lam = 0.05
    p = np.linalg.solve(G + lam * np.eye(N), -g)

    def cg_loss(x):  # lowest at 0; among other points, the longer the lower
        return 0.0 if not np.any(x) else 1.0 / (1.0 + x @ x)

    kwargs = dict(lam=lam, cg_x=-40.0 * p, max_cg_iters=3, cg_loss=cg_loss)
    plain = run(G, g, quadratic(G, g), **kwargs)
    r = run(G, g, quadratic(G, g), cold_restart=True, **kwargs)
    # CG ran again from zero, but its iterates are shorter than the warm ones: the warm run stays.
    assert r.metrics["cold_restart"] and r.metrics["cg_iters"] == 6 and r.metrics["cg_start"] == 0.95
    np.testing.assert_array_equal(r.step, plain.step)
    np.testing.assert_array_equal(r.state.cg_x, plain.state.cg_x)


def krylov_iterate(A, b, k):
    """The k-th CG iterate from 0: the minimizer of ½xᵀAx − bᵀx over span{b, Ab, …, A^(k−1) b}."""
    K = np.column_stack([np.linalg.matrix_power(A, j) @ b for j in range(k)])
    Q, _ = np.linalg.qr(K)
    return Q @ np.linalg.solve(Q.T @ A @ Q, Q.T @ b)


def test_backtracking_returns_to_the_earlier_kept_iterate_when_it_is_lower():
    G, g = problem(9)
    lam = 1e-3
    A = G + lam * np.eye(N)
    x5 = krylov_iterate(A, -g, 5)  # CG keeps iterations 5 and 6 (the last) for N = 6
    p6 = np.linalg.solve(A, -g)
    assert np.linalg.norm(x5 - p6) > 1e-6
    r = run(G, g, quadratic(G, g), lam=lam, cg_loss=lambda x: float((x - x5) @ (x - x5)))
    assert r.metrics["cg_iters"] == 6 and r.metrics["backtrack"] == 5
    # The chosen step is x5; on the exact quadratic, ρ = 1 there too.
    np.testing.assert_allclose(r.step, x5, rtol=1e-7, atol=1e-9)
    assert r.metrics["rho"] == pytest.approx(1.0, abs=1e-9)


def test_non_finite_loss_or_gradient_raises_before_anything():
    G, g = problem()
    with pytest.raises(FloatingPointError, match="not finite"):
        hf_update(lambda: (math.nan, g), lambda v, c: G @ v, lambda x: 0.0, DampingState(1.0))
    with pytest.raises(FloatingPointError, match="not finite"):
        hf_update(lambda: (1.0, g * np.inf), lambda v, c: G @ v, lambda x: 0.0, DampingState(1.0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"max_cg_iters": 0}, ValueError, "max_cg_iters"),
        ({"max_cg_iters": 2.5}, TypeError, "max_cg_iters"),
        ({"cg_decay": 1.5}, ValueError, "cg_decay"),
        ({"cg_decay": None}, TypeError, "cg_decay"),
        ({"line_search": "yes"}, TypeError, "line_search"),
        ({"shrink_warm_start": 1}, TypeError, "shrink_warm_start"),
        ({"cold_restart": "no"}, TypeError, "cold_restart"),
        ({"min_damping": 2.0, "max_damping": 1.0}, ValueError, "min_damping"),
        ({"cg_tol": math.nan}, ValueError, "cg_tol"),
    ],
)
def test_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        UpdateConfig(**kwargs)


@pytest.mark.parametrize("mu", [0.0, 0.5], ids=["plain", "structural"])
def test_rho_on_the_cg_batch_measures_loss_and_model_there(mu):
    """rho_batch='cg' with a CG batch of its own: ρ = (f_c(p) − f_c(0)) / (g_cᵀp + ½ pᵀGp), the CG batch's
    loss, gradient and G, whatever the gradient batch's g was (CG solved (G + λI + λμS)p = −g). pᵀGp comes
    from CG's φ(p) without structural damping, from one CG-batch product with it; the gradient batch gets
    no product."""
    G, g = problem(10)
    rng = np.random.default_rng(11)
    S = np.diag(rng.uniform(0.5, 2.0, size=N))
    g_c = g + 0.3 * rng.normal(size=N)  # the CG batch's own gradient
    lam = 0.8
    p = np.linalg.solve(G + lam * np.eye(N) + lam * mu * S, -g)
    q_c = g_c @ p + 0.5 * p @ G @ p
    c = -0.4 * q_c / float(p @ p) ** 2  # f_c(p) − f_c(0) = 0.6 q_c: ρ = 0.6
    f_c = quadratic(G, g_c, f0=3.0, quartic=c)
    A = G + lam * np.eye(N) + lam * mu * S
    products, asked = [], []
    r = hf_update(lambda: (quadratic(G, g)(np.zeros(N)), g), lambda v, coef: G @ v + coef * (S @ v),
                  quadratic(G, g), DampingState(lam), UpdateConfig(rho_batch="cg", structural_weight=mu),
                  # f_c, plus a penalty on CG's residual so that backtracking keeps the last (converged) iterate
                  cg_loss_at=lambda x: f_c(x) + 1e6 * float(np.sum((A @ x + g) ** 2)),
                  curvature=lambda v: products.append(v) or G @ v,
                  cg_loss_grad=lambda: asked.append(1) or (3.0, g_c))
    assert products == [] and asked == [1]
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    assert r.metrics["rho"] == pytest.approx(0.6, rel=1e-8)
    with pytest.raises(ValueError, match="rho_batch"):
        UpdateConfig(rho_batch="both")


def test_backtracking_option_is_checked():
    from hf.update import UpdateConfig

    assert UpdateConfig(backtracking="global").backtracking == "global"
    with pytest.raises(ValueError, match="backtracking must be 'martens' or 'global'"):
        UpdateConfig(backtracking="best")


def test_rho_on_the_cg_batch_alone_takes_its_model_from_cg_without_a_product():
    """One batch for everything, no structural damping: q(p) = φ(p) − λ|p|²/2 from CG's own record, so the
    update spends no product beyond CG's; ρ is still the one derived from the dense G by hand."""
    G, g = problem(3)
    lam = 0.2
    products = []
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    q = g @ p + 0.5 * p @ G @ p
    c = -0.5 * q / float(p @ p) ** 2  # ρ = 1/2, as above
    loss = quadratic(G, g, quartic=c)
    r = hf_update(lambda: (loss(np.zeros(N)), g), lambda v, coef: products.append(coef) or G @ v, loss,
                  DampingState(lam, None), UpdateConfig(rho_batch="gradient"),
                  cg_loss_at=lambda x: g @ x + 0.5 * x @ (G + lam * np.eye(N)) @ x)  # the last iterate wins
    assert r.metrics["rho"] == pytest.approx(0.5, rel=1e-8)
    assert len(products) == r.metrics["cg_iters"]


def test_rho_on_the_gradient_batch_takes_pGp_from_the_form_when_given():
    """A CG batch with its own curvature G_c: the step solves (G_c + λI)p = −g, ρ's model takes pᵀGp on the
    gradient batch from ``curvature_form`` (one call, no product there), and ρ is the hand-derived one."""
    G, g = problem(4)
    G_c, _ = problem(5)  # the CG batch's curvature
    lam = 0.3
    p = np.linalg.solve(G_c + lam * np.eye(N), -g)
    q = g @ p + 0.5 * p @ G @ p  # the gradient batch's model
    c = -0.7 * q / float(p @ p) ** 2  # f(p) − f(0) = 0.3 q: ρ = 0.3
    loss = quadratic(G, g, quartic=c)
    forms, products = [], []
    r = hf_update(lambda: (loss(np.zeros(N)), g), lambda v, coef: G_c @ v, loss, DampingState(lam, None),
                  UpdateConfig(rho_batch="gradient"),
                  cg_loss_at=lambda x: g @ x + 0.5 * x @ (G_c + lam * np.eye(N)) @ x,  # the last iterate wins
                  curvature=lambda v: products.append(v) or G @ v,
                  curvature_form=lambda x: forms.append(x) or float(x @ G @ x))
    np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    assert r.metrics["rho"] == pytest.approx(0.3, rel=1e-8)
    assert len(forms) == 1 and products == []


def test_lambda_v_goes_into_a_fresh_product_and_never_into_one_the_caller_keeps():
    """A matvec marked ``fresh_outputs`` has λv added into its arrays in place; one that is not keeps its
    arrays untouched (here it returns the same array every call). Both give the damped Newton step of numpy's
    solve."""
    G, g = problem(6)
    lam = 0.5
    p = np.linalg.solve(G + lam * np.eye(N), -g)
    loss = quadratic(G, g)
    kept = {}

    def keeping(v, coef):
        kept.setdefault("out", np.empty(N))[:] = G @ v
        kept["copy"] = kept["out"].copy()
        return kept["out"]

    def fresh(v, coef):
        return G @ v

    fresh.fresh_outputs = True
    for matvec in (keeping, fresh):
        r = hf_update(lambda: (loss(np.zeros(N)), g), matvec, loss, DampingState(lam, None),
                      UpdateConfig(cg_tol=0.0), cg_loss_at=lambda x: g @ x + 0.5 * x @ (G + lam * np.eye(N)) @ x)
        np.testing.assert_allclose(r.step, p, rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(kept["out"], kept["copy"])
