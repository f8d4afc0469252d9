"""Tests for hf.cg: against numpy.linalg.solve, scipy.sparse.linalg.cg and dense phi."""
import doctest
import math
from fractions import Fraction

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse.linalg as spla
from hypothesis import given, settings
from hypothesis import strategies as st

import hf.cg
import hf.cg._cg
from hf.cg import CGResult, CGStatus, cg, geometric_grid

# ---------------------------------------------------------------------------
# helpers and oracles
# ---------------------------------------------------------------------------


def spd_system(seed, n, log_eig_lo=-2.0, log_eig_hi=2.0):
    """Dense SPD ``A = Q diag(eig) Q^T`` with eigenvalues in [10^lo, 10^hi], and b."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    eig = 10.0 ** rng.uniform(log_eig_lo, log_eig_hi, size=n)
    a = (q * eig) @ q.T
    a = 0.5 * (a + a.T)
    b = rng.standard_normal(n)
    return a, b, rng


def dense_phi(a, b, x):
    return 0.5 * x @ a @ x - b @ x


def record_iterates():
    """A callback that stores (i, copy of x_i), and the list it fills."""
    seen = []

    def callback(i, x):
        seen.append((i, np.array(x, copy=True)))

    return callback, seen


def martens_fires(phi, i, tol, min_window=10, window_fraction=0.1):
    """Martens' rule, written out independently from the solver."""
    k = max(min_window, int(math.ceil(window_fraction * i)))
    if i <= k or phi[i] >= 0:
        return False
    return (phi[i] - phi[i - k]) / phi[i] < k * tol


def rel_err(x, y):
    return np.linalg.norm(x - y) / max(np.linalg.norm(y), 1e-300)


systems = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 30))


# ---------------------------------------------------------------------------
# agreement with independent solvers
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(systems)
def test_solves_spd_like_numpy_and_scipy(system):
    seed, n = system
    a, b, _ = spd_system(seed, n)
    res = cg(lambda v: a @ v, b, tol=0.0, rtol=1e-12, max_iters=20 * n + 20)
    assert res.status == CGStatus.CONVERGED, res.message
    assert res.success
    assert res.x.dtype == np.float64 and res.x.shape == (n,)
    assert rel_err(res.x, np.linalg.solve(a, b)) < 1e-6
    x_sp, info = spla.cg(a, b, rtol=1e-12, atol=0.0, maxiter=20 * n + 20)
    assert info == 0
    assert rel_err(res.x, x_sp) < 1e-6
    assert np.linalg.norm(b - a @ res.x) <= 1e-6 * np.linalg.norm(b)


@settings(max_examples=30, deadline=None)
@given(systems)
def test_preconditioned_solve_matches_numpy_and_scipy(system):
    seed, n = system
    a, b, rng = spd_system(seed, n)
    diag = rng.uniform(0.1, 10.0, size=n)
    res = cg(lambda v: a @ v, b, psolve=lambda r: r / diag, tol=0.0, rtol=1e-12,
             max_iters=20 * n + 20)
    assert res.status == CGStatus.CONVERGED, res.message
    assert rel_err(res.x, np.linalg.solve(a, b)) < 1e-6
    m_inv = spla.LinearOperator((n, n), matvec=lambda r: r / diag, dtype=np.float64)
    x_sp, info = spla.cg(a, b, M=m_inv, rtol=1e-12, atol=0.0, maxiter=20 * n + 20)
    assert info == 0
    assert rel_err(res.x, x_sp) < 1e-6


@settings(max_examples=30, deadline=None)
@given(systems)
def test_warm_start_matches_numpy_and_scipy(system):
    seed, n = system
    a, b, rng = spd_system(seed, n)
    x0 = rng.standard_normal(n)
    x0_before = x0.copy()
    res = cg(lambda v: a @ v, b, x0, tol=0.0, rtol=1e-12, max_iters=20 * n + 20)
    assert np.array_equal(x0, x0_before)
    assert res.status == CGStatus.CONVERGED, res.message
    assert rel_err(res.x, np.linalg.solve(a, b)) < 1e-6
    x_sp, info = spla.cg(a, b, x0=x0.copy(), rtol=1e-12, atol=0.0, maxiter=20 * n + 20)
    assert info == 0
    assert rel_err(res.x, x_sp) < 1e-6
    assert res.phi[0] == pytest.approx(dense_phi(a, b, x0), rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("preconditioned", [False, True])
@pytest.mark.parametrize("warm", [False, True])
def test_iterates_match_scipy_step_by_step(preconditioned, warm):
    """Each CG iterate equals scipy's for the same start point and preconditioner."""
    a, b, rng = spd_system(7, 25, -1.0, 1.0)
    diag = rng.uniform(0.5, 2.0, size=25)
    x0 = rng.standard_normal(25) if warm else None
    psolve = (lambda r: r / diag) if preconditioned else None
    m_inv = spla.LinearOperator((25, 25), matvec=lambda r: r / diag) if preconditioned else None
    callback, ours = record_iterates()
    res = cg(lambda v: a @ v, b, x0, psolve=psolve, tol=0.0, rtol=0.0, max_iters=8,
             callback=callback)
    theirs = []
    spla.cg(a, b, x0=None if x0 is None else x0.copy(), M=m_inv, rtol=0.0, atol=0.0,
            maxiter=8, callback=lambda xk: theirs.append(xk.copy()))
    assert res.iterations == len(theirs) == 8
    for (i, x_ours), x_theirs in zip(ours, theirs):
        assert rel_err(x_ours, x_theirs) < 1e-10, i


# ---------------------------------------------------------------------------
# phi history
# ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(systems, st.booleans(), st.booleans())
def test_phi_history_is_dense_phi_and_non_increasing(system, preconditioned, warm):
    seed, n = system
    a, b, rng = spd_system(seed, n)
    diag = rng.uniform(0.1, 10.0, size=n)
    x0 = rng.standard_normal(n) if warm else None
    callback, seen = record_iterates()
    res = cg(lambda v: a @ v, b, x0, psolve=(lambda r: r / diag) if preconditioned else None,
             tol=0.0, rtol=1e-12, max_iters=20 * n + 20, callback=callback)
    assert len(res.phi) == res.iterations + 1 == len(seen) + 1
    start = np.zeros(n) if x0 is None else x0
    scale = abs(dense_phi(a, b, np.linalg.solve(a, b))) + abs(dense_phi(a, b, start)) + 1e-300
    assert abs(res.phi[0] - dense_phi(a, b, start)) <= 1e-10 * scale
    for i, x in seen:
        assert abs(res.phi[i] - dense_phi(a, b, x)) <= 1e-9 * scale, i
    for i, x in res.kept:
        assert abs(res.phi[i] - dense_phi(a, b, x)) <= 1e-9 * scale, i
    assert np.all(np.diff(res.phi) <= 1e-10 * scale)


# ---------------------------------------------------------------------------
# Martens' stopping rule
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("min_window, window_fraction", [(10, 0.1), (3, 0.5), (20, 0.0)])
def test_martens_rule_fires_at_first_qualifying_iteration(min_window, window_fraction):
    rng = np.random.default_rng(3)
    eig = np.logspace(-3, 1, 300)
    b = rng.standard_normal(300)
    callback, seen = record_iterates()
    res = cg(lambda v: eig * v, b, tol=5e-4, rtol=0.0, max_iters=1000,
             min_window=min_window, window_fraction=window_fraction, callback=callback)
    assert res.status == CGStatus.CONVERGED
    assert "relative progress" in res.message
    assert f"iteration {res.iterations}" in res.message
    stop = res.iterations
    assert min_window < stop < 1000
    # independent phi history from the iterates the callback saw
    phi = np.array([0.0] + [0.5 * x @ (eig * x) - b @ x for _, x in seen])
    assert martens_fires(phi, stop, 5e-4, min_window, window_fraction)
    assert not any(martens_fires(phi, i, 5e-4, min_window, window_fraction)
                   for i in range(1, stop))
    # far from solved: the rule truncated the run
    assert np.linalg.norm(b - eig * res.x) > 1e-6 * np.linalg.norm(b)


def test_martens_rule_needs_more_than_k_iterations():
    """With a huge tol the rule fires as soon as i > k, never at i == k."""
    rng = np.random.default_rng(4)
    eig = np.logspace(-3, 1, 100)
    b = rng.standard_normal(100)
    res = cg(lambda v: eig * v, b, tol=1.0, rtol=0.0, min_window=10, window_fraction=0.0)
    assert res.status == CGStatus.CONVERGED
    assert res.iterations == 11
    assert martens_fires(res.phi, 11, 1.0, 10, 0.0)


def test_tol_zero_disables_martens_rule():
    rng = np.random.default_rng(3)
    eig = np.logspace(-3, 1, 300)
    b = rng.standard_normal(300)
    truncated = cg(lambda v: eig * v, b, tol=5e-4, rtol=0.0, max_iters=300)
    full = cg(lambda v: eig * v, b, tol=0.0, rtol=0.0, max_iters=300)
    assert truncated.iterations < 300
    assert full.status == CGStatus.MAX_ITERATIONS
    assert full.iterations == 300 and len(full.phi) == 301
    assert full.phi[-1] < truncated.phi[-1]


def test_tol_zero_stops_on_residual():
    a, b, _ = spd_system(11, 12, -1.0, 1.0)
    res = cg(lambda v: a @ v, b, tol=0.0, rtol=1e-8, max_iters=500)
    assert res.status == CGStatus.CONVERGED
    assert "residual" in res.message
    assert np.linalg.norm(b - a @ res.x) <= 1e-7 * np.linalg.norm(b)
    assert res.iterations < 500


# ---------------------------------------------------------------------------
# statuses
# ---------------------------------------------------------------------------


def test_max_iterations_matches_scipy_truncated_run():
    a, b, _ = spd_system(5, 20)
    res = cg(lambda v: a @ v, b, tol=0.0, max_iters=3)
    assert res.status == CGStatus.MAX_ITERATIONS and not res.success
    assert res.iterations == 3 and "max_iters = 3" in res.message
    x_sp, info = spla.cg(a, b, rtol=1e-14, atol=0.0, maxiter=3)
    assert info == 3
    assert rel_err(res.x, x_sp) < 1e-10


def test_identity_converges_in_one_iteration_on_residual():
    b = np.arange(1.0, 6.0)
    res = cg(lambda v: v, b)
    assert res.status == CGStatus.CONVERGED
    assert res.iterations == 1
    assert "residual" in res.message and "iteration 1" in res.message
    np.testing.assert_allclose(res.x, b)


def test_exact_zero_residual_converges_with_rtol_zero():
    with np.errstate(all="raise"):
        res = cg(lambda v: v, np.arange(1.0, 6.0), tol=0.0, rtol=0.0)
    assert res.status == CGStatus.CONVERGED
    assert res.iterations == 1 and "residual" in res.message


def test_zero_rhs_returns_zero_immediately():
    calls = []

    def matvec(v):
        calls.append(1)
        return v

    for x0 in (None, np.zeros(4)):
        res = cg(matvec, np.zeros(4), x0)
        assert res.status == CGStatus.CONVERGED and res.iterations == 0
        assert np.array_equal(res.x, np.zeros(4))
        assert np.array_equal(res.phi, [0.0])
        assert [i for i, _ in res.kept] == [0]
        assert "iteration 0" in res.message
    assert calls == []


def test_zero_rhs_with_warm_start_uses_initial_residual_as_reference():
    a, _, rng = spd_system(15, 8, -1.0, 1.0)
    x0 = rng.standard_normal(8)
    res = cg(lambda v: a @ v, np.zeros(8), x0, tol=0.0, rtol=1e-10, max_iters=200)
    assert res.status == CGStatus.CONVERGED and "b is zero" in res.message
    assert np.linalg.norm(a @ res.x) <= 1e-10 * np.linalg.norm(a @ x0) * (1 + 1e-9)
    assert np.linalg.norm(res.x) < 1e-8 * np.linalg.norm(x0)


def test_warm_start_at_solution_converges_at_iteration_zero():
    a, b, _ = spd_system(2, 6, -1.0, 1.0)
    x_star = np.linalg.solve(a, b)
    res = cg(lambda v: a @ v, a @ x_star, x_star, rtol=1e-8)
    assert res.status == CGStatus.CONVERGED and res.iterations == 0
    assert np.array_equal(res.x, x_star)
    assert not np.shares_memory(res.x, x_star)
    assert not np.shares_memory(res.kept[0][1], x_star)


# ---------------------------------------------------------------------------
# shrink_x0: the start moved to the model's minimizer along x0
# ---------------------------------------------------------------------------


def counting(a):
    calls = []

    def matvec(v):
        calls.append(1)
        return a @ v

    return matvec, calls


@pytest.mark.parametrize("factor", [-3.0, 0.2, 0.7, 2.5, 40.0])
def test_shrink_x0_starts_at_the_minimizer_of_phi_along_x0_within_zero_and_x0(factor):
    a, b, rng = spd_system(11, 12)
    x_star = np.linalg.solve(a, b)
    x0 = factor * x_star + 0.3 * np.linalg.norm(x_star) * rng.standard_normal(12)
    # Reference: scipy's bounded scalar minimizer of the dense phi on s in [0, 1].
    ref = scipy.optimize.minimize_scalar(lambda s: dense_phi(a, b, s * x0), bounds=(0.0, 1.0), method="bounded",
                                         options={"xatol": 1e-12})
    res = cg(lambda v: a @ v, b, x0, shrink_x0=True, tol=0.0, rtol=1e-12, max_iters=300)
    assert res.x0_scale == pytest.approx(ref.x, abs=1e-6)
    assert res.phi[0] == pytest.approx(dense_phi(a, b, res.x0_scale * x0), rel=1e-10, abs=1e-12)
    assert res.phi[0] <= min(0.0, dense_phi(a, b, x0)) + 1e-12
    assert res.status == CGStatus.CONVERGED and rel_err(res.x, x_star) < 1e-6


def test_shrink_x0_gives_zero_for_an_uphill_start_and_then_runs_like_a_cold_start():
    a, b, _ = spd_system(12, 10)
    x0 = -np.linalg.solve(a, b)  # b^T x0 < 0: every positive multiple is uphill
    warm = cg(lambda v: a @ v, b, x0, shrink_x0=True, tol=0.0, max_iters=4)
    cold = cg(lambda v: a @ v, b, tol=0.0, max_iters=4)
    assert warm.x0_scale == 0.0 and warm.phi[0] == 0.0
    np.testing.assert_allclose(warm.phi, cold.phi, rtol=1e-12, atol=1e-15)
    for (i, x), (j, y) in zip(warm.kept, cold.kept):
        assert i == j
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


def test_shrink_x0_keeps_a_start_whose_minimizer_lies_beyond_it_and_costs_no_product():
    a, b, _ = spd_system(13, 8)
    x0 = 0.5 * np.linalg.solve(a, b)  # phi along x0 is lowest at s = 2: clipped to 1
    mv, calls = counting(a)
    res = cg(mv, b, x0, shrink_x0=True, tol=0.0, max_iters=3)
    mv_plain, calls_plain = counting(a)
    plain = cg(mv_plain, b, x0, tol=0.0, max_iters=3)
    assert res.x0_scale == 1.0 and plain.x0_scale == 1.0
    np.testing.assert_array_equal(res.x, plain.x)
    assert len(calls) == len(calls_plain) == 4  # the start's product and one per iteration
    # A shrunk start costs the same products.
    far = 10.0 * x0 + np.linalg.norm(x0) * np.random.default_rng(0).standard_normal(8)
    mv, calls = counting(a)
    shrunk = cg(mv, b, far, shrink_x0=True, tol=0.0, max_iters=3)
    assert 0.0 < shrunk.x0_scale < 1.0 and shrunk.iterations == 3 and len(calls) == 4


def test_shrink_x0_must_be_a_bool():
    a, b, _ = spd_system(14, 4)
    with pytest.raises(TypeError, match="shrink_x0"):
        cg(lambda v: a @ v, b, b, shrink_x0="yes")


def test_negative_definite_stops_without_dividing():
    b = np.array([1.0, -2.0, 3.0])
    with np.errstate(all="raise"):
        res = cg(lambda v: -2.0 * v, b)
    assert res.status == CGStatus.NEGATIVE_CURVATURE and not res.success
    assert res.iterations == 0
    assert np.array_equal(res.x, np.zeros(3))
    assert "curvature" in res.message and "iteration 1" in res.message


def test_indefinite_returns_last_positive_curvature_iterate():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    eig = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -0.5, -1.0])
    a = (q * eig) @ q.T
    b = q @ np.concatenate([np.ones(8), [0.2, 0.2]])
    callback, seen = record_iterates()
    with np.errstate(all="raise"):
        res = cg(lambda v: a @ v, b, tol=0.0, max_iters=50, callback=callback)
    assert res.status == CGStatus.NEGATIVE_CURVATURE
    assert res.iterations == len(seen) >= 1
    assert np.isfinite(res.x).all()
    assert np.array_equal(res.x, seen[-1][1])
    assert f"iteration {res.iterations + 1}" in res.message


def test_zero_curvature_direction_is_negative_curvature():
    a = np.diag([1.0, 0.0])
    with np.errstate(all="raise"):
        res = cg(lambda v: a @ v, np.array([0.0, 1.0]))
    assert res.status == CGStatus.NEGATIVE_CURVATURE
    assert np.array_equal(res.x, np.zeros(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_matvec_returns_last_finite_iterate(bad):
    a, b, _ = spd_system(4, 15)
    calls = []

    def matvec(v):
        calls.append(1)
        out = a @ v
        if len(calls) == 5:
            out[3] = bad
        return out

    callback, seen = record_iterates()
    res = cg(matvec, b, tol=0.0, max_iters=50, callback=callback)
    assert res.status == CGStatus.NON_FINITE and not res.success
    assert res.iterations == 4 == len(seen)
    assert np.isfinite(res.x).all()
    assert np.array_equal(res.x, seen[-1][1])
    assert len(res.phi) == 5 and np.isfinite(res.phi).all()
    assert "matvec" in res.message and "iteration 5" in res.message


def test_non_finite_matvec_on_warm_start_returns_x0():
    x0 = np.array([1.0, 2.0])
    res = cg(lambda v: np.full(2, np.nan), np.ones(2), x0)
    assert res.status == CGStatus.NON_FINITE
    assert res.iterations == 0
    assert np.array_equal(res.x, x0)


def test_non_finite_psolve():
    a, b, _ = spd_system(8, 10)
    calls = []

    def psolve(r):
        calls.append(1)
        return r * (np.inf if len(calls) == 3 else 1.0)

    res = cg(lambda v: a @ v, b, psolve=psolve, tol=0.0, max_iters=50)
    assert res.status == CGStatus.NON_FINITE
    assert res.iterations == 2 and np.isfinite(res.x).all()
    assert "psolve" in res.message


def test_indefinite_preconditioner_is_reported():
    res = cg(lambda v: v, np.ones(3), psolve=lambda r: -r)
    assert res.status == CGStatus.NEGATIVE_CURVATURE
    assert "preconditioner" in res.message


# ---------------------------------------------------------------------------
# kept iterates and the geometric grid
# ---------------------------------------------------------------------------


def exact_grid(max_iters, start, ratio):
    """Exact rational reference for ceil(start * ratio**j) <= max_iters."""
    start, ratio = Fraction(start), Fraction(ratio)
    out, j = set(), 0
    while math.ceil(start * ratio**j) <= max_iters:
        out.add(math.ceil(start * ratio**j))
        j += 1
    return tuple(sorted(out))


@pytest.mark.parametrize(
    "start, ratio, expected",
    [
        # in floating point 100 * 1.1 == 110.00000000000001 and 100 * 1.1**2 == 121.00000000000001
        (100, 1.1, (100, 110, 121, 134, 147, 162, 178, 195)),
        (100, 1.3, (100, 130, 169)),  # 100 * 1.3**2 == 169.00000000000003 in floating point
        (4, 1.5, (4, 6, 9, 14, 21, 31, 46, 69, 103, 154)),
        (1, 2.0, (1, 2, 4, 8, 16, 32, 64, 128)),
    ],
)
def test_geometric_grid_exact_integer_points(start, ratio, expected):
    # 100 * 1.1**k: 100, 110, 121, 133.1, 146.41, 161.051, 177.1561, 194.87171, 214.4
    # 4 * 1.5**k: 4, 6, 9, 13.5, 20.25, 30.375, 45.5625, 68.34, 102.5, 153.8, 230.7
    assert geometric_grid(200, start, ratio) == expected


def test_geometric_grid_default_by_hand():
    # 5, 6.5, 8.45, 10.985, 14.28, 18.56, 24.13, 31.37, 40.79, 53.02
    assert geometric_grid(50) == (5, 7, 9, 11, 15, 19, 25, 32, 41)
    assert geometric_grid(4) == ()
    assert geometric_grid(0) == ()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 3000),
    st.integers(1, 20),
    st.sampled_from(["1.01", "1.05", "1.1", "1.25", "1.3", "1.5", "2", "3"]),
)
def test_geometric_grid_matches_exact_arithmetic(max_iters, start, ratio):
    assert geometric_grid(max_iters, start, float(ratio)) == exact_grid(max_iters, start, ratio)


@pytest.mark.parametrize("max_iters, tol", [(60, 0.0), (1000, 5e-4), (4, 0.0), (7, 0.0)])
def test_kept_iterates_follow_grid_and_equal_callback_iterates(max_iters, tol):
    rng = np.random.default_rng(1)
    eig = np.logspace(-3, 1, 200)
    b = rng.standard_normal(200)
    callback, seen = record_iterates()
    res = cg(lambda v: eig * v, b, tol=tol, rtol=0.0, max_iters=max_iters, callback=callback)
    seen = dict(seen)
    kept_iters = [i for i, _ in res.kept]
    grid = exact_grid(max_iters, 5, "1.3")
    expected = sorted({g for g in grid if 1 <= g <= res.iterations} | {res.iterations})
    assert kept_iters == expected
    for i, x in res.kept:
        assert np.array_equal(x, seen[i]), i
    assert np.array_equal(res.kept[-1][1], res.x)
    assert sorted(seen) == list(range(1, res.iterations + 1))


def test_kept_iterates_custom_grid():
    a, b, _ = spd_system(9, 30, -3.0, 1.0)
    res = cg(lambda v: a @ v, b, tol=0.0, rtol=0.0, max_iters=20, grid_start=2, grid_ratio=2.0)
    assert [i for i, _ in res.kept] == [2, 4, 8, 16, 20]


# ---------------------------------------------------------------------------
# inputs, dtypes, validation
# ---------------------------------------------------------------------------


def test_x0_is_not_mutated_even_when_read_only():
    a, b, rng = spd_system(6, 8)
    x0 = rng.standard_normal(8)
    x0.flags.writeable = False
    before = x0.copy()
    res = cg(lambda v: a @ v, b, x0)
    assert np.array_equal(x0, before)
    assert res.x is not x0 and not np.shares_memory(res.x, x0)
    res.x[0] += 1.0  # result is writable and independent
    assert np.array_equal(x0, before)


def test_float32_products_give_float64_result():
    a, b, _ = spd_system(10, 10, -1.0, 1.0)
    a32 = a.astype(np.float32)
    res = cg(lambda v: a32 @ v.astype(np.float32), b.astype(np.float32),
             psolve=lambda r: r.astype(np.float32), tol=0.0, rtol=1e-5, max_iters=100)
    assert res.x.dtype == np.float64 and res.phi.dtype == np.float64
    assert all(x.dtype == np.float64 for _, x in res.kept)
    assert rel_err(res.x, np.linalg.solve(a, b)) < 1e-3


def test_callables_receive_float64_vectors():
    a, b, _ = spd_system(13, 6, -1.0, 1.0)
    dtypes = []

    def matvec(v):
        dtypes.append(v.dtype)
        return (a @ v).astype(np.float32)

    def psolve(r):
        dtypes.append(r.dtype)
        return r.astype(np.float32)

    cg(matvec, b.astype(np.float32), np.ones(6, dtype=np.float32), psolve=psolve,
       tol=0.0, max_iters=5)
    assert len(dtypes) >= 10 and all(dt == np.float64 for dt in dtypes)


def test_callback_cannot_corrupt_the_run():
    a, b, _ = spd_system(14, 10, -1.0, 1.0)
    clean = cg(lambda v: a @ v, b, tol=0.0, max_iters=8)

    def vandal(i, x):
        x[:] = np.nan

    res = cg(lambda v: a @ v, b, tol=0.0, max_iters=8, callback=vandal)
    assert res.status == clean.status
    assert np.array_equal(res.x, clean.x) and np.array_equal(res.phi, clean.phi)


def test_list_input_is_accepted():
    res = cg(lambda v: 2.0 * v, [2, 4])
    np.testing.assert_allclose(res.x, [1.0, 2.0])


def test_callback_sees_every_iteration_in_order():
    a, b, _ = spd_system(12, 10)
    callback, seen = record_iterates()
    res = cg(lambda v: a @ v, b, tol=0.0, max_iters=6, callback=callback)
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5, 6] and res.iterations == 6


GOOD_B = np.ones(3)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((np.ones((3, 1)),), {}, ValueError, r"b must be 1-D.*\(3, 1\)"),
        ((np.array([1.0, np.nan]),), {}, ValueError, "b must be finite"),
        ((np.array([1.0 + 1j, 2.0]),), {}, ValueError, "b must be a real.*complex"),
        ((np.array(["a", "b"]),), {}, ValueError, "b must be a real"),
        ((GOOD_B, np.ones(4)), {}, ValueError, r"x0 must have shape \(3,\).*\(4,\)"),
        ((GOOD_B, np.array([0.0, np.inf, 0.0])), {}, ValueError, "x0 must be finite"),
        ((GOOD_B,), {"max_iters": 0}, ValueError, "max_iters must be a positive integer, got 0"),
        ((GOOD_B,), {"max_iters": 2.5}, TypeError, r"max_iters must be a positive integer, got 2.5 \(float\)"),
        ((GOOD_B,), {"max_iters": True}, TypeError, "max_iters"),
        ((GOOD_B,), {"tol": -1e-3}, ValueError, "tol must be .*-0.001"),
        ((GOOD_B,), {"tol": float("nan")}, ValueError, "tol must be finite"),
        ((GOOD_B,), {"rtol": -1.0}, ValueError, "rtol must be .*-1.0"),
        ((GOOD_B,), {"min_window": 0}, ValueError, "min_window must be a positive integer, got 0"),
        ((GOOD_B,), {"window_fraction": -0.1}, ValueError, "window_fraction"),
        ((GOOD_B,), {"grid_start": 0.5}, ValueError, "start must be .*0.5"),
        ((GOOD_B,), {"grid_ratio": 1.0}, ValueError, r"ratio must be finite and in \(1, inf\], got 1.0"),
        ((GOOD_B,), {"psolve": 3}, TypeError, "psolve must be callable, got 3"),
        ((GOOD_B,), {"callback": "x"}, TypeError, "callback must be callable"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cg(lambda v: v, *args, **kwargs)


def test_matvec_not_callable():
    with pytest.raises(TypeError, match="matvec must be callable"):
        cg(np.eye(3), GOOD_B)


@pytest.mark.parametrize("shape", [(4,), (3, 1), ()])
def test_matvec_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"matvec returned shape .*expected \(3,\)"):
        cg(lambda v: np.ones(shape), GOOD_B)


def test_psolve_wrong_shape():
    with pytest.raises(ValueError, match=r"psolve returned shape \(2,\)"):
        cg(lambda v: v, GOOD_B, psolve=lambda r: r[:2])


def test_geometric_grid_validation():
    with pytest.raises(ValueError, match="max_iters must be a non-negative integer, got -1"):
        geometric_grid(-1)
    with pytest.raises(ValueError, match="ratio"):
        geometric_grid(10, ratio=0.9)


# ---------------------------------------------------------------------------
# package surface and docs
# ---------------------------------------------------------------------------


def test_public_api_and_result_type():
    assert set(hf.cg.__all__) == {"cg", "CGResult", "CGStatus", "geometric_grid"}
    res = cg(lambda v: v, GOOD_B)
    assert isinstance(res, CGResult)
    with pytest.raises(AttributeError):
        res.status = CGStatus.MAX_ITERATIONS
    assert [s.value for s in CGStatus] == [0, 1, 2, 3]


def test_doctests():
    result = doctest.testmod(hf.cg._cg, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0


def test_an_iterate_that_overflows_falls_back_to_the_last_finite_kept_one(monkeypatch):
    """x is updated in place, after the step, φ and the residual were checked finite; should x itself still
    overflow (simulated: the update of x at iteration 6 writes an Inf), CG returns the last finite iterate it
    kept, with its φ history cut there, and says so."""
    from hf.cg import _cg

    a, b, _ = spd_system(12, 16)
    plain = _cg._axpy
    reference = cg(lambda v: a @ v, b, tol=0.0, max_iters=10)
    calls = []

    def overflowing(alpha, v, y):
        out = plain(alpha, v, y)
        calls.append(1)
        if len(calls) == 17:  # the 6th iteration's x update (each iteration: r's, x's, then the direction's)
            out[0] = np.inf
        return out

    monkeypatch.setattr(_cg, "_axpy", overflowing)
    res = cg(lambda v: a @ v, b, tol=0.0, max_iters=10)
    kept_before = [k for k, _ in reference.kept if k < 6]
    assert res.status == CGStatus.NON_FINITE and "overflowed" in res.message
    assert res.iterations == kept_before[-1] and np.isfinite(res.x).all()
    np.testing.assert_array_equal(res.x, dict(reference.kept)[res.iterations])
    np.testing.assert_array_equal(res.phi, reference.phi[: res.iterations + 1])
    assert [k for k, _ in res.kept] == kept_before


@pytest.mark.parametrize("shrink", [False, True])
def test_an_overflow_before_any_kept_iterate_returns_the_warm_start(monkeypatch, shrink):
    """With nothing kept yet, the fallback is the start point: x0 (times its scale under shrink_x0), which CG
    reads again from the caller's array rather than copying it for the whole run; the caller's x0 is never
    written."""
    from hf.cg import _cg

    a, b, _ = spd_system(12, 17)
    x0 = (np.linalg.solve(a, b) + 0.1 * np.random.default_rng(0).normal(size=b.shape)) * 3.0  # shrunk: ~1/3
    x0_before = x0.copy()
    plain = _cg._axpy
    calls = []

    def overflowing(alpha, v, y):
        out = plain(alpha, v, y)
        calls.append(1)
        if len(calls) == 2:  # the first iteration's x update
            out[0] = np.inf
        return out

    monkeypatch.setattr(_cg, "_axpy", overflowing)
    res = cg(lambda v: a @ v, b, x0=x0, tol=0.0, max_iters=10, shrink_x0=shrink)
    assert res.status == CGStatus.NON_FINITE and "overflowed" in res.message
    assert res.iterations == 0 and [k for k, _ in res.kept] == [0]
    scale = 1.0 if not shrink else (b @ x0_before) / (x0_before @ a @ x0_before)
    np.testing.assert_allclose(res.x, x0_before * scale, rtol=1e-12)
    np.testing.assert_array_equal(x0, x0_before)
    assert res.x is not x0


@pytest.mark.parametrize("window", [None, (0.5, 2.0), (0.0, math.inf)], ids=["default", "every", "never"])
@pytest.mark.parametrize("preconditioned", [False, True])
@pytest.mark.parametrize("log_eig", [(-1.0, 1.0), (-3.0, 2.0)], ids=["cond100", "cond1e5"])
def test_the_scaled_direction_matches_solve_whether_it_is_rescaled_or_not(monkeypatch, preconditioned, window,
                                                                          log_eig):
    """CG keeps its direction as a scale times a vector and multiplies the scale out when it (the ratio of
    rᵀz to its first value) leaves ``_SCALE_WINDOW``: with the default window (a run to a residual 1e-13 of
    the first passes through it), a window that rescales at almost every iteration and one that never
    does, CG lands on numpy's solution, with φ equal to the dense quadratic at every iterate."""
    from hf.cg import _cg

    if window is not None:
        monkeypatch.setattr(_cg, "_SCALE_WINDOW", window)
    a, b, _ = spd_system(31, 40, *log_eig)
    diag = np.diag(a).copy()
    psolve = (lambda r: r / diag) if preconditioned else None
    seen = []
    res = cg(lambda v: a @ v, b, psolve=psolve, tol=0.0, rtol=1e-12, max_iters=600,
             callback=lambda i, x: seen.append((i, x)))
    assert res.status == CGStatus.CONVERGED
    r_end = b - a @ res.x
    assert (r_end @ r_end) / (b @ b) < 1e-22  # rᵀr, hence rᵀM⁻¹r, fell by far more than 1e20
    np.testing.assert_allclose(res.x, np.linalg.solve(a, b), rtol=1e-7, atol=1e-12)
    scale = abs(dense_phi(a, b, res.x))
    for i, x in seen:
        assert abs(res.phi[i] - dense_phi(a, b, x)) <= 1e-10 * scale, i
