"""One cell of the pathological-problems benchmark, appended as one JSON line to a results file.

A *cell* is (task, T, optimizer, seed, budget): ``bench/rnn_experiment.py`` trains its
tanh RNN on one problem of :mod:`hf.datasets` with one optimizer, and this
script appends what happened, with everything needed to run it again, as one
line of JSON to ``--results`` (default ``bench/results/pathological.jsonl``,
kept in the repository). Cells accumulate run after run and across machines;
``bench/pathological_report.py`` turns the file into the tables of
``docs/pathological.md`` and a plot. The schema is described in ``docs/pathological.md``.

Tasks (``--task``): addition, multiplication, xor, temporal_order_2bit,
temporal_order_3bit, random_permutation, memorization_5bit,
memorization_20bit. T is the minimal sequence length (memorization: the
number of blank steps).

Optimizers (``--optimizer``):

* ``hf``: HF with structural damping, μ = 0.03 (the example's defaults);
* ``hf-mu0``: HF without structural damping;
* ``adam``: Adam (Kingma & Ba's Algorithm 1), mini-batches of 50, one
  learning rate (``--lr``; the grid used so far: 1e-3 and 3e-3). The Adam
  cells recorded before ``adam_bias`` was a setting ran downhill's bias
  terms (``-- --adam-bias downhill``); the report labels them so;
* ``nag``: Nesterov's accelerated gradient with the settings of Sutskever et
  al. 2013: momentum 0.995, mini-batches of 100, ESN-style initialization
  (recurrent spectral radius 1.1, input weights × 0.001), one learning rate
  (``--lr``; the grid used so far: 1e-4 and 1e-5).

Budget: ``--budget`` training seconds (compilation and held-out evaluations
are not counted), and for HF optionally ``--max-updates``. Anything else of
the example (hidden units, CG settings...) is passed after ``--`` and is
recorded; the report keeps cells with different settings apart.

Run::

    python bench/pathological.py --task addition --T 30 --optimizer hf --seed 1 --budget 300
    python bench/pathological.py --task memorization_5bit --T 20 --optimizer adam --lr 1e-3 --seed 2 --budget 600
    python bench/pathological.py --task memorization_5bit --T 30 --optimizer hf --seed 1 --budget 600 -- --cg-decay 0
    python bench/pathological_report.py      # the table (and --png for the plot)

Appending is safe for concurrent runs: the file is opened in append mode and
the line is written with one ``write`` under an exclusive ``flock``, then
flushed to disk (``fsync``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import shlex
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
try:  # imported as bench.pathological (tests, python -m bench.pathological)
    from bench import rnn_experiment as example
    from bench.records import append_record, finite, git_state, machine
except ImportError:  # run as python bench/pathological.py: bench/ is the script's folder
    import rnn_experiment as example
    from records import append_record, finite, git_state, machine

SCHEMA = 1
RESULTS = os.path.join(HERE, "results", "pathological.jsonl")

#: Benchmark task name -> (hf.datasets generator, bits variant or None).
SUITE = {
    "addition": ("addition", None),
    "multiplication": ("multiplication", None),
    "xor": ("xor", None),
    "temporal_order_2bit": ("temporal_order", 2),
    "temporal_order_3bit": ("temporal_order", 3),
    "random_permutation": ("random_permutation", None),
    "memorization_5bit": ("memorization", 5),
    "memorization_20bit": ("memorization", 20),
}
# adam: Kingma & Ba's Adam (kingma_ba=True via bench/rnn_experiment.py's ADAM_HYPER), unless -- --adam-bias downhill
OPTIMIZERS = ("hf", "hf-mu0", "adam", "nag")

#: Example flags each optimizer implies (given before the user's extra flags, which win).
OPTIMIZER_FLAGS = {
    "hf": ["--no-adam"],
    "hf-mu0": ["--no-adam", "--mu", "0"],
    "adam": ["--no-hf"],
    "nag": ["--no-hf", "--no-adam", "--init", "esn", "--nag-momentum", "0.995", "--nag-batch", "100"],
}
#: Training sequences when not given: the example's 20,000, except random
#: permutation, whose one-hot inputs and targets over 100 symbols take
#: 2 x 8 x 100 x T bytes per sequence in float64.
TRAIN_SIZE = {"random_permutation": 5000}

#: Example settings recorded per optimizer (besides the cell's own fields).
COMMON_KNOBS = ("hidden", "init", "input_scale", "train_size", "fresh_data", "valid_size", "target", "dtype",
                "eval_every")
OPTIMIZER_KNOBS = {
    "hf": ("mu", "damping", "min_damping", "max_cg", "cg_decay", "hf_batch", "cg_batch", "cg_source", "rho_batch",
           "shrink_warm_start", "cold_restart", "hf_updates"),
    "adam": ("adam_batch", "adam_bias"),
    "nag": ("nag_momentum", "nag_batch"),
}
OPTIMIZER_KNOBS["hf-mu0"] = OPTIMIZER_KNOBS["hf"]
#: Settings that do not change what is measured, left out of ``variant``.
NOT_VARIANT = ("eval_every", "hf_updates")

CURVE_POINTS = 60
TRACE_POINTS = 200


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Flags after -- go to bench/rnn_experiment.py unchanged (e.g. -- --hidden 100 --cg-decay 0).")
    p.add_argument("--task", required=True, choices=tuple(SUITE))
    p.add_argument("--T", type=int, required=True, help="minimal sequence length (memorization: blank steps)")
    p.add_argument("--optimizer", required=True, choices=OPTIMIZERS)
    p.add_argument("--seed", type=int, required=True, help="seed of the training set and initial weights")
    p.add_argument("--budget", type=float, required=True, help="training seconds")
    p.add_argument("--max-updates", type=int, default=None, help="HF: also stop after this many updates")
    p.add_argument("--lr", type=float, default=None, help="learning rate (adam, nag: required)")
    p.add_argument("--train-size", type=int, default=None,
                   help="training sequences (default 20000; random_permutation 5000)")
    p.add_argument("--eval-every", type=float, default=None,
                   help="least training seconds between held-out evaluations (default max(1, budget/300))")
    p.add_argument("--results", default=RESULTS, help="JSON-lines file to append to (default bench/results/pathological.jsonl)")
    p.add_argument("--verbose", action="store_true", help="show the example's per-update lines and table")
    args = p.parse_args(argv)
    if args.optimizer in ("adam", "nag") and args.lr is None:
        p.error(f"--optimizer {args.optimizer} needs --lr")
    if args.optimizer not in ("adam", "nag") and args.lr is not None:
        p.error("--lr is for adam and nag")
    if args.max_updates is not None and (args.optimizer not in ("hf", "hf-mu0") or args.max_updates < 1):
        p.error("--max-updates is a positive number of HF updates (hf, hf-mu0 only)")
    if not args.budget > 0:
        p.error("--budget must be > 0")
    if args.train_size is not None and "--fresh-data" in extra:
        p.error(f"--train-size {args.train_size} and the example's --fresh-data exclude each other")
    args.extra = extra
    args.argv = argv + (["--"] + extra if extra else [])
    return args


def example_argv(args):
    """The ``bench/rnn_experiment.py`` command line of a cell (the user's extra flags last, so they win)."""
    task, bits = SUITE[args.task]
    eval_every = args.eval_every if args.eval_every is not None else max(1.0, args.budget / 300)
    argv = ["--task", task, "--T", str(args.T), "--seed", str(args.seed), "--budget", f"{args.budget:g}",
            "--eval-every", f"{eval_every:g}", "--no-plot"]
    if "--fresh-data" not in args.extra:  # fresh data has no training set
        argv += ["--train-size", str(args.train_size or TRAIN_SIZE.get(task, 20000))]
    if bits is not None:
        argv += ["--bits", str(bits)]
    if args.max_updates is not None:
        argv += ["--hf-updates", str(args.max_updates)]
    argv += OPTIMIZER_FLAGS[args.optimizer]
    if args.optimizer == "adam":
        argv += ["--adam-lrs", f"{args.lr:g}"]
    elif args.optimizer == "nag":
        argv += ["--nag-lrs", f"{args.lr:g}"]
    if not args.verbose:
        argv.append("--quiet")
    return argv + list(args.extra)


def settings_of(optimizer, example_args):
    """The example settings a cell of ``optimizer`` depends on."""
    return {k: example_args[k] for k in COMMON_KNOBS + OPTIMIZER_KNOBS[optimizer]}


def default_settings(args):
    """The settings of a cell with no extra flags (the reference of ``variant``)."""
    plain = argparse.Namespace(**{**vars(args), "extra": [], "verbose": False, "max_updates": None})
    return settings_of(args.optimizer, vars(example.parse_args(example_argv(plain))))


# --------------------------------------------------------------------------- the record


def subsample(n, points, keep=()):
    """At most about ``points`` indices of ``range(n)``, evenly spread, with the first, the last and ``keep``."""
    if n <= points:
        return list(range(n))
    chosen = {round(i * (n - 1) / (points - 1)) for i in range(points)}
    chosen.update(k for k in keep if k is not None and 0 <= k < n)
    return sorted(chosen)


def curve_of(run):
    curve = run["curve"]
    n = len(curve["seconds"])
    solve = None
    if run["solved_at"] is not None:
        solve = curve["seconds"].index(run["solved_at"])
    idx = subsample(n, CURVE_POINTS, keep=(solve,))
    out = {k: [curve[k][i] for i in idx] for k in ("seconds", "updates", "loss", "success")}
    out["points"] = n
    return out


def trace_of(run):
    """HF's per-update metrics as columns, subsampled (None for first-order runs)."""
    rows = run["trace"]
    if not rows:
        return None
    idx = subsample(len(rows), TRACE_POINTS)
    out = {k: [rows[i][k] for i in idx] for k in rows[0]}
    out["points"] = len(rows)
    out["accepted_fraction"] = sum(bool(r["accepted"]) for r in rows) / len(rows)
    if "cg_status" in rows[0]:  # why CG stopped, counted over every update (not subsampled)
        counts = {}
        for r in rows:
            counts[r["cg_status"]] = counts.get(r["cg_status"], 0) + 1
        out["cg_status_counts"] = counts
    if "cold_restart" in rows[0]:  # updates on which CG ran again from zero, over every update
        out["cold_restarts"] = sum(bool(r["cold_restart"]) for r in rows)
    return out


def build_record(args, result, wall_seconds, started, load_start, git):
    """One JSON-ready dict for a finished cell (see docs/pathological.md); ``git``: the checkout's
    ``(commit, modified)`` when the cell started."""
    run = result["hf"] if result["hf"] is not None else (result["adam_best"] or result["nag_best"])
    example_args = result["args"]
    commit, modified = git
    task, bits = SUITE[args.task]
    settings = settings_of(args.optimizer, example_args)
    reference = default_settings(args)
    variant = {k: v for k, v in settings.items() if k not in NOT_VARIANT and reference.get(k) != v}
    if settings["fresh_data"]:  # no training set: its size is not a setting of the cell
        variant.pop("train_size", None)
    info = machine()
    info["loadavg_start"], info["loadavg_end"] = load_start, info.pop("loadavg")
    info["blas_threads"] = example_args["blas_threads"]
    record = {
        "schema": SCHEMA,
        "task": args.task, "generator": task, "bits": bits, "T": args.T,
        "optimizer": args.optimizer, "lr": args.lr, "seed": args.seed,
        "budget": {"seconds": args.budget, "max_updates": args.max_updates},
        "settings": settings,
        "variant": variant,
        "outcome": {
            "solved": run["solved_at"] is not None,
            "time_to_solve": run["solved_at"],
            "updates_to_solve": run["solved_updates"],
            "updates": run["updates"],
            "update_unit": "updates" if args.optimizer.startswith("hf") else "epochs",
            "steps": run["steps"],
            "train_seconds": run["train_seconds"],
            "compile_seconds": run["compile_seconds"],
            "stop": run["stop"],
            "best_success": run["best_success"],
            "final_success": run["success"],
            "final_loss": run["loss"],
            "wall_seconds": wall_seconds,
        },
        "curve": curve_of(run),
        "hf_trace": trace_of(run),
        "reproduce": {
            "command": " ".join(shlex.quote(a) for a in ["python", "bench/pathological.py", *args.argv]),
            "example_command": " ".join(shlex.quote(a) for a in ["python", "bench/rnn_experiment.py", *example_argv(args)]),
            "example_args": {k: v for k, v in example_args.items()},
            "git_commit": commit, "git_dirty": None if modified is None else bool(modified),
            "git_modified": modified,
            "date": started,
        },
        "machine": info,
    }
    return finite(record)


def _interrupt(signum, frame):
    """First SIGTERM/SIGINT: end the run after its current update (its record is still written);
    a second one: the default action."""
    example.STOP.set()
    signal.signal(signum, signal.SIG_DFL)
    print(f"pathological.py: signal {signum}: stopping after the current update (again to kill)", file=sys.stderr)


def run_cell(args):
    """Train the cell; return its record (not yet written).

    A SIGTERM or SIGINT while it trains ends the run after the current update
    (or mini-batch) with ``stop`` ``'interrupted'``, and the record is still
    returned: the report keeps an unsolved interrupted cell apart ("cut short")
    and does not count it as a failure within the budget.
    """
    example.STOP.clear()
    git = git_state()  # the code that runs is the code at the start, whatever the checkout becomes meanwhile
    previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        try:
            load_start = list(os.getloadavg())
        except OSError:
            load_start = None
        t0 = time.perf_counter()
        sink = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(io.StringIO())
        with sink:
            result = example.main(example_argv(args))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return build_record(args, result, time.perf_counter() - t0, started, load_start, git)


def main(argv=None):
    args = parse_args(argv)
    record = run_cell(args)
    append_record(args.results, record)
    o = record["outcome"]
    solved = (f"solved at {o['time_to_solve']:.1f}s ({o['updates_to_solve']} {o['update_unit']})" if o["solved"]
              else f"not solved ({o['stop']}), best success {100 * o['best_success']:.1f}%")
    variant = " ".join(f"{k}={v}" for k, v in record["variant"].items())
    print(f"{args.task} T={args.T} {args.optimizer}{'' if args.lr is None else f' lr={args.lr:g}'} seed={args.seed}"
          f"{' [' + variant + ']' if variant else ''}: {solved}; {o['updates']} {o['update_unit']}, "
          f"{o['train_seconds']:.1f}s training, {o['wall_seconds']:.0f}s in all -> {args.results}")
    return record


if __name__ == "__main__":
    main()
