"""Is CG's warm start what raises the loss? A diagnosis on the pathological RNN problems.

Trains ``bench/rnn_experiment.py``'s HF run on one task and, at every ``--every``-th
update, compares what CG's warm start gave with what a cold start from zero
would have given at the same parameters, on the same damped system and the same
CG batch:

* ``phi(x0)``: the damped quadratic model of this update at the warm start
  ``x0 = cg_decay * previous CG solution`` (``phi(0) = 0``: a positive value
  means the model itself finds the warm start worse than not moving);
* the CG-batch loss change at ``x0`` and at each iterate CG keeps (the candidates
  of backtracking), for the warm run the optimizer made and for a cold run;
* the damping λ, ρ and the optimizer's own step.

The cold run and the probes are extra work done beside the update: the training
trajectory is the one the cell would take without them. Flags after ``--`` go to
``bench/rnn_experiment.py`` (e.g. ``-- --no-shrink-warm-start --max-cg 100``, the example's
settings before they changed, or ``-- --rho-batch cg``).

Prints a summary over the analysed updates and, with ``--out``, writes one JSON
line per analysed update::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/cg_start.py --task memorization --T 50 --seed 3 \\
        --updates 150 --out cg_start.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import hf  # noqa: E402
import hf.optimizer  # noqa: E402
from bench import rnn_experiment as example  # noqa: E402  (ROOT is on sys.path above)
from hf import cg as hf_cg  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Flags after -- go to bench/rnn_experiment.py unchanged.")
    p.add_argument("--task", default="memorization", help="bench/rnn_experiment.py task (default memorization)")
    p.add_argument("--T", type=int, default=50)
    p.add_argument("--seed", type=int, default=3)
    p.add_argument("--updates", type=int, default=150, help="HF updates to train (default 150)")
    p.add_argument("--every", type=int, default=1, help="analyse every k-th update (default 1)")
    p.add_argument("--start", type=int, default=1, help="analyse from this update on (default 1)")
    p.add_argument("--out", default=None, help="JSON lines, one per analysed update")
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = p.parse_args(argv)
    if min(args.updates, args.every, args.start) < 1:
        p.error(f"--updates, --every and --start must be >= 1, got {args.updates}, {args.every}, {args.start}")
    return args, extra


def cg_loss_changes(result, loss_change):
    """``[(iteration, CG-batch loss change, step norm)]`` over the iterates ``result`` kept."""
    return [(i, loss_change(x), float(np.linalg.norm(x))) for i, x in result.kept]


class Probe:
    """Stands in for :func:`hf.update.hf_update` in :mod:`hf.optimizer`: runs it, then
    measures the warm and the cold start at the same parameters."""

    def __init__(self, every, out, start=1):
        self.every, self.out, self.start, self.rows, self.count = every, out, start, [], 0
        self.real = hf.optimizer.hf_update

    def __call__(self, loss_grad, matvec, loss_at, state, config, **kw):
        seen = []

        def kept_loss_grad():  # the update's own gradient, kept for the probe
            seen.append(loss_grad())
            return seen[-1]

        res = self.real(kept_loss_grad, matvec, loss_at, state, config, **kw)
        self.count += 1
        if self.count < self.start or (self.count - self.start) % self.every:
            return res
        t = time.perf_counter()
        cg_loss_at = kw["cg_loss_at"]
        g = np.asarray(seen[-1][1], dtype=np.float64)
        lam = state.damping
        coef = lam * config.structural_weight

        def damped(v):
            return matvec(v, coef) + lam * v

        f0 = float(cg_loss_at(np.zeros_like(g)))

        def change(x):
            v = float(cg_loss_at(x))
            return v - f0 if np.isfinite(v) else float("inf")

        row = {"update": self.count, "damping": lam, "rho": res.metrics["rho"], "step_rate": res.metrics["step_rate"],
               "cg_start": res.metrics["cg_start"], "cg_iters": res.metrics["cg_iters"],
               "cg_status": res.metrics["cg_status"], "grad_norm": float(np.linalg.norm(g)),
               "warm_kept": cg_loss_changes(res.cg, change), "x0": None}
        if state.cg_x is not None and config.cg_decay > 0:
            x0 = config.cg_decay * state.cg_x
            row["x0"] = {"phi": float(g @ x0 + 0.5 * x0 @ damped(x0)), "loss_change": change(x0),
                         "norm": float(np.linalg.norm(x0))}
        cold = hf_cg.cg(damped, -g, None, max_iters=config.max_cg_iters, tol=config.cg_tol)
        row["cold_kept"] = cg_loss_changes(cold, change)
        row["cold_iters"], row["cold_status"] = cold.iterations, cold.status.name.lower()
        row["probe_seconds"] = time.perf_counter() - t
        self.rows.append(row)
        if self.out is not None:
            self.out.write(json.dumps(row) + "\n")
            self.out.flush()
        return res


def summary(rows):
    """Counts over the analysed updates that had a warm start."""
    warm = [r for r in rows if r["x0"] is not None]
    out = {"analysed": len(rows), "with_warm_start": len(warm)}
    if not warm:
        return out
    uphill = [r for r in warm if r["x0"]["phi"] > 0]
    warm_all_up = [r for r in warm if min(c for _, c, _ in r["warm_kept"]) > 0]
    cold_down = [r for r in warm_all_up if min(c for _, c, _ in r["cold_kept"]) < 0]
    out.update({
        "phi_x0_positive": len(uphill),
        "every_warm_iterate_raises_cg_loss": len(warm_all_up),
        "of_those_a_cold_iterate_lowers_it": len(cold_down),
        "every_cold_iterate_raises_cg_loss": sum(min(c for _, c, _ in r["cold_kept"]) > 0 for r in warm),
        "rho_minus_inf": sum(r["rho"] == float("-inf") for r in warm),
        "median_damping": statistics.median(r["damping"] for r in warm),
        "median_phi_x0_when_positive": statistics.median(r["x0"]["phi"] for r in uphill) if uphill else None,
    })
    return out


def main(argv=None):
    args, extra = parse_args(argv)
    out = open(args.out, "w") if args.out else None
    probe = Probe(args.every, out, args.start)
    hf.optimizer.hf_update = probe
    try:
        run = example.main(["--task", args.task, "--T", str(args.T), "--seed", str(args.seed), "--no-adam",
                            "--no-plot", "--quiet", "--hf-updates", str(args.updates), *extra])["hf"]
    finally:
        hf.optimizer.hf_update = probe.real
        if out is not None:
            out.close()
    result = {"task": args.task, "T": args.T, "seed": args.seed, "extra": extra, "updates": run["updates"],
              "best_success": run["best_success"], **summary(probe.rows)}
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
