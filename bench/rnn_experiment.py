"""The RNN experiment behind the pathological-problems benchmark: HF against Adam (and NAG).

A plain tanh RNN learns one problem of :mod:`hf.datasets` after Hochreiter &
Schmidhuber [HS97] (addition, multiplication, xor, temporal order with
``--bits`` 2 or 3, random permutation, noiseless memorization with
``--bits`` 5 or 20) with :class:`hf.HFOptimizer` and structural damping
[MS11], and, on the same training set and from the same initial weights,
with Adam [King15] from :mod:`hf.first_order` (one run per learning rate)
and, when given learning rates (``--nag-lrs``), NAG with the settings of
[Sut13]. ``examples/rnn.py`` is the short version of this a user copies;
this module holds the machinery the benchmarks share: the drivers, the
budgets, the plot and the command line. ``bench/pathological.py`` runs one
(task, T, optimizer, seed) cell of it and records it,
``bench/rnn_longest_T.py`` runs it at increasing T, ``bench/rnn_memory.py``
and ``bench/cg_start.py`` use its model.

Model
    ``a_t = x_t W_in + h_{t-1} W_rec + b``, ``h_t = tanh(a_t)``, ``h_0 = 0``,
    output ``s_t = h_t W_out + c``; 32 hidden units by default (``--hidden``).
    ``--init esn`` (default), the Echo-State-Network-style start of [Sut13]:
    ``W_rec`` is sparse [Mart10, MS11] (:func:`hf.init.sparse`: every unit
    gets 15 non-zero incoming weights drawn from N(0, 1), all of them if it
    has fewer inputs, the rest zero) rescaled to a spectral radius of 1.1;
    ``W_in`` is dense N(0, 1) times ``--input-scale`` (0.001); ``W_out`` uses
    sparse N(0, 0.1²) weights so that the initial outputs are small; biases
    start at 0. ``--init sparse``: the same, except that ``W_in`` is sparse
    N(0, 1) too, as in [MS11].
Loss and output
    Given by the task (:attr:`hf.datasets.SequenceTask.output`), summed over
    the steps of its ``target_mask`` and *averaged over sequences* (a mean over
    examples, as HF's chunked means and the mini-batches require); the
    Gauss-Newton cut is always at ``s``:

    * ``linear`` (addition, multiplication): ``0.5 (s - y)²`` at the last step;
    * ``logistic`` (xor): binary cross-entropy of ``sigmoid(s)`` at the last step;
    * ``softmax`` (temporal order, random permutation, memorization):
      categorical cross-entropy of ``softmax(s)`` on the scored steps (the last
      step, or memorization's recall steps).
HF
    Each update draws a new gradient batch of ``--hf-batch`` (2000) sequences
    from the training set; the CG (curvature) batch is ``--cg-batch`` (100)
    sequences: the leading slice of the gradient batch (``--cg-source head``,
    the library's default) or the next batch of a separate pass that cycles
    through the shuffled training set (``--cg-source cycle``, as Martens did);
    at most ``--max-cg`` (300, as [MS11]) CG iterations, warm-started from
    ``--cg-decay`` (0.95) times the previous solution, shrunk to the damped
    model's minimizer along it (``--shrink-warm-start``, on: HFOptimizer's
    ``shrink_warm_start``); initial damping λ = ``--damping`` (0.03), kept
    above ``--min-damping`` (1e-6); structural damping
    ``λ·μ·J_aᵀ diag(1 - h²) J_a`` on the hidden pre-activations ``a`` [MS11]
    with ``μ = --mu`` (0.03; 0 turns it off).
Data
    A fixed training set of ``--train-size`` (20,000) sequences, or, with
    ``--fresh-data``, none: every HF update draws ``--hf-batch`` new
    sequences (``--cg-source cycle``: ``--cg-batch`` more for CG) and every
    first-order mini-batch new ones (an epoch is 20,000 of them), as [MS11]
    trained. The held-out set is never trained on.
Adam
    [King15] Algorithm 1 (``kingma_ba=True``) with β₁ = 0.9, β₂ = 0.999,
    ε = 1e-8 and mini-batches of ``--adam-batch`` (50) sequences, once per
    learning rate of ``--adam-lrs`` (1e-3 and 3e-3), each run from the same
    initial weights; the best run (solved soonest, else highest held-out
    success, else lowest held-out loss) is plotted. ``--adam-bias downhill``
    uses downhill's bias terms instead (with β₁ never decayed: ``m / (1 -
    β₁)`` and ``v / (1 - β₂)`` at every step), what every Adam cell of
    ``bench/results/pathological.jsonl`` recorded before this option existed
    ran with.
NAG
    Nesterov's accelerated gradient (``hf.first_order.build('nag', ...)``)
    with momentum ``--nag-momentum`` (0.995) and mini-batches of
    ``--nag-batch`` (100) sequences, as [Sut13] trained RNNs, once per
    learning rate of ``--nag-lrs`` (none by default). Adam and NAG take one
    step per mini-batch of a shuffled pass (an *epoch*) over the training
    set; the step function is compiled before the clock starts and the
    held-out evaluations are left out of it, as for HF.
Success
    ``task.score``: the fraction of held-out sequences solved (linear outputs:
    ``|y - target| <= 0.04``; logistic: the right side of 0.5; softmax: the
    argmax right on every scored step). The problem counts as *solved* when
    the success rate on 2,000 held-out sequences reaches ``--target`` (0.99);
    a run stops once it is solved (unless ``--no-stop``).
Budget
    HF's budget is counted in *updates*: at most ``--hf-updates`` (150). Each
    Adam and NAG run then gets the *training seconds HF actually used* (until
    it solved, or its last update), so that a loaded machine slows every
    optimizer alike. ``--budget SECONDS`` gives instead every run the same
    number of training seconds (and no update cap unless ``--hf-updates`` is
    given); it is required with ``--no-hf``.
Clock
    The wall-clock axis counts training time only: compilation and the
    held-out evaluations (after an HF update or first-order epoch, at most
    once per ``--eval-every`` training second, and after the last one) are
    left out, the same way for every run. OpenBLAS is limited to one thread
    (``--blas-threads``).

Run::

    python bench/rnn_experiment.py                          # addition, T=30, HF then Adam
    python bench/rnn_experiment.py --task memorization      # T=20 blank steps
    python bench/rnn_experiment.py --task temporal_order --bits 3 --T 50
    python bench/rnn_experiment.py --task xor --T 50 --input-scale 0.1 --hidden 100 --no-adam --budget 1800
    python bench/rnn_experiment.py --no-hf --no-adam --nag-lrs 1e-4 --budget 300

What these runs gave, over seeds, is in ``docs/pathological.md`` (generated
from ``bench/results/pathological.jsonl``).

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997.
.. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic optimization",
   ICLR 2015.
.. [Sut13] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
   initialization and momentum in deep learning", ICML 2013.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import threading
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf
import hf.first_order
from hf import datasets, function

log = logging.getLogger("rnn_experiment")

#: Default T per task (the minimal sequence length; for memorization the
#: number of blank steps); chosen so that the defaults run in minutes.
DEFAULT_T = {
    "addition": 30,
    "multiplication": 30,
    "xor": 30,
    "temporal_order": 30,
    "random_permutation": 30,
    "memorization": 20,
}
TASKS = tuple(DEFAULT_T)
#: The variants of a task (``--bits``), the first one the default.
BITS = {"temporal_order": (2, 3), "memorization": (5, 20)}
#: The smallest T each generator accepts.
MIN_T = {"addition": 20, "multiplication": 20, "xor": 20, "temporal_order": 20, "random_permutation": 2,
         "memorization": 1}
#: With ``--fresh-data``: sequences in a first-order epoch (as many as the default training set), and the
#: second word of the seed of every fresh stream (``[seed, FRESH_STREAM]``; the held-out set uses
#: ``seed + 10000``, the fixed training set ``seed``).
FRESH_EPOCH = 20000
FRESH_STREAM = 1
#: HF's update cap when no ``--budget`` is given.
HF_UPDATES = 150
#: Set it (from a signal handler, another thread...) to end the run in progress after its current update
#: or mini-batch; that run's ``stop`` is ``'interrupted'`` and the script goes on as after any other stop.
#: ``bench/pathological.py`` sets it on SIGTERM so that a cell cut short still leaves its record.
STOP = threading.Event()

#: Adam as in [King15]: β₁ = 0.9, β₂ = 0.999, ε = 1e-8, written as downhill's halflives, with
#: Kingma & Ba's bias correction (``--adam-bias downhill`` sets ``kingma_ba=False``).
ADAM_HYPER = hf.first_order.kingma_ba_adam()
#: ``--adam-bias``: Kingma & Ba's bias terms (the default) or downhill's.
ADAM_BIAS = ("kingma-ba", "downhill")


# --------------------------------------------------------------------------- data


def make_task(name, n, T, seed, dtype="float64", bits=None, rng=None):
    """``n`` sequences of problem ``name`` (a :class:`hf.datasets.SequenceTask`).

    ``bits`` picks the variant of temporal order (2, 3) and memorization (5, 20);
    None means the first of :data:`BITS`. ``rng`` (a numpy Generator) draws
    them instead of ``seed``, which must then be None.
    """
    if name not in TASKS:
        raise ValueError(f"make_task: unknown task {name!r}; choose one of {TASKS}")
    kwargs = {}
    if name in BITS:
        kwargs["bits"] = BITS[name][0] if bits is None else bits
    elif bits is not None:
        raise ValueError(f"make_task: {name} has no bits variants, got bits={bits!r}")
    if rng is not None:
        kwargs["rng"] = rng
    return datasets.make_task(name, n, T, seed=seed, dtype=dtype, **kwargs)


class FreshSequences:
    """Training sequences drawn anew for every batch (``--fresh-data``), as [MS11] trained.

    :meth:`stream` returns a function ``draw(n)`` that gives the graph inputs
    (:func:`task_arrays`) of ``n`` new sequences. Every stream starts from the
    seed ``[seed, FRESH_STREAM]``, so every optimizer of a run draws from the
    same stream, and no sequence is ever seen twice (up to chance repeats).
    """

    def __init__(self, name, T, seed, dtype="float64", bits=None):
        self.name, self.T, self.seed, self.dtype, self.bits = name, T, seed, dtype, bits

    def stream(self):
        rng = np.random.default_rng([self.seed, FRESH_STREAM])
        return lambda n: task_arrays(make_task(self.name, n, self.T, None, self.dtype, self.bits, rng=rng))


def task_arrays(task):
    """Graph inputs of a task, all time-major with the sequences on axis 1.

    ``[inputs (T, n, n_in), targets (T, n, n_out), target_mask (T, n), mask (T, n)]``:
    the dense targets and the target mask put end-of-sequence targets and
    per-step targets (memorization's recall steps) in one layout.
    """
    return [task.inputs, task.dense_targets(), task.target_mask, task.mask]


def task_label(name, bits=None):
    """``'memorization (5-bit)'``, ``'addition'``..."""
    if name in BITS:
        return f"{name} ({BITS[name][0] if bits is None else bits}-bit)"
    return name


# --------------------------------------------------------------------------- model


def initial_weights(n_in, n_hidden, n_out, seed, *, radius=1.1, nonzero=15, init="esn", input_scale=0.001):
    """Initial weights (see the module docstring).

    ``init='sparse'``: sparse initialization [Mart10, MS11] with the recurrent
    matrix at spectral radius ``radius``. ``init='esn'`` (the default): the
    same, but dense N(0, 1) input weights times ``input_scale`` [Sut13].
    """
    rng = np.random.default_rng(seed)
    weights = {
        "W_rec": hf.init.sparse(rng, n_hidden, n_hidden, nonzero=nonzero, spectral_radius=radius),
        "W_in": hf.init.sparse(rng, n_in, n_hidden, nonzero=nonzero),
        "b": np.zeros(n_hidden),
        "W_out": hf.init.sparse(rng, n_hidden, n_out, nonzero=nonzero, scale=0.1),
        "c": np.zeros(n_out),
    }
    if init == "esn":
        weights["W_in"] = rng.normal(size=(n_in, n_hidden)) * input_scale
    elif init != "sparse":
        raise ValueError(f"initial_weights: init must be 'sparse' or 'esn', got {init!r}")
    return weights


class RNN:
    """Graph of a tanh RNN over time-major batches (see the module docstring).

    Attributes
    ----------
    inputs : list
        ``[x, y, target_mask, mask]`` in the order of :func:`task_arrays`.
    params : list of shared variables
    cost : scalar
        Loss summed over the scored steps, averaged over sequences.
    s : (T, n, n_out)
        Output pre-nonlinearity: the Gauss-Newton cut.
    a : (T, n, n_hidden)
        Hidden pre-activations, for structural damping.
    outputs : (T, n, n_out)
        Network outputs after the output nonlinearity (for ``task.score``).
    """

    def __init__(self, weights, output, dtype="float64"):
        self.output = output
        self.dtype = dtype
        order = ("W_in", "W_rec", "b", "W_out", "c")
        self.params = [pytensor.shared(np.asarray(weights[k], dtype=dtype), name=k) for k in order]
        W_in, W_rec, b, W_out, c = self.params
        x = pt.tensor3("x", dtype=dtype)
        y = pt.tensor3("y", dtype=dtype)
        target_mask = pt.matrix("target_mask", dtype=dtype)
        mask = pt.matrix("mask", dtype=dtype)
        self.inputs = [x, y, target_mask, mask]
        n_hidden = weights["b"].shape[0]

        def step(xw_t, h_tm1):
            a_t = xw_t + h_tm1 @ W_rec
            return pt.tanh(a_t), a_t

        h0 = pt.zeros((x.shape[1], n_hidden), dtype=dtype)
        # The input projection of all steps at once, outside the loop.
        h, a = pytensor.scan(step, sequences=x @ W_in + b, outputs_info=[h0, None], return_updates=False)
        s = h @ W_out + c
        if output == "linear":
            per_step = 0.5 * pt.sum((s - y) ** 2, axis=-1)
            self.outputs = s
        elif output == "logistic":
            # -y log σ(s) - (1 - y) log(1 - σ(s)) = softplus(s) - y s, stable for any s.
            per_step = pt.sum(pt.softplus(s) - y * s, axis=-1)
            self.outputs = pt.sigmoid(s)
        elif output == "softmax":
            per_step = -pt.sum(y * pt.special.log_softmax(s, axis=-1), axis=-1)
            self.outputs = pt.special.softmax(s, axis=-1)
        else:
            raise ValueError(f"RNN: output must be 'linear', 'logistic' or 'softmax', got {output!r}")
        self.cost = pt.sum(target_mask * per_step) / pt.cast(x.shape[1], s.dtype)
        self.s, self.a, self.mask = s, a, mask
        self._evaluate = None

    def get_weights(self):
        """A copy of the current weights, as ``{name: array}``."""
        return {p.name: p.get_value() for p in self.params}

    def set_weights(self, weights):
        for p in self.params:
            p.set_value(np.asarray(weights[p.name], dtype=self.dtype))

    def evaluate(self, task, chunk=500):
        """``(loss, success rate)`` on a held-out task: mean loss per sequence, ``task.score``."""
        if self._evaluate is None:
            self._evaluate = function(self.inputs, [self.cost, self.outputs], on_unused_input="ignore")
        arrays = task_arrays(task)
        n = task.n_sequences
        total, outputs = 0.0, []
        for start in range(0, n, chunk):
            part = [a[:, start : start + chunk] for a in arrays]
            loss, out = self._evaluate(*part)
            total += float(loss) * part[0].shape[1]
            outputs.append(out)
        return total / n, task.score(np.concatenate(outputs, axis=1))


# --------------------------------------------------------------------------- training


class Run:
    """Learning curve of one optimizer: held-out loss and success vs training seconds and updates."""

    def __init__(self, label):
        self.label = label
        self.seconds, self.at_update, self.loss, self.success = [], [], [], []
        self.updates = 0  # HF updates, or first-order epochs (a partial last epoch counts)
        self.steps = 0  # first-order mini-batch steps (HF: updates)
        self.train_seconds = 0.0
        self.solved_at = None  # training seconds when the target was first reached
        self.solved_updates = None  # updates (epochs) by then
        self.stop = None  # why the run ended: solved, budget, max_updates, diverged
        self.compile_seconds = 0.0
        self.weights = None  # the weights of the last held-out evaluation
        # HF: per-update metrics (update, loss, damping, rho, cg_iters, cg_status, cg_start, cold_restart,
        # accepted, step_rate)
        self.trace = []

    def record(self, seconds, loss, success, target):
        self.seconds.append(seconds)
        self.at_update.append(self.updates)
        self.loss.append(loss)
        self.success.append(success)
        if self.solved_at is None and success >= target:
            self.solved_at = seconds
            self.solved_updates = self.updates

    def summary(self):
        return {
            "label": self.label,
            "updates": self.updates,
            "steps": self.steps,
            "seconds": self.seconds[-1],
            "train_seconds": self.train_seconds,
            "compile_seconds": self.compile_seconds,
            "loss": self.loss[-1],
            "success": self.success[-1],
            "best_success": max(self.success),
            "solved_at": self.solved_at,
            "solved_updates": self.solved_updates,
            "stop": self.stop,
            "curve": {"seconds": list(self.seconds), "updates": list(self.at_update), "loss": list(self.loss),
                      "success": list(self.success)},
            "trace": list(self.trace),
            "weights": self.weights,
        }


def _drive(step, run, model, valid, args, *, seconds=None, max_updates=None, describe=lambda m: ""):
    """Call ``step(clock_left)`` until the problem is solved or the budget is spent.

    ``step(seconds_left)`` makes one HF update or one first-order epoch (cut
    short when it uses up ``seconds_left``) and returns ``(metrics, training
    seconds it took)``, or raises StopIteration. The budget is
    ``seconds`` of training and/or ``max_updates`` calls. The held-out set is
    evaluated before the first call, after a call once at least
    ``args.eval_every`` training seconds have passed since the last
    evaluation, and after the last one.
    """
    run.record(0.0, *model.evaluate(valid), args.target)
    run.weights = model.get_weights()
    clock, last_eval = 0.0, 0.0
    while True:
        if STOP.is_set():
            run.stop = "interrupted"
            break
        if seconds is not None and clock >= seconds:
            run.stop = "budget"
            break
        if max_updates is not None and run.updates >= max_updates:
            run.stop = "max_updates"
            break
        try:
            metrics, took = step(None if seconds is None else seconds - clock)
        except StopIteration:
            run.stop = "exhausted"
            break
        clock += took
        run.updates += 1
        loss = metrics["loss"]
        if not math.isfinite(loss):
            run.stop = "diverged"
            log.info("%s %4d  %6.1fs  training loss %s: diverged", run.label, run.updates, clock, loss)
            break
        last = (seconds is not None and clock >= seconds) or (max_updates is not None and run.updates >= max_updates)
        if clock - last_eval < args.eval_every and not last:
            log.info("%s %4d  %6.1fs  train %.4g  %s", run.label, run.updates, clock, loss, describe(metrics))
            continue
        last_eval = clock
        held_loss, success = model.evaluate(valid)
        run.record(clock, held_loss, success, args.target)
        run.weights = model.get_weights()
        log.info("%s %4d  %6.1fs  train %.4g  %s  held-out loss %.4g success %5.1f%%",
                 run.label, run.updates, clock, loss, describe(metrics), held_loss, 100 * success)
        if success >= args.target and not args.no_stop:
            run.stop = "solved"
            log.info("%s: solved (held-out success %.1f%% >= %.1f%%)", run.label, 100 * success, 100 * args.target)
            break
    run.train_seconds = clock
    if run.at_update[-1] != run.updates:  # stopped after a call that was not evaluated (diverged, exhausted)
        run.record(clock, *model.evaluate(valid), args.target)
        run.weights = model.get_weights()
    return run


def hf_budget(args):
    """``(seconds, max_updates)`` of the HF run (None: no limit of that kind)."""
    return args.budget, (args.hf_updates or None)


def train_hf(model, train, valid, args):
    """HF with structural damping (``args.mu``; 0 turns it off) within :func:`hf_budget`."""
    structural, inputs = None, model.inputs[:3]  # the mask is used by structural damping only
    if args.mu > 0:
        structural = hf.StructuralDamping(model.a, "tanh", weight=args.mu, mask=model.mask)
        inputs = model.inputs
    t0 = time.perf_counter()
    opt = hf.HFOptimizer(
        model.cost, model.s, model.params, inputs,
        damping=args.damping, min_damping=args.min_damping, max_cg_iters=args.max_cg, cg_decay=args.cg_decay,
        structural_damping=structural, cg_fraction=min(1.0, args.cg_batch / args.hf_batch),
        rho_batch=args.rho_batch, shrink_warm_start=args.shrink_warm_start, cold_restart=args.cold_restart,
    )
    opt.compile()  # what an update uses, before the clock starts (HFOptimizer compiles lazily)
    label = f"HF (mu={args.mu:g})"
    run = Run(label)
    run.compile_seconds = time.perf_counter() - t0
    log.info("%s: compiled in %.1fs", label, run.compile_seconds)
    cg = None
    if isinstance(train, FreshSequences):  # a new gradient batch (and CG batch, with cycle) every update
        draw, k = train.stream(), len(inputs)
        data = hf.Dataset(lambda: draw(args.hf_batch)[:k], name="hf-train", axis=1)
        if args.cg_source == "cycle":
            cg = hf.Dataset(lambda: draw(args.cg_batch)[:k], name="hf-cg", axis=1)
    else:
        data = hf.Dataset(train[: len(inputs)], name="hf-train", batch_size=args.hf_batch, axis=1, rng=args.seed)
        if args.cg_source == "cycle":  # a pass of its own through the shuffled training set, as Martens did
            cg = hf.Dataset(train[: len(inputs)], name="hf-cg", batch_size=args.cg_batch, axis=1, rng=args.seed + 1)
    iterator = opt.iterate(data, cg=cg, max_updates=None, patience=10**9)

    def step(_):
        t = time.perf_counter()
        metrics, _valid = next(iterator)
        took = time.perf_counter() - t
        run.steps += 1
        run.trace.append({k: metrics[k] for k in ("update", "loss", "damping", "rho", "cg_iters", "cg_status", "cg_start",
                                                  "cold_restart", "accepted", "step_rate")})
        return metrics, took

    def describe(m):
        return (f"rho {m['rho']:6.3f} damping {m['damping']:.3g} cg {m['cg_iters']:3d} ({m['cg_status']}) "
                f"rate {m['step_rate']:.2f}{'' if m['accepted'] else ' REJECTED'}")

    seconds, max_updates = hf_budget(args)
    try:
        return _drive(step, run, model, valid, args, seconds=seconds, max_updates=max_updates, describe=describe)
    finally:
        iterator.close()


def train_first_order(model, train, valid, args, algo, learning_rate, seconds):
    """Adam or NAG from :mod:`hf.first_order`, one learning rate, for ``seconds`` of training.

    One step per mini-batch of a shuffled pass over the training set; the step
    function (``opt.get_updates`` compiled with :func:`hf.function`) is compiled
    before the clock starts. A run stops at ``seconds`` even inside an epoch.
    """
    t0 = time.perf_counter()
    inputs = model.inputs[:3]  # the loss does not use the mask (only structural damping does)
    opt = hf.first_order.build(algo, model.cost, params=model.params, inputs=inputs)
    if algo == "adam":
        hyper, batch, label = dict(ADAM_HYPER), args.adam_batch, f"Adam (lr={learning_rate:g})"
        if args.adam_bias == "downhill":
            hyper["kingma_ba"] = False
            label = f"Adam, downhill's bias terms (lr={learning_rate:g})"
    else:
        hyper = {"momentum": args.nag_momentum}
        batch, label = args.nag_batch, f"NAG (lr={learning_rate:g}, mu={args.nag_momentum:g})"
    train_step = function(inputs, model.cost, updates=list(opt.get_updates(learning_rate=learning_rate, **hyper)))
    run = Run(label)
    run.compile_seconds = time.perf_counter() - t0
    log.info("%s: compiled in %.1fs", label, run.compile_seconds)
    if isinstance(train, FreshSequences):  # an epoch of FRESH_EPOCH new sequences, drawn batch by batch
        draw = train.stream()
        sizes = [min(batch, FRESH_EPOCH - start) for start in range(0, FRESH_EPOCH, batch)]

        def batches():
            return (draw(size)[:3] for size in sizes)
    else:
        arrays = train[:3]
        n = arrays[0].shape[1]
        rng = np.random.default_rng(args.seed)

        def batches():
            order = rng.permutation(n)
            shuffled = [a[:, order] for a in arrays]
            return ([a[:, start : start + batch] for a in shuffled] for start in range(0, n, batch))

    def epoch(time_left):
        t = time.perf_counter()
        total, seen = 0.0, 0
        for part in batches():
            loss = float(train_step(*part))
            run.steps += 1
            total += loss * part[0].shape[1]
            seen += part[0].shape[1]
            if not math.isfinite(loss):
                break
            if (time_left is not None and time.perf_counter() - t >= time_left) or STOP.is_set():
                break
        return {"loss": total / seen}, time.perf_counter() - t

    return _drive(epoch, run, model, valid, args, seconds=seconds,
                  describe=lambda m: "")


# --------------------------------------------------------------------------- report


def _better(a, b):
    """Whether run summary ``a`` beats ``b``: solved sooner, else higher success, else lower loss."""
    def key(r):
        loss = r["loss"] if math.isfinite(r["loss"]) else math.inf
        return (r["solved_at"] is None, r["solved_at"] or 0.0, -r["success"], loss)

    return key(a) < key(b)


def best_of(runs):
    best = None
    for r in runs:
        if best is None or _better(r, best):
            best = r
    return best


def plot(runs, path, title, target):
    """Held-out loss and success rate vs training seconds, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_success) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in runs:
        style = dict(lw=2) if run["label"].startswith("HF") else dict(lw=1.2, alpha=0.85)
        ax_loss.plot(run["curve"]["seconds"], run["curve"]["loss"], label=run["label"], **style)
        ax_success.plot(run["curve"]["seconds"], 100 * np.asarray(run["curve"]["success"]), label=run["label"], **style)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training wall-clock (s)")
    ax_loss.set_ylabel("held-out loss")
    ax_success.set_xlabel("training wall-clock (s)")
    ax_success.set_ylabel("held-out sequences solved (%)")
    ax_success.axhline(100 * target, color="gray", ls="--", lw=0.8)
    ax_success.set_ylim(-2, 102)
    for ax in (ax_loss, ax_success):
        ax.grid(alpha=0.3)
    ax_success.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(rows, target):
    header = (f"{'optimizer':<26} {'updates':>7} {'train s':>8} {'compile s':>9} {'held-out loss':>13} {'success':>8}"
              f"  solved (>= {100 * target:.0f}%)")
    print(header)
    print("-" * len(header))
    for r in rows:
        if r["solved_at"] is not None:
            solved = f"at {r['solved_at']:.1f}s ({r['solved_updates']} {'updates' if r['label'].startswith('HF') else 'epochs'})"
        else:
            solved = f"no ({r['stop']})"
        print(f"{r['label']:<26} {r['updates']:>7d} {r['train_seconds']:>8.1f} {r['compile_seconds']:>9.1f} "
              f"{r['loss']:>13.4g} {100 * r['success']:>7.1f}%  {solved}")


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default="addition")
    p.add_argument("--bits", type=int, default=None,
                   help="variant: temporal_order 2 or 3 informative symbols, memorization 5 or 20 bits "
                        "(default the first)")
    p.add_argument("--T", type=int, default=None, help=f"sequence length / blank steps (default {DEFAULT_T})")
    p.add_argument("--hidden", type=int, default=32, help="tanh hidden units (default 32)")
    p.add_argument("--init", choices=("sparse", "esn"), default="esn",
                   help="initialization: ESN-style, input weights times --input-scale [Sut13], or sparse [MS11] "
                        "(default esn)")
    p.add_argument("--input-scale", type=float, default=0.001, help="--init esn: input weights' scale (default 0.001)")
    p.add_argument("--budget", type=float, default=None,
                   help="training seconds of every run (default: HF runs --hf-updates updates, Adam and NAG the "
                        "seconds HF used)")
    p.add_argument("--hf-updates", type=int, default=None,
                   help=f"HF update cap; 0: none (default {HF_UPDATES} without --budget, none with it)")
    p.add_argument("--mu", type=float, default=0.03, help="structural damping weight μ; 0 disables it (default 0.03)")
    p.add_argument("--damping", type=float, default=0.03, help="initial HF damping λ (default 0.03)")
    p.add_argument("--min-damping", type=float, default=1e-6, help="floor of HF's damping λ (default 1e-6)")
    p.add_argument("--max-cg", type=int, default=300, help="CG iterations per HF update (default 300)")
    p.add_argument("--cg-decay", type=float, default=0.95,
                   help="CG warm start: the previous CG solution times this (default 0.95; 0 starts CG from zero)")
    p.add_argument("--shrink-warm-start", action=argparse.BooleanOptionalAction, default=True,
                   help="shrink the CG warm start to the minimizer of the new damped model along it "
                        "(HFOptimizer's shrink_warm_start; default on, --no-shrink-warm-start: the start as is)")
    p.add_argument("--cold-restart", action="store_true",
                   help="when no kept iterate of a warm-started CG run lowers the CG-batch loss, run CG again "
                        "from zero (HFOptimizer's cold_restart)")
    p.add_argument("--hf-batch", type=int, default=2000, help="HF gradient batch, sequences (default 2000)")
    p.add_argument("--cg-batch", type=int, default=100, help="HF curvature batch, sequences (default 100)")
    p.add_argument("--cg-source", choices=("head", "cycle"), default="head",
                   help="CG batch: leading slice of the gradient batch, or cycling through the training set "
                        "(default head)")
    p.add_argument("--rho-batch", choices=("gradient", "cg"), default="gradient",
                   help="batch on which HF's reduction ratio rho is measured (default gradient)")
    p.add_argument("--adam-lrs", type=float, nargs="+", default=[1e-3, 3e-3], help="Adam learning rates (default 1e-3 3e-3)")
    p.add_argument("--adam-batch", type=int, default=50, help="Adam mini-batch, sequences (default 50)")
    p.add_argument("--adam-bias", choices=ADAM_BIAS, default="kingma-ba",
                   help="Adam's bias correction: Kingma & Ba's Algorithm 1, or downhill's terms (default kingma-ba)")
    p.add_argument("--nag-lrs", type=float, nargs="*", default=[], help="NAG learning rates (default: no NAG run)")
    p.add_argument("--nag-momentum", type=float, default=0.995, help="NAG momentum (default 0.995)")
    p.add_argument("--nag-batch", type=int, default=100, help="NAG mini-batch, sequences (default 100)")
    p.add_argument("--eval-every", type=float, default=1.0, help="least training seconds between held-out evaluations (default 1)")
    p.add_argument("--train-size", type=int, default=None, help="training sequences (default 20000)")
    p.add_argument("--fresh-data", action="store_true",
                   help="no fixed training set: draw new sequences for every HF update and first-order "
                        "mini-batch, as [MS11] (excludes --train-size)")
    p.add_argument("--valid-size", type=int, default=2000, help="held-out sequences (default 2000)")
    p.add_argument("--target", type=float, default=0.99, help="held-out success rate that counts as solved (default 0.99)")
    p.add_argument("--no-stop", action="store_true", help="keep training after the target is reached")
    p.add_argument("--no-hf", action="store_true", help="skip the HF run")
    p.add_argument("--no-adam", action="store_true", help="skip the Adam runs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="float type of the model and data")
    p.add_argument("--out", default=None, help="PNG path (default rnn_<task>.png)")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-update lines")
    args = p.parse_args(argv)
    if args.T is None:
        args.T = DEFAULT_T[args.task]
    if args.T < MIN_T[args.task]:
        p.error(f"--T must be >= {MIN_T[args.task]} for {args.task}, got {args.T}")
    if args.bits is not None and args.bits not in BITS.get(args.task, ()):
        p.error(f"--bits {args.bits} is not a variant of {args.task} (variants: {BITS.get(args.task, 'none')})")
    if args.no_adam:
        args.adam_lrs = []
    if args.no_hf and not args.adam_lrs and not args.nag_lrs:
        p.error("--no-hf and --no-adam without --nag-lrs leave nothing to run")
    if args.no_hf and args.budget is None:
        p.error("--no-hf needs --budget (Adam and NAG otherwise get the seconds HF used)")
    if args.hf_updates is None:
        args.hf_updates = HF_UPDATES if args.budget is None else 0
    if args.fresh_data and args.train_size is not None:
        p.error(f"--train-size {args.train_size} and --fresh-data exclude each other: fresh data has no training set")
    if args.train_size is None and not args.fresh_data:
        args.train_size = 20000
    for name in ("hidden", "max_cg", "hf_batch", "cg_batch", "adam_batch", "nag_batch", "train_size", "valid_size",
                 "T", "blas_threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.hf_updates < 0:
        p.error(f"--hf-updates must be >= 0, got {args.hf_updates}")
    if (args.budget is not None and args.budget <= 0) or args.mu < 0 or args.damping <= 0 or args.eval_every < 0 \
            or not 0 < args.target <= 1 or not 0 < args.min_damping <= args.damping or args.input_scale <= 0 \
            or not 0 <= args.nag_momentum < 1:
        p.error("--budget, --damping and --input-scale must be > 0, --min-damping in (0, --damping], --mu and "
                "--eval-every >= 0, --target in (0, 1], --nag-momentum in [0, 1)")
    if any(lr <= 0 for lr in args.adam_lrs + args.nag_lrs):
        p.error(f"learning rates must be positive, got {args.adam_lrs + args.nag_lrs}")
    if args.no_plot:
        args.out = None
    elif args.out is None:
        args.out = f"rnn_{args.task}.png"
    return args


def _blas_threads(n):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without threadpoolctl, set OPENBLAS_NUM_THREADS=1 yourself
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def main(argv=None) -> dict:
    """Run the comparison; return the summary (also printed) as a dict.

    Returns
    -------
    dict
        ``task``, ``bits`` (None unless the task has variants), ``T``,
        ``hidden``, ``target``, ``png`` (None with ``--no-plot``), ``hf`` (one
        run summary, or None), ``adam`` and ``nag`` (a summary per learning
        rate), ``adam_best`` and ``nag_best`` (the best ones, or None),
        ``first_order_seconds`` (the training seconds each Adam/NAG run was
        given), ``args`` (the parsed arguments) and ``seconds`` (the whole
        script). A run summary has ``label``, ``updates`` (HF updates or
        epochs), ``steps`` (mini-batch steps), ``seconds`` (training seconds
        at the last evaluation), ``train_seconds`` (all its training seconds),
        ``compile_seconds``, ``loss`` and ``success`` (final held-out),
        ``best_success``, ``solved_at`` (training seconds when the target was
        reached, or None), ``solved_updates``, ``stop`` (``'solved'``,
        ``'budget'``, ``'max_updates'``, ``'diverged'``, ``'interrupted'``: :data:`STOP` was set), ``curve``
        (``seconds``, ``updates``, ``loss``, ``success`` at each evaluation),
        ``trace`` (HF: one dict of metrics per update) and ``weights``
        (``{name: array}`` at the last held-out evaluation, i.e. the weights
        ``loss`` and ``success`` were measured at). Also ``weights`` (the
        initial weights every run starts from) and ``valid`` (the held-out
        :class:`hf.datasets.SequenceTask`).
    """
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    start = time.perf_counter()
    with _blas_threads(args.blas_threads):
        if args.fresh_data:
            train = FreshSequences(args.task, args.T, args.seed, args.dtype, args.bits)
            train_task = make_task(args.task, 1, args.T, args.seed, args.dtype, args.bits)  # its shapes only
        else:
            train_task = make_task(args.task, args.train_size, args.T, args.seed, args.dtype, args.bits)
            train = task_arrays(train_task)
        valid_task = make_task(args.task, args.valid_size, args.T, args.seed + 10_000, args.dtype, args.bits)
        weights = initial_weights(train_task.n_in, args.hidden, train_task.n_out, args.seed, init=args.init,
                                  input_scale=args.input_scale)
        model = RNN(weights, train_task.output, args.dtype)
        name = task_label(args.task, args.bits)
        log.info(
            "%s, T=%d (%d steps), %d hidden units, %d parameters; %s training / %d held-out sequences",
            name, args.T, train_task.T_total, args.hidden, sum(v.size for v in weights.values()),
            "fresh" if args.fresh_data else args.train_size, args.valid_size,
        )
        hf_run = None if args.no_hf else train_hf(model, train, valid_task, args).summary()
        seconds = args.budget if args.budget is not None else hf_run["train_seconds"]
        first_order = {"adam": [], "nag": []}
        for algo, lrs in (("adam", args.adam_lrs), ("nag", args.nag_lrs)):
            for lr in lrs:
                model.set_weights(weights)  # the same starting point for every run
                first_order[algo].append(train_first_order(model, train, valid_task, args, algo, lr, seconds).summary())
    adam_best, nag_best = best_of(first_order["adam"]), best_of(first_order["nag"])
    rows = [r for r in (hf_run, adam_best, nag_best) if r is not None]
    title = f"tanh RNN, {name} T={args.T}, {args.hidden} hidden units"
    if args.out is not None:
        plot(rows, args.out, title, args.target)
    total = time.perf_counter() - start
    print()
    print(f"{title}; held-out: {args.valid_size} sequences; solved = success >= {100 * args.target:g}%")
    budget = []
    if hf_run is not None:
        budget.append("HF " + (f"{args.hf_updates} updates" if args.hf_updates else "")
                      + (" / " if args.hf_updates and args.budget else "")
                      + (f"{args.budget:g} s" if args.budget is not None else ""))
    if first_order["adam"] or first_order["nag"]:
        budget.append(f"Adam/NAG {seconds:.1f} s each" + ("" if args.budget is not None else " (HF's training time)"))
    print("budget: " + "; ".join(budget))
    others = [r for r in first_order["adam"] + first_order["nag"] if r is not adam_best and r is not nag_best]
    print_table(rows + others, args.target)
    print(f"{'plot: ' + args.out + '; ' if args.out else ''}total {total:.0f}s")
    return {
        "task": args.task, "bits": (BITS[args.task][0] if args.bits is None else args.bits) if args.task in BITS else None,
        "T": args.T, "hidden": args.hidden, "target": args.target, "png": args.out,
        "hf": hf_run, "adam": first_order["adam"], "adam_best": adam_best,
        "nag": first_order["nag"], "nag_best": nag_best,
        "first_order_seconds": seconds if first_order["adam"] or first_order["nag"] else None,
        "seconds": total, "args": vars(args), "weights": weights, "valid": valid_task,
    }


if __name__ == "__main__":
    main()
