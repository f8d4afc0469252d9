"""theano-hf's two examples, written against its API as served by ``hf.theano_hf``.

* ``example_NN``: XOR learned by a 2-50-40-30-1 sigmoid network; each item is a
  mini-batch of random bit pairs (the graph averages the cross-entropy over its
  rows), with Martens' preconditioner.
* ``example_RNN``: a tanh RNN reads a sequence of random bits and must output
  the first one at the last step (1-bit memorization over ``T`` steps); each item
  is one sequence, and structural damping is applied to ``h = (tanh(a) + 1)/2``
  with its Gauss-Newton matrix taken at the pre-activations ``a``.

theano-hf's README promises the memorization over 100 steps with no validation
error ("at least one nice solution" in about 8 hours on 4 cores). The sizes are
arguments, so the tests run both examples small and
``bench/theano_hf_examples.py`` runs them full size. Like a theano-hf script,
they draw everything from numpy's global random state, seeded once.

Run directly: ``python tests/theano_hf_examples.py nn --items 400`` (``--help``).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor
import pytensor.tensor as pt

from hf.theano_hf import SequenceDataset, hf_optimizer

FLOAT = pytensor.config.floatX


def _shared(values):
    return pytensor.shared(np.asarray(values, dtype=FLOAT))


# --------------------------------------------------------------------------- XOR


def sigmoid_network(sizes):
    """Sigmoid layers ``sizes[0] -> ... -> sizes[-1]`` with cross-entropy on the output.

    Returns theano-hf's quadruple ``(p, inputs, s, costs)``: ``s`` is the output
    layer's pre-sigmoid activation, ``costs`` the mean cross-entropy and the
    fraction of wrong rounded outputs.
    """
    x, t = pt.matrix("x", dtype=FLOAT), pt.matrix("t", dtype=FLOAT)
    params, y, s = [], x, None
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        scale = 10.0 / np.sqrt(n_in + n_out)  # large uniform weights, as in theano-hf's example
        W = _shared(scale * np.random.uniform(-1, 1, size=(n_in, n_out)))
        b = _shared(np.zeros(n_out))
        params += [W, b]
        s = pt.dot(y, W) + b
        y = pt.sigmoid(s)
    cost = pt.mean(-t * pt.log(y) - (1 - t) * pt.log(1 - y))
    error = pt.mean(pt.neq(pt.round(y), t))
    return params, [x, t], s, [cost, error]


def xor_items(n_items, rows):
    """``[xs, ts]``: ``n_items`` mini-batches of ``rows`` random bit pairs and their XOR."""
    xs, ts = [], []
    for _ in range(n_items):
        bits = np.random.randint(0, 2, size=(rows, 2))
        xs.append(bits.astype(FLOAT))
        ts.append((bits[:, :1] ^ bits[:, 1:]).astype(FLOAT))
    return [xs, ts]


def network_outputs(params, x):
    """The sigmoid network's outputs in numpy (an independent check of a trained model)."""
    y = np.asarray(x, dtype=np.float64)
    for W, b in zip(params[::2], params[1::2]):
        y = 1.0 / (1.0 + np.exp(-(y @ W + b)))
    return y


def example_NN(sizes=(2, 50, 40, 30, 1), n_items=50000, rows=50, gradient_items=10000, cg_items=5000,
               valid_items=5000, num_updates=100, seed=1, **train):
    """Train XOR with theano-hf's settings (λ₀ = 1, preconditioner); return the outcome.

    ``train`` goes to ``hf_optimizer.train`` (``save_progress``, ``patience``, ...).
    Returns a dict: ``best`` (the parameters ``train`` returned), ``optimizer``,
    and ``truth_table`` (the rounded outputs for the inputs 00, 01, 10, 11,
    computed in numpy).
    """
    np.random.seed(seed)
    p, inputs, s, costs = sigmoid_network(sizes)
    data = xor_items(n_items, rows)
    n_train = n_items * 3 // 4
    train_data = [x[:n_train] for x in data]
    valid_data = [x[n_train:] for x in data]
    gradient_dataset = SequenceDataset(train_data, batch_size=None, number_batches=gradient_items)
    cg_dataset = SequenceDataset(train_data, batch_size=None, number_batches=cg_items)
    valid_dataset = SequenceDataset(valid_data, batch_size=None, number_batches=valid_items)
    settings = dict(initial_lambda=1.0, preconditioner=True, validation=valid_dataset, num_updates=num_updates)
    settings.update(train)
    optimizer = hf_optimizer(p, inputs, s, costs)
    best = optimizer.train(gradient_dataset, cg_dataset, **settings)
    table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    return {"best": best, "optimizer": optimizer, "truth_table": np.round(network_outputs(best, table)).ravel()}


# --------------------------------------------------------------------------- memorization


def memorization_rnn(nh):
    """A tanh RNN with one input and a sigmoid output read at the last step.

    Returns theano-hf's ``(p, inputs, s, costs, h, ha)``: the loss is the
    cross-entropy between the output and the sequence's first bit, ``h`` the
    hidden states recomputed from the pre-activations ``ha`` outside the scan (so
    that ``h`` is a function of ``ha``).
    """
    Wx = _shared(0.2 * np.random.uniform(-1.0, 1.0, (1, nh)))
    Wh = _shared(0.2 * np.random.uniform(-1.0, 1.0, (nh, nh)))
    Wy = _shared(0.2 * np.random.uniform(-1.0, 1.0, (nh, 1)))
    bh, by, h0 = _shared(np.zeros(nh)), _shared(np.zeros(1)), _shared(np.zeros(nh))
    params = [Wx, Wh, Wy, bh, by, h0]
    x = pt.matrix("x", dtype=FLOAT)

    def step(x_t, h_prev):
        a_t = pt.dot(x_t, Wx) + pt.dot(h_prev, Wh) + bh
        h_t = pt.tanh(a_t)
        return a_t, h_t, pt.dot(h_t, Wy) + by

    ha, _, out = pytensor.scan(step, sequences=x, outputs_info=[None, h0, None], return_updates=False)
    h = pt.tanh(ha)
    target = x[0, 0]
    s = out[-1, 0]
    y = pt.sigmoid(s)
    loss = -target * pt.log(y + 1e-14) - (1 - target) * pt.log(1 - y + 1e-14)
    error = pt.neq(pt.round(y), target)
    return params, [x], s, [loss, error], h, ha


def memorization_items(n_sequences, T):
    """``[xs]``: random bit sequences of shape ``(T, 1)``; the target is each one's first bit."""
    return [[np.random.randint(2, size=(T, 1)).astype(FLOAT) for _ in range(n_sequences)]]


def rnn_outputs(params, xs):
    """The RNN's last-step outputs for sequences ``xs`` in numpy (an independent check)."""
    Wx, Wh, Wy, bh, by, h0 = [np.asarray(v, dtype=np.float64) for v in params]
    out = []
    for x in xs:
        h = h0
        for x_t in np.asarray(x, dtype=np.float64):
            h = np.tanh(x_t @ Wx + h @ Wh + bh)
        out.append(1.0 / (1.0 + np.exp(-(h @ Wy + by)[0])))
    return np.array(out)


def example_RNN(T=100, nh=100, n_sequences=100000, gradient_items=5000, cg_items=1000, valid_items=1000,
                num_updates=100, seed=1, **train):
    """1-bit memorization over ``T`` steps with structural damping (λ₀ = 0.5, μ = 1).

    Returns a dict: ``best``, ``optimizer`` and ``valid_error`` (the fraction of
    validation sequences whose rounded output, computed in numpy from ``best``,
    is not their first bit).
    """
    np.random.seed(seed)
    p, inputs, s, costs, h, ha = memorization_rnn(nh)
    (xs,) = memorization_items(n_sequences, T)
    n_valid = min(valid_items, n_sequences // 10)
    train_data, valid_data = [xs[:-n_valid]], [xs[-n_valid:]]
    gradient_dataset = SequenceDataset(train_data, batch_size=None, number_batches=gradient_items)
    cg_dataset = SequenceDataset(train_data, batch_size=None, number_batches=cg_items)
    valid_dataset = SequenceDataset(valid_data, batch_size=None, number_batches=n_valid)
    settings = dict(initial_lambda=0.5, mu=1.0, preconditioner=False, validation=valid_dataset,
                    num_updates=num_updates)
    settings.update(train)
    optimizer = hf_optimizer(p, inputs, s, costs, 0.5 * (h + 1), ha)
    best = optimizer.train(gradient_dataset, cg_dataset, **settings)
    targets = np.array([x[0, 0] for x in valid_data[0]])
    error = float(np.mean(np.round(rnn_outputs(best, valid_data[0])) != targets))
    return {"best": best, "optimizer": optimizer, "valid_error": error}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example", choices=["nn", "rnn"])
    parser.add_argument("--items", type=int, help="items (nn) or sequences (rnn) in the data")
    parser.add_argument("--T", type=int, default=100, help="rnn: sequence length")
    parser.add_argument("--nh", type=int, default=100, help="rnn: hidden units")
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the items per batch by this")
    args = parser.parse_args(argv)
    k = lambda n: max(1, int(n * args.scale))  # noqa: E731
    if args.example == "nn":
        out = example_NN(n_items=args.items or 50000, gradient_items=k(10000), cg_items=k(5000),
                         valid_items=k(5000), num_updates=args.updates)
        print("XOR truth table (rounded outputs for 00, 01, 10, 11):", out["truth_table"])
    else:
        out = example_RNN(T=args.T, nh=args.nh, n_sequences=args.items or 100000, gradient_items=k(5000),
                          cg_items=k(1000), valid_items=k(1000), num_updates=args.updates)
        print("memorization: validation error", out["valid_error"])


if __name__ == "__main__":
    main()
