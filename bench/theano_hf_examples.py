"""theano-hf's two examples at full size, on ``hf.theano_hf``, within a time budget.

``tests/theano_hf_examples.py`` holds the examples (written against theano-hf's
API); this driver runs them with theano-hf's sizes (XOR: 50,000 items of 50
rows, gradient on 10,000 items, CG on 5,000; memorization: T = 100, 100 hidden
units, 100,000 sequences, gradient on 5,000, CG on 1,000) and stops a run after
``--minutes`` the way a user would, with Ctrl-C: the update in progress
finishes, the best parameters come back. One JSON record per run is printed
(and appended to ``--out`` when given): the outcome (XOR truth table, or the
memorization validation error computed in numpy), updates, seconds.

Run from the repository root, pinned to one core::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python -m bench.theano_hf_examples nn --minutes 30
    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python -m bench.theano_hf_examples rnn --minutes 480

theano-hf's README promises the memorization over 100 steps with no validation
error in about 8 hours on 4 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import threading
import time

from tests import theano_hf_examples as examples


def _stop_after(minutes):
    """Send this process a SIGINT (Ctrl-C) after ``minutes``; returns the timer."""
    timer = threading.Timer(60.0 * minutes, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer


def run(example, minutes, num_updates, seed, scale=1.0, T=100, nh=100):
    """One run of ``example`` ('nn' or 'rnn'); returns its record."""
    k = lambda n: max(1, int(n * scale))  # noqa: E731
    t0 = time.perf_counter()
    timer = _stop_after(minutes)
    try:
        if example == "nn":
            out = examples.example_NN(n_items=k(50000), gradient_items=k(10000), cg_items=k(5000),
                                      valid_items=k(5000), num_updates=num_updates, seed=seed)
            outcome = {"truth_table": out["truth_table"].tolist(),
                       "solved": out["truth_table"].tolist() == [0.0, 1.0, 1.0, 0.0]}
        else:
            out = examples.example_RNN(T=T, nh=nh, n_sequences=k(100000), gradient_items=k(5000),
                                       cg_items=k(1000), valid_items=k(1000), num_updates=num_updates, seed=seed)
            outcome = {"valid_error": out["valid_error"], "solved": out["valid_error"] == 0.0}
    finally:
        timer.cancel()
    opt = out["optimizer"].optimizer
    seconds = [row["seconds"] for row in opt.history]
    return {
        "bench": "theano_hf_examples", "example": example, "seed": seed, "scale": scale,
        **({"T": T, "nh": nh} if example == "rnn" else {}),
        **outcome,
        "updates": len(opt.history), "best_valid_loss": float(opt.best_loss),
        "seconds_per_update": sum(seconds) / max(len(seconds), 1), "wall_seconds": time.perf_counter() - t0,
        "compile_seconds": sum(opt.compile_seconds.values()), "machine": platform.node(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example", choices=["nn", "rnn"])
    parser.add_argument("--minutes", type=float, default=30.0, help="time budget of the run")
    parser.add_argument("--updates", type=int, default=100, help="num_updates (theano-hf's default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every item count by this")
    parser.add_argument("--T", type=int, default=100)
    parser.add_argument("--nh", type=int, default=100)
    parser.add_argument("--out", help="append the JSON record to this file")
    args = parser.parse_args(argv)
    record = run(args.example, args.minutes, args.updates, args.seed, args.scale, args.T, args.nh)
    line = json.dumps(record)
    print(line)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
