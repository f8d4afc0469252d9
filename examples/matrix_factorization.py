"""downhill's quick start with ``hf.first_order``: sparse matrix factorization.

A data matrix ``y`` (``A × B``, exactly of rank ``K``) is factored as ``u · v``
with an L1 penalty that makes ``u`` sparse and an L2 penalty on ``v``. The
code is downhill 0.4.0's, with ``import hf.first_order as downhill``: one call
of ``downhill.minimize`` with monitors, a batch size (the whole matrix is one
batch, its rows being the examples) and gradient-norm clipping.

Run ``python examples/matrix_factorization.py`` (``--help`` for options); it
logs one line per epoch and prints the reconstruction error before and after.
"""

import argparse
import logging

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf.first_order as downhill


def main(rows=40, cols=20, rank=3, l1=1e-3, l2=1e-3, algo="rmsprop", learning_rate=0.02, momentum=0.0,
         max_updates=600, seed=0, verbose=True, out=None):
    """Factor a random rank-``rank`` matrix; return ``(initial_err, final_err, train_monitors, arrays)``.

    ``err`` is the mean squared reconstruction error; with exactly low-rank data
    and small penalties its optimum is near 0. ``arrays`` holds the data ``y``,
    the starting factors ``u0``, ``v0`` and the final (best) factors ``u``, ``v``.
    """
    floatx = pytensor.config.floatX
    rng = np.random.default_rng(seed)

    def rand(a, b, scale=1.0):
        return (scale * rng.standard_normal((a, b))).astype(floatx)

    # Parameters of the factorization, and the data they should reproduce.
    u = pytensor.shared(rand(rows, rank, 0.1), name="u")
    v = pytensor.shared(rand(rank, cols, 0.1), name="v")
    z = pt.matrix("z", dtype=floatx)
    err = pt.sqr(z - pt.dot(u, v))
    loss = err.mean() + l1 * abs(u).mean() + l2 * (v * v).mean()
    y = np.dot(rand(rows, rank), rand(rank, cols)).astype(floatx)
    u0, v0 = u.get_value(), v.get_value()

    # Quantities to watch while optimizing.
    monitors = (
        ("err", err.mean()),
        ("|u|<0.1", (abs(u) < 0.1).mean()),
        ("|v|<0.1", (abs(v) < 0.1).mean()),
    )
    initial = float(np.mean((y - u.get_value() @ v.get_value()) ** 2))
    curve = []  # hf's additions to the quick start: a callback to draw the curve, and
    extra = downhill.kingma_ba_adam() if algo == "adam" else {}  # Kingma & Ba's Adam, not downhill's defaults
    train, _ = downhill.minimize(
        loss=loss,
        train=[y],
        algo=algo,
        batch_size=rows,  # all rows in one batch: u has one row per data row
        max_gradient_norm=1,
        learning_rate=learning_rate,
        momentum=momentum,
        monitors=monitors,
        monitor_gradients=True,
        max_updates=max_updates,
        validate_every=10,
        patience=5,
        callback=lambda tm, vm: curve.append((tm["update"], tm["err"])),
        **extra,
    )
    final = float(np.mean((y - u.get_value() @ v.get_value()) ** 2))
    if verbose:
        print(f"{algo}: reconstruction error {initial:.4f} -> {final:.6f} "
              f"after {train.get('update', 0)} epochs; "
              f"{train.get('|u|<0.1', float('nan')):.0%} of u near zero")
    if out:
        from _plot import save_curves

        save_curves(out, {algo: tuple(zip(*curve))}, xlabel="epoch", ylabel="mean squared reconstruction error",
                    title="matrix factorization (downhill's quick start)")
    return initial, final, train, {"y": y, "u0": u0, "v0": v0, "u": u.get_value(), "v": v.get_value()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algo", default="rmsprop", help="sgd, nag, rprop, adagrad, rmsprop, adadelta, esgd, adam")
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--max-updates", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="matrix_factorization.png", help="PNG of the curve ('' for none)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pytensor").setLevel(logging.WARNING)
    main(algo=args.algo, learning_rate=args.learning_rate, momentum=args.momentum, max_updates=args.max_updates,
         seed=args.seed, out=args.out)
