"""Cost of a Gauss-Newton product relative to a gradient, measured in one run.

For the deep autoencoder of [Mart10] (784-1000-500-250-30-250-500-1000-784,
1,000 rows, logistic hidden units, sigmoid cross-entropy cut at the output's
pre-sigmoid) and a tanh RNN (100 units, T=100, 200 sequences), with and without
structural damping [MS11], this times in one process, calls interleaved,
minimum over repeats:

* ``grad``: the loss and gradient (``HFOptimizer.loss_grad``);
* ``Gv cached``: one CG product from the update's forward cache
  (``opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)``, what
  ``forward_cache=True`` runs in every CG iteration);
* ``forward``: computing that cache (once per update);
* ``Gv recompute``: the self-contained product (``HFOptimizer.gv``, what
  ``forward_cache=False`` runs);

each for both Jv paths, ``jv="pullback"`` (two L-ops) and ``jv="op"`` (the ops'
R-ops; the models use ``pt.dot`` so it applies). Every product is checked
against ``jv="pullback"``'s recomputing product to rounding. Ratios are given
two ways: min/min (fastest call of each) and the median over rounds of the
paired ratio (bench/_common.paired_ratio), which the summary uses: it is the
steadier one on a shared machine.

Counting matrix products, a gradient is about 3 units per layer and a
Gauss-Newton product 5 (4 with the forward pass cached): about 4/3 is the floor
([Schr02]; docs/design.md). The targets of docs/performance.md: Gv/grad <= 1.35
(MLP), 1.5 (RNN), 1.6 (RNN with structural damping).

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (structural damping).
.. [Schr02] N. Schraudolph, "Fast curvature matrix-vector products for
   second-order gradient descent", Neural Computation 14(7), 2002.

Run (one core, one BLAS thread; writes bench/results/gv_cost.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/gv_cost.py
    python bench/gv_cost.py --quick    # small sizes, a smoke test (bench/results/gv_cost_quick.json)
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import _common as C  # noqa: E402  (bench/ is the script's folder)

AMORTIZE = (10, 50)  # CG products per update over which the forward cache's cost is spread


def build(model, **kwargs):
    t = time.perf_counter()
    try:
        opt = model.optimizer(**kwargs)
    except Exception as err:  # noqa: BLE001 - reported, not hidden
        return None, time.perf_counter() - t, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    return opt, time.perf_counter() - t, None


def measure(model, repeats):
    batch = model.batch()
    structural = bool(model.options)
    coef = (0.5,) if structural else ()
    row = {"model": model.name, "structural_damping": structural, "errors": {}, "compile_s": {}}

    opts = {}
    for jv in ("pullback", "op"):
        opt, secs, err = build(model, jv=jv, forward_cache=True)
        row["compile_s"][f"{jv}, forward_cache=True"] = secs
        if err is not None:
            row["errors"][f"jv={jv!r}, forward_cache=True"] = err
            print(f"  jv={jv!r} forward_cache=True failed to compile: {err}")
            opt, secs, err = build(model, jv=jv, forward_cache=False)
            row["compile_s"][f"{jv}, forward_cache=False"] = secs
            if err is not None:
                row["errors"][f"jv={jv!r}, forward_cache=False"] = err
                continue
        opts[jv] = opt
    ref_opt = opts["pullback"]
    row["n_params"] = ref_opt.n_params
    v = np.random.default_rng(1).normal(size=ref_opt.n_params)

    fns = {"grad": lambda: ref_opt.loss_grad(batch)}
    for jv, opt in opts.items():
        fns[f"Gv recompute ({jv})"] = (lambda o: lambda: o.gv(v, batch, *coef))(opt)
        if opt.forward_cache:
            products = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
            row[f"cache_bytes ({jv})"] = products.nbytes
            fns[f"Gv cached ({jv})"] = (lambda p: lambda: p(v, *coef)[0])(products)
            fns[f"forward ({jv})"] = (lambda o: lambda: o._f_forward(*batch.arrays))(opt)

    # Agreement with jv='pullback''s recomputing product.
    ref = ref_opt.gv(v, batch, *coef)
    row["rel_err_vs_pullback_recompute"] = {k: C.rel_err(f() if not k.startswith("Gv recompute") else f(), ref)
                                            for k, f in fns.items() if k.startswith("Gv") and k != "Gv recompute (pullback)"}

    times = C.interleaved(fns, repeats)
    best = {k: min(t) for k, t in times.items()}
    g = best["grad"]
    row["seconds"] = best
    row["all_seconds"] = times
    row["ratio_to_grad"] = {k: t / g for k, t in best.items()}
    row["paired_ratio_to_grad"] = {k: C.paired_ratio(times, k, "grad") for k in times}
    for jv in opts:
        if f"forward ({jv})" in best:
            for k in AMORTIZE:
                row["ratio_to_grad"][f"Gv cached + forward/{k} ({jv})"] = (best[f"Gv cached ({jv})"] + best[f"forward ({jv})"] / k) / g
    row["data_bytes"] = int(sum(a.nbytes for a in batch.arrays))
    return row


def show(row):
    print(f"\n{row['model']}  ({row['n_params']:,} parameters)")
    print(f"  {'':<28} {'min':>12}   {'min/min':>13}   paired median")
    for k, t in row["seconds"].items():
        print(f"  {k:<28} {t * 1e3:9.2f} ms   / grad {row['ratio_to_grad'][k]:5.2f}   {row['paired_ratio_to_grad'][k]:5.2f}")
    for k, r in row["ratio_to_grad"].items():
        if "forward/" in k:
            print(f"  {k:<42} / grad {r:5.2f}")
    for k, e in row["rel_err_vs_pullback_recompute"].items():
        print(f"  rel. difference {k} vs Gv recompute (pullback): {e:.1e}")
    for k, b in row.items():
        if k.startswith("cache_bytes"):
            print(f"  {k}: {b / 2**20:.1f} MiB (batch data {row['data_bytes'] / 2**20:.2f} MiB)")
    for k, e in row["errors"].items():
        print(f"  FAILED {k}: {e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds of interleaved calls (default 12, quick 3)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 12)
    if args.quick:
        models = [C.autoencoder(n=200, sizes=(64, 48, 32, 8, 32, 48, 64)),
                  C.rnn(T=20, n=32, nh=16), C.rnn(T=20, n=32, nh=16, structural=True)]
    else:
        models = [C.autoencoder(n=1000), C.rnn(T=100, n=200, nh=100), C.rnn(T=100, n=200, nh=100, structural=True)]
    print("Gv / gradient time (floor with a cached forward pass ~1.33 by matrix-product count)")
    rows = []
    for m in models:
        rows.append(measure(m, repeats))
        show(rows[-1])
    targets = {"autoencoder": 1.35, "RNN": 1.5, "RNN + structural damping": 1.6}
    summary = {}
    for key, row in zip(targets, rows):
        r = row["paired_ratio_to_grad"]["Gv cached (pullback)"]
        summary[key] = {"Gv_cached_over_grad": r, "Gv_cached_over_grad_min_ratio": row["ratio_to_grad"]["Gv cached (pullback)"],
                        "Gv_recompute_over_grad": row["paired_ratio_to_grad"]["Gv recompute (pullback)"],
                        "target": targets[key], "met": r <= targets[key]}
    print("\nsummary (forward_cache=True, jv='pullback', per CG product; median of paired ratios):")
    for k, s in summary.items():
        print(f"  {k:<26} Gv/grad {s['Gv_cached_over_grad']:.2f}  target <= {s['target']}  {'met' if s['met'] else 'MISSED'}")
    C.write_result("gv_cost_quick" if args.quick else "gv_cost", {"repeats": repeats, "rows": rows, "summary": summary})
    return rows


if __name__ == "__main__":
    main()
