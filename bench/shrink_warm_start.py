"""``shrink_warm_start`` on a model that is not an RNN: the digits autoencoder.

Trains ``examples/autoencoder.py``'s deep autoencoder with HF for a fixed number
of updates, with and without ``shrink_warm_start``, over several seeds (each
seed: its own initialization and its own train/held-out split of the digits),
and prints the held-out squared error per image at a few update counts, the CG
iterations per update and how often the shrink moved the start. Update counts,
not seconds, so the comparison does not depend on the machine's load::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/shrink_warm_start.py --seeds 0 1 2 --updates 150
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

import hf  # noqa: E402
from hf import function  # noqa: E402
from hf.datasets import load_digits  # noqa: E402

import autoencoder as example  # noqa: E402  (examples/autoencoder.py)


def run(seed, shrink, updates, report, layers):
    images = load_digits(seed=seed)
    train, valid = images[:1500], images[1500:]
    cost, s, params, x, error = example.build(layers, seed)
    evaluate = function([x], error)
    opt = hf.HFOptimizer(cost, s, params, [x], damping=1.0, max_cg_iters=100, shrink_warm_start=shrink)
    errors, cg_iters, starts = {}, [], []
    for tm, _ in opt.iterate([train], max_updates=updates, patience=10**9):
        cg_iters.append(tm["cg_iters"])
        starts.append(tm["cg_start"])
        if tm["update"] in report:
            errors[tm["update"]] = float(evaluate(valid))
    later = starts[1:]  # the first update has no warm start
    return {"errors": errors, "cg_iters": statistics.median(cg_iters),
            "shrunk": sum(s_ < opt.config.cg_decay for s_ in later), "cold": sum(s_ == 0.0 for s_ in later)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--updates", type=int, default=150)
    p.add_argument("--layers", default="64,48,24,8,24,48,64")
    args = p.parse_args(argv)
    layers = [int(v) for v in args.layers.split(",")]
    report = sorted({max(1, args.updates * k // 6) for k in range(1, 7)})
    rows = []
    for seed in args.seeds:
        for shrink in (False, True):
            r = run(seed, shrink, args.updates, report, layers)
            rows.append({"seed": seed, "shrink_warm_start": shrink, **r})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nheld-out squared error per image after N updates (median over seeds {args.seeds})")
    print(f"{'updates':>8} {'plain':>10} {'shrink':>10} {'shrink/plain':>13}")
    for n in report:
        plain = statistics.median(r["errors"][n] for r in rows if not r["shrink_warm_start"])
        shrink = statistics.median(r["errors"][n] for r in rows if r["shrink_warm_start"])
        print(f"{n:>8} {plain:>10.4f} {shrink:>10.4f} {shrink / plain:>13.3f}")
    for shrink in (False, True):
        rs = [r for r in rows if r["shrink_warm_start"] == shrink]
        print(f"shrink_warm_start={shrink}: median CG iterations per update "
              f"{statistics.median(r['cg_iters'] for r in rs):g}; start shrunk on "
              f"{sum(r['shrunk'] for r in rs)} and set to zero on {sum(r['cold'] for r in rs)} of "
              f"{len(rs) * (args.updates - 1)} updates")
    return rows


if __name__ == "__main__":
    main()
