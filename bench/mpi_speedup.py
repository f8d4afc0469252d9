"""Data-parallel HF: one MPI rank against two on a gradient/Gv-bound update.

Runs ``mpiexec -n 1`` and ``mpiexec -n 2`` (alternately, ``--repeats`` times
each) on this script's worker: an MLP trained by ``HFOptimizer(comm=...)`` on
``hf.mpi.shard`` of one dataset, with one BLAS thread per rank
(``OPENBLAS_NUM_THREADS=1``). ``cg_tol=0`` turns Martens' stopping rule off, so CG
runs to ``--cg-iters`` steps or until its residual falls 1e10-fold, and both runs
make the same CG steps: the same work, mostly Gauss-Newton products on the CG
batch. Prints, per number of ranks:

* seconds per update (the best repeat's median update) and the speedup over one rank;
* the fraction of an update spent inside ``Allreduce`` as ``DistributedMean``
  times it (this includes waiting for the slower rank: load imbalance);
* the pure cost of one ``Allreduce`` of ``n_params`` float64 values, timed after a
  barrier, times the collectives an update makes: the communication alone;
* each rank's CPU seconds of work per update (outside ``Allreduce``, where MPICH
  polls), and the speedup they imply on dedicated cores: one rank's work over the
  slowest rank's work plus the communication alone. Wall-clock times grow when
  other programs share the cores (the load average is printed); CPU seconds of
  work do not, so this column is the one to compare across loaded machines.

Run::

    python bench/mpi_speedup.py                      # 784-256-256-10, batch 4000, CG batch 1000, <= 20 CG steps
    python bench/mpi_speedup.py --quick              # smaller and shorter
    python bench/mpi_speedup.py --json results.json  # also write the numbers

docs/mpi.md has the cost model these numbers are checked against.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve()
ROOT = HERE.parents[1]


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="784,256,256,10", help="layer sizes of the MLP")
    p.add_argument("--batch", type=int, default=4000, help="gradient batch (examples over all ranks)")
    p.add_argument("--cg-fraction", type=float, default=0.25)
    p.add_argument("--cg-iters", type=int, default=20)
    p.add_argument("--updates", type=int, default=3, help="timed updates per run (after one warm-up update)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--ranks", default="1,2")
    p.add_argument("--quick", action="store_true", help="784-128-10, batch 2000, 10 CG steps, 2 updates")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # internal: the MPI program; its JSON goes here
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.batch, args.cg_iters, args.updates = "784,128,10", 2000, 10, 2
    return args


# ---------------------------------------------------------------------- the MPI program
def worker(args):
    import numpy as np
    from mpi4py import MPI

    import _common as C  # bench/ is the script's folder

    import hf
    from hf import mpi

    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(0)  # the same model and data on every rank
    cost, h, params, x, y = C.mlp_graph(sizes, rng)
    n = 2 * args.batch
    X = rng.normal(size=(n, sizes[0]))
    Y = (X[:, : sizes[-1]].argmax(axis=1)).astype("int32")
    train = mpi.shard(hf.Dataset([X, Y], name="train", batch_size=args.batch, rng=1), comm)
    opt = hf.HFOptimizer(cost, h, params, [x, y], comm=comm, max_cg_iters=args.cg_iters, cg_tol=0.0,
                         cg_fraction=args.cg_fraction, damping=1.0)
    red = opt.reduce
    inside = {"cpu": 0.0}  # CPU time inside Allreduce (MPICH polls while it waits, which counts as CPU)
    reduce_sum = red.allreduce

    def timed_allreduce(buf):
        c = time.process_time()
        try:
            return reduce_sum(buf)
        finally:
            inside["cpu"] += time.process_time() - c

    red.allreduce = timed_allreduce
    opt.train(train, max_updates=1, progress=False, patience=10**6)  # warm-up: compiled, first cache built

    comm.Barrier()
    calls0, secs0, cpu0, t0 = red.allreduce_calls, red.allreduce_seconds, time.process_time(), time.perf_counter()
    inside["cpu"] = 0.0
    opt.train(train, max_updates=args.updates, progress=False, patience=10**6, restore_best=False)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    calls, secs = red.allreduce_calls - calls0, red.allreduce_seconds - secs0
    per_update = [row["seconds"] for row in opt.history[-args.updates:]]

    # One Allreduce of n_params float64 values with every rank ready: the communication alone.
    buf = np.ones(opt.n_params)
    times = []
    for _ in range(20):
        comm.Barrier()
        t = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times.append(time.perf_counter() - t)
    everyone = comm.gather({"cpu_per_update": cpu / args.updates, "allreduce_seconds": secs,
                            "work_cpu_per_update": (cpu - inside["cpu"]) / args.updates}, root=0)
    if rank == 0:
        out = {
            "ranks": size,
            "n_params": opt.n_params,
            "batch": args.batch,
            "cg_batch": math.ceil(args.cg_fraction * args.batch),
            "update_seconds": per_update,
            "median_update_seconds": statistics.median(per_update),
            "wall_seconds": wall,
            "allreduce_calls_per_update": calls / args.updates,
            "allreduce_fraction": secs / wall,
            "allreduce_fraction_per_rank": [e["allreduce_seconds"] / wall for e in everyone],
            "pure_allreduce_ms": 1e3 * statistics.median(times),
            "pure_allreduce_fraction": statistics.median(times) * calls / wall,
            "cpu_seconds_per_update": [e["cpu_per_update"] for e in everyone],
            "work_cpu_seconds_per_update": [e["work_cpu_per_update"] for e in everyone],
            "pure_allreduce_seconds_per_update": statistics.median(times) * calls / args.updates,
            "cg_iters": [row["cg_iters"] for row in opt.history[-args.updates:]],
        }
        with open(args.worker, "w") as f:
            json.dump(out, f)


# ---------------------------------------------------------------------- the driver
def mpiexec():
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.worker:
        return worker(args)
    exe = mpiexec()
    if exe is None:
        sys.exit("no mpiexec: pip install -e '.[mpi]' (the mpich wheel provides it)")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.setdefault("PYTENSOR_FLAGS", f"base_compiledir={ROOT / '.pytensor'}")
    ranks = [int(r) for r in args.ranks.split(",")]
    passthrough = ["--sizes", args.sizes, "--batch", str(args.batch), "--cg-fraction", str(args.cg_fraction),
                   "--cg-iters", str(args.cg_iters), "--updates", str(args.updates)]
    runs = {r: [] for r in ranks}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for r in ranks:  # alternate, so a burst of load elsewhere hits both alike
                out = pathlib.Path(tmp) / f"{r}-{rep}.json"
                load = os.getloadavg()[0]
                cmd = [exe, "-n", str(r), sys.executable, str(HERE), *passthrough, "--worker", str(out)]
                subprocess.run(cmd, check=True, env=env)
                res = json.loads(out.read_text())
                res["loadavg_before"] = load
                runs[r].append(res)
                print(f"  ranks {r} repeat {rep + 1}: {res['median_update_seconds']:.3f} s/update "
                      f"(load average {load:.2f})", flush=True)
    best = {r: min(rs, key=lambda x: x["median_update_seconds"]) for r, rs in runs.items()}
    base = best[ranks[0]]["median_update_seconds"] * ranks[0]
    print(f"\nMLP {args.sizes} ({best[ranks[0]]['n_params']} parameters), gradient batch {args.batch}, "
          f"CG batch {best[ranks[0]]['cg_batch']}, CG steps per update {best[ranks[0]]['cg_iters']}, "
          f"{best[ranks[0]]['allreduce_calls_per_update']:.1f} Allreduce per update, one BLAS thread per rank")
    print(f"{'ranks':>5} {'s/update':>9} {'speedup':>8} {'in Allreduce':>13} {'comm alone':>11} "
          f"{'1 Allreduce':>12} {'work CPU s/update per rank':>27} {'speedup from CPU':>17}")
    # CPU seconds of work per update (outside Allreduce) do not grow when other programs share the
    # cores; the slowest rank's work plus the communication alone is what dedicated cores would take.
    work1 = max(best[ranks[0]]["work_cpu_seconds_per_update"])
    for r in ranks:
        b = best[r]
        work = ", ".join(f"{c:.3f}" for c in b["work_cpu_seconds_per_update"])
        ideal = max(b["work_cpu_seconds_per_update"]) + b["pure_allreduce_seconds_per_update"]
        print(f"{r:>5} {b['median_update_seconds']:>9.3f} {base / b['median_update_seconds']:>7.2f}x "
              f"{100 * b['allreduce_fraction']:>12.1f}% {100 * b['pure_allreduce_fraction']:>10.1f}% "
              f"{b['pure_allreduce_ms']:>10.2f}ms {work:>27} {work1 / ideal:>16.2f}x")
    print(f"load average (1 min) before the runs: {[round(x['loadavg_before'], 2) for rs in runs.values() for x in rs]}"
          f" on {os.cpu_count()} cores")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "runs": runs, "command": " ".join(sys.argv)}, f, indent=1)


if __name__ == "__main__":
    main()
