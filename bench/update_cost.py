"""What an HF update costs, in units of the gradient a first-order method pays for.

For two models, measured in one process on one core (calls interleaved, the
minimum over repeats, ratios formed within the run):

* an MLP 784-500-500-10 (tanh, softmax cross-entropy) on 1,000 rows;
* a tanh RNN with 100 units, T = 100, 100 sequences, with structural damping
  [MS11] (bench/_common.py's ``rnn``).

Figures:

* **hf loss+grad / plain**: ``HFOptimizer.loss_grad(batch)`` (what an update
  calls: the compiled loss and gradient, the mean over the batch, the flat float64
  gradient) against a plain ``pytensor.function(inputs, [cost] + grad(cost,
  params))`` of the same graph called on the same arrays.
* **per CG iteration / plain gradient**: the seconds of real updates
  (``HFOptimizer.step(batch)``, the CG batch equal to the gradient batch, CG
  capped at ``--cg-iters`` iterations with Martens' rule off, ``cg_tol=0``, so
  it stops at the cap or at its residual rule) divided by their CG iterations,
  over the plain loss+gradient; ``--updates`` updates after a first one, their
  seconds and iterations summed (one update's ratio swings with its iteration
  count), the fastest of ``--rounds`` runs of the same updates from the same
  parameters and damping (the same CG iterations; a busy machine only adds
  time). It charges everything an update does (gradient, forward cache,
  products, probes, ρ, Python) to the CG iterations, as a user timing updates
  would.
* **non-CG part / Gv**: the updates' seconds less their CG iterations times one
  cached Gauss-Newton product (its mean time inside the same updates), per
  update, in units of that product: what an update costs beside CG's iterations, at equal
  batches, with ρ measured on the gradient batch and on the CG batch (at equal
  batches both from CG's own model value; one product with structural damping).
  ``non_cg_parts_in_gv`` splits it: each compiled function's seconds, Python
  outside them and the products beside CG's iterations (CG's start residual from
  a warm start, ρ's); ``gv_in_update_over_paired`` compares a product inside the
  updates with the same product timed alone.

Targets (issue "performance"): hf loss+grad ≤ 1.05× plain; per CG iteration
≤ 1.3 plain gradients for the MLP and ≤ 1.5 for the RNN with structural
damping; non-CG part ≤ 3 Gv. The clock is the process's CPU time
(bench/_common.py). Run, pinned to one core with one BLAS thread::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/update_cost.py
    python bench/update_cost.py --quick      # small models, a smoke run

Writes bench/results/update_cost.json (``update_cost_quick.json`` with --quick).
"""

from __future__ import annotations

import argparse
import collections

import numpy as np
import pytensor

import _common as C  # noqa: E402  (bench/ is the script's folder)

TARGETS = {"loss_grad": 1.05, "per_cg_iter": {"MLP": 1.3, "RNN": 1.5}, "non_cg_gv": 3.0}


def mlp(n=1000, sizes=(784, 500, 500, 10), seed=0):
    """tanh MLP with a softmax cross-entropy output (``_common.mlp_graph``) and random data."""
    rng = np.random.default_rng(seed)
    cost, s, params, x, y = C.mlp_graph(sizes, rng)
    data = [rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n).astype("int32")]
    return C.Model(f"MLP {'-'.join(map(str, sizes))}, {n} rows", cost, s, params, [x, y], data, (0, 0))


def plain_loss_grad(model):
    return pytensor.function(model.inputs, [model.cost] + pytensor.grad(model.cost, model.params))


def measure(model, kind, cg_iters, updates, repeats, rounds):
    batch = model.batch()
    plain = plain_loss_grad(model)
    arrays = list(batch.arrays)
    opts = {}
    for rho in ("gradient", "cg"):
        opt = model.optimizer(max_cg_iters=cg_iters, cg_tol=0.0, rho_batch=rho, damping=1.0)
        opt.compile()
        opts[rho] = opt
    opt = opts["gradient"]
    cached = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
    v = np.random.default_rng(1).normal(size=opt.n_params)
    sd = model.options.get("structural_damping") is not None
    gv_args = (np.float64(0.5),) if sd else ()
    calls = {
        "plain loss+grad": lambda: plain(*arrays),
        "hf loss+grad": lambda: opt.loss_grad(batch),
        "Gv cached": lambda: cached(v, *gv_args),
    }
    best = C.interleaved_min(calls, repeats)
    rows = {}
    theta0 = opt._theta()  # the two optimizers share the model: each starts from these parameters
    for rho, o in opts.items():
        o._set_theta(theta0)
        o.step(batch)  # the first update checks the batch once (convexity, mean): not a steady update
        start = (o._theta(), o.state)  # every round runs the same updates from here (the same CG iterations)
        o.reduce.clock = C.now
        plain_call = o.reduce._call
        best_round, round_iters = None, []
        for _ in range(rounds):  # the round with the fewest seconds: a busy machine only adds time
            o._set_theta(start[0])
            o.state = start[1]
            o.reduce.timings = collections.Counter()  # seconds per compiled function over the round
            calls = collections.Counter()  # calls per compiled function (the products: CG's and any other)

            def counted(fn, chunk, *args, plain_call=plain_call, calls=calls):
                calls[getattr(fn, "name", None)] += 1
                return plain_call(fn, chunk, *args)

            o.reduce._call = counted
            seconds, iters = [], []
            for _ in range(updates):
                t = C.now()
                m = o.step(batch)
                seconds.append(C.now() - t)
                iters.append(m["cg_iters"])
            round_iters.append(iters)
            if best_round is None or sum(seconds) < sum(best_round[0]):
                best_round = (seconds, iters, o.reduce.timings, calls)
        o.reduce.timings = None
        del o.reduce._call
        seconds, iters, timings, calls = best_round
        # Over all the measured updates together: an update's own ratio swings with its CG iterations
        # (the non-CG part spread over 10 or over 40 of them), a total does not pick one update.
        per_iter = sum(seconds) / sum(iters)
        # The non-CG part in units of the update's own products, as they ran inside it: subtracting
        # 50 products measured apart would turn a 1 % difference between the two into half a Gv.
        products = calls.get("hf_gv_cached", 0)
        gv = timings.get("hf_gv_cached", 0.0) / products  # one product, inside the updates
        non_cg = (sum(seconds) - sum(iters) * gv) / (updates * gv)
        # What it is made of, in those Gv per update: each compiled function beside CG's iteration products,
        # the products beside them (CG's start residual b − A·x₀ from a warm start, ρ's pᵀGp with
        # structural damping), and the rest (Python: CG's vector algebra, sums, the update's bookkeeping).
        unit = updates * gv
        parts = {name: t / unit for name, t in timings.items() if name != "hf_gv_cached"}
        parts["products beside CG's iterations (A·x0, rho)"] = (products - sum(iters)) / updates
        parts["outside compiled calls"] = (sum(seconds) - sum(timings.values())) / unit
        rows[rho] = {"update_seconds": seconds, "cg_iters": iters, "products": products,
                     "gv_in_update_over_paired": gv / best["Gv cached"], "cg_iters_of_each_round": round_iters,
                     "per_cg_iter_over_grad": float(per_iter / best["plain loss+grad"]),
                     "non_cg_in_gv": float(non_cg), "non_cg_parts_in_gv": parts}
    return {"model": model.name, "kind": kind, "seconds": best,
            "loss_grad_ratio": best["hf loss+grad"] / best["plain loss+grad"],
            "gv_over_grad": best["Gv cached"] / best["plain loss+grad"], "updates": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small models (a smoke run)")
    p.add_argument("--cg-iters", type=int, default=50)
    p.add_argument("--updates", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="runs of the same updates; the fastest is kept")
    p.add_argument("--repeats", type=int, default=12)
    args = p.parse_args(argv)
    if args.quick:
        models = [(mlp(n=100, sizes=(20, 16, 16, 3)), "MLP"), (C.rnn(T=10, n=16, nh=8, structural=True), "RNN")]
    else:
        models = [(mlp(), "MLP"), (C.rnn(T=100, n=100, nh=100, structural=True), "RNN")]
    results = []
    for model, kind in models:
        r = measure(model, kind, args.cg_iters, args.updates, args.repeats, args.rounds)
        results.append(r)
        u = r["updates"]
        print(f"{r['model']}: hf loss+grad / plain {r['loss_grad_ratio']:.3f}; Gv / grad {r['gv_over_grad']:.2f}; "
              f"per CG iteration / grad {u['gradient']['per_cg_iter_over_grad']:.2f} (ρ on the gradient batch), "
              f"{u['cg']['per_cg_iter_over_grad']:.2f} (ρ on the CG batch); non-CG part "
              f"{u['gradient']['non_cg_in_gv']:.2f} / {u['cg']['non_cg_in_gv']:.2f} Gv", flush=True)
        print("  non-CG part (ρ on the gradient batch), Gv per update: " + ", ".join(
            f"{k} {v:.2f}" for k, v in u["gradient"]["non_cg_parts_in_gv"].items()), flush=True)
    targets = {}
    for r in results:
        per_iter = r["updates"]["gradient"]["per_cg_iter_over_grad"]  # the optimizer's default ρ
        non_cg = r["updates"]["gradient"]["non_cg_in_gv"]
        targets[r["kind"]] = {
            "loss_grad": {"value": r["loss_grad_ratio"], "target": TARGETS["loss_grad"],
                          "met": r["loss_grad_ratio"] <= TARGETS["loss_grad"]},
            "per_cg_iter": {"value": per_iter, "target": TARGETS["per_cg_iter"][r["kind"]],
                            "met": per_iter <= TARGETS["per_cg_iter"][r["kind"]]},
            "non_cg_gv": {"value": non_cg, "target": TARGETS["non_cg_gv"], "met": non_cg <= TARGETS["non_cg_gv"]},
        }
    C.write_result("update_cost" + ("_quick" if args.quick else ""),
                   {"cg_iters": args.cg_iters, "updates": args.updates, "repeats": args.repeats,
                    "results": results, "targets": targets})


if __name__ == "__main__":
    main()
