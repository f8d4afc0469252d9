"""Where the time of one HF update goes.

Runs several ``HFOptimizer.step(batch, cg_batch)`` on the deep autoencoder and
the tanh RNN of bench/_common.py with ``preconditioner=True``, the optimizer's
compiled functions replaced by timing wrappers (``_f_loss_grad``,
``_f_forward``, ``_f_gv_cached``, ``_f_gv``, ``_f_gv_form``, ``_f_loss_at``; a benchmark may
reach into private attributes). Each compiled call is charged to one part of
the update:

* gradient: ``_f_loss_grad`` on the gradient batch;
* forward cache: ``_f_forward`` on the CG batch (once per update);
* CG Gv products: ``_f_gv_cached`` (one per CG iteration);
* backtracking probes: ``_f_loss_at`` on the CG batch;
* line-search probes: ``_f_loss_at`` on the gradient batch (the first is ρ's);
* ρ's pᵀGp: ``_f_gv_form`` on the gradient batch (one per update; a full
  product ``_f_gv`` before the form existed, the part's older name "rho's Gv");
* preconditioner: ``_f_loss_grad`` on single examples (Martens' per-example
  squared gradients), and the time of the whole preconditioner build
  (``mean_square_gradients``, its Python loop included);
* Python: the update's time less the sum of all compiled calls (CG's vector
  algebra, the mean over chunks, flattening, the preconditioner's loop).

The CG batch is 1,000 examples, the gradient batch 4,000 (hf's default
``cg_fraction`` of 1/4); CG is capped at ``--max-cg-iters`` (default 50).
Targets: Python ≤ 3 % and preconditioner ≤ 5 % of an update. Times are the
process's CPU time (bench/_common.py; ``HF_BENCH_CLOCK=wall`` for wall-clock).

Run (one core, one BLAS thread; writes bench/results/update_split.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/update_split.py
    python bench/update_split.py --no-preconditioner --models autoencoder   # Python share without it
    python bench/update_split.py --quick
"""

from __future__ import annotations

import argparse
import collections

import _common as C  # noqa: E402  (bench/ is the script's folder)

PARTS = ("gradient", "forward cache", "CG Gv products", "backtracking probes", "line-search probes",
         "rho's pGp (gradient batch)", "preconditioner (compiled)", "other compiled")


class Recorder:
    """Charges each compiled call to a part of the update."""

    def __init__(self):
        self.phase = None
        self.seconds = collections.defaultdict(float)
        self.calls = collections.Counter()

    def wrap(self, fn, name):
        rec = self

        def timed(*args):
            t = C.now()
            out = fn(*args)
            dt = C.now() - t
            part = rec.part(name)
            rec.seconds[part] += dt
            rec.calls[part] += 1
            return out

        timed.name, timed.maker = getattr(fn, "name", name), getattr(fn, "maker", None)
        timed.fresh_outputs = True  # as the compiled function it wraps: hf.reduce may scale them in place
        return timed

    def part(self, name):
        if name == "_f_loss_grad":
            return "preconditioner (compiled)" if self.phase == "preconditioner" else "gradient"
        if name == "_f_square_means":
            return "preconditioner (compiled)"
        if name == "_f_forward":
            return "forward cache"
        if name == "_f_gv_cached":
            return "CG Gv products"
        if name == "_f_gv_form":
            return "rho's pGp (gradient batch)"
        if name == "_f_gv":
            return "CG Gv products"
        if name == "_f_loss_at":
            return "backtracking probes" if self.phase == "cg probe" else "line-search probes"
        return "other compiled"


def instrument(opt):
    rec = Recorder()
    opt.compile()  # functions compile lazily: compile what an update uses, then wrap them in place
    for name in ("hf_loss_grad", "hf_forward", "hf_gv_cached", "hf_gv", "hf_gv_form", "hf_loss_at", "hf_loss",
                 "hf_square_means"):
        if name in opt._graphs:
            opt._compiled[name] = rec.wrap(opt._function(name), "_f_" + name[3:])
    cls = type(opt)
    rec.pre_wall = 0.0

    def mean_square_gradients(batch, max_examples):
        rec.phase, t = "preconditioner", C.now()
        try:
            return cls.mean_square_gradients(opt, batch, max_examples)
        finally:
            rec.pre_wall += C.now() - t
            rec.phase = None

    def loss_at(theta, batch):
        rec.phase = "cg probe" if batch is rec.cg_batch else "probe"
        try:
            return cls.loss_at(opt, theta, batch)
        finally:
            rec.phase = None

    opt.mean_square_gradients, opt.loss_at = mean_square_gradients, loss_at
    return rec


def run(model, cg_n, updates, max_cg_iters, preconditioner=True, rho_batch="gradient"):
    opt = model.optimizer(preconditioner=preconditioner, max_cg_iters=max_cg_iters, rho_batch=rho_batch)
    rec = instrument(opt)
    batch = model.batch()
    cg_batch = batch.head(cg_n)
    rec.cg_batch = cg_batch  # loss_at on it is a backtracking probe
    rows = []
    total = 0.0
    for k in range(updates):
        before = dict(rec.seconds), rec.pre_wall
        t = C.now()
        m = opt.step(batch, cg_batch)
        dt = C.now() - t
        total += dt
        parts = {p: rec.seconds.get(p, 0.0) - before[0].get(p, 0.0) for p in PARTS}
        rows.append({"seconds": dt, "cg_iters": m["cg_iters"], "accepted": m["accepted"], "rho": m["rho"],
                     "parts": parts, "preconditioner_seconds": rec.pre_wall - before[1],
                     "python": dt - sum(parts.values())})
        print(f"  update {k + 1}: {dt:6.2f} s, {m['cg_iters']} CG iterations, loss {m['loss']:.5g} -> {m['new_loss']:.5g}")
    compiled = sum(rec.seconds.values())
    share = {p: rec.seconds.get(p, 0.0) / total for p in PARTS}
    share["Python outside compiled functions"] = (total - compiled) / total
    share["preconditioner (whole build)"] = rec.pre_wall / total
    return {"model": model.name, "gradient_batch": batch.size, "cg_batch": cg_batch.size, "n_params": opt.n_params,
            "preconditioner": preconditioner, "rho_batch": rho_batch, "max_cg_iters": max_cg_iters, "updates": rows, "total_seconds": total,
            "calls": dict(rec.calls), "share": share, "cache_bytes": opt.forward_cache_bytes}


def show(res):
    n_cg = sum(u["cg_iters"] for u in res["updates"])
    print(f"{res['model']}: gradient batch {res['gradient_batch']}, CG batch {res['cg_batch']}, "
          f"{len(res['updates'])} updates, {n_cg} CG iterations, {res['total_seconds']:.1f} s")
    for p, s in res["share"].items():
        print(f"  {p:<38} {100 * s:6.2f} %")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--max-cg-iters", type=int, default=50)
    parser.add_argument("--cg-batch", type=int, default=None, help="CG batch size (default 1000, quick 100)")
    parser.add_argument("--no-preconditioner", action="store_true",
                        help="preconditioner=False (writes update_split_nopre.json)")
    parser.add_argument("--models", default="autoencoder,rnn", help="which models (default both)")
    parser.add_argument("--rho-batch", choices=("gradient", "cg"), default="gradient",
                        help="where ρ is measured (default gradient, the optimizer's default)")
    args = parser.parse_args(argv)
    cg_n = args.cg_batch or (100 if args.quick else 1000)
    if args.quick:
        models = [C.autoencoder(n=4 * cg_n, sizes=(64, 48, 32, 8, 32, 48, 64)), C.rnn(T=20, n=4 * cg_n, nh=16)]
    else:
        models = [C.autoencoder(n=4 * cg_n), C.rnn(T=100, n=4 * cg_n, nh=100)]
    wanted = args.models.split(",")
    models = [m for m, key in zip(models, ("autoencoder", "rnn")) if key in wanted]
    results = []
    for m in models:
        print(m.name)
        results.append(run(m, cg_n, args.updates, args.max_cg_iters, preconditioner=not args.no_preconditioner,
                           rho_batch=args.rho_batch))
    print()
    for r in results:
        show(r)
    targets = {}
    for r in results:
        py, pre = r["share"]["Python outside compiled functions"], r["share"]["preconditioner (whole build)"]
        if not r["preconditioner"]:
            targets[r["model"]] = {"python_share": py, "python_met": py <= 0.03}
            print(f"{r['model']}: Python {100 * py:.1f} % (target <= 3 %: {'met' if py <= 0.03 else 'MISSED'})")
            continue
        targets[r["model"]] = {"python_share": py, "python_met": py <= 0.03,
                               "preconditioner_share": pre, "preconditioner_met": pre <= 0.05}
        print(f"{r['model']}: Python {100 * py:.1f} % (target <= 3 %: {'met' if py <= 0.03 else 'MISSED'}), "
              f"preconditioner {100 * pre:.1f} % (target <= 5 %: {'met' if pre <= 0.05 else 'MISSED'})")
    name = "update_split" + ("_nopre" if args.no_preconditioner else "") + ("_quick" if args.quick else "")
    C.write_result(name, {"results": results, "targets": targets})
    return results


if __name__ == "__main__":
    main()
