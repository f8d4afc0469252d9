"""ρ's curvature term on the gradient batch: the quadratic form pᵀGp against p·(G p).

When the CG batch is a part of the gradient batch (hf's default: a quarter),
the reduction ratio ρ needs pᵀGp on the gradient batch, where CG's forward
cache does not reach. ``HFOptimizer`` computes it as the form
``hf.gauss_newton_form`` (``hf_gv_form``: Jp and H_L·Jp, no reverse pass)
instead of a full product ``hf_gv`` followed by a dot product. For [Mart10]'s
MNIST autoencoder (784-1000-500-250-30 and mirror, 4,000 rows, the gradient
batch of ``bench/update_split.py``) and a tanh RNN with structural damping
(100 units, T = 100, 400 sequences), this times the two in one process, calls
interleaved, minimum over repeats, and checks that they agree to rounding.

Run (one core, one BLAS thread; writes bench/results/gv_form.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/gv_form.py
    python bench/gv_form.py --quick    # small sizes (bench/results/gv_form_quick.json)

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
"""

from __future__ import annotations

import argparse

import numpy as np

import _common as C  # noqa: E402  (bench/ is the script's folder)


def measure(model, repeats):
    batch = model.batch()
    opt = model.optimizer()
    opt.compile(["hf_gv", "hf_gv_form"])
    p = np.random.default_rng(0).normal(size=opt.n_params) * 1e-2
    coef = (0.0,) if opt.structural_damping is not None else ()
    product = float(p @ opt.gv(p, batch, *coef))
    form = opt.gauss_newton_form(p, batch)
    best = C.interleaved_min({"p·(G p)": lambda: p @ opt.gv(p, batch, *coef),
                              "pᵀGp form": lambda: opt.gauss_newton_form(p, batch)}, repeats)
    return {"model": model.name, "seconds": best, "form_over_product": best["pᵀGp form"] / best["p·(G p)"],
            "rel_diff": abs(form - product) / abs(product), "compile_seconds": {
                k: opt.compile_seconds[k] for k in ("hf_gv", "hf_gv_form")}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    if args.quick:
        models = [C.autoencoder(n=50, sizes=(20, 10, 4)), C.rnn(T=10, n=20, nh=8, structural=True)]
    else:
        models = [C.autoencoder(n=4000), C.rnn(T=100, n=400, nh=100, structural=True)]
    rows = []
    for model in models:
        r = measure(model, args.repeats)
        rows.append(r)
        print(f"{r['model']}: pᵀGp form / p·(Gp) {r['form_over_product']:.3f} "
              f"({r['seconds']['pᵀGp form']:.4f} s against {r['seconds']['p·(G p)']:.4f} s), "
              f"relative difference {r['rel_diff']:.1e}", flush=True)
    C.write_result("gv_form_quick" if args.quick else "gv_form", {"repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
