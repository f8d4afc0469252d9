"""A tanh RNN learns the addition problem: Hessian-free with structural damping against Adam.

Hochreiter & Schmidhuber's addition problem: each sequence of about T steps
carries random numbers and two markers; the network must output the sum of the
two marked numbers at the last step. A tanh RNN with 32 units learns it with
HF and structural damping [MS11] until 99% of 2,000 held-out sequences are
within 0.04 of their target (at most ``--hf-updates`` updates); Adam [King15]
then gets the same training seconds from the same initial weights.

Run::

    python examples/rnn.py                # T=30: a few minutes, writes rnn_addition.png
    python examples/rnn.py --T 50 --hf-updates 300

Other tasks, seeds, NAG and the 30-minute benchmark cells: ``bench/rnn_experiment.py``
and ``docs/pathological.md``.

[MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with Hessian-free
optimization", ICML 2011. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic
optimization", ICLR 2015. [Sut13] I. Sutskever et al., "On the importance of
initialization and momentum in deep learning", ICML 2013.
"""

import argparse
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf
import hf.first_order
from hf import datasets

from _plot import save_curves  # examples/ is the script's folder


def build_rnn(n_in, n_hidden, n_out, seed):
    """A tanh RNN over time-major batches (T, sequences, features), with the ESN-style start of [Sut13]."""
    rng = np.random.default_rng(seed)
    W_rec = hf.init.sparse(rng, n_hidden, n_hidden, nonzero=15, spectral_radius=1.1)
    W_out = hf.init.sparse(rng, n_hidden, n_out, nonzero=15, scale=0.1)
    W_in = rng.normal(size=(n_in, n_hidden)) * 0.001  # small input weights: early inputs are not washed out
    values = {"W_in": W_in, "W_rec": W_rec, "b": np.zeros(n_hidden), "W_out": W_out, "c": np.zeros(n_out)}
    params = [pytensor.shared(v, name=k) for k, v in values.items()]
    W_in, W_rec, b, W_out, c = params

    x, y = pt.tensor3("x"), pt.tensor3("y")
    target_mask, mask = pt.matrix("target_mask"), pt.matrix("mask")

    def step(xw_t, h_tm1):
        a_t = xw_t + h_tm1 @ W_rec
        return pt.tanh(a_t), a_t  # the pre-activation too: structural damping needs it

    h0 = pt.zeros((x.shape[1], n_hidden))
    h, a = pytensor.scan(step, sequences=x @ W_in + b, outputs_info=[h0, None], return_updates=False)
    s = h @ W_out + c  # linear output: the Gauss-Newton cut (squared error is convex in s)
    cost = pt.sum(target_mask * 0.5 * pt.sum((s - y) ** 2, axis=-1)) / x.shape[1]  # a mean over sequences
    return {"params": params, "inputs": [x, y, target_mask, mask], "cost": cost, "s": s, "a": a, "mask": mask}


def arrays(task):
    """The graph inputs of a task: inputs, targets, target mask, mask, all (T, sequences, ...)."""
    return [task.inputs, task.dense_targets(), task.target_mask, task.mask]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--T", type=int, default=30, help="sequence length (default 30)")
    p.add_argument("--hidden", type=int, default=32, help="tanh units (default 32)")
    p.add_argument("--train-size", type=int, default=20000, help="training sequences (default 20000)")
    p.add_argument("--hf-updates", type=int, default=150, help="HF update cap (default 150)")
    p.add_argument("--hf-batch", type=int, default=2000, help="HF gradient batch (default 2000; curvature: 100)")
    p.add_argument("--adam-lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="rnn_addition.png", help="PNG of the curves")
    args = p.parse_args(argv)

    train = datasets.addition(args.train_size, args.T, seed=args.seed)
    valid = datasets.addition(2000, args.T, seed=args.seed + 10_000)
    net = build_rnn(train.n_in, args.hidden, train.n_out, args.seed)
    start = [v.get_value() for v in net["params"]]
    predict = hf.function(net["inputs"][:1], net["s"])

    def solved():  # the fraction of held-out sequences within 0.04 of their target
        return valid.score(predict(valid.inputs))

    # HF with structural damping (mu = 0.03) on the hidden pre-activations.
    damping = hf.StructuralDamping(net["a"], "tanh", weight=0.03, mask=net["mask"])
    opt = hf.HFOptimizer(net["cost"], net["s"], net["params"], net["inputs"], structural_damping=damping,
                         damping=0.03, max_cg_iters=300, shrink_warm_start=True, cg_fraction=100 / args.hf_batch)
    data = hf.Dataset(arrays(train), batch_size=args.hf_batch, axis=1, rng=args.seed)  # sequences on axis 1
    curves = {"HF": ([0.0], [solved()])}
    clock = 0.0
    # patience = the update cap: without validation data HF would otherwise stop after 10 updates
    # without a lower training loss, and on addition's plateau that is no reason to stop
    for m, _ in opt.iterate(data, max_updates=args.hf_updates, patience=args.hf_updates, progress=False):
        clock += m["seconds"]
        curves["HF"][0].append(clock)
        curves["HF"][1].append(solved())
        print(f"HF   update {m['update']:3d}  {clock:6.1f} s  loss {m['loss']:.4f}  damping {m['damping']:.3g}  "
              f"CG {m['cg_iters']:3d}  held-out solved {100 * curves['HF'][1][-1]:5.1f}%", flush=True)
        if curves["HF"][1][-1] >= 0.99:
            break
    hf_seconds = clock

    # Adam (Kingma & Ba's Algorithm 1: beta1 = 0.9, beta2 = 0.999) from the same start, as many seconds.
    for v, value in zip(net["params"], start):
        v.set_value(value)
    adam = hf.first_order.build("adam", net["cost"], params=net["params"], inputs=net["inputs"][:3])
    updates = adam.get_updates(learning_rate=args.adam_lr, **hf.first_order.kingma_ba_adam())
    adam_step = hf.function(net["inputs"][:3], net["cost"], updates=list(updates))
    rng, xs = np.random.default_rng(args.seed), arrays(train)[:3]
    curves["Adam"] = ([0.0], [curves["HF"][1][0]])
    clock, epoch = 0.0, 0
    while clock < hf_seconds:
        t, order = time.perf_counter(), rng.permutation(args.train_size)
        for i in range(0, args.train_size, 50):  # mini-batches of 50 sequences
            loss = adam_step(*(a[:, order[i : i + 50]] for a in xs))
            if clock + time.perf_counter() - t >= hf_seconds:
                break
        clock, epoch = clock + time.perf_counter() - t, epoch + 1
        curves["Adam"][0].append(clock)
        curves["Adam"][1].append(solved())
        print(f"Adam epoch  {epoch:3d}  {clock:6.1f} s  loss {float(loss):.4f}  "
              f"held-out solved {100 * curves['Adam'][1][-1]:5.1f}%", flush=True)

    print(f"\naddition, T={args.T}, {args.hidden} tanh units: held-out sequences solved after {hf_seconds:.1f} "
          f"training seconds each")
    for name, (_, success) in curves.items():
        print(f"  {name:5s} {100 * success[-1]:5.1f}%")
    if args.out:
        save_curves(args.out, curves, xlabel="training seconds",
                    ylabel="held-out sequences solved", title=f"tanh RNN, addition T={args.T}", logy=False)
    return curves


if __name__ == "__main__":
    main()
