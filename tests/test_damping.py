"""Damping, reduction ratio, backtracking, line search and preconditioner rules."""

import math

import numpy as np
import pytest

from hf import damping


def test_reduction_ratio_values():
    assert damping.reduction_ratio(0.7, 1.0, -0.6) == pytest.approx(0.5)
    assert damping.reduction_ratio(1.0, 1.0, -0.6) == 0.0
    # The loss went up, or anything is not finite: rho = -inf.
    assert damping.reduction_ratio(1.1, 1.0, -0.6) == -math.inf
    assert damping.reduction_ratio(float("nan"), 1.0, -0.6) == -math.inf
    assert damping.reduction_ratio(0.5, 1.0, float("inf")) == -math.inf
    # A model that predicts no decrease cannot give a meaningful ratio.
    assert damping.reduction_ratio(0.5, 1.0, 0.0) == -math.inf


def test_levenberg_marquardt_sequence():
    """Each λ written out by hand from [Mart10]'s rule (ρ < 1/4: ×3/2; ρ > 3/4: ×2/3;
    ρ = 1/4 and 3/4 keep λ; NaN and −∞ count as low), clipped to [1e-3, 10]."""
    bounds = dict(min_damping=1e-3, max_damping=10.0)
    rhos = [0.9, 0.9, 0.5, 0.1, -math.inf, float("nan"), 0.25, 0.75, 0.76, 2.0]
    expected = [2 / 3, 4 / 9, 4 / 9, 2 / 3, 1.0, 1.5, 1.5, 1.5, 1.0, 2 / 3]
    lam, got = 1.0, []
    for rho in rhos:
        lam = damping.levenberg_marquardt(lam, rho, **bounds)
        got.append(lam)
    np.testing.assert_allclose(got, expected, rtol=1e-15)
    # The upper clip, reached from below.
    lam = damping.levenberg_marquardt(8.0, 0.0, **bounds)
    assert lam == 10.0 and damping.levenberg_marquardt(lam, -1.0, **bounds) == 10.0


def test_levenberg_marquardt_clips_to_range():
    bounds = dict(min_damping=0.5, max_damping=2.0)
    lam = 1.0
    for _ in range(10):
        lam = damping.levenberg_marquardt(lam, 1.0, **bounds)
    assert lam == 0.5
    for _ in range(10):
        lam = damping.levenberg_marquardt(lam, -math.inf, **bounds)
    assert lam == 2.0


def test_raise_after_rejection_and_clip():
    bounds = dict(min_damping=1e-4, max_damping=2e-3)
    lam = damping.levenberg_marquardt(1e-3, -math.inf, **bounds)
    assert lam == pytest.approx(1.5e-3)
    assert damping.levenberg_marquardt(lam, -math.inf, **bounds) == 2e-3  # clipped at max_damping
    # ρ in [1/4, 3/4] keeps λ, and only clips it.
    assert damping.levenberg_marquardt(1e-9, 0.5, **bounds) == 1e-4
    assert damping.levenberg_marquardt(1.0, 0.5, **bounds) == 2e-3


def test_backtrack_steps_back_while_better():
    f = [5.0, 2.0, 1.0, 3.0, 4.0]
    cands = [np.array([float(i)]) for i in range(len(f))]
    r = damping.backtrack(cands, lambda x: f[int(x[0])])
    assert (r.index, r.objective, r.evaluations) == (2, 1.0, 4)
    # The last iterate is best: no step back, one extra evaluation to confirm.
    r = damping.backtrack(cands[:3], lambda x: f[int(x[0])])
    assert (r.index, r.evaluations) == (2, 2)
    # Non-finite objectives never win.
    g = [1.0, float("nan")]
    r = damping.backtrack(cands[:2], lambda x: g[int(x[0])])
    assert r.index == 0
    with pytest.raises(ValueError, match="candidates"):
        damping.backtrack([], lambda x: 0.0)


def test_armijo_accepts_first_sufficient_decrease():
    # f(a) = (a - 0.3)^2 on the line, f(0) = 0.09, slope -0.6.
    f = lambda a: (a - 0.3) ** 2  # noqa: E731
    r = damping.armijo_line_search(f, f(0.0), -0.6, c=1e-2, shrink=0.8)
    # Hand-derived: the first a = 0.8^k with f(a) <= 0.09 - 0.006 a.
    a = 1.0
    while not (f(a) <= 0.09 - 0.006 * a and f(a) < 0.09):
        a *= 0.8
    assert r.accepted and r.rate == pytest.approx(a) and r.objective == pytest.approx(f(a))


def test_armijo_rejects_when_nothing_decreases():
    r = damping.armijo_line_search(lambda a: 1.0 + a, 1.0, 1.0, max_evaluations=60)
    assert (r.accepted, r.rate, r.objective, r.evaluations) == (False, 0.0, 1.0, 60)
    # NaN objectives are never accepted.
    r = damping.armijo_line_search(lambda a: float("nan"), 1.0, -1.0, max_evaluations=5)
    assert not r.accepted and r.evaluations == 5


def test_armijo_never_accepts_an_increase_with_positive_slope():
    # With slope > 0, Armijo alone would allow f to rise; the rule requires a decrease.
    r = damping.armijo_line_search(lambda a: 1.0 + 1e-4 * a, 1.0, 1.0, max_evaluations=10)
    assert not r.accepted


def test_martens_preconditioner_formula():
    sq = np.array([0.0, 1.0, 3.0])
    np.testing.assert_allclose(damping.martens_preconditioner(sq, 1.0), (sq + 1.0) ** 0.75)
    with pytest.raises(ValueError, match="1-D"):
        damping.martens_preconditioner(np.zeros((2, 2)), 1.0)


def test_doctests():
    import doctest

    failures, _ = doctest.testmod(damping)
    assert failures == 0


def test_levenberg_marquardt_is_a_pure_function_of_lambda_and_rho():
    # [Mart10] Sec. 4.1 by hand: ρ < 1/4 → 3/2 λ, ρ > 3/4 → 2/3 λ, else λ; then clipped.
    lm = damping.levenberg_marquardt
    assert lm(2.0, 0.1) == 3.0 and lm(3.0, 0.9) == 2.0 and lm(2.0, 0.5) == 2.0
    assert lm(2.0, float("nan")) == 3.0 and lm(2.0, -math.inf) == 3.0
    assert lm(8.0, 0.0, max_damping=10.0) == 10.0 and lm(1e-3, 1.0, min_damping=1e-3) == 1e-3


def test_global_backtracking_takes_the_lowest_kept_iterate():
    rng = np.random.default_rng(3)
    for _ in range(20):
        values = rng.normal(size=rng.integers(1, 9))
        values[rng.integers(len(values))] = np.nan  # a non-finite loss never wins
        xs = [np.array([float(i)]) for i in range(len(values))]
        r = damping.backtrack(xs, lambda x: values[int(x[0])], search="global")
        finite = np.where(np.isfinite(values), values, np.inf)
        assert r.index == int(np.argmin(finite)) and r.evaluations == len(values)
    with pytest.raises(ValueError, match="search"):
        damping.backtrack(xs, lambda x: 0.0, search="best")
