"""Peak memory of loss+gradient and a Gv product on a large sequence batch, chunked or not.

Each setting runs in a fresh subprocess that builds a 10,000-sequence padded
batch for a tanh RNN, then evaluates the loss+gradient and one Gauss-Newton
product through ``hf``'s example sums. The peak resident set size above the
process's size just before the evaluation is the figure reported, next to the
size of the batch itself.

Run::

    python bench/memory.py                       # 10,000 sequences, T=50, 64 hidden units
    python bench/memory.py --sequences 2000 --T 30
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args):
    import numpy as np
    import pytensor
    import pytensor.tensor as pt

    import hf

    rng = np.random.default_rng(0)
    nh, T, n = args.hidden, args.T, args.sequences
    x, y, mask = pt.tensor3("x"), pt.tensor3("y"), pt.matrix("mask")
    W = pytensor.shared(rng.normal(size=(2, nh)) * 0.3, name="W")
    U = pytensor.shared(rng.normal(size=(nh, nh)) / np.sqrt(nh), name="U")
    V = pytensor.shared(rng.normal(size=(nh, 1)) * 0.3, name="V")

    def step(x_t, h):
        return pt.tanh(x_t @ W + h @ U)

    h = pytensor.scan(step, sequences=x, outputs_info=[pt.zeros((x.shape[1], nh))], return_updates=False)
    s = h @ V
    cost = 0.5 * pt.sum(pt.sum((s - y) ** 2, axis=2) * mask) / pt.cast(x.shape[1], "float64")
    chunk = args.chunk if args.chunk > 0 else None
    opt = hf.HFOptimizer(cost, s, [W, U, V], [x, y, mask], chunk_size=chunk)
    lengths = rng.integers(T // 2, T + 1, size=n)
    xs = [rng.random((t, 2)) for t in lengths]
    ys = [rng.random((t, 1)) for t in lengths]
    ds = hf.SequenceDataset([xs, ys], batch_size=n, rng=0)
    batch = hf.Batch(tuple(ds.next_batch()), tuple(ds.batch_axes), ds.mask_index)
    batch_mb = sum(a.nbytes for a in batch.arrays) / 2**20
    v = rng.normal(size=opt.n_params)
    # Warm up on a small slice so compilation is not counted.
    small = batch.head(8)
    opt.loss_grad(small)
    opt.gv(v, small)
    before = peak_rss_mb()
    import time

    t = time.perf_counter()
    opt.loss_grad(batch)
    opt.gv(v, batch)
    seconds = time.perf_counter() - t
    print(json.dumps({"chunk": chunk, "batch_mb": batch_mb, "rss_before_mb": before,
                      "peak_mb": peak_rss_mb(), "extra_mb": peak_rss_mb() - before, "seconds": seconds}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--chunks", default="0,1000,250", help="chunk sizes to compare; 0 = no chunking")
    parser.add_argument("--chunk", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.chunk is not None:
        return child(args)
    rows = []
    for c in [int(v) for v in args.chunks.split(",")]:
        cmd = [sys.executable, __file__, "--sequences", str(args.sequences), "--T", str(args.T),
               "--hidden", str(args.hidden), "--chunk", str(c)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{args.sequences} sequences, T <= {args.T}, {args.hidden} hidden units; "
          f"padded batch arrays {rows[0]['batch_mb']:.1f} MiB")
    print(f"{'chunk_size':>10} {'peak RSS growth (MiB)':>22} {'seconds':>8}")
    for r in rows:
        print(f"{str(r['chunk'] or 'none'):>10} {r['extra_mb']:>22.1f} {r['seconds']:>8.2f}")
    base = rows[0]["extra_mb"]
    for r in rows[1:]:
        print(f"chunk {r['chunk']}: {base / max(r['extra_mb'], 1e-9):.1f}x less extra memory than none")
    return rows


if __name__ == "__main__":
    main()
