"""Longest T that HF solves on the RNN pathological problems within a time budget.

For each task (addition, 5-bit memorization) and each optimizer, ``bench/rnn_experiment.py``
is run at increasing T with the same training-time budget:

* HF with structural damping (``--mu``, default 0.03),
* HF without it (μ = 0),
* Adam, the best of ``--adam-lrs`` (each learning rate gets the full budget).

A run *solves* T when the held-out success rate (``task.score``: addition
``|error| <= 0.04``, memorization every recalled symbol right) reaches
``--target`` (default 0.99) within the budget. T increases along ``--T`` until an
optimizer fails once; larger T are not tried for it (longer dependencies are
assumed to be no easier), and what it reached at the failed T is reported.

Run::

    python bench/rnn_longest_T.py                                   # 30 min per run: hours
    python bench/rnn_longest_T.py --budget 150 --T 20 30 50         # reduced version
    python bench/rnn_longest_T.py --tasks addition --optimizers hf --T 50 100   # one column

The budget counts training time only (compilation and held-out evaluations are
left out); every run starts from the same initialization (``bench/rnn_experiment.py``'s
ESN-style start) and the same training set (seeded).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import sys
import time

try:  # imported as bench.rnn_longest_T (tests, python -m bench.rnn_longest_T)
    from bench import rnn_experiment as example
except ImportError:  # run as python bench/rnn_longest_T.py: bench/ is the script's folder
    import rnn_experiment as example

# adam: Kingma & Ba's Adam (kingma_ba=True via bench/rnn_experiment.py's ADAM_HYPER)
OPTIMIZERS = ("hf", "hf-mu0", "adam")

DEFAULT_T = {
    "addition": [20, 30, 50, 100, 150, 200],
    "memorization": [10, 20, 30, 50, 100, 200],
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=tuple(DEFAULT_T), default=list(DEFAULT_T))
    p.add_argument("--T", type=int, nargs="+", default=None,
                   help="values of T to try, ascending (default: per task, up to 200)")
    p.add_argument("--budget", type=float, default=1800.0, help="training seconds per run (default 1800)")
    p.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS),
                   help="which runs to make (default all): hf = HF with --mu, hf-mu0 = HF without structural damping, adam")
    p.add_argument("--mu", type=float, default=0.03, help="structural damping weight of the first HF run")
    p.add_argument("--adam-lrs", type=float, nargs="+", default=[1e-3, 3e-3], help="Adam learning rates (default 1e-3 3e-3)")
    p.add_argument("--hidden", type=int, default=None, help="hidden units (default: the example's)")
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--eval-every", type=float, default=None,
                   help="least training seconds between held-out evaluations (default: budget / 120, at least 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-size", type=int, default=None, help="training sequences (default: the example's)")
    p.add_argument("--out-dir", default="bench_rnn", help="folder for the runs' PNGs (default bench_rnn)")
    p.add_argument("--verbose", action="store_true", help="show the example's per-update lines")
    return p.parse_args(argv)


def run_example(argv, verbose):
    """``bench/rnn_experiment.py``'s main with ``argv``; its printed table is swallowed unless verbose."""
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        return example.main(argv)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    everything = {  # key: (name in the table, file-name slug, example flags)
        "hf": (f"HF mu={args.mu:g}", f"hf-mu{args.mu:g}", ["--mu", str(args.mu), "--no-adam"]),
        "hf-mu0": ("HF mu=0", "hf-mu0", ["--mu", "0", "--no-adam"]),
        "adam": ("Adam (best lr)", "adam", ["--no-hf", "--adam-lrs", *map(str, args.adam_lrs)]),
    }
    optimizers = [everything[key] for key in OPTIMIZERS if key in args.optimizers]
    eval_every = args.eval_every if args.eval_every is not None else max(1.0, args.budget / 120)
    common = ["--budget", str(args.budget), "--target", str(args.target), "--seed", str(args.seed),
              "--eval-every", str(eval_every)]
    if args.hidden is not None:
        common += ["--hidden", str(args.hidden)]
    if args.train_size is not None:
        common += ["--train-size", str(args.train_size)]
    if not args.verbose:
        common += ["--quiet"]

    rows = []  # (task, optimizer, T, success, best_success, solved_at, seconds, detail)
    start = time.perf_counter()
    for task in args.tasks:
        Ts = sorted(args.T if args.T is not None else DEFAULT_T[task])
        Ts = [T for T in Ts if T >= example.MIN_T[task]]  # e.g. the addition windows need T >= 20
        for name, slug, flags in optimizers:
            for T in Ts:
                png = os.path.join(args.out_dir, f"{task}_T{T}_{slug}.png")
                result = run_example(["--task", task, "--T", str(T), "--out", png, *common, *flags], args.verbose)
                run = result["hf"] if result["hf"] is not None else result["adam_best"]
                detail = run["label"]
                rows.append((task, name, T, run["success"], run["best_success"], run["solved_at"], run["seconds"], detail))
                solved = run["solved_at"] is not None
                print(
                    f"{task:<13} {name:<15} T={T:<4d} {'solved at %.0fs' % run['solved_at'] if solved else 'not solved':<16}"
                    f" held-out success {100 * run['success']:5.1f}% (best {100 * run['best_success']:5.1f}%)"
                    f"  [{detail}, {run['updates']} updates, {time.perf_counter() - start:.0f}s elapsed]",
                    flush=True,
                )
                if not solved:
                    break

    print()
    print(f"Longest T solved (held-out success >= {100 * args.target:g}%) within {args.budget:g} training seconds per run")
    header = f"{'task':<13} {'optimizer':<15} {'longest T':>9} {'time (s)':>8}   {'next T tried: best success':<28}"
    print(header)
    print("-" * len(header))
    for task in args.tasks:
        for name, _, _ in optimizers:
            mine = [r for r in rows if r[0] == task and r[1] == name]
            solved = [r for r in mine if r[5] is not None]
            failed = [r for r in mine if r[5] is None]
            longest = f"{solved[-1][2]}" if solved else "none"
            when = f"{solved[-1][5]:.0f}" if solved else "-"
            nxt = f"T={failed[0][2]}: {100 * failed[0][4]:.1f}%" if failed else "(all solved)"
            print(f"{task:<13} {name:<15} {longest:>9} {when:>8}   {nxt:<28}")
    command = " ".join(shlex.quote(a) for a in [sys.executable, os.path.relpath(__file__)] + list(sys.argv[1:] if argv is None else argv))
    print(f"\ncommand: {command}")
    print(f"total {time.perf_counter() - start:.0f}s")
    return rows


if __name__ == "__main__":
    main()
