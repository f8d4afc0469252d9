"""Damping, reduction ratio, backtracking, line search and preconditioner rules.

Everything here is pure numpy on flat 1-D float64 vectors and scalars, and takes
callables for objective evaluations, so the rules can be tested without PyTensor.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS12] J. Martens, I. Sutskever, "Training deep and recurrent networks with
   Hessian-free optimization", Neural Networks: Tricks of the Trade, 2012.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np

from . import _checks
from . import options as _options

__all__ = [
    "levenberg_marquardt",
    "reduction_ratio",
    "backtrack",
    "BacktrackResult",
    "armijo_line_search",
    "LineSearchResult",
    "martens_preconditioner",
]


def reduction_ratio(f_new: float, f_old: float, q_new: float, q_old: float = 0.0) -> float:
    """Ratio of the actual to the predicted reduction of the objective.

    Parameters
    ----------
    f_new, f_old : float
        Objective after and before the step, measured on the same data as the model.
    q_new, q_old : float
        Quadratic model at the step and at zero (``q(0)`` is usually 0 when the model
        is written relative to ``f_old``).

    Returns
    -------
    rho : float
        ``(f_new - f_old) / (q_new - q_old)``. ``-inf`` when the objective went up,
        when any value is not finite, or when the model predicts no decrease.

    Notes
    -----
    [Mart10] Sec. 4.1: :math:`\\rho = (f(\\theta + p) - f(\\theta)) / (q(p) - q(0))`.

    Examples
    --------
    >>> reduction_ratio(0.5, 1.0, -1.0)
    0.5
    >>> reduction_ratio(1.5, 1.0, -1.0)
    -inf
    """
    values = (f_new, f_old, q_new, q_old)
    if not all(math.isfinite(float(v)) for v in values):
        return -math.inf
    actual = float(f_new) - float(f_old)
    predicted = float(q_new) - float(q_old)
    if actual > 0 or predicted >= 0:
        return -math.inf
    return actual / predicted


def levenberg_marquardt(damping: float, rho: float, *, min_damping: float = _options.MIN_DAMPING.default,
                        max_damping: float = _options.MAX_DAMPING.default, low: float = 0.25, high: float = 0.75,
                        increase: float = 1.5, decrease: float = 2.0 / 3.0) -> float:
    r"""The damping λ after a step whose reduction ratio was ``rho`` [Mart10] Sec. 4.1 (a pure function).

    :math:`\rho < 1/4 \Rightarrow \lambda \leftarrow \tfrac32\lambda`;
    :math:`\rho > 3/4 \Rightarrow \lambda \leftarrow \tfrac23\lambda`; otherwise unchanged;
    then clipped to ``[min_damping, max_damping]``. A NaN or ``-inf`` ρ (a
    rejected step) raises λ. Nothing is checked here: :func:`hf.update.hf_update`
    passes the bounds of its :class:`~hf.update.UpdateConfig`, checked by
    :mod:`hf.options` when it was made.

    Examples
    --------
    >>> levenberg_marquardt(1.0, 0.9), levenberg_marquardt(1.0, 0.1), levenberg_marquardt(1.0, 0.5)
    (0.6666666666666666, 1.5, 1.0)
    """
    rho, lam = float(rho), float(damping)
    if not rho >= low:  # NaN and -inf land here too
        lam = lam * increase
    elif rho > high:
        lam = lam * decrease
    return float(min(max(lam, min_damping), max_damping))


@dataclasses.dataclass(frozen=True)
class BacktrackResult:
    """Outcome of :func:`backtrack`: the chosen candidate's index, step and objective."""

    index: int
    x: np.ndarray
    objective: float
    evaluations: int


def backtrack(candidates: Sequence[np.ndarray], objective: Callable[[np.ndarray], float], *,
              search: str = "martens") -> BacktrackResult:
    """Choose among kept CG iterates by stepping back from the last one.

    Starting from the last candidate, step to the previous one while that one gives
    a strictly lower objective [Mart10] Sec. 4.6. With ``search='global'`` every
    candidate is evaluated and the lowest wins (the earliest of equals): theano-hf's
    ``global_backtracking``. Non-finite objectives count as ``+inf``.

    Parameters
    ----------
    candidates : sequence of ndarray
        Kept CG iterates in the order CG produced them (at least one).
    objective : callable
        ``objective(x) -> float``, the objective at ``θ + x``.

    Examples
    --------
    >>> f = {1: 3.0, 2: 1.0, 3: 2.0}
    >>> r = backtrack([np.array([1.0]), np.array([2.0]), np.array([3.0])], lambda x: f[int(x[0])])
    >>> r.index, r.objective
    (1, 1.0)
    >>> f = {1: 0.5, 2: 1.0, 3: 0.9}
    >>> backtrack([np.array([1.0]), np.array([2.0]), np.array([3.0])], lambda x: f[int(x[0])]).index
    2
    >>> backtrack([np.array([1.0]), np.array([2.0]), np.array([3.0])], lambda x: f[int(x[0])], search="global").index
    0
    """
    if len(candidates) == 0:
        raise ValueError("candidates must hold at least one iterate, got an empty sequence")
    if search not in ("martens", "global"):
        raise ValueError(f"backtrack: search must be 'martens' or 'global', got {search!r}")

    def value(x):
        v = float(objective(x))
        return v if math.isfinite(v) else math.inf

    if search == "global":
        values = [value(x) for x in candidates]
        i = int(np.argmin(values))
        return BacktrackResult(i, candidates[i], values[i], len(values))
    i = len(candidates) - 1
    best = value(candidates[i])
    evaluations = 1
    while i > 0:  # bounded by the number of candidates
        previous = value(candidates[i - 1])
        evaluations += 1
        if previous < best:
            i, best = i - 1, previous
        else:
            break
    return BacktrackResult(i, candidates[i], best, evaluations)


@dataclasses.dataclass(frozen=True)
class LineSearchResult:
    """Outcome of :func:`armijo_line_search`. ``rate == 0`` means the step was rejected."""

    rate: float
    objective: float
    evaluations: int
    accepted: bool


def armijo_line_search(
    objective: Callable[[float], float],
    f0: float,
    slope: float,
    *,
    rate: float = 1.0,
    c: float = 1e-2,
    shrink: float = 0.8,
    max_evaluations: int = 60,
) -> LineSearchResult:
    """Backtracking line search with the Armijo sufficient-decrease condition.

    Accept the first rate ``a`` in ``rate, shrink·rate, shrink²·rate, ...`` with
    ``f(a) <= f0 + c·a·slope`` and ``f(a) < f0``; the strict decrease means a step
    that raises the objective is never accepted even when ``slope >= 0``.

    Parameters
    ----------
    objective : callable
        ``objective(a) -> float``, the objective at ``θ + a·p``.
    f0 : float
        Objective at ``a = 0``.
    slope : float
        Directional derivative ``gᵀp`` at ``a = 0``.
    rate, c, shrink, max_evaluations
        Initial rate, Armijo constant, shrink factor and evaluation cap
        ([MS12] Sec. 8.8: c = 1e-2, shrink 0.8).

    Returns
    -------
    LineSearchResult
        ``accepted=False, rate=0.0, objective=f0`` when no rate was accepted.

    Examples
    --------
    >>> r = armijo_line_search(lambda a: (a - 0.5) ** 2, 0.25, -1.0)
    >>> r.accepted, round(r.rate, 3)
    (True, 0.8)
    """
    c = _checks.real("c", c, low=0.0)
    if not 0 < shrink < 1:
        raise ValueError(f"shrink must lie in (0, 1), got {shrink!r}")
    rate = _checks.real("rate", rate, low=0.0, low_open=True)
    if int(max_evaluations) != max_evaluations or max_evaluations < 1:
        raise ValueError(f"max_evaluations must be a positive integer, got {max_evaluations!r}")
    f0 = float(f0)
    slope = float(slope) if math.isfinite(float(slope)) else 0.0
    a = rate
    for evaluations in range(1, int(max_evaluations) + 1):
        f = float(objective(a))
        if math.isfinite(f) and f < f0 and f <= f0 + c * a * slope:
            return LineSearchResult(a, f, evaluations, True)
        a *= shrink
    return LineSearchResult(0.0, f0, int(max_evaluations), False)


def martens_preconditioner(
    grad_sq_mean: np.ndarray, damping: float, exponent: float = 0.75
) -> np.ndarray:
    """Diagonal of Martens' preconditioner.

    Parameters
    ----------
    grad_sq_mean : ndarray
        ``1/N Σ_i ∇f_i ⊙ ∇f_i`` over per-example gradients, flat.
    damping : float
        Current λ.
    exponent : float
        ξ in [Mart10] Sec. 4.7 (0.75).

    Returns
    -------
    ndarray
        ``(grad_sq_mean + λ) ** exponent``; CG's ``psolve`` is ``r / diag``.

    Examples
    --------
    >>> martens_preconditioner(np.array([0.0, 15.0]), 1.0, 0.5)
    array([1., 4.])
    """
    d = np.asarray(grad_sq_mean, dtype=np.float64)
    if d.ndim != 1:
        raise ValueError(f"grad_sq_mean must be 1-D, got shape {d.shape}")
    damping = _checks.real("damping", damping, low=0.0)
    exponent = _checks.real("exponent", exponent, low=0.0)
    diag = (d + damping) ** exponent
    # An all-zero row (parameter with no gradient and λ = 0) would divide by zero.
    diag[~(diag > 0)] = 1.0
    return diag
