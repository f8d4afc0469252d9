"""The hardware reference: a hand-written numpy Gauss-Newton product for the autoencoder.

The deep autoencoder of bench/_common.py (784-1000-500-250-30-250-500-1000-784,
1,000 rows, logistic hidden units, linear code layer, sigmoid cross-entropy at
the output pre-sigmoid ``s``), written out in numpy with its forward pass cached
once, as hf's ``forward_cache=True`` does:

* cache: the layers' inputs ``H_i``, the hidden units' derivatives
  ``σ'(Z_i) = H_{i+1}(1 - H_{i+1})`` and the loss Hessian ``p(1-p)/n`` with
  ``p = σ(s)``;
* ``J v`` by forward mode: ``R(Z_i) = R(H_i) W_i + H_i V_{W_i} + V_{b_i}``,
  ``R(H_{i+1}) = σ'(Z_i) ⊙ R(Z_i)`` (the first layer has ``R(H_0) = 0``);
* ``H_L J v = p(1-p)/n ⊙ R(s)``;
* ``Jᵀ(·)`` by backprop: ``∂W_i = H_iᵀ δ_i``, ``∂b_i = Σ δ_i``,
  ``δ_{i-1} = (δ_i W_iᵀ) ⊙ σ'(Z_{i-1})`` (no ``δ`` below the first layer).

It is checked equal to hf's product (``forward_cache=True``, both Jv paths) to
rounding, and timed in one run, interleaved, against hf's cached product, hf's
gradient and a hand-written numpy gradient (forward and backprop, the same
matrix products a gradient needs). Target: hf's Gv within 1.2x of numpy's,
judged on the median over rounds of the paired ratio (bench/_common.paired_ratio).

Run (one core, one BLAS thread; writes bench/results/numpy_gv.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/numpy_gv.py
    python bench/numpy_gv.py --quick
"""

from __future__ import annotations

import argparse

import numpy as np

import _common as C  # noqa: E402  (bench/ is the script's folder)


def _sigmoid(z):
    # Stable for both signs without a branch per element.
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class NumpyAutoencoder:
    """Loss, gradient and cached Gauss-Newton products of the autoencoder in numpy."""

    def __init__(self, model, opt):
        self.Ws = [p.get_value() for p in opt.params[0::2]]
        self.bs = [p.get_value() for p in opt.params[1::2]]
        self.code = model.extra["code"]
        self.n_layers = len(self.Ws)
        assert model.extra["hidden"] == "logistic"

    def _act(self, i):
        return i < self.n_layers - 1 and i != self.code

    def _layers(self, X):
        """Layer inputs, hidden derivatives (None for linear layers) and the output ``s``."""
        H, D = [X], []
        h = X
        for i, (W, b) in enumerate(zip(self.Ws, self.bs)):
            z = h @ W
            z += b
            if i == self.n_layers - 1:
                s = z
            elif self._act(i):
                h = _sigmoid(z)
                D.append(h * (1.0 - h))
                H.append(h)
            else:
                h = z
                D.append(None)
                H.append(h)
        return H, D, s

    def forward(self, X):
        """The cache: layer inputs, hidden derivatives (None for linear layers), loss Hessian."""
        H, D, s = self._layers(X)
        p = _sigmoid(s)
        hl = p * (1.0 - p) / X.shape[0]
        return H, D, hl

    def gv(self, cache, v):
        H, D, hl = cache
        Vw, Vb = self._split(v)
        r = None
        for i in range(self.n_layers):
            rz = H[i] @ Vw[i]
            if r is not None:
                rz += r @ self.Ws[i]
            rz += Vb[i]
            r = rz if i == self.n_layers - 1 or D[i] is None else rz * D[i]
        delta = r * hl
        return self._backprop(H, D, delta)

    def loss_grad(self, X):
        H, D, s = self._layers(X)
        n = X.shape[0]
        loss = float(np.sum(np.logaddexp(0.0, s) - X * s)) / n
        delta = (_sigmoid(s) - X) / n
        return loss, self._backprop(H, D, delta)

    def _backprop(self, H, D, delta):
        gW, gb = [None] * self.n_layers, [None] * self.n_layers
        for i in reversed(range(self.n_layers)):
            gW[i] = H[i].T @ delta
            gb[i] = delta.sum(axis=0)
            if i > 0:
                delta = delta @ self.Ws[i].T
                if D[i - 1] is not None:
                    delta *= D[i - 1]
        return np.concatenate([a.ravel() for pair in zip(gW, gb) for a in pair])

    def _split(self, v):
        Vw, Vb, k = [], [], 0
        for W, b in zip(self.Ws, self.bs):
            Vw.append(v[k:k + W.size].reshape(W.shape))
            k += W.size
            Vb.append(v[k:k + b.size])
            k += b.size
        return Vw, Vb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 12, quick 3)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 12)
    model = C.autoencoder(n=200, sizes=(64, 48, 32, 8, 32, 48, 64)) if args.quick else C.autoencoder(n=1000)
    batch = model.batch()
    X = batch.arrays[0]
    opts = {jv: model.optimizer(jv=jv) for jv in ("pullback", "op")}
    opt = opts["pullback"]
    ref = NumpyAutoencoder(model, opt)
    v = np.random.default_rng(1).normal(size=opt.n_params)

    products = {jv: o.reduce.cached(o._f_forward, o._f_gv_cached, batch) for jv, o in opts.items()}
    cache = ref.forward(X)
    g_np = ref.gv(cache, v)
    checks = {f"hf Gv cached ({jv}) vs numpy": C.rel_err(p(v)[0], g_np) for jv, p in products.items()}
    loss_hf, _, grad_hf = opt.loss_grad(batch)
    loss_np, grad_np = ref.loss_grad(X)
    checks["hf gradient vs numpy"] = C.rel_err(grad_hf, grad_np)
    checks["hf loss vs numpy"] = abs(loss_hf - loss_np) / abs(loss_np)

    fns = {
        "numpy Gv (cached forward)": lambda: ref.gv(cache, v),
        "hf Gv cached (pullback)": lambda: products["pullback"](v),
        "hf Gv cached (op)": lambda: products["op"](v),
        "numpy forward (cache)": lambda: ref.forward(X),
        "hf forward (pullback)": lambda: opt._f_forward(X),
        "numpy loss+grad": lambda: ref.loss_grad(X),
        "hf loss+grad": lambda: opt.loss_grad(batch),
    }
    times = C.interleaved(fns, repeats)
    best = {k: min(t) for k, t in times.items()}
    paired = {
        "hf Gv cached (pullback) / numpy Gv": C.paired_ratio(times, "hf Gv cached (pullback)", "numpy Gv (cached forward)"),
        "hf Gv cached (op) / numpy Gv": C.paired_ratio(times, "hf Gv cached (op)", "numpy Gv (cached forward)"),
        "hf grad / numpy grad": C.paired_ratio(times, "hf loss+grad", "numpy loss+grad"),
        "numpy Gv / numpy grad": C.paired_ratio(times, "numpy Gv (cached forward)", "numpy loss+grad"),
        "hf Gv cached (pullback) / hf grad": C.paired_ratio(times, "hf Gv cached (pullback)", "hf loss+grad"),
    }
    ratios = {
        "hf Gv cached (pullback) / numpy Gv": best["hf Gv cached (pullback)"] / best["numpy Gv (cached forward)"],
        "hf Gv cached (op) / numpy Gv": best["hf Gv cached (op)"] / best["numpy Gv (cached forward)"],
        "hf forward (pullback) / numpy forward": best["hf forward (pullback)"] / best["numpy forward (cache)"],
        "hf grad / numpy grad": best["hf loss+grad"] / best["numpy loss+grad"],
        "numpy Gv / numpy grad": best["numpy Gv (cached forward)"] / best["numpy loss+grad"],
        "hf Gv cached (pullback) / hf grad": best["hf Gv cached (pullback)"] / best["hf loss+grad"],
    }
    print(f"{model.name} ({opt.n_params:,} parameters), min of {repeats} interleaved rounds")
    for k, t in best.items():
        print(f"  {k:<28} {t * 1e3:9.2f} ms")
    print(f"  {'ratio':<40} {'min/min':>7}  paired median")
    for k, r in ratios.items():
        print(f"  {k:<40} {r:7.3f}  {paired[k]:7.3f}" if k in paired else f"  {k:<40} {r:7.3f}")
    for k, e in checks.items():
        print(f"  rel. difference {k}: {e:.1e}")
    met = paired["hf Gv cached (pullback) / numpy Gv"] <= 1.2
    print(f"target hf Gv within 1.2x of numpy's: {'met' if met else 'MISSED'}")
    C.write_result("numpy_gv_quick" if args.quick else "numpy_gv", {
        "model": model.name, "n_params": opt.n_params, "repeats": repeats, "seconds": best, "all_seconds": times, "ratios": ratios, "paired_ratios": paired,
        "rel_differences": checks, "cache_bytes_numpy": int(sum(a.nbytes for a in cache[0][1:]) +
                                                            sum(d.nbytes for d in cache[1] if d is not None) + cache[2].nbytes),
        "cache_bytes_hf": products["pullback"].nbytes, "target_met": met})
    return ratios


if __name__ == "__main__":
    main()
