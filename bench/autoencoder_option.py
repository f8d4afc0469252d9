"""A boolean option of ``HFOptimizer`` on a model that is not an RNN: the digits autoencoder.

Trains the deep autoencoder of ``examples/autoencoder.py`` (``_common.autoencoder_graph``) with HF for a fixed number
of updates, with the option off and on, over several seeds (each seed: its own
initialization and its own train/held-out split of the digits), and prints the
held-out squared error per image at a few update counts, the CG iterations per
update, and how often the option acted: for ``shrink_warm_start`` the updates
whose start it shrank or set to zero, for ``cold_restart`` those on which CG ran
again from zero and those that went on with that run. Update counts, not
seconds, so the comparison does not depend on the machine's load::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/autoencoder_option.py --option shrink_warm_start
    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/autoencoder_option.py --option cold_restart
    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/autoencoder_option.py --option rho_batch \
        --results bench/results/options.jsonl

``rho_batch`` compares ρ measured on the gradient batch (an extra product there)
with ρ from CG's own model value on the CG batch; its runs also report the
training seconds (CPU time, the evaluations left out).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import _common as C  # bench/ is the script's folder
import hf
from hf import function
from hf.datasets import load_digits

#: Each option's two values: off, on.
OPTIONS = {"shrink_warm_start": (False, True), "cold_restart": (False, True), "rho_batch": ("gradient", "cg")}


def run(seed, option, on, updates, report, layers):
    images = load_digits(seed=seed)
    train, valid = images[:1500], images[1500:]
    cost, s, params, x, error = C.autoencoder_graph(layers, np.random.default_rng(seed))
    evaluate = function([x], error)
    opt = hf.HFOptimizer(cost, s, params, [x], damping=1.0, max_cg_iters=100, **{option: OPTIONS[option][on]})
    opt.compile()
    errors, cg_iters, starts, restarts = {}, [], [], []
    t0 = time.process_time()
    for tm, _ in opt.iterate([train], max_updates=updates, patience=10**9):
        cg_iters.append(tm["cg_iters"])
        starts.append(tm["cg_start"])
        restarts.append(tm["cold_restart"])
        if tm["update"] in report:
            t1 = time.process_time()
            errors[tm["update"]] = float(evaluate(valid))
            t0 += time.process_time() - t1  # the evaluation is not training
    later = starts[1:]  # the first update has no warm start
    return {"errors": errors, "cg_iters": statistics.median(cg_iters), "seconds": time.process_time() - t0,
            "shrunk": sum(s_ < opt.config.cg_decay for s_ in later), "cold": sum(s_ == 0.0 for s_ in later),
            "restarted": sum(restarts)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--option", choices=sorted(OPTIONS), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--updates", type=int, default=150)
    p.add_argument("--layers", default="64,48,24,8,24,48,64")
    p.add_argument("--results", help="append one JSON line per run to this file")
    args = p.parse_args(argv)
    layers = [int(v) for v in args.layers.split(",")]
    report = sorted({max(1, args.updates * k // 6) for k in range(1, 7)})
    rows = []
    for seed in args.seeds:
        for on in (False, True):
            r = run(seed, args.option, on, args.updates, report, layers)
            rows.append({"seed": seed, args.option: OPTIONS[args.option][on], "on": on, **r})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nheld-out squared error per image after N updates (median over seeds {args.seeds})")
    print(f"{'updates':>8} {'off':>10} {'on':>10} {'on/off':>8}")
    for n in report:
        off = statistics.median(r["errors"][n] for r in rows if not r["on"])
        on = statistics.median(r["errors"][n] for r in rows if r["on"])
        print(f"{n:>8} {off:>10.4f} {on:>10.4f} {on / off:>8.3f}")
    warm = len(args.seeds) * (args.updates - 1)
    for on in (False, True):
        rs = [r for r in rows if r["on"] == on]
        if args.option == "shrink_warm_start":
            acted = f"; start shrunk on {sum(r['shrunk'] for r in rs)} and set to zero on {sum(r['cold'] for r in rs)}"
        elif args.option == "cold_restart":
            acted = (f"; CG run again from zero on {sum(r['restarted'] for r in rs)}, and that run kept on "
                     f"{sum(r['cold'] for r in rs)}")
        else:
            acted = ""
        print(f"{args.option}={OPTIONS[args.option][on]!r}: median CG iterations per update "
              f"{statistics.median(r['cg_iters'] for r in rs):g}, median training seconds "
              f"{statistics.median(r['seconds'] for r in rs):.1f}{acted}"
              + (f" of {warm} warm-started updates" if acted else ""))
    if args.results:
        with open(args.results, "a") as f:
            for r in rows:
                f.write(json.dumps({"option": args.option, "updates": args.updates, "layers": args.layers,
                                    **{k: v for k, v in r.items() if k != "on"}}) + "\n")
    return rows


if __name__ == "__main__":
    main()
