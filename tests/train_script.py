"""Train a small model with HF, checkpointing every update; used by test_training.py.

Usage: python train_script.py CHECKPOINT OUT.npz MAX_UPDATES [--slow-save]

``--slow-save`` pauses inside every checkpoint write, after the temporary file is
complete and before it replaces the old checkpoint, and prints ``SAVING`` so a
test can SIGKILL the process exactly there.
"""

import sys

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf


def model(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(240, 6))
    Y = (X[:, :3].argmax(axis=1)).astype("int32")
    W = pytensor.shared(rng.normal(size=(6, 8)) * 0.3, name="W")
    b = pytensor.shared(np.zeros(8), name="b")
    V = pytensor.shared(rng.normal(size=(8, 3)) * 0.3, name="V")
    x, y = pt.matrix("x"), pt.ivector("y")
    s = pt.tanh(x @ W + b) @ V
    cost = -pt.mean(pt.log(pt.special.softmax(s, axis=1))[pt.arange(y.shape[0]), y])
    return cost, s, [W, b, V], [x, y], [X, Y]


def main(argv):
    path, out, max_updates = argv[0], argv[1], int(argv[2])
    if "--slow-save" in argv:
        from models import slow_saves  # tests/ is this script's folder, first on sys.path

        slow_saves()
    cost, s, params, inputs, data = model()
    opt = hf.HFOptimizer(cost, s, params, inputs, max_cg_iters=20, damping=0.5)
    train = hf.Dataset(data, name="train", batch_size=60, rng=1)
    valid = hf.Dataset(data, name="valid", batch_size=240)

    def progress(tm, vm):
        print(f"update {tm['update']}", flush=True)

    tm, vm = opt.train(train, valid, max_updates=max_updates, patience=1000, checkpoint=path,
                       checkpoint_every=1, callback=progress)
    np.savez(out, *[p.get_value() for p in params], updates=opt.updates, loss=vm.get("loss", np.nan))
    print("DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
