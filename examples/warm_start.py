"""First-order warm start, then Hessian-free refinement, through a checkpoint.

Phase 1 trains the digits autoencoder with Adam (``hf.first_order``) and writes
an HDF5 checkpoint. Phase 2 builds the same graph again (as a separate script
would), loads the parameters from that checkpoint and refines them with
``hf.HFOptimizer``. Both phases report their held-out error.

Run::

    python examples/warm_start.py                     # ~1 minute
    python examples/warm_start.py --adam-epochs 50 --hf-updates 40
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile

import hf
import hf.first_order as downhill
from hf import function
from hf.datasets import load_digits

from _plot import save_curves  # noqa: E402  (examples/ is the script's directory)
from autoencoder import build  # noqa: E402


def main(argv=None):
    """Run both phases; return the held-out errors and what they were measured on.

    ``initial``, ``adam``, ``loaded`` and ``hf`` are held-out squared errors per
    image; ``initial_params``, ``adam_params`` (after Adam, best restored),
    ``loaded_params`` (read from the checkpoint) and ``hf_params`` (after HF,
    best restored) are ``{name: array}``; ``checkpoint`` is the Adam checkpoint's
    path, ``hf_history`` HF's metrics per update, ``train`` and ``valid`` the data.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default="64,48,24,8,24,48,64")
    parser.add_argument("--adam-epochs", type=int, default=20)
    parser.add_argument("--hf-updates", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--checkpoint", default=None, help="Adam checkpoint path (default: a temporary file)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="warm_start.png", help="PNG of the curves ('' for none)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    layers = [int(v) for v in args.layers.split(",")]
    images = load_digits(seed=args.seed)
    train, valid = images[:1500], images[1500:]
    path = args.checkpoint or os.path.join(tempfile.mkdtemp(), "adam.h5")

    # Phase 1: Adam, checkpointed.
    cost, s, params, x, error = build(layers, args.seed)
    err = function([x], error)
    initial = float(err(valid))
    initial_params = {p.name: p.get_value() for p in params}
    curve = [(0, initial)]

    def record(tm, vm):  # x continues from the last point: Adam epochs, then HF updates
        curve.append((curve[-1][0] + 1, float(err(valid))))

    opt = downhill.build("adam", cost, params=params, inputs=[x])
    opt.minimize(hf.Dataset([train], batch_size=100, rng=args.seed), hf.Dataset([valid], batch_size=297),
                 learning_rate=args.lr, max_updates=args.adam_epochs, validate_every=1, patience=10**6,
                 **downhill.kingma_ba_adam(),  # Kingma & Ba's Adam, not downhill's defaults
                 checkpoint=path, callback=record)
    adam_curve, curve = curve, [(curve[-1][0], None)]
    adam_error = float(err(valid))
    adam_params = {p.name: p.get_value() for p in params}

    # Phase 2: a fresh graph (as in another script), parameters from the Adam checkpoint.
    cost, s, params, x, error = build(layers, args.seed + 1)  # different init, overwritten below
    err = function([x], error)
    refine = hf.HFOptimizer(cost, s, params, [x], max_cg_iters=100)
    refine.load_params(path)
    loaded_error = float(err(valid))
    loaded_params = {p.name: p.get_value() for p in params}
    curve[0] = (curve[0][0], loaded_error)
    refine.train([train], [valid], max_updates=args.hf_updates, patience=10**6, callback=record)
    hf_error = float(err(valid))
    hf_params = {p.name: p.get_value() for p in params}

    print(f"\nheld-out squared error per image: initial {initial:.3f}")
    print(f"  after {args.adam_epochs} Adam epochs: {adam_error:.3f} (checkpoint {path})")
    print(f"  loaded into a new graph:    {loaded_error:.3f}")
    print(f"  after {args.hf_updates} HF updates:      {hf_error:.3f}")
    if args.out:
        save_curves(args.out, {"Adam": tuple(zip(*adam_curve)), "HF from the Adam checkpoint": tuple(zip(*curve))},
                    xlabel="epoch (Adam) / update (HF)", ylabel="held-out squared error per image",
                    title="warm start: Adam, then HF refinement")
    return {"initial": initial, "adam": adam_error, "loaded": loaded_error, "hf": hf_error,
            "checkpoint": path, "initial_params": initial_params, "adam_params": adam_params,
            "loaded_params": loaded_params, "hf_params": hf_params, "hf_history": list(refine.history),
            "train": train, "valid": valid}


if __name__ == "__main__":
    main()
