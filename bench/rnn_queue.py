"""The RNN half of the head-to-head: Kingma & Ba's Adam, tuned, on the long-range problems of [MS11]_.

Each cell is one run of ``bench/pathological.py`` (one JSON line in
``bench/results/pathological.jsonl``, beside the HF cells already there). Two
queues, each resumable (a cell whose record exists is skipped):

* ``tune``: Adam (Kingma & Ba's Algorithm 1, the experiment's default) at
  every learning rate of :data:`LRS` on the tuning seed 0, :data:`TUNING_BUDGET`
  seconds each, on every problem of :data:`PROBLEMS`;
* ``main``: the best learning rate of each problem (solved first, then the
  shorter time to solve, then the higher held-out success) on seeds 1, 2, 3,
  30 minutes each, the budget of the HF cells. A problem's three seeds run
  one after the other, the problems whose tuning run solved soonest first, so
  the cheap rows of the README's table are complete early and a queue stopped
  part way leaves whole rows.

Run (one core, one BLAS thread)::

    taskset -c 1 python bench/rnn_queue.py tune
    taskset -c 1 python bench/rnn_queue.py main
    python bench/pathological_report.py

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
"""

from __future__ import annotations

import argparse
import math
import os

try:  # imported as bench.rnn_queue (tests, python -m bench.rnn_queue)
    from bench import records
except ImportError:  # run as python bench/rnn_queue.py: bench/ is the script's folder
    import records

HERE = os.path.dirname(os.path.abspath(__file__))
CELL = os.path.join(HERE, "pathological.py")
RESULTS = os.path.join(HERE, "results", "pathological.jsonl")

#: (task, T): where the HF cells show the longest T solved, and one step beyond.
PROBLEMS = (("addition", 50), ("addition", 100), ("memorization_5bit", 100), ("memorization_5bit", 200))
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
TUNING_SEED, TUNING_BUDGET = 0, 300.0
SEEDS, BUDGET = (1, 2, 3), 1800.0


def is_fair_adam(r):  # Kingma & Ba's bias terms: the experiment's kingma_ba=True (adam_bias "kingma-ba")
    """A plain Adam cell with Kingma & Ba's bias terms (no other setting changed)."""
    return (r.get("optimizer") == "adam" and r.get("settings", {}).get("adam_bias") == "kingma-ba"
            and not r.get("variant"))


def cell(task, T, lr, seed, budget):
    return ["--task", task, "--T", str(T), "--optimizer", "adam", "--lr", repr(lr), "--seed", str(seed),
            "--budget", repr(budget)]


def done(rows, task, T, lr, seed, budget):
    return any(is_fair_adam(r) and r["task"] == task and r["T"] == T and r["seed"] == seed
               and math.isclose(r["lr"], lr) and r["budget"]["seconds"] == budget for r in rows)


def _rank(r):
    o = r["outcome"]
    return (not o["solved"], o["time_to_solve"] if o["solved"] else 0.0, -(o["best_success"] or 0.0))


def best_run(rows, task, T):
    """The tuning run with the best learning rate for a problem, or None before any has run."""
    runs = [r for r in rows if is_fair_adam(r) and r["task"] == task and r["T"] == T
            and r["seed"] == TUNING_SEED and r["budget"]["seconds"] == TUNING_BUDGET]
    return min(runs, key=_rank) if runs else None


def best_lr(rows, task, T):
    """The tuning runs' best learning rate for a problem, or None before they have run."""
    run = best_run(rows, task, T)
    return None if run is None else run["lr"]


def queue(name, rows):
    """``[(task, T, lr, seed, budget), ...]`` of a queue."""
    if name == "tune":
        return [(task, T, lr, TUNING_SEED, TUNING_BUDGET) for task, T in PROBLEMS for lr in LRS]
    tuned = [(best_run(rows, task, T), task, T) for task, T in PROBLEMS]
    tuned = sorted(((run, task, T) for run, task, T in tuned if run is not None), key=lambda t: _rank(t[0]))
    return [(task, T, run["lr"], seed, BUDGET) for run, task, T in tuned for seed in SEEDS]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("queue", choices=("tune", "main"))
    p.add_argument("--results", default=RESULTS)
    args = p.parse_args(argv)
    cells = queue(args.queue, records.read_records(args.results))
    by_args = {tuple(cell(*c) + ["--results", args.results]): c for c in cells}
    records.run_queue(CELL, [list(a) for a in by_args],
                      lambda a: done(records.read_records(args.results), *by_args[tuple(a)]))


if __name__ == "__main__":
    main()
