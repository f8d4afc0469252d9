"""Train a small model with data-parallel HF; run by tests/test_mpi.py under ``mpiexec``.

Usage::

    mpiexec -n P python tests/mpi_train.py OUT.npz --model mlp|rnn --updates N [options]
    python tests/mpi_train.py OUT.npz --serial ...     # one process, whole data, no mpi4py

Options: ``--checkpoint PATH`` (checkpoint every update, resume when it exists),
``--die-at K --die-rank R --die-how kill|raise|exit`` (rank R ends itself when
update K is done: SIGKILL, an uncaught exception, or ``sys.exit(3)``),
``--slow-save`` (rank 0 sleeps 0.5 s inside every checkpoint write),
``--perturb-rank R`` (rank R nudges a parameter after update 2: the consistency
check must catch it), ``--unseeded`` (the training dataset's rng is None), ``--cold-restart`` and
``--shrink-warm-start`` (the HFOptimizer options of those names).

Rank 0 writes OUT.npz: the parameters, the history as JSON, ``updates``,
``ranks`` and the Allreduce counters. Every rank prints ``rank r update k``
after each update.
"""

import argparse
import json
import os
import signal
import sys
import time

import numpy as np
import pytensor
import pytensor.tensor as pt

import hf


def mlp():
    rng = np.random.default_rng(0)
    n_in, n_hidden, n_out = 5, 7, 3
    X = rng.normal(size=(250, n_in))
    Y = (X[:, :3] + 0.3 * rng.normal(size=(250, 3))).argmax(axis=1).astype("int32")
    Xv = rng.normal(size=(101, n_in))
    Yv = Xv[:, :3].argmax(axis=1).astype("int32")
    W = pytensor.shared(rng.normal(size=(n_in, n_hidden)) * 0.5, name="W")
    b = pytensor.shared(np.zeros(n_hidden), name="b")
    V = pytensor.shared(rng.normal(size=(n_hidden, n_out)) * 0.5, name="V")
    c = pytensor.shared(np.zeros(n_out), name="c")
    x, y = pt.matrix("x"), pt.ivector("y")
    s = pt.tanh(x @ W + b) @ V + c
    logp = pt.log(pt.special.softmax(s, axis=1))[pt.arange(y.shape[0]), y]
    cost = -pt.mean(logp)
    err = pt.mean(pt.neq(pt.argmax(s, axis=1), y))
    # batches of 61: 31 + 30 examples on two ranks, the last batch (6) 3 + 3
    train = hf.Dataset([X, Y], name="train", batch_size=61, rng=1)
    valid = hf.Dataset([Xv, Yv], name="valid", batch_size=101)
    options = dict(damping=1.0, min_damping=0.3, max_cg_iters=30, preconditioner=True, preconditioner_examples=25, chunk_size=16)
    return cost, s, [W, b, V, c], [x, y], {"err": err}, train, valid, options


def rnn():
    rng = np.random.default_rng(0)
    n_in, nh, n_out = 2, 6, 2
    W = pytensor.shared(rng.normal(size=(n_in, nh)) * 0.5, name="W")
    U = pytensor.shared(rng.normal(size=(nh, nh)) * 0.4, name="U")
    b = pytensor.shared(np.zeros(nh), name="b")
    V = pytensor.shared(rng.normal(size=(nh, n_out)) * 0.5, name="V")
    c = pytensor.shared(np.zeros(n_out), name="c")
    x, y, mask = pt.tensor3("x"), pt.tensor3("y"), pt.matrix("mask")

    def step(x_t, h_tm1):
        a_t = x_t @ W + h_tm1 @ U + b
        return pt.tanh(a_t), a_t

    h, a = pytensor.scan(step, sequences=x, outputs_info=[pt.zeros((x.shape[1], nh)), None],
                         return_updates=False)
    s = h @ V + c
    cost = 0.5 * pt.sum(pt.sum((s - y) ** 2, axis=2) * mask) / pt.cast(x.shape[1], "float64")

    def sequences(n, seed):
        r = np.random.default_rng(seed)
        lengths = r.integers(3, 12, size=n)
        xs = [r.normal(size=(t, n_in)) for t in lengths]
        ys = [np.cumsum(xv, axis=0) * 0.3 for xv in xs]  # a running sum: needs memory
        return xs, ys

    xs, ys = sequences(90, 1)
    xv, yv = sequences(41, 2)
    train = hf.SequenceDataset([xs, ys], name="train", batch_size=37, rng=3)  # 19 + 18 sequences
    valid = hf.SequenceDataset([xv, yv], name="valid", batch_size=41)
    spec = hf.StructuralDamping(a, "tanh", weight=0.3, mask=mask)
    options = dict(damping=20.0, min_damping=10.0, max_cg_iters=8, structural_damping=spec, chunk_size=10)
    return cost, s, [W, U, b, V, c], [x, y, mask], {}, train, valid, options


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--model", default="mlp", choices=["mlp", "rnn"])
    p.add_argument("--updates", type=int, default=6)
    p.add_argument("--serial", action="store_true")
    p.add_argument("--checkpoint")
    p.add_argument("--die-at", type=int)
    p.add_argument("--die-rank", type=int, default=1)
    p.add_argument("--die-how", default="kill", choices=["kill", "raise", "exit"])
    p.add_argument("--slow-save", action="store_true")
    p.add_argument("--perturb-rank", type=int)
    p.add_argument("--unseeded", action="store_true")
    p.add_argument("--check-every", type=int)
    p.add_argument("--chunk-size", type=int)
    p.add_argument("--cold-restart", action="store_true")
    p.add_argument("--shrink-warm-start", action="store_true")
    args = p.parse_args(argv)

    cost, s, params, inputs, monitors, train, valid, options = (mlp if args.model == "mlp" else rnn)()
    if args.unseeded:
        train.rng = np.random.default_rng()
        train._set_pass(train._shuffled())
    if args.chunk_size:
        options["chunk_size"] = args.chunk_size
    options.update(cold_restart=args.cold_restart, shrink_warm_start=args.shrink_warm_start)
    if args.serial:
        comm, rank, size = None, 0, 1
    else:
        from mpi4py import MPI

        from hf import mpi

        comm = MPI.COMM_WORLD
        rank, size = comm.Get_rank(), comm.Get_size()
        train, valid = mpi.shard(train, comm), mpi.shard(valid, comm)
    if args.slow_save and rank == 0:
        from models import slow_saves  # tests/ is this script's folder, first on sys.path

        slow_saves()

    opt = hf.HFOptimizer(cost, s, params, inputs, monitors, comm=comm, **options)
    if args.check_every:
        opt.consistency_check_every = args.check_every

    def progress(tm, vm):
        k = tm["update"]
        print(f"rank {rank} update {k}", flush=True)
        if args.perturb_rank == rank and k == 2:
            w = params[0].get_value()
            w.flat[0] += 1e-12
            params[0].set_value(w)
        if args.die_at == k and args.die_rank == rank:
            if args.die_how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif args.die_how == "exit":
                sys.exit(3)
            raise RuntimeError(f"rank {rank} fails on purpose after update {k}")

    t0 = time.perf_counter()
    opt.train(train, valid, max_updates=args.updates, patience=1000, checkpoint=args.checkpoint,
              checkpoint_every=1, callback=progress, restore_best=False, progress=False)
    seconds = time.perf_counter() - t0
    if rank == 0:
        reduce = opt.reduce
        np.savez(
            args.out, *[q.get_value() for q in params], updates=opt.updates, ranks=size,
            history=json.dumps(opt.history), seconds=seconds,
            allreduce_calls=getattr(reduce, "allreduce_calls", 0),
            allreduce_seconds=getattr(reduce, "allreduce_seconds", 0.0),
            mpi4py_imported="mpi4py" in sys.modules,
        )
    print(f"rank {rank} DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
