"""One Hessian-free update as a pure function over flat float64 vectors.

:func:`hf_update` holds the numerics of an update and nothing else: it never
touches PyTensor, shared variables, datasets or logging. The quantities it needs
come in as callables over flat float64 vectors, the damping state comes in as a
value and goes out as a new value, and the result is the step to add to the
parameters. :class:`hf.HFOptimizer` is the adapter that compiles the graphs,
builds the callables on its batches and writes the step into the model; other
drivers (a cached forward pass, a distributed sum) plug in by passing other
callables.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [MS12] J. Martens, I. Sutskever, "Training deep and recurrent networks with
   Hessian-free optimization", Neural Networks: Tricks of the Trade, 2012.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Optional

import numpy as np

from . import cg as _cg
from . import damping as _damping
from . import options as _options
from .cg._cg import _axpy as _cg_axpy
from .cg._cg import _solve as _cg_solve

__all__ = ["DampingState", "UpdateConfig", "UpdateResult", "hf_update"]


class DampingState(NamedTuple):
    """What one update hands to the next.

    Attributes
    ----------
    damping : float
        The Tikhonov damping λ of the next update.
    cg_x : ndarray or None
        The previous update's final CG iterate (before backtracking), the CG warm
        start; None before the first update.
    """

    damping: float
    cg_x: Optional[np.ndarray] = None


@dataclasses.dataclass(frozen=True)
class UpdateConfig:
    """Settings of :func:`hf_update`, checked once when made.

    Each field is the option of its name of :class:`hf.HFOptimizer`, declared
    (default, allowed values, meaning) in :mod:`hf.options`, and checked there;
    ``structural_weight`` is μ of structural damping.
    """

    min_damping: float = _options.MIN_DAMPING.default
    max_damping: float = _options.MAX_DAMPING.default
    max_cg_iters: int = _options.MAX_CG_ITERS.default
    cg_tol: float = _options.CG_TOL.default
    cg_decay: float = _options.CG_DECAY.default
    shrink_warm_start: bool = _options.SHRINK_WARM_START.default
    cold_restart: bool = _options.COLD_RESTART.default
    line_search: bool = _options.LINE_SEARCH.default
    structural_weight: float = _options.STRUCTURAL_WEIGHT.default
    rho_batch: str = _options.RHO_BATCH.default
    backtracking: str = _options.BACKTRACKING.default

    def __post_init__(self):
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name, value in _options.check(given).items():
            object.__setattr__(self, name, value)


class UpdateResult(NamedTuple):
    """Outcome of :func:`hf_update`.

    Attributes
    ----------
    step : ndarray
        What to add to the parameters: ``rate · p`` for an accepted step, zeros for
        a rejected one.
    state : DampingState
        The damping state for the next update.
    metrics : dict
        ``loss``, ``new_loss``, ``accepted``, ``rho``, ``damping``, ``new_damping``,
        ``cg_iters``, ``cg_status``, ``cg_start``, ``cold_restart``, ``backtrack``, ``step_rate``,
        ``step_norm`` (see :class:`hf.HFOptimizer`, "Metrics").
    cg : hf.cg.CGResult
        CG's own result, for diagnostics.
    """

    step: np.ndarray
    state: DampingState
    metrics: dict
    cg: _cg.CGResult


def hf_update(
    loss_grad: Callable[[], tuple],
    matvec: Callable[[np.ndarray, float], np.ndarray],
    loss_at: Callable[[np.ndarray], float],
    state: DampingState,
    config: UpdateConfig = UpdateConfig(),
    *,
    psolve: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    cg_loss_at: Optional[Callable[[np.ndarray], float]] = None,
    curvature: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    cg_loss_grad: Optional[Callable[[], tuple]] = None,
    curvature_form: Optional[Callable[[np.ndarray], float]] = None,
) -> UpdateResult:
    """One HF update [Mart10, MS12] on flat float64 vectors.

    Parameters
    ----------
    loss_grad : callable
        ``loss_grad() -> (f0, g)``: the loss and its gradient at the current
        parameters θ on the gradient batch.
    matvec : callable
        ``matvec(v, coef) -> G v + coef · S v``: the Gauss-Newton product on the CG
        (curvature) batch, plus ``coef`` times the structural damping product
        ``S v = J_aᵀ D J_a v`` [MS11] when there is one (``coef = λ μ``). With an
        attribute ``fresh_outputs = True`` its results are new float64 arrays the
        update may write into (λv is added in place); otherwise they are not
        touched.
    loss_at : callable
        ``loss_at(x) -> f(θ + x)`` on the gradient batch (ρ and the line search).
    state : DampingState
        λ of this update and the CG warm start.
    config : UpdateConfig
        CG, damping and line-search settings.
    psolve : callable, optional
        ``psolve(r) -> M⁻¹ r``, the preconditioner for this update's λ.
    cg_loss_at : callable, optional
        ``cg_loss_at(x) -> f(θ + x)`` on the CG batch, for backtracking over CG's
        kept iterates (default ``loss_at``).
    curvature : callable, optional
        ``curvature(v) -> G v`` on the gradient batch, for the quadratic model of
        ρ. Leave it out when the gradient batch is the CG batch: ρ's model is then
        CG's own value φ(p) less λ|p|²/2 (no product), or ``matvec(p, 0.0)`` with
        structural damping.
    cg_loss_grad : callable, optional
        ``cg_loss_grad() -> (f, g)``: the loss and gradient at θ on the CG batch,
        for ρ with ``rho_batch='cg'`` when the CG batch is not the gradient batch
        (leave it out when they are one).
    curvature_form : callable, optional
        ``curvature_form(p) -> pᵀ G p`` on the gradient batch: what ρ's model
        takes from ``curvature``, given as the number itself (a quadratic form
        costs less than a product). Used instead of ``curvature`` when given.

    Returns
    -------
    UpdateResult

    Raises
    ------
    FloatingPointError
        When the loss or the gradient at θ is not finite (nothing is changed).

    Notes
    -----
    With λ = ``state.damping`` and μ = ``config.structural_weight``:

    1. ``f0, g = loss_grad()``;
    2. CG on :math:`(G + \\lambda I + \\lambda\\mu S)\\,p = -g` from
       :math:`x_0 = ` ``cg_decay`` × ``state.cg_x``, keeping iterates on a
       geometric grid; with ``shrink_warm_start`` that start is first shrunk to
       the minimizer of this update's damped model along it (within ``[0, x_0]``,
       :func:`hf.cg.cg`'s ``shrink_x0``);
    3. backtracking: from the last kept iterate, step back while the previous one
       has a lower ``cg_loss_at``; call the choice :math:`p`. With
       ``cold_restart``, when CG started from a warm start and :math:`p` does not
       lower ``cg_loss_at`` below its value at 0, CG runs again from zero on the
       same system and backtracks in the same way; the update goes on with the run
       whose choice has the lower ``cg_loss_at`` (the cold one on a tie);
    4. :math:`\\rho = (f(\\theta + p) - f_0) / q(p)` with the undamped model
       :math:`q(p) = g^\\top p + \\tfrac12 p^\\top G p` (``curvature_form`` or
       ``curvature``); ρ is −∞ when
       the loss went up or a value is not finite. With ``rho_batch='cg'`` ρ is
       instead measured on the CG batch, the loss and the model both there: the
       loss change ``cg_loss_at(p) - f_c`` (the first known from backtracking)
       over :math:`q_c(p) = g_c^\top p + \tfrac12 p^\top G p`, with
       ``f_c, g_c = cg_loss_grad()`` and :math:`p^\top G p` from CG's own φ(p)
       (or one CG-batch product with structural damping): no product on the
       gradient batch, one CG-batch gradient instead;
    5. Levenberg-Marquardt: λ ← 3/2 λ when ρ < 1/4, λ ← 2/3 λ when ρ > 3/4,
       clipped to ``[min_damping, max_damping]``;
    6. Armijo line search on ``loss_at`` (rates 1, 0.8, 0.8², …; c = 10⁻²), or
       with ``line_search=False`` the full step when it lowers the loss. A step that
       no rate makes lower is rejected: the step is zero and λ is raised (once:
       when ρ already raised it, not again).

    The next warm start is the final iterate (before backtracking) of the CG run
    the update went on with, when it is finite, else the previous warm start.
    ``cg_iters`` counts the iterations of both runs when CG ran twice.
    """
    lam = float(state.damping)
    f0, g = loss_grad()
    f0 = float(f0)
    g = np.asarray(g, dtype=np.float64)
    if not (math.isfinite(f0) and np.all(np.isfinite(g))):
        raise FloatingPointError(f"the loss or the gradient is not finite at the current parameters (loss={f0!r})")
    coef = lam * config.structural_weight
    cg_loss_at = loss_at if cg_loss_at is None else cg_loss_at

    if getattr(matvec, "fresh_outputs", False) is True:
        # matvec's products are new arrays of its own (the optimizer's are): λv is added into them in
        # place, one pass over two vectors.
        def damped(v):
            return _cg_axpy(lam, v, np.asarray(matvec(v, coef), dtype=np.float64))
    else:
        out = np.empty_like(g)  # CG uses each product once, before it asks for the next: one buffer serves all

        def damped(v):
            np.multiply(v, lam, out=out)
            return np.add(out, matvec(v, coef), out=out)

    x0 = None
    if state.cg_x is not None and config.cg_decay > 0:
        x0 = config.cg_decay * state.cg_x

    def solve(start):
        # config was checked when it was made: CG does not check its settings again.
        run = _cg_solve(damped, -g, start, psolve=psolve, max_iters=config.max_cg_iters, tol=config.cg_tol,
                        shrink_x0=config.shrink_warm_start)
        # Backtrack over the kept iterates (CG always keeps its last one).
        return run, _damping.backtrack([x for _, x in run.kept], cg_loss_at, search=config.backtracking)

    res, bt = solve(x0)
    cg_iterations = res.iterations
    start = 0.0 if x0 is None else config.cg_decay * res.x0_scale
    restarted = False
    cg_f0 = None  # the loss at θ on the CG batch, when needed
    memo = []

    def cg_at_theta():  # (f, g) at θ on the CG batch, asked for once at most
        if not memo:
            f_c, g_c = (f0, g) if cg_loss_grad is None else cg_loss_grad()
            memo.append((float(f_c), np.asarray(g_c, dtype=np.float64)))
        return memo[0]

    warm = x0 is not None and res.x0_scale != 0 and bool(np.any(x0))
    if config.cold_restart and warm:
        cg_f0 = float(cg_at_theta()[0] if config.rho_batch == "cg" else cg_loss_at(np.zeros_like(g)))
        if not bt.objective < cg_f0:
            restarted = True
            cold, cold_bt = solve(None)
            cg_iterations += cold.iterations
            if cold_bt.objective <= bt.objective:
                res, bt, start = cold, cold_bt, 0.0
    cg_x = res.x.copy() if np.all(np.isfinite(res.x)) else state.cg_x
    iters = [i for i, _ in res.kept]
    p = bt.x

    probes = {}  # loss at θ + a·p by rate a: ρ's probe is the line search's first

    def f_line(a):
        if a not in probes:
            probes[a] = float(loss_at(a * p))
        return probes[a]

    slope = float(g @ p)

    def cg_pGp():
        """pᵀGp on the CG batch: from CG's own φ(p) = gᵀp + ½pᵀ(G + λI)p when there is no structural
        term (no product), else one product."""
        if coef == 0.0:
            return 2.0 * (float(res.phi[iters[bt.index]]) - slope) - lam * float(p @ p)
        return float(p @ matvec(p, 0.0))

    if config.rho_batch == "cg":
        f_c, g_c = cg_at_theta()
        rho = _damping.reduction_ratio(bt.objective, f_c, float(g_c @ p) + 0.5 * cg_pGp())
    else:
        if curvature_form is not None:
            pGp = float(curvature_form(p))
        else:
            pGp = cg_pGp() if curvature is None else float(p @ curvature(p))
        rho = _damping.reduction_ratio(f_line(1.0), f0, slope + 0.5 * pGp)
    bounds = {"min_damping": config.min_damping, "max_damping": config.max_damping}
    new_lam = _damping.levenberg_marquardt(lam, rho, **bounds)

    if config.line_search:
        ls = _damping.armijo_line_search(f_line, f0, slope)
    else:
        f1 = f_line(1.0)
        ok = math.isfinite(f1) and f1 < f0
        ls = _damping.LineSearchResult(1.0 if ok else 0.0, f1 if ok else f0, 1, ok)
    if not ls.accepted and new_lam <= lam:
        new_lam = _damping.levenberg_marquardt(new_lam, -math.inf, **bounds)  # rejected, but ρ did not raise λ
    step = ls.rate * p if ls.accepted else np.zeros_like(p)

    metrics = {
        "loss": f0,
        "new_loss": ls.objective,
        "accepted": bool(ls.accepted),
        "rho": rho,
        "damping": lam,
        "new_damping": new_lam,
        "cg_iters": cg_iterations,
        "cg_status": res.status.name.lower(),
        "cg_start": start,
        "cold_restart": restarted,
        "backtrack": iters[bt.index],
        "step_rate": ls.rate,
        "step_norm": float(np.linalg.norm(step)),
    }
    return UpdateResult(step, DampingState(new_lam, cg_x), metrics, res)
