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
import dataclasses
import math
import time

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.graph.basic import Variable

from . import _compile
from . import options as _options
from . import damping as _damping
from ._loop import Run, Trainer, log, monitor_pairs
from .curvature import StructuralDamping, damped_gauss_newton_product, gauss_newton_form, gauss_newton_product
from .graph import (
    check_connected,
    check_scalar_cost,
    check_inputs_used,
    check_params,
    flatten,
    free_inputs,
    split_constant_part,
    unflatten,
)
from .per_example import square_gradient_sums
from .data import Batch, as_dataset
from .reduce import ExampleMean, reducer_for
from .update import DampingState, UpdateConfig, hf_update

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
    {options}

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

    The numerics are :func:`hf.update.hf_update`, a pure function; this class
    compiles the graphs, builds its callables on the batches and writes the step
    into the shared variables.

    Before the first update of :meth:`iterate`/:meth:`train`, the first batch is
    checked: the cost must be a mean over its examples (the loss of the batch
    equals the size-weighted mean of its halves' losses), the loss must be
    convex in ``s`` (the per-row blocks of its Hessian in ``s``, over at most 16
    output units of at most 32 examples, have no negative eigenvalue), and a
    structural damping mask must have the shape of the preactivation's leading
    axes. Every batch is refused when an integer input the graph uses as an
    index (a class label) holds a negative value.

    Metrics
    -------
    Each update yields (and appends to :attr:`history`) one dict:

    ``update`` (int)
        The update's number, counted over all calls of this optimizer.
    ``loss`` and the monitors (float)
        On the gradient batch, before the step.
    ``new_loss`` (float)
        The loss on the gradient batch after the step (``loss`` when rejected).
    ``accepted`` (bool)
        False when no step rate lowered the loss: the parameters are unchanged.
    ``rho`` (float)
        The reduction ratio :math:`(f(\theta+p) - f(\theta)) / q(p)`. It is
        ``-inf`` when the full step raised the loss (or gave a non-finite value,
        or the model predicted no decrease): the damping is then raised, and the
        line search may still accept a shorter step.
    ``damping``, ``new_damping`` (float)
        λ of this update and of the next.
    ``cg_iters`` (int), ``cg_status`` (str)
        CG's iterations and why it stopped: ``'converged'``,
        ``'max_iterations'``, ``'negative_curvature'`` or ``'non_finite'``.
    ``cg_start`` (float)
        CG started from this multiple of the previous update's final iterate:
        ``cg_decay``, less when ``shrink_warm_start`` shrank it, 0 for a cold start
        (also when ``cold_restart`` went on with the run from zero).
    ``cold_restart`` (bool)
        Whether CG ran a second time from zero (``cold_restart``); ``cg_iters``
        then counts both runs.
    ``backtrack`` (int)
        The CG iteration whose iterate was kept after backtracking.
    ``step_rate``, ``step_norm`` (float)
        The line search's rate (0 when rejected) and the norm of the step taken.
    ``seconds`` (float)
        Wall-clock time of the update.
    ``valid_loss``, ``valid_<monitor>``, ``valid_best_loss`` (float)
        Only on updates after which the loop validated: the validation metrics
        (without validation data, the training loss after the step) and the best
        validation loss of this call so far.

    The second dict of each yielded pair holds the latest validation metrics
    (``loss``, the monitors, ``best_loss``). A checkpoint stores the history as
    JSON (``json.loads(h5py.File(path)['history'][()])``), so a resumed run has
    the same rows with the same types.
    """

    _loop_defaults = {"max_updates": 1000, "patience": 10, "validate_every": 1}

    def __init__(
        self,
        cost,
        s,
        params,
        inputs=None,
        monitors=(),
        *,
        damping=_options.DAMPING.default,
        min_damping=_options.MIN_DAMPING.default,
        max_damping=_options.MAX_DAMPING.default,
        max_cg_iters=_options.MAX_CG_ITERS.default,
        cg_tol=_options.CG_TOL.default,
        cg_decay=_options.CG_DECAY.default,
        shrink_warm_start=_options.SHRINK_WARM_START.default,
        cold_restart=_options.COLD_RESTART.default,
        cg_fraction=_options.CG_FRACTION.default,
        preconditioner=_options.PRECONDITIONER.default,
        preconditioner_examples=_options.PRECONDITIONER_EXAMPLES.default,
        line_search=_options.LINE_SEARCH.default,
        structural_damping=_options.STRUCTURAL_DAMPING.default,
        chunk_size=_options.CHUNK_SIZE.default,
        forward_cache=_options.FORWARD_CACHE.default,
        cache_bytes=_options.CACHE_BYTES.default,
        rho_batch=_options.RHO_BATCH.default,
        backtracking=_options.BACKTRACKING.default,
        jv=_options.JV.default,
        comm=_options.COMM.default,
    ):
        # The keywords, one per declaration of hf.options (tests/test_options.py checks the signature).
        given = {name: value for name, value in locals().items() if name in _options.BY_NAME}
        owner = "HFOptimizer"
        params = check_params(params)
        check_scalar_cost(cost, owner)
        check_connected(cost, params, "the cost", owner=owner)
        self.params = params
        self.cost = cost
        self.s = s
        self.monitors = monitor_pairs(monitors)
        options = _options.check(given, owner)
        self.structural_damping = options["structural_damping"]
        self.config = UpdateConfig(
            **{f.name: options[f.name] for f in dataclasses.fields(UpdateConfig) if f.name in options},
            structural_weight=structural_damping.weight if structural_damping is not None else 0.0,
        )
        self.initial_damping = options["damping"]
        self.cg_fraction = options["cg_fraction"]
        self.preconditioner = options["preconditioner"]
        self.preconditioner_examples = options["preconditioner_examples"]
        self.reduce = reducer_for(comm, options["chunk_size"])  # comm=None: one process, hf.mpi never imported
        self.reduce.check_same([p.get_value(borrow=True) for p in params], "the initial parameters")
        self.forward_cache = options["forward_cache"]
        self.cache_bytes = options["cache_bytes"]
        self.jv = options["jv"]
        self.forward_cache_bytes = 0  # size of the last update's cache

        graph = [cost, s] + [e for _, e in self.monitors]
        if structural_damping is not None:
            graph += [structural_damping.preactivation] + (
                [structural_damping.mask] if structural_damping.mask is not None else []
            )
        free = free_inputs(graph)
        if inputs is None:
            if free:
                raise ValueError(
                    f"{owner}: the graph has free inputs {sorted(str(v) for v in free)}; pass inputs=[...] "
                    "in the order of the arrays of a batch"
                )
            inputs = []
        else:
            if isinstance(inputs, Variable):
                raise TypeError(f"{owner}: inputs must be a list of variables, got a single variable {inputs!r}")
            inputs = list(inputs)
            check_inputs_used(inputs, graph, owner)
        if self.preconditioner and not inputs:
            raise ValueError(
                f"{owner}: preconditioner=True needs per-example gradients, so the data must be passed "
                "as graph inputs (inputs=[...]), not held in shared variables"
            )
        self.inputs = inputs
        self._compile()

        self._sizes = [int(p.get_value(borrow=True).size) for p in params]
        self.n_params = int(sum(self._sizes))
        self._init_loop()
        self.state = DampingState(self.initial_damping, None)
        self._mean_checked = False
        self._batch_checked = False
        self._square_means_ok = None  # whether hf.per_example's closed form holds here (checked once)
        # What a checkpoint records (and a resume compares): the options, structural damping by its weight.
        self._given_options = {}  # what a checkpoint records and a resume compares
        for name, value in options.items():
            if name == "structural_damping":  # recorded by its weight
                name, value = "structural_damping_weight", self.config.structural_weight
            if name != "comm":
                self._given_options[name] = value

    @property
    def consistency_check_every(self):
        """Every this many updates the reducer checks that all processes hold the same
        parameters (10 for a data-parallel reducer; None for one process). Settable."""
        return self.reduce.consistency_check_every

    @consistency_check_every.setter
    def consistency_check_every(self, value):
        self.reduce.consistency_check_every = value

    @property
    def damping(self) -> float:
        """The damping λ of the next update."""
        return float(self.state.damping)

    # ------------------------------------------------------------------ graphs
    def _compile(self):
        """Build the graphs an update may use; each is compiled on its first call (:meth:`compile`).

        Building the graphs here makes a graph that cannot be differentiated or
        cut fail when the optimizer is made; compiling lazily spares the
        functions a run never calls (``hf_gv`` with the forward cache on, ``hf_gv_form``
        with ``rho_batch='cg'`` or one batch for gradient and CG, ``hf_loss`` without
        validation data, the per-example squares without the preconditioner).
        :attr:`compile_seconds` holds each compiled function's time.
        """
        params, cost, inputs = self.params, self.cost, self.inputs
        self.compile_seconds = {}
        self._compiled = {}
        monitors = [e for _, e in self.monitors]
        graphs = {}
        grads = pytensor.grad(cost, params)
        graphs["hf_loss_grad"] = (inputs, [cost, *monitors, flatten(grads)], {})
        graphs["hf_loss"] = (inputs, [cost, *monitors], {})
        # Cost probes at θ + x without touching the shared parameters: the
        # parameters are replaced by slices of a flat float64 input.
        theta = pt.vector("theta", dtype="float64")
        graphs["hf_loss_at"] = (inputs + [theta], [cost, *monitors],
                                {"givens": list(zip(params, unflatten(theta, params)))})
        v = pt.vector("v", dtype="float64")
        vs = unflatten(v, params)
        if self.structural_damping is None:
            extra = []
            Gv = gauss_newton_product(cost, self.s, params, vs, jv=self.jv)
        else:
            coef = pt.scalar("structural_coef", dtype="float64")
            extra = [coef]
            Gv = damped_gauss_newton_product(cost, self.s, params, vs, self.structural_damping, coef, jv=self.jv)
        Gv = flatten(Gv)
        graphs["hf_gv"] = (inputs + [v] + extra, Gv, {})
        # ρ's pᵀGp on the gradient batch: the form alone, without the product's reverse pass.
        graphs["hf_gv_form"] = (inputs + [v], gauss_newton_form(cost, self.s, params, vs, jv=self.jv), {})
        if self.forward_cache:
            # The forward part, computed once per update, and Gv as a function of it.
            frontier, placeholders, (Gv_cached,) = split_constant_part([Gv], [v] + extra)
            graphs["hf_forward"] = (inputs, frontier, {})
            graphs["hf_gv_cached"] = (inputs + placeholders + [v] + extra, Gv_cached, {})
        if self.preconditioner:
            # Σ_i (∇f_i)² in one backward pass where every parameter is a dense layer's (hf.per_example).
            squares = square_gradient_sums(cost, params, inputs)
            if squares is not None:
                sums, n = squares
                graphs["hf_square_means"] = (inputs, [sums / n], {})
        self._graphs = graphs

    def _function(self, name):
        """The compiled function ``name`` (compiled now if it was not yet), or None if it has no graph."""
        f = self._compiled.get(name)
        if f is None and name in self._graphs:
            inputs, outputs, kw = self._graphs[name]
            t = time.perf_counter()
            with _compile.quiet():
                f = _compile.function(inputs, outputs, name=name, on_unused_input="ignore", **kw)
            self.compile_seconds[name] = time.perf_counter() - t
            log.info("HFOptimizer: compiled %s in %.1f s", name, self.compile_seconds[name])
            self._compiled[name] = f
        return f

    def compile(self, names=None) -> dict:
        """Compile now what an update will use (or the functions ``names``); return their compile seconds.

        Functions are otherwise compiled when first called, during the first
        update. A benchmark that keeps compilation out of its clock calls this
        before starting it.
        """
        if names is None:
            names = ["hf_loss_grad", "hf_loss_at"]
            names += ["hf_forward", "hf_gv_cached"] if self.forward_cache else []
            names += ["hf_gv"] if not self.forward_cache else []
            # ρ on the gradient batch takes pᵀGp there (when it is not the CG batch), which no forward
            # cache serves
            names += ["hf_gv_form"] if self.config.rho_batch == "gradient" else []
            names += ["hf_square_means"] if self.preconditioner and "hf_square_means" in self._graphs else []
        unknown = sorted(set(names) - set(self._graphs))
        if unknown:
            raise ValueError(f"HFOptimizer.compile: no function named {unknown}; known: {sorted(self._graphs)}")
        for name in names:
            self._function(name)
        return {name: self.compile_seconds[name] for name in names}

    _f_loss_grad = property(lambda self: self._function("hf_loss_grad"))
    _f_loss = property(lambda self: self._function("hf_loss"))
    _f_loss_at = property(lambda self: self._function("hf_loss_at"))
    _f_gv = property(lambda self: self._function("hf_gv"))
    _f_gv_form = property(lambda self: self._function("hf_gv_form"))
    _f_forward = property(lambda self: self._function("hf_forward"))
    _f_gv_cached = property(lambda self: self._function("hf_gv_cached"))

    # ------------------------------------------------------------------ flat vectors
    def _theta(self) -> np.ndarray:
        return np.concatenate([np.asarray(p.get_value(borrow=True), dtype=np.float64).ravel() for p in self.params])

    def _set_theta(self, theta: np.ndarray) -> None:
        values, start = [], 0
        for p, n in zip(self.params, self._sizes):
            shape = p.get_value(borrow=True).shape
            values.append(theta[start : start + n].reshape(shape))
            start += n
        self.set_param_values(values)

    def _flat(self, name, v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.n_params,):
            raise ValueError(
                f"HFOptimizer: {name} must be a flat vector of the {self.n_params} parameter values "
                f"(sizes {dict(zip(self._param_names(), self._sizes))}), got shape {v.shape}"
            )
        return v

    @staticmethod
    def _check_batch(batch, name="batch"):
        if not isinstance(batch, Batch):
            raise TypeError(
                f"HFOptimizer: {name} must be an hf.Batch, e.g. hf.Batch((X, Y), axes=(0, 0)), "
                f"got {type(batch).__name__}"
            )
        return batch

    def gv(self, v, batch: Batch, structural_coef: float = 0.0) -> np.ndarray:
        """Mean Gauss-Newton product ``G·v`` on ``batch`` (plus ``coef·J_aᵀ D J_a v``)."""
        args = (self._flat("v", v),)
        if self.structural_damping is not None:
            args = args + (np.float64(structural_coef),)
        return self.reduce(self._f_gv, self._check_batch(batch), *args)[0]

    def gauss_newton_form(self, v, batch: Batch) -> float:
        """Mean ``vᵀ G v`` on ``batch`` (no structural damping term): ``v @ self.gv(v, batch)``
        without the product's reverse pass."""
        return float(self.reduce(self._f_gv_form, self._check_batch(batch), self._flat("v", v))[0])

    def loss_grad(self, batch: Batch):
        """Mean loss, monitors and flat float64 gradient on ``batch``: ``(loss, [monitors], g)``."""
        outs = self.reduce(self._f_loss_grad, self._check_batch(batch))
        return float(outs[0]), [float(m) for m in outs[1:-1]], outs[-1]

    def loss_at(self, theta, batch: Batch) -> float:
        """Loss at parameters ``theta`` (flat) on ``batch``, shared variables untouched."""
        return float(self.reduce(self._f_loss_at, self._check_batch(batch), self._flat("theta", theta))[0])

    def mean_square_gradients(self, batch: Batch, max_examples: int) -> np.ndarray:
        """``1/N Σ_i (∇f_i)²`` over the first ``max_examples`` examples of ``batch`` (flat).

        In one call per chunk where the graph has the closed form of
        :mod:`hf.per_example` (checked once against one call per example on
        the first few examples), else one call per example.
        """
        batch = self._check_batch(batch)
        if self._square_means_ok is None and "hf_square_means" in self._graphs:
            k = min(3, int(max_examples), batch.size)
            loop = self.reduce.mean_square_per_example(self._f_loss_grad, batch, k)
            closed = self.reduce.mean_square_per_example(self._f_loss_grad, batch, k,
                                                         closed_form=self._function("hf_square_means"))
            self._square_means_ok = bool(np.allclose(closed, loop, rtol=1e-6, atol=1e-12 * max(1.0, np.abs(loop).max())))
            if not self._square_means_ok:
                log.warning("HFOptimizer: the one-pass per-example squared gradients disagree with one gradient "
                            "per example on this graph (its rows are not independent examples); using the loop")
        closed = self._function("hf_square_means") if self._square_means_ok else None
        return self.reduce.mean_square_per_example(self._f_loss_grad, batch, max_examples, closed_form=closed)

    # ------------------------------------------------------------------ data
    def _dataset(self, data, name, *, required=False):
        """``data`` as a dataset by :func:`hf.data.as_dataset`'s rule, a list of arrays
        being one full batch, checked against the graph's inputs."""
        return as_dataset(data, name, inputs=self.inputs, required=required, full_batch=True, owner="HFOptimizer")

    def _next_batch(self, ds) -> Batch:
        return Batch((), ()) if ds is None else ds.draw()

    def evaluate(self, dataset) -> collections.OrderedDict:
        """Loss and monitors averaged over one pass (``iteration_size`` batches) of ``dataset``."""
        ds = self._dataset(dataset, "valid")
        batches = [Batch((), ())] if ds is None else list(ds.batches())
        values = self.reduce.over(self._f_loss, batches)
        return collections.OrderedDict(zip(["loss"] + [n for n, _ in self.monitors], map(float, values)))

    # ------------------------------------------------------------------ the loop's hooks
    def iterate(self, train=None, valid=None, *, cg=None, **kwargs):
        """Yield ``(train_metrics, valid_metrics)`` after each update.

        Parameters
        ----------
        train : hf.Dataset, list of arrays, callable or None
            Gradient batches. A list of arrays is one full batch; None when the
            data live in shared variables.
        valid : same types, optional
            Validation data, evaluated before the first update and every
            ``validate_every`` updates. Without it the training loss after each
            step measures progress.
        cg : same types, optional
            Separate data for the curvature (CG) batches; by default the first
            ``cg_fraction`` of each gradient batch.
        **kwargs
            The loop's keywords (see :meth:`train`): ``max_updates`` (default
            1000, counted per call), ``patience`` (10), ``validate_every`` (1),
            ``min_improvement``, ``callback``, ``checkpoint``,
            ``checkpoint_every``, ``progress``.
        """
        return super().iterate(train, valid, cg=cg, **kwargs)

    def _start(self, train, valid, cg=None, **unknown):
        if unknown:
            raise TypeError(f"HFOptimizer.iterate() got unexpected keyword argument(s) {sorted(unknown)}")
        train_ds = self._dataset(train, "train", required=True)
        valid_ds = self._dataset(valid, "valid")
        cg_ds = self._dataset(cg, "cg")
        datasets = {k: v for k, v in (("train", train_ds), ("valid", valid_ds), ("cg", cg_ds)) if v is not None}
        return Run(train=(train_ds, cg_ds), valid=valid_ds, datasets=datasets)

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
            # With several processes, each takes its part of the same examples of the global batch.
            cg_batch = self.reduce.head(batch, self.cg_fraction)
        if not self._mean_checked:
            self._check_mean_cost(batch)
        if not self._batch_checked:
            self._check_structural_mask(cg_batch)
            self._check_convex_in_s(cg_batch)
            self._batch_checked = True
        return self.step(batch, cg_batch, t0=t0)

    def _check_structural_mask(self, batch):
        """Refuse, on the first batch, a structural damping mask whose shape is not the
        preactivation's leading axes (a transposed mask, a wrong one): it would fail
        inside the Gauss-Newton product and be blamed on the data."""
        sd = self.structural_damping
        if sd is None or sd.mask is None:
            return
        with _compile.quiet():
            f = _compile.function(self.inputs, [sd.preactivation.shape, sd.mask.shape], name="hf_mask_shapes",
                                  on_unused_input="ignore", mode=_compile.check_mode())
        a_shape, m_shape = (tuple(int(d) for d in x) for x in _call_on(f, batch.head(64)))
        if m_shape != a_shape[: len(m_shape)]:
            raise ValueError(
                f"HFOptimizer: structural_damping: mask has shape {m_shape} on {batch.source or 'the first batch'}, "
                f"while the preactivation has shape {a_shape}: the mask must have the shape of the "
                f"preactivation's leading axes, {a_shape[: len(m_shape)]} ((T, batch) for a time-major scan). "
                "Is the mask transposed, or is it another variable?"
            )

    def _check_convex_in_s(self, batch):
        """Refuse, on the first batch, a loss that is not convex in ``s``.

        The Gauss-Newton matrix ``Jᵀ H J`` is positive semi-definite only when the
        loss's Hessian ``H`` in ``s`` is. For a loss that is a sum over rows of
        ``s`` (the examples, and time steps), ``H`` is block diagonal, one block of
        ``k`` output units per row; ``k`` (at most 16) products ``H u`` with ``u``
        one unit's indicator give every row's block of those units, whose smallest
        eigenvalue must not be negative (a principal block of a positive
        semi-definite matrix is one). Checked on at most 32 examples; skipped when
        the data live in shared variables (no head of the batch to take) and for
        ops without second derivatives.
        """
        if self.s.ndim == 0 or not self.inputs:
            return
        s = self.s
        u = pt.tensor("u", dtype=s.dtype, shape=(None,) * s.ndim)
        try:
            with _compile.quiet():
                gs = pytensor.grad(self.cost, s)
                Hu = pytensor.grad(pt.sum(gs * pytensor.gradient.disconnected_grad(u)), s)
                # Run once, on a few examples: compiled for compile speed, not run speed.
                mode = _compile.check_mode()
                f_s = _compile.function(self.inputs, s.shape, name="hf_s_shape", on_unused_input="ignore",
                                        mode=mode)
                f_hu = _compile.function(self.inputs + [u], Hu, name="hf_loss_hessian_s", on_unused_input="ignore",
                                         mode=mode)
        except Exception as err:  # noqa: BLE001 (an op without a second derivative: the check is skipped)
            log.debug("HFOptimizer: convexity check in s skipped: %s", err)
            return
        head = batch.head(32)
        shape = tuple(int(d) for d in _call_on(f_s, head))
        k = 1 if s.ndim == 1 else shape[-1]
        units = np.arange(k) if k <= 16 else np.random.default_rng(0).choice(k, 16, replace=False)
        rows = int(np.prod(shape[:-1])) if s.ndim > 1 else shape[0]
        blocks = np.empty((rows, len(units), len(units)))
        for j, unit in enumerate(units):
            e = np.zeros(shape, dtype=s.dtype)
            e[..., unit] = 1
            h = np.asarray(_call_on(f_hu, head, e), dtype=np.float64)
            h = h.reshape(rows, -1) if s.ndim > 1 else h.reshape(rows, 1)
            blocks[:, :, j] = h[:, units] if s.ndim > 1 else h
        if not np.all(np.isfinite(blocks)):  # a saturated loss: nothing to conclude here
            return
        blocks = 0.5 * (blocks + blocks.transpose(0, 2, 1))
        eig, vecs = np.linalg.eigh(blocks)
        row = int(np.argmin(eig[:, 0]))
        hi = float(np.abs(eig).max())
        tol = 1e-3 if np.dtype(s.dtype) == np.float32 else 1e-8
        if eig[row, 0] >= -tol * max(hi, 1e-30):
            return
        # A loss that couples rows (e.g. time steps) makes the blocks above sums over
        # rows: confirm with the true quadratic form along the block's eigenvector.
        e = np.zeros((rows, k), dtype=s.dtype)
        e[row, units] = vecs[row, :, 0]
        e = e.reshape(shape)
        lo = float(np.sum(e * np.asarray(_call_on(f_hu, head, e), dtype=np.float64)))
        if lo < -tol * max(hi, 1e-30):
            raise ValueError(
                f"HFOptimizer: the loss is not convex in s on {batch.source or 'the first batch'}: its Hessian "
                f"in s has an eigenvalue ≤ {lo:.3g} (uᵀHu along a unit vector u; largest |eigenvalue| "
                f"{hi:.3g}), so the Gauss-Newton matrix is not positive semi-definite and CG's steps are not "
                "descent directions. Cut the graph where the loss is "
                "convex: s must be the pre-softmax logits for cross-entropy, a linear output for squared error, "
                "the pre-sigmoid output for logistic cross-entropy (not, e.g., softmax(s) in a squared error)"
            )

    def _check_mean_cost(self, batch):
        """Refuse a cost that is not a mean over examples, once, on the first batch.

        The loss of a batch must equal the size-weighted mean of the losses of its
        two halves; a sum over examples gives their sum instead, and then chunked
        evaluation, batch-size changes and the damping scale all go wrong.
        """
        n = batch.size
        if not batch.arrays or n < 2:
            return
        # The loss at θ through hf_loss_at, which the update compiles anyway (hf_loss only serves validation).
        theta = self._theta()
        whole = float(ExampleMean()(self._f_loss_at, batch, theta)[0])
        halves = [h for h, _ in batch.chunks((n + 1) // 2)]
        split = float(ExampleMean().over(self._f_loss_at, halves, theta)[0])  # this process's data only
        tol = 1e-4 if np.dtype(self.cost.dtype) == np.float32 else 1e-8
        if math.isfinite(whole) and math.isfinite(split) and abs(whole - split) > tol * max(abs(whole), abs(split), 1e-30):
            axes = sorted(set(batch.axes))
            where = (f"along axis {axes[0]} of every array" if len(axes) == 1 else f"along axes {batch.axes}")
            other = self._mean_along_other_axis(batch, tol, theta)
            if other is not None:
                advice = (f"The cost is a mean along axis {other} instead, while the examples of a list of arrays "
                          f"lie along axis 0 of a list: for time-major data (T, batch, ...) pass "
                          f"hf.Dataset([X, Y], axis={other}, batch_size=...) instead of the list")
            else:
                advice = ("Divide the cost by the number of examples (e.g. use .mean() instead of .sum()); or, if "
                          "the examples lie along another axis (time-major data), say so: the examples of a list "
                          "of arrays lie along axis 0 of a list, so pass hf.Dataset([X, Y], axis=1, batch_size=...)")
            raise ValueError(
                f"HFOptimizer: the cost must be a mean over the examples of a batch: on {batch.source or 'the first batch'} "
                f"({n} examples {where}) it is {whole:.6g}, while the size-weighted mean of its two halves is "
                f"{split:.6g} (ratio {whole / split if split else float('inf'):.3g}; a sum over examples gives "
                f"about 2). {advice}"
            )
        self._mean_checked = True

    def _mean_along_other_axis(self, batch, tol, theta):
        """The axis (1 or 2) along which the cost is a mean over halves, when the batch
        was cut along axis 0; None when there is none."""
        if any(a != 0 for a in batch.axes):
            return None
        for axis in (1, 2):
            arrays = batch.arrays
            if not all(getattr(a, "ndim", 0) > axis for a in arrays):
                return None
            n = arrays[0].shape[axis]
            if n < 2 or any(a.shape[axis] != n for a in arrays):
                continue
            other = Batch(tuple(arrays), (axis,) * len(arrays), None, batch.source)
            try:
                whole = float(ExampleMean()(self._f_loss_at, other, theta)[0])
                split = float(ExampleMean().over(self._f_loss_at, [h for h, _ in other.chunks((n + 1) // 2)],
                                                 theta)[0])
            except ValueError:
                continue
            if math.isfinite(whole) and abs(whole - split) <= tol * max(abs(whole), abs(split), 1e-30):
                return axis
        return None

    def step(self, batch: Batch, cg_batch: Batch | None = None, *, t0=None) -> collections.OrderedDict:
        """One HF update on explicit batches; returns its metrics (see the class Notes).

        Builds the callables of :func:`hf.update.hf_update` on the batches, runs it,
        and adds the step to the parameters.
        """
        t0 = time.perf_counter() if t0 is None else t0
        batch = self._check_batch(batch)
        cg_batch = batch if cg_batch is None else self._check_batch(cg_batch, "cg_batch")
        theta = self._theta()
        mons = []

        probes = []  # (x, loss at θ + x) on the gradient batch, shared with the CG batch when they are one

        def loss_grad():
            f0, m, g = self.loss_grad(batch)
            mons[:] = m
            probes.append((None, f0))  # x = 0: the loss the gradient came with
            return f0, g

        def loss_at(x):
            # The update asks for the same point twice when the CG batch is the gradient batch
            # (ρ's loss at θ, the line search's first probe at the backtracked iterate).
            for seen, value in probes:
                if (not x.any()) if seen is None else (seen is x or np.array_equal(seen, x)):
                    return value
            value = self.loss_at(theta + x, batch)
            probes.append((x, value))
            return value

        same_batch = cg_batch is batch

        psolve = None
        if self.preconditioner:
            diag = _damping.martens_preconditioner(
                self.mean_square_gradients(cg_batch, self.preconditioner_examples), self.state.damping
            )

            z = np.empty_like(diag)  # CG uses each M⁻¹r once, before it asks for the next

            def psolve(r):
                return np.divide(r, diag, out=z)

        if self.forward_cache:
            cached = self.reduce.cached(self._f_forward, self._f_gv_cached, cg_batch, self.cache_bytes)
            self.forward_cache_bytes = cached.nbytes
            if self.structural_damping is None:
                def matvec(v, coef):
                    return cached(v)[0]
            else:
                def matvec(v, coef):
                    return cached(v, np.float64(coef))[0]
        else:
            def matvec(v, coef):
                return self.gv(v, cg_batch, coef)
        matvec.fresh_outputs = True  # the mean's arrays are the caller's (hf.reduce): λv goes into them

        try:
            result = hf_update(
                loss_grad,
                matvec,
                loss_at,
                self.state,
                self.config,
                psolve=psolve,
                cg_loss_at=loss_at if same_batch else (lambda x: self.loss_at(theta + x, cg_batch)),
                curvature_form=None if same_batch else (lambda p: self.gauss_newton_form(p, batch)),
                cg_loss_grad=None if same_batch else (lambda: self.loss_grad(cg_batch)[::2]),
            )
        except FloatingPointError as err:
            raise FloatingPointError(
                f"HFOptimizer: {err} on the gradient batch of update {self.updates + 1}; parameters left unchanged"
            ) from None
        if result.metrics["accepted"]:
            self._set_theta(theta + result.step)
        self.state = result.state

        m = result.metrics
        metrics = collections.OrderedDict(loss=m["loss"])
        for (name, _), value in zip(self.monitors, mons):
            metrics[name] = value
        metrics.update((k, v) for k, v in m.items() if k != "loss")
        metrics["seconds"] = time.perf_counter() - t0
        log.info(
            "update %d loss %.6g -> %.6g %s rho %.3g damping %.3e cg %d (%s) backtrack %d rate %.3g |p| %.3g %.2fs",
            self.updates + 1, m["loss"], m["new_loss"], "kept" if m["accepted"] else "REJECTED", m["rho"],
            m["damping"], m["cg_iters"], m["cg_status"], m["backtrack"], m["step_rate"], m["step_norm"],
            metrics["seconds"],
        )
        return metrics

    # ------------------------------------------------------------------ state
    def _options(self) -> dict:
        return dict(self._given_options)

    def _checkpoint_overrides(self, state) -> dict:
        lam = (state.get("optimizer") or {}).get("damping")
        now = f" λ={float(lam):.6g}" if lam is not None else " λ"
        return {"damping": f"damping{now}, with which the run goes on"}

    def _optimizer_state(self) -> dict:
        """λ and the CG warm start (an empty array before the first update)."""
        x = self.state.cg_x
        return {"damping": np.float64(self.state.damping), "cg_x": np.zeros(0) if x is None else x.copy()}

    def _load_optimizer_state(self, state) -> None:
        lam = float(state["damping"])
        if not (math.isfinite(lam) and self.config.min_damping <= lam <= self.config.max_damping):
            raise ValueError(
                f"checkpoint damping {lam!r} is outside [min_damping, max_damping] = "
                f"[{self.config.min_damping!r}, {self.config.max_damping!r}]"
            )
        x = np.asarray(state["cg_x"], dtype=np.float64)
        if x.size == 0:
            x = None
        elif x.shape != (self.n_params,):
            raise ValueError(f"checkpoint CG warm start has {x.size} entries, the model has {self.n_params}")
        elif not np.all(np.isfinite(x)):
            raise ValueError("checkpoint CG warm start holds non-finite values")
        self.state = DampingState(lam, None if x is None else x.copy())


HFOptimizer.__doc__ = _options.fill_docstring(HFOptimizer.__doc__)


def _call_on(fn, batch, *args):
    """``fn`` on ``batch`` (checked like every compiled call, see :func:`hf.reduce.call`)."""
    from .reduce import call

    return call(fn, batch, *args)

