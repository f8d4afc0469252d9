"""hf's loss and gradient against PyTorch's on the same MLP, in one process.

The MLP of ``bench/update_cost.py`` (784-500-500-10, tanh, softmax
cross-entropy, 1,000 rows, float64, the same weights and data) is written
again in PyTorch (CPU, float64, one thread). Timed in one process, calls
interleaved, the minimum over repeats (``bench/_common.py``):

* **hf loss+grad**: ``HFOptimizer.loss_grad(batch)``: the loss, the mean over
  the batch and the flat float64 gradient, what an HF update calls;
* **plain PyTensor**: a plain ``pytensor.function`` of the loss and gradient;
* **torch loss+grad**: the loss, ``backward()`` and the gradients concatenated
  into one float64 numpy vector (what hf returns; without the concatenation
  as ``torch, grads left in place``).

The losses are checked to agree to 1e-12 and the gradients to 1e-9 relative.
Target (issue "performance"): hf loss+grad within 1.1× torch's. PyTorch is an
optional extra (``pip install torch``; the CPU wheel is enough); without it the
script says so and exits.

Run (one core, one BLAS thread; writes bench/results/torch_reference.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/torch_reference.py
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import _common as C  # noqa: E402  (bench/ is the script's folder)
import update_cost  # noqa: E402

TARGET = 1.1


def torch_mlp(model, torch):
    """The model's MLP in PyTorch: its current weights, its data, one float64 vector out."""
    weights = [torch.tensor(p.get_value(), dtype=torch.float64, requires_grad=True) for p in model.params]
    x = torch.tensor(model.data[0], dtype=torch.float64)
    y = torch.tensor(model.data[1], dtype=torch.long)

    def loss():
        h = x
        for i in range(0, len(weights), 2):
            h = h @ weights[i] + weights[i + 1]
            if i < len(weights) - 2:
                h = torch.tanh(h)
        return torch.nn.functional.cross_entropy(h, y)

    def loss_grad(flat=True):
        for w in weights:
            w.grad = None
        f = loss()
        f.backward()
        if not flat:
            return float(f.detach()), None
        return float(f.detach()), torch.cat([w.grad.reshape(-1) for w in weights]).numpy()

    return loss_grad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("bench/torch_reference.py needs PyTorch (pip install torch): not installed, nothing measured")
    torch.set_num_threads(1)
    model = update_cost.mlp()
    batch = model.batch()
    opt = model.optimizer()
    opt.compile(["hf_loss_grad"])
    plain = update_cost.plain_loss_grad(model)
    arrays = list(batch.arrays)
    tlg = torch_mlp(model, torch)
    f_hf, _, g_hf = opt.loss_grad(batch)
    f_t, g_t = tlg()
    loss_diff = abs(f_hf - f_t) / abs(f_t)
    grad_diff = float(np.max(np.abs(g_hf - g_t)) / np.max(np.abs(g_t)))
    if loss_diff > 1e-12 or grad_diff > 1e-9:
        sys.exit(f"hf and torch disagree: loss {f_hf!r} against {f_t!r}, gradient relative difference {grad_diff:.1e}")
    best = C.interleaved_min({
        "hf loss+grad": lambda: opt.loss_grad(batch),
        "plain PyTensor": lambda: plain(*arrays),
        "torch loss+grad": tlg,
        "torch, grads left in place": lambda: tlg(flat=False),
    }, args.repeats)
    ratio = best["hf loss+grad"] / best["torch loss+grad"]
    print(f"{model.name}: hf loss+grad {best['hf loss+grad']:.4f} s, plain PyTensor {best['plain PyTensor']:.4f} s, "
          f"torch {best['torch loss+grad']:.4f} s ({best['torch, grads left in place']:.4f} s without the flat "
          f"vector); hf / torch {ratio:.3f} (target <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'})", flush=True)
    C.write_result("torch_reference", {
        "model": model.name, "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "seconds": best, "loss_rel_diff": loss_diff, "grad_rel_diff": grad_diff,
        "target": {"value": ratio, "target": TARGET, "met": ratio <= TARGET},
    })


if __name__ == "__main__":
    main()
