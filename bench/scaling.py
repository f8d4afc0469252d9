"""How the time of an HF update grows with the CG batch and the sequence length (tanh RNN).

One ``HFOptimizer`` (100 tanh units, ``forward_cache=True``) compiled once: the
graph has symbolic batch size and length, so every point below reuses it. Each
point runs ``--updates`` updates from the same parameters and damping on fresh
random data with the gradient batch equal to the CG batch, CG made deterministic
(``max_cg_iters=20, cg_tol=0``: exactly 20 iterations unless CG stops on negative
curvature), and reports the fastest. Two series:

* CG batch ``--sizes`` (default 100 … 10,000 sequences) at ``T = --T`` (25);
* length ``--lengths`` (25 … 400) at ``--n`` (250) sequences.

Also reported: seconds per sequence-step (time / (n·T)), whose approach to a
constant shows where the fixed per-call cost stops mattering, and the forward
cache's size.

Run (one core, one BLAS thread; writes bench/results/scaling.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/scaling.py
    python bench/scaling.py --quick
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common as C  # noqa: E402  (bench/ is the script's folder)

import hf  # noqa: E402
from hf.update import DampingState  # noqa: E402


def point(opt, theta0, T, n, updates, n_in=2, n_out=1, seed=0):
    rng = np.random.default_rng(seed)
    batch = hf.Batch((rng.normal(size=(T, n, n_in)), rng.normal(size=(T, n, n_out))), (1, 1))
    opt._set_theta(theta0)
    opt.state = DampingState(opt.initial_damping, None)
    times, iters = [], []
    for _ in range(updates):
        t = C.now()
        m = opt.step(batch, batch)
        times.append(C.now() - t)
        iters.append(m["cg_iters"])
    best = min(times)
    row = {"T": T, "n": n, "seconds_per_update": best, "all_seconds": times, "cg_iters": iters,
           "us_per_sequence_step": 1e6 * best / (n * T), "cache_MiB": opt.forward_cache_bytes / 2**20}
    print(f"  T={T:<4d} n={n:<6d} {best:8.2f} s/update  {row['us_per_sequence_step']:7.2f} us per sequence-step"
          f"  CG {iters}  cache {row['cache_MiB']:.0f} MiB", flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000, 3000, 10000])
    parser.add_argument("--T", type=int, default=25)
    parser.add_argument("--lengths", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--updates", type=int, default=2)
    parser.add_argument("--max-cg-iters", type=int, default=20)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.T, args.lengths, args.n, args.hidden, args.updates = [50, 200], 10, [10, 40], 50, 16, 1
    model = C.rnn(T=args.T, n=8, nh=args.hidden)
    opt = model.optimizer(max_cg_iters=args.max_cg_iters, cg_tol=0.0)
    theta0 = opt._theta()
    start = time.perf_counter()
    print(f"CG batch series at T={args.T}, {args.hidden} tanh units, {args.max_cg_iters} CG iterations per update")
    by_size = [point(opt, theta0, args.T, n, args.updates) for n in args.sizes]
    print(f"length series at n={args.n}")
    by_T = [point(opt, theta0, T, args.n, args.updates) for T in args.lengths]
    print(f"total {time.perf_counter() - start:.0f} s (wall)")
    for name, rows, key in (("CG batch", by_size, "n"), ("T", by_T, "T")):
        a, b = rows[0], rows[-1]
        growth = b["seconds_per_update"] / a["seconds_per_update"]
        print(f"{name} x{b[key] / a[key]:.0f} ({a[key]} -> {b[key]}): time per update x{growth:.1f}")
    C.write_result("scaling_quick" if args.quick else "scaling", {
        "hidden": args.hidden, "max_cg_iters": args.max_cg_iters, "cg_tol": 0.0, "updates_per_point": args.updates,
        "by_cg_batch": {"T": args.T, "rows": by_size}, "by_T": {"n": args.n, "rows": by_T}})


if __name__ == "__main__":
    main()
