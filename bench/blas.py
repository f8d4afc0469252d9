"""PyTensor's C backend with the scipy-openblas32 wheel's BLAS against its numpy fallback.

hf points PyTensor's ``blas__ldflags`` at the OpenBLAS of the ``scipy-openblas32``
wheel (hf/_blas.py). With ``blas__ldflags=`` (empty) PyTensor's C matrix-product
ops call numpy through Python instead. The two settings cannot share a process
(PyTensor reads the flag once), so child processes run alternately, wheel then
fallback, ``--rounds`` times after one unrecorded warm-up pair (which compiles the
fallback's C modules). Each child times, interleaved, minimum over repeats, the
loss+gradient and a cached Gv product (and a recomputing one) on the deep
autoencoder and the tanh RNN of bench/_common.py; the parent reports, per
setting, the median over rounds of each time, the ratio of those medians
(fallback / wheel), and Gv/grad within each setting.

Run (one core, one BLAS thread; writes bench/results/blas.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/blas.py
    python bench/blas.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SETTINGS = ("wheel", "fallback")


def child(args):
    sys.path.insert(0, HERE)
    import numpy as np
    from pytensor import config

    import _common as C

    if args.quick:
        models = [C.autoencoder(n=200, sizes=(64, 48, 32, 8, 32, 48, 64)), C.rnn(T=20, n=32, nh=16)]
    else:
        models = [C.autoencoder(n=1000), C.rnn(T=100, n=200, nh=100)]
    out = {"blas__ldflags": config.blas__ldflags, "models": {}}
    for m in models:
        opt = m.optimizer()
        batch = m.batch()
        v = np.random.default_rng(1).normal(size=opt.n_params)
        products = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
        best = C.interleaved_min({"grad": lambda: opt.loss_grad(batch), "Gv cached": lambda: products(v),
                                  "Gv recompute": lambda: opt.gv(v, batch)}, args.repeats)
        out["models"][m.name] = best
    print("JSON " + json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    flags = [f for f in os.environ.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("blas__ldflags")]
    envs = {"wheel": dict(os.environ, PYTENSOR_FLAGS=",".join(flags)),
            "fallback": dict(os.environ, PYTENSOR_FLAGS=",".join(flags + ["blas__ldflags="]))}
    cmd = [sys.executable, os.path.abspath(__file__), "--child", "--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    runs = {s: [] for s in SETTINGS}
    for r in range(args.rounds + 1):
        for s in SETTINGS:
            proc = subprocess.run(cmd, env=envs[s], capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-3000:])
                raise SystemExit(f"{s} child failed")
            res = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")][-1][5:])
            if r > 0:  # round 0 warms the compile cache
                runs[s].append(res)
            print(f"round {r} {s:<8} ldflags={res['blas__ldflags'][:30]!r:<34} " + "  ".join(
                f"{name[:11]}: " + ", ".join(f"{k} {t * 1e3:.1f} ms" for k, t in ts.items())
                for name, ts in res["models"].items()), flush=True)
    summary = {}
    for name in runs["wheel"][0]["models"]:
        med = {s: {k: statistics.median(r["models"][name][k] for r in runs[s]) for k in runs[s][0]["models"][name]}
               for s in SETTINGS}
        summary[name] = {
            "median_seconds": med,
            "fallback_over_wheel": {k: med["fallback"][k] / med["wheel"][k] for k in med["wheel"]},
            "Gv_cached_over_grad": {s: med[s]["Gv cached"] / med[s]["grad"] for s in SETTINGS},
            "Gv_recompute_over_grad": {s: med[s]["Gv recompute"] / med[s]["grad"] for s in SETTINGS},
        }
        print(f"\n{name}")
        for k, r in summary[name]["fallback_over_wheel"].items():
            print(f"  {k:<14} wheel {med['wheel'][k] * 1e3:8.2f} ms  fallback {med['fallback'][k] * 1e3:8.2f} ms  "
                  f"fallback/wheel {r:5.2f}")
        for s in SETTINGS:
            print(f"  {s:<9} Gv cached/grad {summary[name]['Gv_cached_over_grad'][s]:.2f}   "
                  f"Gv recompute/grad {summary[name]['Gv_recompute_over_grad'][s]:.2f}")
    sys.path.insert(0, HERE)
    import _common as C

    C.write_result("blas_quick" if args.quick else "blas", {"rounds": args.rounds, "runs": runs, "summary": summary})


if __name__ == "__main__":
    main()
