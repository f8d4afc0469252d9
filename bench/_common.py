"""Models and timing helpers shared by the benchmarks in bench/.

The models are written with ``pt.dot`` (PyTensor's ``Dot``, which has an R-op) so
that both Jv paths, ``jv="pullback"`` and ``jv="op"``, apply to them.

* :func:`autoencoder`: the deep autoencoder of [Mart10] (784-1000-500-250-30-
  250-500-1000-784), logistic hidden units, a linear 30-unit code layer, the
  graph cut at the output's pre-sigmoid ``s`` with sigmoid cross-entropy.
* :func:`rnn`: a tanh RNN (``scan``), linear output with squared error, time-major
  ``(T, batch, features)`` data, optionally with structural damping [MS11].

Timing rules used by every script: one process, calls interleaved, the minimum
over repeats, ratios formed within the run. Pin the process to one core and one
BLAS thread (the commands in docs/performance.md do).

The clock is the process's CPU time (``time.process_time``) by default: on a
machine shared with other jobs, wall-clock time also counts the time slices the
scheduler gives them, which no number of repeats removes, while the CPU time of a
single-threaded process counts its own work only. ``HF_BENCH_CLOCK=wall``
switches every script to ``time.perf_counter``. Compile times (which include
the C compiler's child processes) are always wall-clock.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")

AE_SIZES = (784, 1000, 500, 250, 30, 250, 500, 1000, 784)

CLOCK = os.environ.get("HF_BENCH_CLOCK", "cpu")
if CLOCK not in ("cpu", "wall"):
    raise SystemExit(f"HF_BENCH_CLOCK must be 'cpu' or 'wall', got {CLOCK!r}")
now = time.process_time if CLOCK == "cpu" else time.perf_counter


class Model:
    """What an HFOptimizer needs, plus the data to run it on."""

    def __init__(self, name, cost, s, params, inputs, data, axes, options=None, extra=None):
        self.name, self.cost, self.s, self.params, self.inputs = name, cost, s, params, inputs
        self.data, self.axes = data, axes
        self.options = options or {}
        self.extra = extra or {}

    def batch(self, n=None):
        b = hf.Batch(tuple(self.data), tuple(self.axes))
        return b if n is None else b.head(n)

    def optimizer(self, **kwargs):
        return hf.HFOptimizer(self.cost, self.s, self.params, self.inputs, **{**self.options, **kwargs})


def autoencoder_graph(sizes, rng, init="sparse", hidden="logistic", dtype="float64"):
    """A deep autoencoder over layer ``sizes`` (encoder, code, mirrored decoder), as in [Mart10].

    Hidden units are ``hidden`` ('logistic' or 'tanh'), the code layer (the middle
    size) is linear, the output is logistic with cross-entropy; the graph is cut at
    the output's pre-sigmoid ``s``. ``init`` is 'sparse' ([Mart10]'s 15 non-zero
    N(0, 1) incoming weights per unit) or 'normal' (dense N(0, 1/fan-in)); biases
    start at zero. Weights are drawn from ``rng`` layer by layer.

    Returns ``(cost, s, params, x, error)``: the mean cross-entropy per row, the cut,
    the shared parameters, the input matrix and the squared error per row.
    """
    x = pt.matrix("x", dtype=dtype)
    act = pt.sigmoid if hidden == "logistic" else pt.tanh
    params, h = [], x
    code = len(sizes) // 2 - 1  # index of the layer producing the code (linear)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if init == "sparse":
            w = hf.init.sparse(rng, a, b, dtype=dtype)
        else:
            w = (rng.normal(size=(a, b)) / np.sqrt(a)).astype(dtype)
        W = pytensor.shared(w, name=f"W{i}")
        c = pytensor.shared(np.zeros(b, dtype=dtype), name=f"b{i}")
        params += [W, c]
        h = pt.dot(h, W) + c
        if i < len(sizes) - 2 and i != code:
            h = act(h)
    s = h
    # Cross-entropy of sigmoid(s) against x, summed over pixels, mean over rows:
    # softplus(s) - x*s is the stable form of -x log p - (1-x) log(1-p).
    cost = pt.mean(pt.sum(pt.softplus(s) - x * s, axis=1))
    error = pt.mean(pt.sum((pt.sigmoid(s) - x) ** 2, axis=1))
    return cost, s, params, x, error


def mlp_graph(sizes, rng):
    """A tanh MLP over layer ``sizes`` with a softmax cross-entropy output, weights N(0, 1/fan-in)
    drawn from ``rng`` layer by layer, biases zero. Returns ``(cost, s, params, x, y)``: the mean
    cross-entropy, the logits (the cut), the shared parameters, the input matrix and the int32 labels."""
    x, y = pt.matrix("x"), pt.ivector("y")
    params, h = [], x
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = pytensor.shared(rng.normal(size=(a, b)) / np.sqrt(a), name=f"W{i}")
        c = pytensor.shared(np.zeros(b), name=f"b{i}")
        params += [W, c]
        h = pt.dot(h, W) + c
        if i < len(sizes) - 2:
            h = pt.tanh(h)
    cost = -pt.mean(pt.special.log_softmax(h, axis=1)[pt.arange(y.shape[0]), y])
    return cost, h, params, x, y


def autoencoder(n=1000, sizes=AE_SIZES, seed=0, hidden="logistic", dtype="float64"):
    """Deep autoencoder (dense initialization) and ``n`` random rows; see :func:`autoencoder_graph`."""
    rng = np.random.default_rng(seed)
    cost, s, params, x, _ = autoencoder_graph(sizes, rng, init="normal", hidden=hidden, dtype=dtype)
    code = len(sizes) // 2 - 1
    data = [rng.random((n, sizes[0])).astype(dtype)]
    return Model(f"autoencoder {'-'.join(map(str, sizes))}, {n} rows", cost, s, params, [x], data, (0,),
                 extra={"sizes": sizes, "hidden": hidden, "code": code, "dtype": dtype})


def rnn(T=100, n=200, nh=100, n_in=2, n_out=1, seed=0, structural=False, dtype="float64", mu=0.03):
    """tanh RNN over time-major data; squared error of a linear output, mean over sequences."""
    rng = np.random.default_rng(seed)
    x, y = pt.tensor3("x", dtype=dtype), pt.tensor3("y", dtype=dtype)
    W = pytensor.shared((rng.normal(size=(n_in, nh)) * 0.3).astype(dtype), name="W")
    U = pytensor.shared((rng.normal(size=(nh, nh)) / np.sqrt(nh)).astype(dtype), name="U")
    b = pytensor.shared(np.zeros(nh, dtype=dtype), name="b")
    V = pytensor.shared((rng.normal(size=(nh, n_out)) * 0.3).astype(dtype), name="V")
    c = pytensor.shared(np.zeros(n_out, dtype=dtype), name="c")

    def step(x_t, h_tm1):
        a_t = pt.dot(x_t, W) + pt.dot(h_tm1, U) + b
        return pt.tanh(a_t), a_t

    h, a = pytensor.scan(step, sequences=x, outputs_info=[pt.zeros((x.shape[1], nh), dtype=dtype), None],
                         return_updates=False)
    s = pt.dot(h, V) + c
    cost = 0.5 * pt.sum((s - y) ** 2) / pt.cast(x.shape[1], dtype)
    data = [rng.normal(size=(T, n, n_in)).astype(dtype), rng.normal(size=(T, n, n_out)).astype(dtype)]
    options = {"structural_damping": hf.StructuralDamping(a, "tanh", weight=mu)} if structural else {}
    name = f"tanh RNN nh={nh} T={T}, {n} sequences" + (" + structural damping" if structural else "")
    return Model(name, cost, s, [W, U, b, V, c], [x, y], data, (1, 1), options,
                 extra={"T": T, "nh": nh, "structural": structural, "dtype": dtype})


def timed(fn):
    t = now()
    fn()
    return now() - t


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Times of each callable over ``repeats`` rounds, the calls interleaved round-robin."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            times[k].append(timed(f))
    return times


def interleaved_min(fns: dict, repeats: int, warmup: int = 1) -> dict:
    """Minimum time of each callable, the calls interleaved round-robin over ``repeats`` rounds."""
    return {k: min(t) for k, t in interleaved(fns, repeats, warmup).items()}


def paired_ratio(times: dict, num: str, den: str) -> float:
    """Median over rounds of ``num``'s time over ``den``'s in the same round.

    The two calls of a round run back to back, so a slow spell of the machine
    that lasts longer than a round slows both: the median of the paired ratios
    is steadier than the ratio of the minima when other jobs share the core.
    """
    return float(np.median(np.asarray(times[num]) / np.asarray(times[den])))


def _git_head():
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
        # pathspecs from the top of the work tree (":/"): HERE is bench/, where a plain "hf" matches nothing
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ":/hf", ":/datasets"], cwd=HERE,
                               capture_output=True, text=True)
        return out.stdout.strip() + (" (hf/ modified)" if dirty.stdout.strip() else "")
    except OSError:
        return None


def environment() -> dict:
    from pytensor import config

    return {
        "git": _git_head(),
        "python": sys.version.split()[0],
        "pytensor": pytensor.__version__,
        "numpy": np.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_affinity": sorted(os.sched_getaffinity(0)),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "blas__ldflags": config.blas__ldflags,
        "floatX": config.floatX,
        "clock": CLOCK,
        "argv": sys.argv,
    }


def write_result(name: str, payload: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{name}.json")
    payload = {"environment": environment(), **payload}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, default=_jsonable)
        f.write("\n")
    print(f"wrote {os.path.relpath(path)}")
    return path


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    return str(o)


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))
