"""The Hessian-free optimizer: one class that orchestrates an update.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [MS12] J. Martens, I. Sutskever, "Training deep and recurrent networks with
   Hessian-free optimization", Neural Networks: Tricks of the Trade, 2012.
"""

from __future__ import annotations

import collections
import math
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from . import _compile
from . import cg as _cg
from . import damping as _damping
from . import dataset as _ds
from ._loop import Trainer, _positive_int, log, monitor_pairs
from .curvature import (
    StructuralDamping,
    check_inputs_used,
    check_params,
    damped_gauss_newton_product,
    flatten,
    free_inputs,
    gauss_newton_product,
    unflatten,
)
from .reduce import Batch, ExampleMean, as_batch

__all__ = ["HFOptimizer"]


class HFOptimizer(Trainer):
    """Hessian-free (truncated Newton) optimization of a PyTensor graph.

    Parameters
    ----------
    cost : scalar TensorVariable
        The training loss: a mean over the examples of a batch.
    s : TensorVariable
        The variable where the graph is cut for the Gauss-Newton matrix; the loss
        must be convex in ``s`` (pre-softmax logits with cross-entropy, a linear
        output with squared error, pre-sigmoid outputs with cross-entropy).
    params : list of shared variables
        The parameters to train.
    inputs : list of TensorVariable, optional
        The graph inputs, in the order of the arrays of a batch. Leave out when the
        data live in shared variables (the graph has no free inputs).
    monitors : sequence of (name, scalar expression) pairs, or dict
        Extra quantities reported with the loss.

    Other Parameters
    ----------------
    damping : float
        Initial Tikhonov damping λ (default 1.0).
    min_damping, max_damping : float
        λ is kept in ``[min_damping, max_damping]`` (default ``[1e-6, 1e6]``).
    max_cg_iters : int
        CG iteration cap per update (default 250, [Mart10]).
    cg_tol : float
        ε of Martens' relative-progress stopping rule (default 5e-4).
    cg_decay : float
        CG warm start: the next CG starts from ``cg_decay`` times this update's
        final CG iterate (default 0.95).
    cg_fraction : float
        When no separate CG data are given, the CG (curvature) batch is the first
        ``ceil(cg_fraction · n)`` examples of each gradient batch (default 0.25).
        With full-batch data that is always the same examples: shuffle the data
        once, or pass ``cg=`` data, if their order is not random.
    preconditioner : bool
        Use Martens' diagonal preconditioner built from per-example squared
        gradients (default False; [Mart10] reports it does not help RNNs).
    preconditioner_examples : int
        Examples of the CG batch used for the per-example squared gradients (100).
    line_search : bool
        Armijo backtracking line search on the gradient batch (default True). When
        False the full step is taken if it lowers the loss, and rejected otherwise.
    structural_damping : StructuralDamping, optional
        Adds ``λ·μ·J_aᵀ D J_a`` to the damped curvature [MS11].
    chunk_size : int, optional
        Evaluate batches in chunks of at most this many examples (bounded memory).

    Notes
    -----
    One update [Mart10, MS12]:

    1. loss and gradient :math:`g` on the gradient batch;
    2. solve :math:`(G + \\lambda I [+ \\lambda\\mu J_a^\\top D J_a])\\,p = -g` with
       preconditioned CG on the CG batch, warm-started, keeping iterates on a
       geometric grid;
    3. backtrack over the kept iterates on the CG batch;
    4. :math:`\\rho = (f(\\theta+p) - f(\\theta)) / (q(p) - q(0))` with the undamped
       model :math:`q(p) = g^\\top p + \\tfrac12 p^\\top G p`; ``f``, ``g`` and ``G`` all
       on the gradient batch (one extra G·p there); Levenberg-Marquardt adjusts λ;
    5. Armijo line search on the gradient batch; a step that does not lower the
       loss, or gives a non-finite loss, is rejected and λ raised.
    """

    default_validate_every = 1
    default_patience = 10

    def __init__(
        self,
        cost,
        s,
        params,
        inputs=None,
        monitors=(),
        *,
        damping=1.0,
        min_damping=1e-6,
        max_damping=1e6,
        max_cg_iters=250,
        cg_tol=5e-4,
        cg_decay=0.95,
        cg_fraction=0.25,
        preconditioner=False,
        preconditioner_examples=100,
        line_search=True,
        structural_damping=None,
        chunk_size=None,
    ):
        params = check_params(params)
        self.params = params
        self.cost = cost
        self.s = s
        self.monitors = monitor_pairs(monitors)
        if structural_damping is not None and not isinstance(structural_damping, StructuralDamping):
            raise TypeError(
                f"structural_damping must be a hf.StructuralDamping or None, got {type(structural_damping).__name__}"
            )
        self.structural_damping = structural_damping

        self.lm = _damping.LevenbergMarquardt(damping, min_damping=min_damping, max_damping=max_damping)
        self.max_cg_iters = _positive_int("max_cg_iters", max_cg_iters)
        self.cg_tol = _damping._check_positive("cg_tol", cg_tol, allow_zero=True)
        self.cg_decay = _damping._check_positive("cg_decay", cg_decay, allow_zero=True)
        if self.cg_decay > 1:
            raise ValueError(f"cg_decay must lie in [0, 1], got {cg_decay!r}")
        self.cg_fraction = _damping._check_positive("cg_fraction", cg_fraction)
        if self.cg_fraction > 1:
            raise ValueError(f"cg_fraction must lie in (0, 1], got {cg_fraction!r}")
        for name, value in (("preconditioner", preconditioner), ("line_search", line_search)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {value!r}")
        self.preconditioner = bool(preconditioner)
        self.preconditioner_examples = _positive_int("preconditioner_examples", preconditioner_examples)
        self.line_search = bool(line_search)
        self.reduce = ExampleMean(chunk_size)

        graph = [cost, s] + [e for _, e in self.monitors]
        if structural_damping is not None:
            graph += [structural_damping.preactivation] + (
                [structural_damping.mask] if structural_damping.mask is not None else []
            )
        free = free_inputs(graph)
        if inputs is None:
            if free:
                raise ValueError(
                    f"the graph has free inputs {sorted(str(v) for v in free)}; pass inputs=[...] "
                    "in the order of the arrays of a batch"
                )
            inputs = []
        else:
            if isinstance(inputs, Variable):
                raise TypeError(f"inputs must be a list of variables, got a single variable {inputs!r}")
            inputs = list(inputs)
            check_inputs_used(inputs, graph, "HFOptimizer")
        if self.preconditioner and not inputs:
            raise ValueError(
                "preconditioner=True needs per-example gradients, so the data must be passed "
                "as graph inputs (inputs=[...]), not held in shared variables"
            )
        self.inputs = inputs
        self._compile()

        self._sizes = [int(p.get_value(borrow=True).size) for p in params]
        self.n_params = int(sum(self._sizes))
        self._init_loop()
        self._cg_x = None  # final CG iterate of the previous update (for the warm start)

    # ------------------------------------------------------------------ graphs
    def _compile(self):
        """Compile the four functions used by an update, once."""
        params, cost, inputs = self.params, self.cost, self.inputs
        monitors = [e for _, e in self.monitors]
        grads = pytensor.grad(cost, params)
        self._f_loss_grad = _compile.function(
            inputs, [cost, *monitors, flatten(grads)], name="hf_loss_grad", on_unused_input="ignore"
        )
        self._f_loss = _compile.function(inputs, [cost, *monitors], name="hf_loss", on_unused_input="ignore")
        # Cost probes at θ + x without touching the shared parameters: the
        # parameters are replaced by slices of a flat float64 input.
        theta = pt.vector("theta", dtype="float64")
        self._f_loss_at = _compile.function(
            inputs + [theta],
            [cost, *monitors],
            givens=list(zip(params, unflatten(theta, params))),
            name="hf_loss_at",
            on_unused_input="ignore",
        )
        v = pt.vector("v", dtype="float64")
        vs = unflatten(v, params)
        if self.structural_damping is None:
            extra = []
            Gv = gauss_newton_product(cost, self.s, params, vs)
        else:
            coef = pt.scalar("structural_coef", dtype="float64")
            extra = [coef]
            Gv = damped_gauss_newton_product(cost, self.s, params, vs, self.structural_damping, coef)
        self._f_gv = _compile.function(inputs + [v] + extra, flatten(Gv), name="hf_gv", on_unused_input="ignore")

    # ------------------------------------------------------------------ flat vectors
    def _theta(self) -> np.ndarray:
        return np.concatenate([np.asarray(p.get_value(borrow=True), dtype=np.float64).ravel() for p in self.params])

    def _set_theta(self, theta: np.ndarray) -> None:
        values, start = [], 0
        for p, n in zip(self.params, self._sizes):
            shape = p.get_value(borrow=True).shape
            values.append(theta[start : start + n].reshape(shape).astype(p.dtype))
            start += n
        self.set_param_values(values)

    def gv(self, v, batch: Batch, structural_coef: float = 0.0) -> np.ndarray:
        """Mean Gauss-Newton product ``G·v`` on ``batch`` (plus ``coef·J_aᵀ D J_a v``)."""
        args = (np.asarray(v, dtype=np.float64),)
        if self.structural_damping is not None:
            args = args + (np.float64(structural_coef),)
        return self.reduce(self._f_gv, batch, *args)[0]

    def loss_grad(self, batch: Batch):
        """Mean loss, monitors and flat float64 gradient on ``batch``: ``(loss, [monitors], g)``."""
        outs = self.reduce(self._f_loss_grad, batch)
        return float(outs[0]), [float(m) for m in outs[1:-1]], outs[-1]

    def loss_at(self, theta, batch: Batch) -> float:
        """Loss at parameters ``theta`` (flat) on ``batch``, shared variables untouched."""
        return float(self.reduce(self._f_loss_at, batch, np.asarray(theta, dtype=np.float64))[0])

    # ------------------------------------------------------------------ data
    def _dataset(self, data, name):
        if data is None:
            return None
        if isinstance(data, np.ndarray):
            raise TypeError(f"{name} must be a list of arrays (one per graph input), got a single array")
        if isinstance(data, _ds.Dataset) or callable(data):
            ds = _ds.as_dataset(data, name)
        elif isinstance(data, (list, tuple)):
            if not data:
                raise ValueError(f"{name} must hold one array per graph input, got an empty list")
            # Arrays given directly form one full batch: full-batch HF.
            ds = _ds.as_dataset(data, name, batch_size=max(len(data[0]), 1), rng=0)
        else:
            raise TypeError(
                f"{name} must be an hf.Dataset, a list of arrays (one per graph input) or a callable, "
                f"got {type(data).__name__}"
            )
        if not self.inputs:
            raise ValueError(
                f"{name} data were given but the graph has no inputs; pass inputs=[...] to HFOptimizer"
            )
        ds.check_inputs(self.inputs)
        return ds

    def _batch(self, ds, arrays) -> Batch:
        return as_batch(arrays, ds.batch_axes, ds.mask_index)

    def _next_batch(self, ds) -> Batch:
        if ds is None:
            return Batch((), ())
        return self._batch(ds, ds.next_batch())

    def evaluate(self, dataset) -> collections.OrderedDict:
        """Loss and monitors averaged over one pass (``iteration_size`` batches) of ``dataset``."""
        ds = self._dataset(dataset, "valid") if dataset is not None else None
        if ds is None:
            batches = [Batch((), ())]
        else:
            batches = [self._batch(ds, b) for b in ds.iterate()]
        total, count = None, 0
        for b in batches:
            outs = self.reduce(self._f_loss, b)
            total = [o * b.size for o in outs] if total is None else [t + o * b.size for t, o in zip(total, outs)]
            count += b.size
        values = [float(t / count) for t in total]
        return collections.OrderedDict(zip(["loss"] + [n for n, _ in self.monitors], values))

    # ------------------------------------------------------------------ one update
    def _update(self, train) -> collections.OrderedDict:
        train_ds, cg_ds = train
        t0 = time.perf_counter()
        batch = self._next_batch(train_ds)
        if cg_ds is not None:
            cg_batch = self._next_batch(cg_ds)
        else:
            # The leading slice of the gradient batch. Cycling through the slices was
            # worse on examples/rnn.py's addition (81% vs solved in 80 s) but better on
            # its memorization (solved at 18 s vs 53% at 60 s): one seed each, so the
            # simpler choice stays (README, "Longest T solved within 30 minutes").
            cg_batch = batch.head(max(1, math.ceil(self.cg_fraction * batch.size)))
        return self.step(batch, cg_batch, t0=t0)

    def step(self, batch: Batch, cg_batch: Batch | None = None, *, t0=None) -> collections.OrderedDict:
        """One HF update on explicit batches; returns its metrics (see class Notes)."""
        t0 = time.perf_counter() if t0 is None else t0
        cg_batch = batch if cg_batch is None else cg_batch
        lam = self.lm.damping
        outs = self.reduce(self._f_loss_grad, batch)
        f0, mons, g = float(outs[0]), [float(m) for m in outs[1:-1]], outs[-1]
        if not (math.isfinite(f0) and np.all(np.isfinite(g))):
            raise FloatingPointError(
                f"loss or gradient is not finite at the current parameters (loss={f0!r}) "
                f"on the gradient batch of update {self.updates + 1}; parameters left unchanged"
            )
        theta = self._theta()

        mu = self.structural_damping.weight if self.structural_damping is not None else 0.0

        def matvec(v):
            return self.gv(v, cg_batch, lam * mu) + lam * v

        psolve = None
        if self.preconditioner:
            sq = self.reduce.mean_square_per_example(self._f_loss_grad, cg_batch, self.preconditioner_examples)
            diag = _damping.martens_preconditioner(sq, lam)

            def psolve(r):
                return r / diag

        x0 = None
        if self._cg_x is not None and self.cg_decay > 0:
            x0 = self.cg_decay * self._cg_x
        res = _cg.cg(matvec, -g, x0, psolve=psolve, max_iters=self.max_cg_iters, tol=self.cg_tol)
        if np.all(np.isfinite(res.x)):
            self._cg_x = res.x.copy()

        # Backtrack over the kept iterates on the CG batch.
        kept = [x for _, x in res.kept] or [res.x]
        iters = [i for i, _ in res.kept] or [res.iterations]
        bt = _damping.backtrack(kept, lambda x: self.loss_at(theta + x, cg_batch))
        p = bt.x

        # ρ with f, g and G all on the gradient batch (one extra G·p there); the
        # objective at θ + p is also the line search's first probe.
        probes = {}

        def f_line(a):
            if a not in probes:
                probes[a] = self.loss_at(theta + a * p, batch)
            return probes[a]

        Gp = self.gv(p, batch, 0.0)
        slope = float(g @ p)
        q = slope + 0.5 * float(p @ Gp)
        rho = _damping.reduction_ratio(f_line(1.0), f0, q)
        self.lm.update(rho)

        # Line search on the gradient batch; never keep a step that raises the loss.
        if self.line_search:
            ls = _damping.armijo_line_search(f_line, f0, slope)
        else:
            f1 = f_line(1.0)
            ok = math.isfinite(f1) and f1 < f0
            ls = _damping.LineSearchResult(1.0 if ok else 0.0, f1 if ok else f0, 1, ok)
        if ls.accepted:
            self._set_theta(theta + ls.rate * p)
        elif self.lm.damping <= lam:
            self.lm.raise_()  # rejected, but ρ did not raise λ

        metrics = collections.OrderedDict()
        metrics["loss"] = f0
        for (name, _), value in zip(self.monitors, mons):
            metrics[name] = value
        metrics["new_loss"] = ls.objective
        metrics["accepted"] = bool(ls.accepted)
        metrics["rho"] = rho
        metrics["damping"] = lam
        metrics["new_damping"] = self.lm.damping
        metrics["cg_iters"] = res.iterations
        metrics["cg_status"] = res.status.name.lower()
        metrics["backtrack"] = iters[bt.index]
        metrics["step_rate"] = ls.rate
        metrics["step_norm"] = float(np.linalg.norm(ls.rate * p))
        metrics["seconds"] = time.perf_counter() - t0
        log.info(
            "update %d loss %.6g -> %.6g %s rho %.3g damping %.3e cg %d (%s) backtrack %d rate %.3g |p| %.3g %.2fs",
            self.updates + 1, f0, ls.objective, "kept" if ls.accepted else "REJECTED", rho, lam,
            res.iterations, metrics["cg_status"], metrics["backtrack"], ls.rate, metrics["step_norm"],
            metrics["seconds"],
        )
        return metrics

    # ------------------------------------------------------------------ state
    def _optimizer_state(self) -> dict:
        return {
            "damping": np.float64(self.lm.damping),
            "cg_x": np.zeros(0) if self._cg_x is None else self._cg_x.copy(),
            "has_cg_x": self._cg_x is not None,
        }

    def _load_optimizer_state(self, state) -> None:
        self.lm.damping = self.lm.clip(state["damping"])
        x = np.asarray(state["cg_x"], dtype=np.float64)
        if bool(state["has_cg_x"]):
            if x.shape != (self.n_params,):
                raise ValueError(f"checkpoint CG warm start has {x.size} entries, the model has {self.n_params}")
            self._cg_x = x.copy()
        else:
            self._cg_x = None

    # ------------------------------------------------------------------ public loop
    def iterate(
        self,
        train=None,
        valid=None,
        *,
        cg=None,
        max_updates=1000,
        patience=None,
        validate_every=None,
        min_improvement=0.0,
        callback=None,
        checkpoint=None,
        checkpoint_every=1,
    ):
        """Yield ``(train_metrics, valid_metrics)`` after each update.

        Parameters
        ----------
        train : hf.Dataset, list of arrays, callable or None
            Gradient batches. A list of arrays is one full batch; None when the
            data live in shared variables.
        valid : same types, optional
            Validation data, evaluated every ``validate_every`` updates. Without
            it the training loss measures progress.
        cg : same types, optional
            Separate data for the curvature (CG) batches; by default the first
            ``cg_fraction`` of each gradient batch.
        max_updates : int or None
            Update cap (default 1000).
        patience : int
            Stop when more than ``patience`` validations in a row bring no
            relative improvement larger than ``min_improvement`` (default 10).
        validate_every : int
            Validate every this many updates (default 1).
        callback : callable, optional
            ``callback(train_metrics, valid_metrics)`` after each update.
        checkpoint : path, optional
            HDF5 checkpoint written every ``checkpoint_every`` updates; when the
            file exists training resumes from it.
        """
        return self._iterate(
            train, valid, cg=cg, max_updates=max_updates, patience=patience,
            validate_every=validate_every, min_improvement=min_improvement,
            callback=callback, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
        )[0]

    def _iterate(self, train, valid, *, cg, patience, validate_every, **loop):
        patience = self.default_patience if patience is None else patience
        validate_every = self.default_validate_every if validate_every is None else validate_every
        if train is None and self.inputs:
            raise ValueError(
                f"train is None but the graph has inputs {[str(x) for x in self.inputs]}: pass training data"
            )
        train_ds = self._dataset(train, "train")
        valid_ds = self._dataset(valid, "valid")
        cg_ds = self._dataset(cg, "cg")
        datasets = {k: v for k, v in (("train", train_ds), ("valid", valid_ds), ("cg", cg_ds)) if v is not None}
        gen = self._run(
            (train_ds, cg_ds), valid_ds, patience=patience, validate_every=validate_every,
            datasets=datasets, **loop,
        )
        return gen, datasets

    def train(self, train=None, valid=None, *, restore_best=True, **kwargs):
        """Run :meth:`iterate` to its end (update cap, patience or Ctrl-C).

        Restores the best parameters into the shared variables (unless
        ``restore_best=False``), writes the checkpoint if one was asked for, and
        returns the last ``(train_metrics, valid_metrics)``. Takes the keywords of
        :meth:`iterate`.
        """
        loop = dict(
            cg=None, max_updates=1000, patience=None, validate_every=None, min_improvement=0.0,
            callback=None, checkpoint=None, checkpoint_every=1,
        )
        unknown = sorted(set(kwargs) - set(loop))
        if unknown:
            raise TypeError(f"train() got unexpected keyword argument(s) {unknown}")
        loop.update(kwargs)
        iterator, datasets = self._iterate(train, valid, **loop)
        return self._train(iterator, loop["checkpoint"], datasets, restore_best)
