"""Cost of a Gauss-Newton product relative to a gradient, measured in one run.

Times ``HFOptimizer.gv`` against ``HFOptimizer.loss_grad`` on the same batch, for
an MLP and a scan RNN, and prints the ratio. Counting matrix products, a
gradient costs about 3 units per layer (forward 1, backward 2) and a
Gauss-Newton product about 5 when it recomputes the forward pass, as hf's does
in every call, or 4 with the forward pass cached: about 4/3 is the floor
([Schr02]; [Mart10] for its use in Hessian-free optimization). docs/design.md
has the derivation.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (structural damping, the third case).
.. [Schr02] N. Schraudolph, "Fast curvature matrix-vector products for
   second-order gradient descent", Neural Computation 14(7), 2002.

Run::

    python bench/gv_cost.py            # MLP 784-500-500-10 batch 1000, RNN T=100 nh=100 batch 100
    python bench/gv_cost.py --quick    # smaller sizes
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf


def mlp(sizes, n, rng):
    x, y = pt.matrix("x"), pt.ivector("y")
    params, h = [], x
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = pytensor.shared(rng.normal(size=(a, b)) / np.sqrt(a), name=f"W{i}")
        c = pytensor.shared(np.zeros(b), name=f"b{i}")
        params += [W, c]
        h = h @ W + c
        if i < len(sizes) - 2:
            h = pt.tanh(h)
    s = h
    cost = -pt.mean(pt.log(pt.special.softmax(s, axis=1))[pt.arange(y.shape[0]), y])
    data = [rng.normal(size=(n, sizes[0])), rng.integers(0, sizes[-1], size=n).astype("int32")]
    return cost, s, params, [x, y], data, (0, 0), {}


def rnn(T, n_in, nh, n_out, n, rng, structural=False):
    x, y = pt.tensor3("x"), pt.tensor3("y")
    W = pytensor.shared(rng.normal(size=(n_in, nh)) * 0.3, name="W")
    U = pytensor.shared(rng.normal(size=(nh, nh)) / np.sqrt(nh), name="U")
    b = pytensor.shared(np.zeros(nh), name="b")
    V = pytensor.shared(rng.normal(size=(nh, n_out)) * 0.3, name="V")
    c = pytensor.shared(np.zeros(n_out), name="c")

    def step(x_t, h_tm1):
        a_t = x_t @ W + h_tm1 @ U + b
        return pt.tanh(a_t), a_t

    h, a = pytensor.scan(step, sequences=x, outputs_info=[pt.zeros((x.shape[1], nh)), None],
                         return_updates=False)
    s = h @ V + c
    cost = 0.5 * pt.sum((s - y) ** 2) / pt.cast(x.shape[1], "float64")
    data = [rng.normal(size=(T, n, n_in)), rng.normal(size=(T, n, n_out))]
    extra = {"structural_damping": hf.StructuralDamping(a, "tanh", weight=0.03)} if structural else {}
    return cost, s, [W, U, b, V, c], [x, y], data, (1, 1), extra


def best_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(name, model, repeats):
    cost, s, params, inputs, data, axes, options = model
    opt = hf.HFOptimizer(cost, s, params, inputs, **options)
    batch = hf.Batch(tuple(data), axes)
    v = np.random.default_rng(0).normal(size=opt.n_params)
    coef = (0.5,) if options else ()
    # Both through the public calls, one compiled-function call each (no chunking).
    grad = lambda: opt.loss_grad(batch)  # noqa: E731
    gv = lambda: opt.gv(v, batch, *coef)  # noqa: E731
    grad(), gv()  # warm up
    # Interleave to share the machine's noise between the two.
    tg = min(best_time(grad, 1) for _ in range(repeats))
    tv = min(best_time(gv, 1) for _ in range(repeats))
    ratio = tv / tg
    print(f"{name:<34} grad {tg * 1e3:8.2f} ms   Gv {tv * 1e3:8.2f} ms   Gv/grad {ratio:5.2f}")
    return ratio


def matmul_vs_numpy(n=500, repeats=20):
    """PyTensor's compiled matrix product against numpy's, same operands."""
    a, b = pt.matrix("a"), pt.matrix("b")
    f = hf.function([a, b], a @ b)
    A, B = np.random.default_rng(0).random((2, n, n))
    f(A, B)
    tf = min(best_time(lambda: f(A, B), 1) for _ in range(repeats))
    tn = min(best_time(lambda: A @ B, 1) for _ in range(repeats))
    print(f"{n}x{n} matmul: pytensor/numpy time {tf / tn:.2f}")
    return tf / tn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.quick:
        cases = [("MLP 64-64-64-10, batch 200", mlp([64, 64, 64, 10], 200, rng)),
                 ("RNN T=20 nh=32, batch 32", rnn(20, 2, 32, 1, 32, rng)),
                 ("RNN T=20 nh=32 + structural damping", rnn(20, 2, 32, 1, 32, rng, structural=True))]
    else:
        cases = [("MLP 784-500-500-10, batch 1000", mlp([784, 500, 500, 10], 1000, rng)),
                 ("RNN T=100 nh=100, batch 100", rnn(100, 2, 100, 1, 100, rng)),
                 ("RNN T=100 nh=100 + structural damping", rnn(100, 2, 100, 1, 100, rng, structural=True))]
    print(f"pytensor {pytensor.__version__}, floor with a cached forward pass ~1.33")
    matmul_vs_numpy()
    return {name: measure(name, model, args.repeats) for name, model in cases}


if __name__ == "__main__":
    main()
