"""A tanh RNN on a pathological long-range problem: Hessian-free vs Adam.

The main job of ``hf``, after Martens & Sutskever [MS11]: a plain recurrent
network with tanh hidden units learns the *addition* problem (or, with
``--task memorization``, the 5-bit noiseless memorization problem) of
Hochreiter & Schmidhuber [HS97] with :class:`hf.HFOptimizer` and structural
damping, and, on the same training set, the same initial weights and the same
wall-clock budget, with Adam [King15] from :mod:`hf.first_order` (the best of
a few learning rates).

Model
    ``a_t = x_t W_in + h_{t-1} W_rec + b``, ``h_t = tanh(a_t)``, ``h_0 = 0``,
    output ``s_t = h_t W_out + c``; 32 hidden units by default (``--hidden``).
    Sparse initialization [Mart10, MS11] with :func:`hf.init.sparse`: every
    unit gets 15 non-zero incoming weights drawn from N(0, 1) (all of them if
    it has fewer inputs), the rest are zero; ``W_rec`` is rescaled to a
    spectral radius of 1.1 (our choice: slightly above 1, so that the hidden
    state carries information over the sequence without exploding); ``W_out``
    uses N(0, 0.1²) so that the initial outputs are small; biases start at 0.
Loss
    Addition: ``0.5 (s - y)²`` at each sequence's last step (a linear output
    with squared error, so the Gauss-Newton cut is at ``s``). Memorization:
    softmax cross-entropy on the 5 recall steps, cut at the logits ``s``. Both
    are *sums over the scored steps, averaged over sequences*: a mean over
    examples, as HF's chunked means and Adam's mini-batches require.
HF
    Each update draws a new gradient batch of ``--hf-batch`` (2000) sequences
    from the training set; the CG (curvature) batch is a slice of
    ``--cg-batch`` (100) of them; at most ``--max-cg`` (100) CG iterations,
    warm-started from ``--cg-decay`` (0.95) times the previous solution;
    initial damping λ = ``--damping`` (0.03, near where the Levenberg-Marquardt
    rule settles on this problem, instead of spending ~15 updates lowering it
    from 1); structural damping ``λ·μ·J_aᵀ diag(1 - h²) J_a`` on the hidden
    pre-activations ``a`` [MS11] with ``μ = --mu`` (0.03; 0 turns it off).
Adam
    [King15] Algorithm 1 with β₁ = 0.9, β₂ = 0.999, ε = 1e-8 and mini-batches
    of ``--adam-batch`` (50) sequences, once per learning rate of
    ``--adam-lrs`` (1e-3 and 3e-3), each run with the full budget from the same
    initial weights; the best run (solved soonest, else highest held-out
    success, else lowest held-out loss) is plotted.
Success
    ``task.score``: the fraction of held-out sequences solved (addition:
    ``|y - target| <= 0.04``; memorization: every recalled symbol right). The
    problem counts as *solved* when the success rate on 2,000 held-out
    sequences reaches ``--target`` (0.99); a run stops once it is solved
    (unless ``--no-stop``).
Clock
    Each run gets ``--budget`` (80) seconds of training. The wall-clock axis
    counts training time only: compilation and the held-out evaluations
    (after an HF update or Adam epoch, at most once per ``--eval-every``
    training second) are left out, the same way for every run.

Run::

    python examples/rnn.py                          # addition, T=30: about 4 minutes
    python examples/rnn.py --task memorization      # T=20 blank steps
    python examples/rnn.py --T 100 --hidden 100 --budget 1800

The defaults finish in under five minutes on two cores, compilation included:
HF solves addition at T=30 in about a minute of training, and one epoch of
Adam is one pass over the 20,000 training sequences. OpenBLAS is limited to one
thread (``--blas-threads``): with the small matrices of this model, and other
work on the machine, more threads are much slower.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [HS97] S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural
   Computation 9(8), 1997.
.. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic optimization",
   ICLR 2015.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf
import hf.first_order
from hf import datasets, function

log = logging.getLogger("rnn")

#: Default T per task (the minimal sequence length for addition, the number of
#: blank steps for memorization); chosen so that the defaults run in minutes.
DEFAULT_T = {"addition": 30, "memorization": 20}
TASKS = tuple(DEFAULT_T)

#: Adam as in [King15]: β₁ = 0.9, β₂ = 0.999, written as downhill's halflives.
ADAM_HYPER = dict(
    beta1_halflife=math.log(2.0) / -math.log(0.9),
    beta2_halflife=math.log(2.0) / -math.log(0.999),
    beta1_decay=1.0,
    rms_regularizer=1e-8,
)


# --------------------------------------------------------------------------- data


def make_task(name, n, T, seed, dtype="float64"):
    """``n`` sequences of problem ``name`` (a :class:`hf.datasets.SequenceTask`)."""
    if name == "addition":
        return datasets.addition(n, T, seed=seed, dtype=dtype)
    if name == "memorization":
        return datasets.memorization(n, T, bits=5, seed=seed, dtype=dtype)
    raise ValueError(f"make_task: unknown task {name!r}; choose one of {TASKS}")


def task_arrays(task):
    """Graph inputs of a task, all time-major with the sequences on axis 1.

    ``[inputs (T, n, n_in), targets (T, n, n_out), target_mask (T, n), mask (T, n)]``:
    the dense targets and the target mask put the end-of-sequence targets of
    addition and the recall steps of memorization in one layout.
    """
    return [task.inputs, task.dense_targets(), task.target_mask, task.mask]


# --------------------------------------------------------------------------- model


def initial_weights(n_in, n_hidden, n_out, seed, *, radius=1.1, nonzero=15):
    """Sparse initialization [Mart10, MS11] with the recurrent matrix at spectral radius ``radius``."""
    rng = np.random.default_rng(seed)
    return {
        "W_rec": hf.init.sparse(rng, n_hidden, n_hidden, nonzero=nonzero, spectral_radius=radius),
        "W_in": hf.init.sparse(rng, n_in, n_hidden, nonzero=nonzero),
        "b": np.zeros(n_hidden),
        "W_out": hf.init.sparse(rng, n_hidden, n_out, nonzero=nonzero, scale=0.1),
        "c": np.zeros(n_out),
    }


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
        elif output == "softmax":
            per_step = -pt.sum(y * pt.special.log_softmax(s, axis=-1), axis=-1)
            self.outputs = pt.special.softmax(s, axis=-1)
        else:
            raise ValueError(f"RNN: output must be 'linear' or 'softmax', got {output!r}")
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
    """Learning curve of one optimizer: held-out loss and success vs training seconds."""

    def __init__(self, label):
        self.label = label
        self.seconds, self.loss, self.success = [], [], []
        self.updates = 0
        self.solved_at = None  # training seconds when the target was first reached
        self.compile_seconds = 0.0
        self.weights = None  # the weights of the last held-out evaluation

    def record(self, seconds, loss, success, target):
        self.seconds.append(seconds)
        self.loss.append(loss)
        self.success.append(success)
        if self.solved_at is None and success >= target:
            self.solved_at = seconds

    def summary(self):
        return {
            "label": self.label,
            "updates": self.updates,
            "seconds": self.seconds[-1],
            "compile_seconds": self.compile_seconds,
            "loss": self.loss[-1],
            "success": self.success[-1],
            "best_success": max(self.success),
            "solved_at": self.solved_at,
            "curve": {"seconds": list(self.seconds), "loss": list(self.loss), "success": list(self.success)},
            "weights": self.weights,
        }


def _timed(iterator, run, model, valid, args, describe):
    """Drive an optimizer's ``iterate`` generator for ``args.budget`` training seconds.

    The held-out set is evaluated after an update (HF) or epoch (Adam) once at
    least ``args.eval_every`` training seconds have passed since the last
    evaluation, and after the last one.
    """
    run.record(0.0, *model.evaluate(valid), args.target)
    run.weights = model.get_weights()
    clock, last_eval = 0.0, 0.0
    while clock < args.budget:
        t0 = time.perf_counter()
        try:
            train_metrics, _ = next(iterator)
        except StopIteration:
            break
        clock += time.perf_counter() - t0
        run.updates += 1
        if clock - last_eval < args.eval_every and clock < args.budget:
            log.info("%s %4d  %6.1fs  train %.4g  %s", run.label, run.updates, clock, train_metrics["loss"],
                     describe(train_metrics))
            continue
        last_eval = clock
        loss, success = model.evaluate(valid)
        run.record(clock, loss, success, args.target)
        run.weights = model.get_weights()
        log.info(
            "%s %4d  %6.1fs  train %.4g  %s  held-out loss %.4g success %5.1f%%",
            run.label, run.updates, clock, train_metrics["loss"], describe(train_metrics), loss, 100 * success,
        )
        if success >= args.target and not args.no_stop:
            log.info("%s: solved (held-out success %.1f%% >= %.1f%%)", run.label, 100 * success, 100 * args.target)
            break
    iterator.close()
    return run


def train_hf(model, train, valid, args):
    """HF with structural damping (``args.mu``; 0 turns it off) for ``args.budget`` seconds."""
    structural, inputs = None, model.inputs[:3]  # the mask is used by structural damping only
    if args.mu > 0:
        structural = hf.StructuralDamping(model.a, "tanh", weight=args.mu, mask=model.mask)
        inputs = model.inputs
    t0 = time.perf_counter()
    opt = hf.HFOptimizer(
        model.cost, model.s, model.params, inputs,
        damping=args.damping, max_cg_iters=args.max_cg, cg_decay=args.cg_decay, structural_damping=structural,
        cg_fraction=min(1.0, args.cg_batch / args.hf_batch),
    )
    label = f"HF (mu={args.mu:g})"
    run = Run(label)
    run.compile_seconds = time.perf_counter() - t0
    log.info("%s: compiled in %.1fs", label, run.compile_seconds)
    data = hf.Dataset(train[: len(inputs)], name="hf-train", batch_size=args.hf_batch, axis=1, rng=args.seed)
    iterator = opt.iterate(data, max_updates=None, patience=10**9)

    def describe(m):
        return (f"rho {m['rho']:6.3f} damping {m['damping']:.3g} cg {m['cg_iters']:3d} "
                f"rate {m['step_rate']:.2f}{'' if m['accepted'] else ' REJECTED'}")

    return _timed(iterator, run, model, valid, args, describe)


def train_adam(model, train, valid, args, learning_rate):
    """Adam from :mod:`hf.first_order` with one learning rate for ``args.budget`` seconds."""
    t0 = time.perf_counter()
    # The loss does not use the mask (only structural damping does): leave it out.
    opt = hf.first_order.build("adam", model.cost, params=model.params, inputs=model.inputs[:3])
    data = hf.Dataset(
        train[:3], name="adam-train", batch_size=args.adam_batch, axis=1, rng=args.seed,
        iteration_size=args.adam_epoch,
    )
    iterator = opt.iterate(
        data, learning_rate=learning_rate, patience=10**9, validate_every=1, **ADAM_HYPER
    )
    label = f"Adam (lr={learning_rate:g})"
    run = Run(label)
    run.compile_seconds = time.perf_counter() - t0
    log.info("%s: compiled in %.1fs", label, run.compile_seconds)
    return _timed(iterator, run, model, valid, args, lambda m: "")


# --------------------------------------------------------------------------- report


def _better(a, b):
    """Whether run summary ``a`` beats ``b``: solved sooner, else higher success, else lower loss."""
    ka = (a["solved_at"] is None, a["solved_at"] or 0.0, -a["success"], a["loss"])
    kb = (b["solved_at"] is None, b["solved_at"] or 0.0, -b["success"], b["loss"])
    return ka < kb


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
    header = f"{'optimizer':<22} {'updates':>7} {'train s':>8} {'compile s':>9} {'held-out loss':>13} {'success':>8}  solved (>= {100 * target:.0f}%)"
    print(header)
    print("-" * len(header))
    for r in rows:
        solved = f"at {r['solved_at']:.1f}s" if r["solved_at"] is not None else "no"
        print(f"{r['label']:<22} {r['updates']:>7d} {r['seconds']:>8.1f} {r['compile_seconds']:>9.1f} "
              f"{r['loss']:>13.4g} {100 * r['success']:>7.1f}%  {solved}")


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=TASKS, default="addition")
    p.add_argument("--T", type=int, default=None, help=f"sequence length / blank steps (default {DEFAULT_T})")
    p.add_argument("--hidden", type=int, default=32, help="tanh hidden units (default 32)")
    p.add_argument("--budget", type=float, default=80.0, help="training seconds per optimizer run (default 80)")
    p.add_argument("--mu", type=float, default=0.03, help="structural damping weight μ; 0 disables it (default 0.03)")
    p.add_argument("--damping", type=float, default=0.03, help="initial HF damping λ (default 0.03)")
    p.add_argument("--max-cg", type=int, default=100, help="CG iterations per HF update (default 100)")
    p.add_argument("--cg-decay", type=float, default=0.95,
                   help="CG warm start: the previous CG solution times this (default 0.95; 0 starts CG from zero)")
    p.add_argument("--hf-batch", type=int, default=2000, help="HF gradient batch, sequences (default 2000)")
    p.add_argument("--cg-batch", type=int, default=100, help="HF curvature batch, sequences (default 100)")
    p.add_argument("--adam-lrs", type=float, nargs="+", default=[1e-3, 3e-3], help="Adam learning rates (default 1e-3 3e-3)")
    p.add_argument("--adam-batch", type=int, default=50, help="Adam mini-batch, sequences (default 50)")
    p.add_argument("--adam-epoch", type=int, default=None, help="Adam mini-batches per epoch (default: one pass over the training set)")
    p.add_argument("--eval-every", type=float, default=1.0, help="least training seconds between held-out evaluations (default 1)")
    p.add_argument("--train-size", type=int, default=20000, help="training sequences (default 20000)")
    p.add_argument("--valid-size", type=int, default=2000, help="held-out sequences (default 2000)")
    p.add_argument("--target", type=float, default=0.99, help="held-out success rate that counts as solved (default 0.99)")
    p.add_argument("--no-stop", action="store_true", help="keep training after the target is reached")
    p.add_argument("--no-hf", action="store_true", help="skip the HF run")
    p.add_argument("--no-adam", action="store_true", help="skip the Adam runs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="float type of the model and data")
    p.add_argument("--out", default=None, help="PNG path (default rnn_<task>.png)")
    p.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no per-update lines")
    args = p.parse_args(argv)
    if args.T is None:
        args.T = DEFAULT_T[args.task]
    if args.task == "addition" and args.T < 20:
        p.error(f"--T must be >= 20 for addition, got {args.T}")
    if args.adam_epoch is None:
        args.adam_epoch = -(-args.train_size // args.adam_batch)
    if args.no_hf and args.no_adam:
        p.error("--no-hf and --no-adam leave nothing to run")
    for name in ("hidden", "max_cg", "hf_batch", "cg_batch", "adam_batch", "adam_epoch", "train_size", "valid_size",
                 "T", "blas_threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    if args.budget <= 0 or args.mu < 0 or args.damping <= 0 or args.eval_every < 0 or not 0 < args.target <= 1:
        p.error("--budget and --damping must be > 0, --mu and --eval-every >= 0, --target in (0, 1]")
    if any(lr <= 0 for lr in args.adam_lrs):
        p.error(f"--adam-lrs must be positive, got {args.adam_lrs}")
    if args.out is None:
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
        ``task``, ``T``, ``hidden``, ``target``, ``png``, ``hf`` (one run
        summary), ``adam`` (a summary per learning rate), ``adam_best`` (the best
        one) and ``seconds`` (the whole script). A run summary has ``label``,
        ``updates``, ``seconds`` (training), ``compile_seconds``, ``loss`` and
        ``success`` (final held-out), ``best_success``, ``solved_at`` (training
        seconds when the target was reached, or None), ``curve`` and ``weights``
        (``{name: array}`` at the last held-out evaluation, i.e. the weights
        ``loss`` and ``success`` were measured at). Also ``weights`` (the initial
        weights every run starts from) and ``valid`` (the held-out
        :class:`hf.datasets.SequenceTask`).
    """
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(message)s")
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)
    start = time.perf_counter()
    with _blas_threads(args.blas_threads):
        train_task = make_task(args.task, args.train_size, args.T, args.seed, args.dtype)
        valid_task = make_task(args.task, args.valid_size, args.T, args.seed + 10_000, args.dtype)
        train = task_arrays(train_task)
        weights = initial_weights(train_task.n_in, args.hidden, train_task.n_out, args.seed)
        model = RNN(weights, train_task.output, args.dtype)
        log.info(
            "%s, T=%d (%d steps), %d hidden units, %d parameters; %d training / %d held-out sequences",
            args.task, args.T, train_task.T_total, args.hidden, sum(v.size for v in weights.values()),
            args.train_size, args.valid_size,
        )
        hf_run = None if args.no_hf else train_hf(model, train, valid_task, args).summary()
        adam_runs = []
        if not args.no_adam:
            for lr in args.adam_lrs:
                model.set_weights(weights)  # the same starting point for every run
                adam_runs.append(train_adam(model, train, valid_task, args, lr).summary())
    best = None
    for r in adam_runs:
        if best is None or _better(r, best):
            best = r
    rows = [r for r in (hf_run, best) if r is not None]
    title = f"tanh RNN, {args.task} T={args.T}, {args.hidden} hidden units"
    plot(rows, args.out, title, args.target)
    seconds = time.perf_counter() - start
    print()
    print(f"{title}; held-out: {args.valid_size} sequences; solved = success >= {100 * args.target:g}%")
    print_table(rows + [r for r in adam_runs if r is not best], args.target)
    print(f"plot: {args.out}; total {seconds:.0f}s")
    return {
        "task": args.task, "T": args.T, "hidden": args.hidden, "target": args.target, "png": args.out,
        "hf": hf_run, "adam": adam_runs, "adam_best": best, "seconds": seconds,
        "weights": weights, "valid": valid_task,
    }


if __name__ == "__main__":
    main()
