"""Truncated preconditioned conjugate gradient for Hessian-free optimization.

The solver works on flat ``float64`` numpy vectors and only sees the system
matrix through a product callable, so it is independent of how curvature
products are built.  It never imports PyTensor.
"""
import dataclasses
import enum
import functools
import math

import numpy as np
from scipy.linalg.blas import daxpy as _daxpy

from .. import _checks

__all__ = ["cg", "CGResult", "CGStatus", "geometric_grid"]

# Relative slack when rounding grid points up: ``start * ratio**j`` carries a
# few ulps of error, which must not push an exact integer to the next one.
_GRID_REL_SLACK = 1e-12

# Defaults of the knobs of cg() that HF does not set (Martens' values), named once
# for cg(), the unchecked _solve() that hf_update calls, and geometric_grid().
_MIN_WINDOW, _WINDOW_FRACTION, _RTOL, _GRID_START, _GRID_RATIO = 10, 0.1, 1e-10, 5, 1.3


class CGStatus(enum.IntEnum):
    """Why :func:`cg` stopped.

    Each reason has its own code; only ``CONVERGED`` counts as success.
    """

    #: Martens' relative-progress rule fired, or ``||r|| <= rtol * ||b||``.
    CONVERGED = 0
    #: ``max_iters`` iterations were performed without another rule firing.
    MAX_ITERATIONS = 1
    #: A search direction ``d`` with ``d^T A d <= 0`` was met (or the
    #: preconditioner gave ``r^T M^{-1} r <= 0``); the solver stopped before
    #: dividing by it.
    NEGATIVE_CURVATURE = 2
    #: ``matvec`` or ``psolve`` returned NaN/Inf, or a scalar of the
    #: recursion (step length, ``phi``...) became non-finite.
    NON_FINITE = 3


@dataclasses.dataclass(frozen=True, eq=False)
class CGResult:
    """Outcome of :func:`cg`.

    Attributes
    ----------
    x : numpy.ndarray
        Final iterate, 1-D ``float64``.  When the run stopped on
        ``NEGATIVE_CURVATURE`` or ``NON_FINITE`` this is the last finite
        iterate before the failure.
    status : CGStatus
        Why the run stopped.
    message : str
        Human readable reason, naming the iteration.
    iterations : int
        Number of completed CG iterations, so that ``x`` is ``x_iterations``.
        An iteration abandoned because of negative curvature or a non-finite
        value is not counted.
    phi : numpy.ndarray
        ``phi(x_i)`` for ``i = 0, ..., iterations`` with
        ``phi(x) = 0.5 x^T A x - b^T x``; ``phi[0]`` belongs to the start point.
    kept : tuple of (int, numpy.ndarray)
        ``(i, x_i)`` pairs for the iterations on the geometric grid of
        :func:`geometric_grid` plus the final iteration, in ascending order
        without repeats.  The arrays are copies.
    x0_scale : float
        The factor the given ``x0`` was multiplied by before the first iteration:
        1 unless ``shrink_x0`` changed it (0: the run started from zero).
    """

    x: np.ndarray
    status: CGStatus
    message: str
    iterations: int
    phi: np.ndarray
    kept: tuple
    x0_scale: float = 1.0

    @property
    def success(self):
        """bool: whether ``status`` is ``CGStatus.CONVERGED``."""
        return self.status == CGStatus.CONVERGED


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------


def _check_callable(name, value, optional):
    if value is None and optional:
        return
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r}")


def _as_vector(name, value, n=None):
    """Turn a user vector into a finite 1-D float64 array (no copy if possible)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if n is not None and arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) like b, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite, got NaN or Inf entries")
    return arr


def _axpy(a, x, y):
    """``y += a·x`` in place on float64 ``y`` (BLAS daxpy: one pass over the two vectors)."""
    out = _daxpy(x, y, a=a)
    if out is not y:  # daxpy works on a copy only for an array it cannot write: not CG's own
        y[...] = out
    return y


def _call_vector(name, fn, v):
    """Call ``fn(v)`` and return its output as a 1-D float64 array of v's shape."""
    out = np.asarray(fn(v))
    if out.dtype.kind not in "biuf":
        raise ValueError(f"{name} must return a real numeric array, got dtype {out.dtype}")
    if out.shape != v.shape:
        raise ValueError(f"{name} returned shape {out.shape}, expected {v.shape}")
    return out.astype(np.float64, copy=False)


#: CG keeps its direction as ``scale · d``; when the scale leaves this open interval, d is multiplied
#: out and the scale reset to 1.
_SCALE_WINDOW = (1e-20, 1e20)


# ---------------------------------------------------------------------------
# geometric grid of kept iterations
# ---------------------------------------------------------------------------


def _grid_point(start, ratio, j):
    value = start * ratio**j
    return math.ceil(value * (1.0 - _GRID_REL_SLACK))


def geometric_grid(max_iters, start=_GRID_START, ratio=_GRID_RATIO):
    """Iterations on a geometric grid, as used to keep CG iterates.

    Parameters
    ----------
    max_iters : int
        Largest iteration to include (``>= 0``).
    start : float, optional
        First grid value before rounding up (``>= 1``).
    ratio : float, optional
        Growth factor between grid values (``> 1``).

    Returns
    -------
    tuple of int
        The distinct values ``ceil(start * ratio**j)``, ``j = 0, 1, ...``, that
        are ``<= max_iters``, in ascending order.

    Raises
    ------
    TypeError, ValueError
        If an argument has the wrong type or is out of range.

    Notes
    -----
    Martens keeps the CG iterates at iterations ``ceil(5 * 1.3**j)`` so that
    the backtracking step of an HF update can fall back to an earlier, shorter
    iterate [Mart10]_.  Values within a relative ``1e-12`` above an integer
    are treated as that integer, so that rounding noise in ``ratio**j`` does
    not move an exact grid point.

    References
    ----------
    .. [Mart10] J. Martens, "Deep learning via Hessian-free optimization",
       ICML 2010.

    Examples
    --------
    >>> geometric_grid(30)
    (5, 7, 9, 11, 15, 19, 25)
    """
    max_iters = _checks.nonnegative_int("max_iters", max_iters)
    start = _checks.real("start", start, low=1.0)
    ratio = _checks.real("ratio", ratio, low=1.0, low_open=True)
    log_ratio = math.log(ratio)
    points = []
    j = 0
    # Each pass either adds a new value (at most max_iters of them) or, after
    # rounding noise, repeats the previous one once before moving on.
    for _ in range(2 * max_iters + 2):
        v = _grid_point(start, ratio, j)
        if v > max_iters:
            break
        if not points or v > points[-1]:
            points.append(v)
        # Jump to the first exponent whose grid value exceeds v.
        j = max(j + 1, math.floor(math.log(v / start) / log_ratio) + 1)
    return tuple(points)


# ---------------------------------------------------------------------------
# the solver
# ---------------------------------------------------------------------------


def _martens_rule(phi, i, tol, min_window, window_fraction):
    """Return the progress ratio and window if Martens' rule fires at ``i``."""
    k = max(min_window, math.ceil(window_fraction * i))
    if i <= k or not phi[i] < 0.0:
        return None
    progress = (phi[i] - phi[i - k]) / phi[i]
    if progress < k * tol:
        return progress, k
    return None


def cg(
    matvec,
    b,
    x0=None,
    *,
    psolve=None,
    max_iters=250,
    tol=5e-4,
    min_window=_MIN_WINDOW,
    window_fraction=_WINDOW_FRACTION,
    rtol=_RTOL,
    grid_start=_GRID_START,
    grid_ratio=_GRID_RATIO,
    callback=None,
    shrink_x0=False,
):
    r"""Solve ``A x = b`` by truncated, preconditioned conjugate gradient.

    ``A`` must be symmetric positive (semi-)definite and is known only through
    ``matvec``.  The run is truncated with Martens' relative-progress rule on
    the quadratic ``phi(x) = 0.5 x^T A x - b^T x`` [Mart10]_, which is what
    Hessian-free optimization needs: a good decrease of the model, not an
    accurate solution.

    Parameters
    ----------
    matvec : callable
        ``matvec(v)`` returns ``A v`` for a 1-D ``float64`` vector ``v``, as an
        array of the same shape (any real dtype; it is converted to ``float64``).
    b : array_like
        Right-hand side, 1-D, real and finite.  In HF it is ``-g``.
    x0 : array_like, optional
        Start point, same shape as ``b``; zeros if omitted.  It is copied, never
        modified.  A non-zero start costs one extra ``matvec``.
    psolve : callable, optional
        ``psolve(r)`` returns ``M^{-1} r`` for a symmetric positive definite
        preconditioner ``M``.  Identity if omitted.
    max_iters : int, optional
        Maximum number of CG iterations (``>= 1``).
    tol : float, optional
        ``epsilon`` of Martens' rule (``>= 0``); ``0`` disables the rule.
    min_window : int, optional
        Smallest look-back window ``k`` of Martens' rule (``>= 1``).
    window_fraction : float, optional
        The window grows as ``ceil(window_fraction * i)`` (``>= 0``).
    rtol : float, optional
        Also stop when ``||r|| <= rtol * ||b||`` (``>= 0``).
    grid_start, grid_ratio : float, optional
        Geometric grid of kept iterates, see :func:`geometric_grid`.
    callback : callable, optional
        ``callback(i, x_i)`` is called after each completed iteration ``i``
        with a copy of the iterate.
    shrink_x0 : bool, optional
        Start from ``s * x0`` instead of ``x0``, with ``s`` the minimizer of
        ``phi`` along ``x0`` clipped to ``[0, 1]``:
        ``s = clip(b^T x0 / x0^T A x0, 0, 1)``, so the start is never worse
        than zero or than ``x0`` under the model.  It costs no product beyond
        the one a non-zero start already takes (``A (s x0) = s A x0``).  The
        factor is ``CGResult.x0_scale``.  Meant for warm starts carried over
        from a previous system, which the new one may find far uphill.

    Returns
    -------
    CGResult
        Final iterate, status, message, iteration count, ``phi`` history and
        kept iterates.

    Raises
    ------
    TypeError
        If ``matvec``, ``psolve`` or ``callback`` is not callable, or a knob has
        the wrong type.
    ValueError
        If ``b`` or ``x0`` is not a finite real 1-D array of matching shape, a
        knob is out of range, or ``matvec``/``psolve`` returns the wrong shape.

    Notes
    -----
    With ``r = b - A x`` the residual, ``z = M^{-1} r`` and ``d`` the search
    direction, iteration ``i`` performs

    .. math::

        \alpha = \frac{r^T z}{d^T A d}, \quad
        x \leftarrow x + \alpha d, \quad
        r \leftarrow r - \alpha A d, \quad
        d \leftarrow M^{-1} r + \frac{r_{new}^T z_{new}}{r^T z} d .

    The quadratic is tracked without extra products: at the start point
    :math:`\phi(x_0) = \tfrac12 x_0^T A x_0 - b^T x_0 = -\tfrac12 x_0^T (b + r_0)`,
    and along each step :math:`\phi(x + \alpha d) = \phi(x) - \alpha\, d^T r +
    \tfrac12 \alpha^2\, d^T A d = \phi(x) - \tfrac12 \alpha\, r^T z` (``r`` is
    orthogonal to the previous direction, so :math:`d^T r = r^T z`, and
    :math:`\alpha\, d^T A d = r^T z`).

    The run stops at the first of:

    * Martens' rule [Mart10]_: at iteration ``i`` with
      :math:`k = \max(\text{min\_window}, \lceil \text{window\_fraction}
      \cdot i \rceil)`, stop when :math:`i > k`, :math:`\phi(x_i) < 0` and
      :math:`(\phi(x_i) - \phi(x_{i-k})) / \phi(x_i) < k \cdot \text{tol}`
      (status ``CONVERGED``);
    * :math:`\|r\| \le \text{rtol} \cdot \|b\|` (``CONVERGED``), checked
      for the start point too; when ``b`` is zero the reference norm is the
      initial residual norm instead, so a zero residual is needed;
    * ``max_iters`` iterations (``MAX_ITERATIONS``);
    * :math:`d^T A d \le 0` or :math:`r^T M^{-1} r \le 0` for a non-zero
      residual (``NEGATIVE_CURVATURE``); the iterate before it is returned;
    * a non-finite product or scalar (``NON_FINITE``); the last finite
      iterate is returned.

    For positive definite ``A``, ``phi(x_i)`` does not increase with ``i``.

    References
    ----------
    .. [Mart10] J. Martens, "Deep learning via Hessian-free optimization",
       ICML 2010.

    Examples
    --------
    >>> import numpy as np
    >>> A = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> b = np.array([1.0, 2.0])
    >>> res = cg(lambda v: A @ v, b)
    >>> res.status, res.iterations
    (<CGStatus.CONVERGED: 0>, 2)
    >>> np.allclose(res.x, np.linalg.solve(A, b))
    True
    >>> bool(res.phi[-1] < res.phi[0])
    True
    """
    # ---- validation at the boundary --------------------------------------
    _check_callable("matvec", matvec, optional=False)
    _check_callable("psolve", psolve, optional=True)
    _check_callable("callback", callback, optional=True)
    max_iters = _checks.positive_int("max_iters", max_iters)
    return _solve(
        matvec,
        b,
        x0,
        psolve=psolve,
        max_iters=max_iters,
        tol=_checks.real("tol", tol, low=0.0),
        min_window=_checks.positive_int("min_window", min_window),
        window_fraction=_checks.real("window_fraction", window_fraction, low=0.0),
        rtol=_checks.real("rtol", rtol, low=0.0),
        grid=frozenset(geometric_grid(max_iters, start=grid_start, ratio=grid_ratio)),
        callback=callback,
        shrink_x0=_checks.boolean("shrink_x0", shrink_x0),
    )


@functools.lru_cache(maxsize=64)
def _default_grid(max_iters):
    return frozenset(geometric_grid(max_iters))


def _solve(matvec, b, x0=None, *, psolve=None, max_iters, tol, shrink_x0=False, min_window=_MIN_WINDOW,
           window_fraction=_WINDOW_FRACTION, rtol=_RTOL, grid=None, callback=None):
    """:func:`cg` on settings already checked; ``grid`` is a frozenset of iterations to keep
    (default: :func:`geometric_grid` of ``max_iters`` with its defaults).

    :func:`hf.update.hf_update` calls this with the settings of its
    :class:`~hf.update.UpdateConfig`, checked once when the configuration was made,
    so an update does not check them again. ``b`` and ``x0`` (data, not settings)
    are still checked here, and every product's shape and values as in :func:`cg`.
    """
    b = _as_vector("b", b)
    n = b.shape[0]
    grid_set = _default_grid(max_iters) if grid is None else grid
    if x0 is None:
        x0_vector = None
        x = np.zeros(n)
    else:
        x0_vector = _as_vector("x0", x0, n)
        x = np.array(x0_vector, dtype=np.float64, copy=True)

    def precondition(r):
        return r if psolve is None else _call_vector("psolve", psolve, r)

    # ---- start point ------------------------------------------------------
    phi = [0.0]
    kept = []
    status = None
    message = ""
    i = 0
    warm = bool(np.any(x))
    r = b if warm else b.copy()  # a warm start's residual is the new array b − Ax below
    x0_scale = 1.0
    if warm:
        Ax = _call_vector("matvec", matvec, x)
        if np.isfinite(Ax).all():
            if shrink_x0:
                xAx, bx = float(x @ Ax), float(b @ x)
                if math.isfinite(xAx) and xAx > 0.0 and math.isfinite(bx):
                    x0_scale = min(1.0, max(0.0, bx / xAx))
                    x *= x0_scale
                    Ax *= x0_scale
            r = b - Ax
            phi[0] = float(-0.5 * (x @ (b + r)))
        else:
            status = CGStatus.NON_FINITE
            message = "matvec returned NaN/Inf for the start point x0 (iteration 0)"
            phi[0] = math.nan
    b_norm = float(np.linalg.norm(b))
    r_norm = float(np.linalg.norm(r))
    r_ref = b_norm if b_norm > 0.0 else r_norm
    ref_name = "||b||" if b_norm > 0.0 else "||r_0|| (b is zero)"
    if status is None and not (math.isfinite(phi[0]) and math.isfinite(r_norm)):
        status = CGStatus.NON_FINITE
        message = "phi or the residual norm is not finite at the start point (iteration 0)"
    if status is None and r_norm <= rtol * r_ref:
        status = CGStatus.CONVERGED
        message = (
            f"converged at iteration 0: residual norm {r_norm:.3e} "
            f"<= rtol*{ref_name} = {rtol * r_ref:.3e}"
        )
    if status is None:
        z = precondition(r)
        rz = float(r @ z)
        if not (np.isfinite(z).all() and math.isfinite(rz)):
            status = CGStatus.NON_FINITE
            message = "psolve returned NaN/Inf for the initial residual (iteration 0)"
        elif rz <= 0.0:
            status = CGStatus.NEGATIVE_CURVATURE
            message = (
                f"preconditioner is not positive definite: r^T M^-1 r = {rz:.3e} <= 0 "
                "at iteration 0"
            )
        d = np.array(z, dtype=np.float64, copy=True)  # updated in place below: never r's memory
    # The direction is kept as scale · d: its update z + β·direction is then one axpy into d
    # (d += z / scale after scale *= β), where scaling d and adding z take two passes. Products
    # are linear, so A·direction = scale · A·d and the scale folds into the scalars below.
    scale = 1.0
    # Vector algebra in place (x and r are this function's own arrays, updated by BLAS axpy:
    # one pass over three vectors where a new vector would take two over five): on a model of
    # millions of parameters each pass over memory counts. A NaN or Inf in a product (or in z)
    # makes the dot product taken with it non-finite (0·Inf is NaN), so checking the dot
    # products checks the vectors; every check of an iteration comes before x changes.

    # ---- iterations -------------------------------------------------------
    while status is None and i < max_iters:
        it = i + 1
        Ad = _call_vector("matvec", matvec, d)  # A·direction / scale
        dAd = scale * scale * float(d @ Ad)  # directionᵀ A direction
        if not math.isfinite(dAd):
            status = CGStatus.NON_FINITE
            message = f"matvec returned NaN/Inf (or d^T A d overflowed) at iteration {it}"
            break
        if dAd <= 0.0:
            status = CGStatus.NEGATIVE_CURVATURE
            message = f"non-positive curvature d^T A d = {dAd:.3e} at iteration {it}"
            break
        alpha = rz / dAd
        # φ(x + αd) = φ(x) − α dᵀr + ½α² dᵀAd (r = b − Ax) with dᵀr = rᵀz (d is z plus a multiple
        # of the previous direction, to which r is orthogonal) and α dᵀAd = rᵀz: no pass over a
        # vector, where −½ x_newᵀ(b + r_new) takes two over three.
        phi_new = phi[-1] - 0.5 * alpha * rz
        if not (math.isfinite(alpha) and math.isfinite(phi_new)):
            status = CGStatus.NON_FINITE
            message = f"the step or phi became non-finite at iteration {it}"
            break
        r = _axpy(-alpha * scale, Ad, r)
        rr = float(r @ r)
        r_norm = math.sqrt(rr) if rr >= 0.0 else math.nan
        if not math.isfinite(r_norm):  # r is not returned: x is still the last iterate
            status = CGStatus.NON_FINITE
            message = f"the residual became non-finite at iteration {it}"
            break
        # The iteration is complete: commit it.
        i = it
        x = _axpy(alpha * scale, d, x)
        phi.append(phi_new)
        if i in grid_set:
            kept.append((i, x.copy()))
        if callback is not None:
            callback(i, x.copy())

        if r_norm <= rtol * r_ref:
            status = CGStatus.CONVERGED
            message = (
                f"converged at iteration {i}: residual norm {r_norm:.3e} "
                f"<= rtol*{ref_name} = {rtol * r_ref:.3e}"
            )
            break
        if tol > 0.0:
            fired = _martens_rule(phi, i, tol, min_window, window_fraction)
            if fired is not None:
                progress, k = fired
                status = CGStatus.CONVERGED
                message = (
                    f"converged at iteration {i}: relative progress rule "
                    f"(phi(x_i) - phi(x_(i-k))) / phi(x_i) = {progress:.3e} "
                    f"< k*tol = {k * tol:.3e} with k = {k}"
                )
                break
        if i == max_iters:
            break

        z = precondition(r)
        rz_new = rr if psolve is None else float(r @ z)  # unpreconditioned, z is r
        if not math.isfinite(rz_new):
            status = CGStatus.NON_FINITE
            message = f"psolve returned NaN/Inf after iteration {i}"
            break
        if rz_new <= 0.0:
            status = CGStatus.NEGATIVE_CURVATURE
            message = (
                f"preconditioner is not positive definite: r^T M^-1 r = {rz_new:.3e} <= 0 "
                f"after iteration {i}"
            )
            break
        new_scale = scale * (rz_new / rz)  # the new direction is z + new_scale · d
        lo, hi = _SCALE_WINDOW
        if lo < new_scale < hi:
            scale = new_scale
            d = _axpy(1.0 / scale, z, d)
        else:  # keep d and its products far from the float range's ends: d becomes the direction itself
            d *= new_scale
            d += z
            scale = 1.0
        rz = rz_new

    if status is None:
        status = CGStatus.MAX_ITERATIONS
        message = f"reached max_iters = {max_iters} iterations without meeting a stopping rule"

    # ---- the single exit ----------------------------------------------------
    if i and not np.isfinite(x).all():
        # x overflowed in an update whose step, φ and residual were finite (|αd| near the float
        # range): go back to the last kept iterate that is finite, or to the start.
        while kept and not np.isfinite(kept[-1][1]).all():
            kept.pop()
        # The start point is x0 (read again, not kept as a copy through the run) times its scale.
        i, x = kept[-1] if kept else (0, np.zeros(n) if x0_vector is None else x0_vector * x0_scale)
        kept = [k for k in kept if k[0] < i]
        del phi[i + 1:]
        status = CGStatus.NON_FINITE
        message = f"the iterate overflowed; returning iteration {i}, the last finite one kept"
    if not kept or kept[-1][0] != i:
        kept.append((i, x.copy()))
    return CGResult(
        x=x,
        status=status,
        message=message,
        iterations=i,
        phi=np.asarray(phi, dtype=np.float64),
        kept=tuple(kept),
        x0_scale=x0_scale,
    )
