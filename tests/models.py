"""Tiny seeded models shared by the tests: each returns graph, data and a numpy forward."""

from __future__ import annotations

import types

import numpy as np
import pytensor
import pytensor.tensor as pt


def shared(rng, shape, name, scale=0.5, dtype="float64"):
    return pytensor.shared(np.asarray(rng.normal(size=shape) * scale, dtype=dtype), name=name)


def mlp(loss="softmax", n_in=3, n_hidden=4, n_out=3, n=5, seed=0, dtype="float64"):
    """One tanh hidden layer; ``s`` is the output layer's pre-nonlinearity."""
    rng = np.random.default_rng(seed)
    W1 = shared(rng, (n_in, n_hidden), "W1", dtype=dtype)
    b1 = shared(rng, (n_hidden,), "b1", dtype=dtype)
    W2 = shared(rng, (n_hidden, n_out), "W2", dtype=dtype)
    b2 = shared(rng, (n_out,), "b2", dtype=dtype)
    x = pt.matrix("x", dtype=dtype)
    s = pt.tanh(x @ W1 + b1) @ W2 + b2
    X = rng.normal(size=(n, n_in)).astype(dtype)
    if loss == "softmax":
        y = pt.ivector("y")
        cost = -pt.mean(pt.log(pt.special.softmax(s, axis=1))[pt.arange(y.shape[0]), y])
        Y = rng.integers(0, n_out, size=n).astype("int32")
    elif loss == "logistic":
        y = pt.matrix("y", dtype=dtype)
        p = pt.sigmoid(s)
        cost = -pt.mean(pt.sum(y * pt.log(p) + (1 - y) * pt.log(1 - p), axis=1))
        Y = (rng.random(size=(n, n_out)) < 0.5).astype(dtype)
    elif loss == "squared":
        y = pt.matrix("y", dtype=dtype)
        cost = 0.5 * pt.mean(pt.sum((s - y) ** 2, axis=1))
        Y = rng.normal(size=(n, n_out)).astype(dtype)
    else:
        raise ValueError(loss)
    return types.SimpleNamespace(
        cost=cost, s=s, params=[W1, b1, W2, b2], inputs=[x, y], data=[X, Y], loss=loss
    )


def rnn(T=4, n_in=2, n_hidden=3, n_out=2, n=3, seed=0, masked=False, dtype="float64"):
    """A tanh RNN over time-major input; ``s`` is the linear output at every step.

    Returns the hidden pre-activations ``a`` too (for structural damping).
    """
    rng = np.random.default_rng(seed)
    W = shared(rng, (n_in, n_hidden), "W", dtype=dtype)
    U = shared(rng, (n_hidden, n_hidden), "U", scale=0.4, dtype=dtype)
    b = shared(rng, (n_hidden,), "b", dtype=dtype)
    V = shared(rng, (n_hidden, n_out), "V", dtype=dtype)
    c = shared(rng, (n_out,), "c", dtype=dtype)
    x = pt.tensor3("x", dtype=dtype)
    y = pt.tensor3("y", dtype=dtype)
    mask = pt.matrix("mask", dtype=dtype)

    def step(x_t, h_tm1):
        a_t = x_t @ W + h_tm1 @ U + b
        return pt.tanh(a_t), a_t

    h0 = pt.zeros((x.shape[1], n_hidden), dtype=dtype)
    h, a = pytensor.scan(step, sequences=x, outputs_info=[h0, None], return_updates=False)
    s = h @ V + c
    err = pt.sum((s - y) ** 2, axis=2)
    if masked:
        err = err * mask
    cost = 0.5 * pt.sum(err) / pt.cast(x.shape[1], dtype)
    X = rng.normal(size=(T, n, n_in)).astype(dtype)
    Y = rng.normal(size=(T, n, n_out)).astype(dtype)
    inputs, data = [x, y], [X, Y]
    if masked:
        M = np.ones((T, n), dtype=dtype)
        inputs.append(mask)
        data.append(M)
    return types.SimpleNamespace(
        cost=cost, s=s, a=a, params=[W, U, b, V, c], inputs=inputs, data=data, mask=mask, loss="squared_sum"
    )


def flat_values(params):
    return np.concatenate([p.get_value().ravel() for p in params]).astype(np.float64)


def s_at_theta(model):
    """Compiled ``s`` at a flat parameter vector (shared values untouched)."""
    from hf._compile import function
    from hf.curvature import unflatten

    theta = pt.vector("theta", dtype="float64")
    f = function(
        model.inputs + [theta],
        model.s,
        givens=list(zip(model.params, unflatten(theta, model.params))),
        on_unused_input="ignore",
    )
    return lambda th: np.asarray(f(*model.data, th), dtype=np.float64)


def jacobian_fd(fun, theta, eps=1e-6):
    """Central finite-difference Jacobian of ``fun`` (flattened output) at ``theta``."""
    cols = []
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = eps
        cols.append((fun(theta + e) - fun(theta - e)).ravel() / (2 * eps))
    return np.stack(cols, axis=1)


def slow_saves():
    """Make every checkpoint save print ``SAVING`` and take 0.5 s more, so that a test can kill a
    training process in the middle of a save (``hf.checkpoint`` looks ``os.replace`` up at call time)."""
    import os
    import time

    real_replace = os.replace

    def slow_replace(src, dst):
        print("SAVING", flush=True)
        time.sleep(0.5)
        real_replace(src, dst)

    os.replace = slow_replace
