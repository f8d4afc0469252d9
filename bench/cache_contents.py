"""What the forward cache of ``forward_cache=True`` holds, output by output.

Compiles ``HFOptimizer`` for the deep autoencoder and the tanh RNN of
bench/_common.py, calls its ``_f_forward`` on a batch and lists the cached
arrays, largest first, with the op that produced each, next to the size of the
activations a hand-written cached Gv needs (bench/numpy_gv.py: the layers'
inputs and the hidden units' derivatives; for the RNN the hidden states and
``1 - h²``).

Run (writes bench/results/cache_contents.json)::

    python bench/cache_contents.py
"""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def main(argv=None):
    models = [C.autoencoder(n=1000), C.rnn(T=100, n=200, nh=100)]
    needed = {  # bytes of the activations a hand-written cached Gv keeps
        models[0].name: 8 * 1000 * (2 * sum(C.AE_SIZES[1:-1]) + C.AE_SIZES[-1]),
        models[1].name: 8 * 100 * 200 * 100 * 2,
    }
    out = {}
    for m in models:
        opt = m.optimizer()
        values = opt._f_forward(*m.batch().arrays)
        rows = []
        for val, var in zip(values, opt._f_forward.maker.fgraph.outputs):
            arr = np.asarray(val)
            op = var.owner.op if var.owner is not None else None
            src = var.owner.inputs[0].owner.op if (op is not None and type(op).__name__ == "DeepCopyOp"
                                                   and var.owner.inputs[0].owner is not None) else op
            rows.append({"shape": list(arr.shape), "bytes": int(arr.nbytes), "op": str(op)[:60], "source": str(src)[:60]})
        rows.sort(key=lambda r: -r["bytes"])
        total = sum(r["bytes"] for r in rows)
        zeros = sum(r["bytes"] for r in rows if r["op"].startswith("Alloc"))
        print(f"{m.name}: {len(rows)} cached arrays, {total / 2**20:.1f} MiB; activations a hand-written Gv keeps "
              f"{needed[m.name] / 2**20:.1f} MiB; Alloc (zero-filled buffers) {zeros / 2**20:.1f} MiB")
        for r in rows[:12]:
            print(f"  {str(tuple(r['shape'])):<18} {r['bytes'] / 2**20:8.2f} MiB  {r['op']:<22} from {r['source']}")
        out[m.name] = {"total_bytes": total, "needed_bytes": needed[m.name], "alloc_bytes": zeros, "arrays": rows}
    C.write_result("cache_contents", {"models": out})


if __name__ == "__main__":
    main()
