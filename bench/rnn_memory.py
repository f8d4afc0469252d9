"""How much of the informative input reaches the scored step, at initialization.

A diagnosis of the pathological RNN problems: before any training, change one
informative input of every sequence (the marked value of addition, the X/Y
symbol in one window of temporal order, the first symbol of random permutation
or memorization) and measure how far the hidden state at the first scored step
moves, relative to how far it lies between two different sequences::

    retention = mean_i |h_i(changed) - h_i| / mean_i |h_i - h_pi(i)|

(``pi`` a fixed random pairing of the sequences). Near 1 the network still
"sees" the informative input where it is scored; near 0 the input has been
washed out on the way, and the gradient that would teach the network to use it
is about as small. The weights are ``bench/rnn_experiment.py``'s initialization
(``--init sparse``, [MS11]'s sparse initialization with the recurrent matrix at
spectral radius 1.1 and N(0, 1) input weights, or ``--init esn``, the same
recurrent matrix with dense input weights times 0.001 [Sut13]); the forward pass
is numpy's, so nothing is compiled. A few seconds::

    python bench/rnn_memory.py --T 50 --seeds 1 2 3     # its output: bench/results/rnn_memory.txt

Prints one row per task and initialization: the retention of each informative
position (in time order), the median over the seeds, and the range.

[MS11] Martens & Sutskever, Learning recurrent neural networks with
Hessian-free optimization, ICML 2011.
[Sut13] Sutskever, Martens, Dahl & Hinton, On the importance of initialization
and momentum in deep learning, ICML 2013.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

try:  # imported as bench.rnn_memory (tests, python -m bench.rnn_memory)
    from bench import rnn_experiment as example
    from bench.pathological import SUITE
except ImportError:  # run as python bench/rnn_memory.py: bench/ is the script's folder
    import rnn_experiment as example
    from pathological import SUITE

from hf.datasets import TEMPORAL_ORDER_SYMBOLS

INITS = ("sparse", "esn")


def hidden_states(weights, inputs):
    """Hidden states ``(T, n, n_hidden)`` of ``bench/rnn_experiment.py``'s tanh RNN, in numpy."""
    h = np.zeros((inputs.shape[1], weights["b"].shape[0]))
    out = np.empty(inputs.shape[:2] + h.shape[1:])
    for t in range(inputs.shape[0]):
        h = np.tanh(inputs[t] @ weights["W_in"] + weights["b"] + h @ weights["W_rec"])
        out[t] = h
    return out


def scored_step(task):
    """Per sequence, the first step whose output is scored."""
    return np.argmax(task.target_mask > 0, axis=0)


def _next_symbol(inputs, steps, size):
    """Copy of one-hot ``inputs`` with the symbol at ``steps[i]`` of sequence i
    replaced by the next one of the first ``size`` symbols (cyclically)."""
    changed = inputs.copy()
    cols = np.arange(inputs.shape[1])
    symbol = inputs[steps, cols].argmax(-1)
    if np.any(symbol >= size):
        raise ValueError(f"rnn_memory: a changed step holds symbol {int(symbol.max())}, outside the first {size}")
    changed[steps, cols] = 0.0
    changed[steps, cols, (symbol + 1) % size] = 1.0
    return changed


def perturbations(name, task):
    """``[(label, changed inputs)]``: one informative input changed per entry, in time order."""
    x = task.inputs
    n = x.shape[1]
    out = []
    if name in ("addition", "multiplication", "xor"):
        # channel 1 marks the two operands with 1 (and the first step with -1); channel 0 holds
        # the values in [0, 1]: v -> 1 - v changes every value (xor: flips the bit) but 0.5.
        marked = [np.flatnonzero(x[:, i, 1] == 1) for i in range(n)]
        for k in range(2):
            changed = x.copy()
            for i, steps in enumerate(marked):
                changed[steps[k], i, 0] = 1.0 - changed[steps[k], i, 0]
            out.append((f"operand {k + 1}", changed))
    elif name == "temporal_order":
        x_sym, y_sym = TEMPORAL_ORDER_SYMBOLS.index("X"), TEMPORAL_ORDER_SYMBOLS.index("Y")
        sym = x.argmax(-1)
        for k, (lo, hi) in enumerate(task.params["windows"]):
            steps = np.array([lo + np.flatnonzero(np.isin(sym[lo:hi, i], (x_sym, y_sym)))[0] for i in range(n)])
            changed = x.copy()
            cols = np.arange(n)
            changed[steps, cols, x_sym], changed[steps, cols, y_sym] = x[steps, cols, y_sym], x[steps, cols, x_sym]
            out.append((f"symbol {k + 1}", changed))
    elif name == "random_permutation":
        out.append(("first symbol", _next_symbol(x, np.zeros(n, int), 2)))
    elif name == "memorization":
        size = task.params["alphabet_size"]
        out.append(("first symbol", _next_symbol(x, np.zeros(n, int), size)))
        last = task.params["pattern_length"] - 1
        out.append(("last symbol", _next_symbol(x, np.full(n, last), size)))
    else:
        raise ValueError(f"rnn_memory: no informative inputs known for task {name!r}")
    return out


def retention(weights, task, name, pairing_seed=0):
    """``[(label, retention)]`` of each informative input of ``task`` under ``weights``."""
    n = task.inputs.shape[1]
    steps, cols = scored_step(task), np.arange(n)
    h = hidden_states(weights, task.inputs)[steps, cols]
    pairing = np.random.default_rng(pairing_seed).permutation(n)
    spread = float(np.linalg.norm(h - h[pairing], axis=1).mean())
    if spread == 0.0:
        raise ValueError(f"rnn_memory: every sequence of {name} ends in the same hidden state")
    result = []
    for label, changed in perturbations(name, task):
        moved = hidden_states(weights, changed)[steps, cols]
        result.append((label, float(np.linalg.norm(moved - h, axis=1).mean()) / spread))
    return result


def measure(bench_task, T, seed, init, hidden, n, input_scale=0.001):
    name, bits = SUITE[bench_task]
    task = example.make_task(name, n, T, seed + 10_000, bits=bits)  # the held-out sequences of the cell
    weights = example.initial_weights(task.n_in, hidden, task.n_out, seed, init=init, input_scale=input_scale)
    return retention(weights, task, name)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", choices=sorted(SUITE), default=list(SUITE))
    p.add_argument("--T", type=int, default=50)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--inits", nargs="+", choices=INITS, default=list(INITS))
    p.add_argument("--sequences", type=int, default=300, help="sequences per measurement (default 300)")
    p.add_argument("--input-scales", type=float, nargs="+", default=[0.001],
                   help="esn: the scales of the input weights (default 0.001, the example's)")
    args = p.parse_args(argv)
    if any(not s > 0 for s in args.input_scales):
        p.error(f"--input-scales must be > 0, got {args.input_scales}")
    return args


def main(argv=None):
    args = parse_args(argv)
    print(f"retention at the scored step, T = {args.T}, {args.hidden} hidden units, seeds {args.seeds}: "
          "median over the seeds [min, max]")
    for bench_task in args.tasks:
        for init, scale in [(i, x) for i in args.inits for x in (args.input_scales if i == "esn" else [None])]:
            per_seed = [measure(bench_task, args.T, s, init, args.hidden, args.sequences, scale or 0.001)
                        for s in args.seeds]
            cells = []
            for k, (label, _) in enumerate(per_seed[0]):
                values = [r[k][1] for r in per_seed]
                cells.append(f"{label} {statistics.median(values):.1e} [{min(values):.0e}, {max(values):.0e}]")
            name = init if scale is None else f"{init} {scale:g}"
            print(f"{bench_task:20s} {name:10s}  " + "; ".join(cells))


if __name__ == "__main__":
    main()
