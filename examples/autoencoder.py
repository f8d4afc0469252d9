"""Deep autoencoder on the digits images: Hessian-free vs Adam on the same budget.

A small version of the flagship experiment of [Mart10]: a deep autoencoder with
logistic hidden units, a narrow code layer and a sigmoid output trained with
cross-entropy, on scikit-learn's bundled 8x8 digits. HF and Adam start from the
same sparse initialization and get the same wall-clock budget.

Run::

    python examples/autoencoder.py              # defaults, about two minutes
    python examples/autoencoder.py --budget 30 --layers 64,32,8,32,64

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf
import hf.first_order
from hf import function
from hf.datasets import load_digits

from _plot import save_curves  # noqa: E402  (examples/ is the script's directory)


def build(layers, seed):
    """Autoencoder graph: returns cost, the cut variable s, params, input and a reconstruction error."""
    rng = np.random.default_rng(seed)
    x = pt.matrix("x")
    params, h = [], x
    code = len(layers) // 2
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        W = pytensor.shared(hf.init.sparse(rng, a, b), name=f"W{i}")
        c = pytensor.shared(np.zeros(b), name=f"b{i}")
        params += [W, c]
        h = h @ W + c
        if i + 1 == code:
            continue  # linear code layer, as in [Mart10]'s autoencoders
        if i < len(layers) - 2:
            h = pt.sigmoid(h)
    s = h  # pre-sigmoid output: cross-entropy is convex in s
    cost = pt.mean(pt.sum(pt.softplus(s) - x * s, axis=1))
    error = pt.mean(pt.sum((pt.sigmoid(s) - x) ** 2, axis=1))  # squared error per image
    return cost, s, params, x, error


def run_hf(cost, s, params, x, error, train, valid, budget):
    evaluate = function([x], error)
    opt = hf.HFOptimizer(cost, s, params, [x], monitors={"error": error}, damping=1.0, max_cg_iters=100)
    curve, t0 = [(0.0, float(evaluate(valid)))], time.perf_counter()
    for tm, vm in opt.iterate([train], max_updates=10_000, patience=10**9):
        curve.append((time.perf_counter() - t0, float(evaluate(valid))))
        if curve[-1][0] > budget:
            break
    return curve, opt.updates


def run_adam(cost, params, x, error, train, valid, budget, learning_rate):
    evaluate = function([x], error)
    opt = hf.first_order.build("adam", cost, params=params, inputs=[x])
    data = hf.Dataset([train], name="train", batch_size=100, rng=0)
    curve, t0, epochs = [(0.0, float(evaluate(valid)))], time.perf_counter(), 0
    # Kingma & Ba's Adam (beta1 0.9, beta2 0.999, their bias correction), not downhill's defaults
    for tm, vm in opt.iterate(data, learning_rate=learning_rate, max_updates=100_000, patience=10**9,
                              **hf.first_order.kingma_ba_adam()):
        epochs += 1
        curve.append((time.perf_counter() - t0, float(evaluate(valid))))
        if curve[-1][0] > budget:
            break
    return curve, epochs


def main(argv=None):
    """Train both optimizers; return ``{'hf': r, 'adam': r, 'data': {'train', 'valid'}}``.

    Each ``r`` has ``curve`` (``(seconds, held-out error)`` pairs), ``steps``,
    ``initial`` and ``final`` (the first and last held-out errors),
    ``initial_params`` and ``params`` (``{name: array}`` at the start and at the
    last evaluation).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default="64,48,24,8,24,48,64", help="layer sizes, comma separated")
    parser.add_argument("--budget", type=float, default=45.0, help="seconds per optimizer")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="autoencoder.png", help="PNG of the curves ('' for none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    layers = [int(v) for v in args.layers.split(",")]

    images = load_digits(seed=args.seed)
    train, valid = images[:1500], images[1500:]
    results = {}
    for name in ("hf", "adam"):
        cost, s, params, x, error = build(layers, args.seed)  # same initialization for both
        initial_params = {p.name: p.get_value() for p in params}
        if name == "hf":
            curve, steps = run_hf(cost, s, params, x, error, train, valid, args.budget)
        else:
            curve, steps = run_adam(cost, params, x, error, train, valid, args.budget, args.lr)
        results[name] = {"curve": curve, "steps": steps, "final": curve[-1][1], "initial": curve[0][1],
                         # the loops end with break: the parameters of the last evaluation
                         "initial_params": initial_params, "params": {p.name: p.get_value() for p in params}}

    print(f"\n{'optimizer':<10}{'updates':>9}{'seconds':>9}{'valid error (initial -> final)':>34}")
    for name, r in results.items():
        print(f"{name:<10}{r['steps']:>9}{r['curve'][-1][0]:>9.1f}{r['initial']:>20.3f} -> {r['final']:.3f}")
    if args.out:
        save_curves(
            args.out,
            {("HF" if n == "hf" else "Adam"): tuple(zip(*r["curve"])) for n, r in results.items()},
            xlabel="seconds", ylabel="held-out squared error per image",
            title=f"digits autoencoder {args.layers}",
        )
    results["data"] = {"train": train, "valid": valid}
    return results


if __name__ == "__main__":
    main()
