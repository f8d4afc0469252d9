"""Data-parallel Hessian-free optimization over MPI (``HFOptimizer(..., comm=MPI.COMM_WORLD)``).

Every process (rank) holds a shard of each batch. Every mean over examples --
the loss and monitors, the gradient, each Gauss-Newton product of CG, the
per-example gradient squares of the preconditioner, the loss probes of
backtracking and the line search, a validation pass -- is a sum of size-weighted
terms on each rank (:class:`hf.reduce.ExampleMean`) added over the ranks by one
in-place ``Allreduce`` of one float64 buffer that also holds the example count
(:class:`DistributedMean`). Every rank then holds the same bits, so CG, the
damping, backtracking and the line search run identically everywhere and no
parameters are ever sent; :func:`check_same` confirms it every
``consistency_check_every`` (10) updates (an attribute of the reducer,
``opt.reduce``).

Sharding
--------
:func:`shard` deals the examples of every batch round-robin over the ranks:
rank ``r`` of ``P`` gets examples ``r, r + P, r + 2P, ...`` of the batch that one
process would draw. Every rank builds the same whole dataset and wraps it
(``shard`` gives every rank rank 0's batch order)::

    from mpi4py import MPI
    import hf, hf.mpi

    comm = MPI.COMM_WORLD
    train = hf.mpi.shard(hf.Dataset([X, Y], name="train", batch_size=1000, rng=1), comm)
    valid = hf.mpi.shard(hf.Dataset([Xv, Yv], name="valid", batch_size=5000), comm)
    opt = hf.HFOptimizer(cost, s, params, [x, y], comm=comm)
    opt.train(train, valid, checkpoint="run.h5")

A rank reads only its own rows of each batch (a strided slice of a numpy array,
``h5py.Dataset``, memory map or sparse matrix; its own sequences of a
:class:`hf.SequenceDataset`, padded to their own longest). The sums weight each
rank by its true number of examples, so unequal shards (a batch of 1001
examples on 2 ranks) give the exact mean. The CG batch is the rank's part of
the first ``cg_fraction`` of the *global* batch and the preconditioner's
examples the rank's part of the global first ``preconditioner_examples``, so
``P`` ranks compute what one process computes on the whole data, up to the
order of floating-point additions.

The dataset's state (cursor, batch order, generator) is that of the whole
dataset and the same on every rank: rank 0 writes it in the checkpoint and every
rank resumes from the same file. A run resumed with the same number of ranks
repeats the uninterrupted run bit for bit; with another number of ranks it
continues the same run (the same batches, split differently), equal to
rounding.

Failures
--------
Creating a :class:`DistributedMean` (what ``HFOptimizer(comm=...)`` does)
installs :func:`abort_on_error`: an exception that no code catches on one rank
prints its traceback, tagged with the rank, and calls ``comm.Abort(1)``, so the
others, blocked in a collective, end at once instead of waiting for ever. A
rank that is killed is noticed by ``mpiexec``, which ends the others. Running
the script with ``mpiexec -n P python -m mpi4py script.py`` gives the same
behaviour for code that runs before ``hf`` is used.

``mpi4py`` is an optional dependency (``pip install pytensor-hf[mpi]``); only
this module imports it, and only when a communicator is used. ``docs/mpi.md``
tells how to run on a cluster and how far it scales.
"""

from __future__ import annotations

import hashlib
import math
import signal
import sys
import threading
import time
import traceback

import numpy as np

from .data import Dataset, FiniteDataset
from .data._array_like import materialize
from .data import Batch
from .reduce import ExampleMean, call

__all__ = [
    "DistributedMean",
    "ShardedDataset",
    "abort_on_error",
    "check_same",
    "local_count",
    "shard",
]


def _mpi():
    """mpi4py's ``MPI`` module, with an error that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "hf.mpi needs mpi4py and an MPI library: pip install 'pytensor-hf[mpi]' "
            "(installs mpi4py and the mpich wheel, which provides mpiexec)"
        ) from err
    return MPI


def _rank_size(comm):
    try:
        return int(comm.Get_rank()), int(comm.Get_size())
    except AttributeError:
        raise TypeError(
            f"comm must be an mpi4py communicator (e.g. mpi4py.MPI.COMM_WORLD), got {type(comm).__name__}"
        ) from None


def local_count(n_global: int, rank: int, size: int) -> int:
    """How many of the first ``n_global`` examples of a batch dealt round-robin fall on ``rank``."""
    return len(range(rank, int(n_global), size))


class _Weightless(Batch):
    """A rank's share of no examples: one example of the batch, evaluated for the shapes
    of the outputs and counted with weight 0 (its values are replaced by zeros).

    It lets a rank take part in the collectives of a CG batch that has fewer
    examples than there are ranks, so that the sums are exactly one process's.
    """

    @property
    def size(self) -> int:
        return 0

    def chunks(self, chunk_size):
        for chunk, _ in Batch(self.arrays, self.axes, self.mask_index, self.source).chunks(1):
            yield chunk, 0
            return

    def head(self, n):
        return self


# ---------------------------------------------------------------------- reductions
class DistributedMean(ExampleMean):
    """:class:`hf.reduce.ExampleMean` whose sums are added over all ranks of ``comm``.

    Parameters
    ----------
    chunk_size : int or None
        As for :class:`~hf.reduce.ExampleMean` (per rank).
    comm : mpi4py communicator

    Notes
    -----
    Each mean packs this rank's size-weighted sums of every output and its
    example count into one float64 buffer and adds the buffers of all ranks with
    one in-place ``comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)``: one
    collective per quantity (the loss with its monitors and the gradient in one
    buffer; one Gauss-Newton product; one loss probe). The example count travels
    as a float64, exact up to 2**53 examples.

    Attributes
    ----------
    allreduce_calls : int
        Collectives made so far.
    allreduce_seconds : float
        Wall-clock time spent in them (waiting for the slowest rank included).
    allreduce_values : int
        float64 values reduced so far.
    consistency_check_every : int
        :meth:`check_after_update` checks that every rank holds the same
        parameters every this many updates (default 10).
    """

    consistency_check_every = 10

    def __init__(self, chunk_size=None, comm=None):
        super().__init__(chunk_size)
        if comm is None:
            raise TypeError("DistributedMean needs an mpi4py communicator (comm=MPI.COMM_WORLD)")
        self.rank, self.size = _rank_size(comm)
        self.comm = comm
        self._mpi = _mpi()
        self.allreduce_calls = 0
        self.allreduce_seconds = 0.0
        self.allreduce_values = 0
        abort_on_error(comm)

    def allreduce(self, buf: np.ndarray) -> np.ndarray:
        """Sum the float64 vector ``buf`` over all ranks, in place; returns it."""
        t0 = time.perf_counter()
        self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)
        self.allreduce_seconds += time.perf_counter() - t0
        self.allreduce_calls += 1
        self.allreduce_values += buf.size
        return buf

    def combine(self, totals, count):
        """Add this rank's size-weighted ``totals`` and ``count`` to every other rank's; divide."""
        if totals is None:
            raise RuntimeError(
                f"hf.mpi: rank {self.rank} of {self.size} has no examples to average over; every rank "
                "needs at least one example of every batch (batches of at least as many examples as ranks)"
            )
        arrays = [np.asarray(t, dtype=np.float64) for t in totals]
        sizes = [a.size for a in arrays]
        buf = np.empty(sum(sizes) + 1, dtype=np.float64)
        start = 0
        for a, n in zip(arrays, sizes):
            buf[start : start + n] = a.ravel()
            start += n
        buf[-1] = count
        self.allreduce(buf)
        count = buf[-1]
        if not count:
            raise ValueError("no examples to average over")
        out, start = [], 0
        with np.errstate(over="ignore", invalid="ignore"):
            for a, n in zip(arrays, sizes):
                out.append((buf[start : start + n] / count).reshape(a.shape)[()])
                start += n
        return out

    @staticmethod
    def _sums(rows):
        """As :meth:`ExampleMean._sums`, a row of weight 0 adding zeros (not ``0·value``,
        which is NaN for an infinite value)."""
        return ExampleMean._sums(
            (values, n, owned) if n else ([np.zeros(np.shape(v)) for v in values], n, True)
            for values, n, owned in rows
        )

    def global_size(self, batch) -> int:
        """Examples of ``batch`` over all ranks (one collective)."""
        return int(self.allreduce(np.array([batch.size], dtype=np.float64))[0])

    def head(self, batch, fraction: float):
        """This rank's part of the first ``ceil(fraction · N)`` examples of the global batch of ``N``.

        With :func:`shard`'s round-robin layout those are exactly the examples
        one process takes as its CG batch (``batch.head``), spread evenly over
        the ranks. A rank with none of them (a CG batch smaller than the
        number of ranks) evaluates one example with weight 0, to take part in
        the collectives.
        """
        if not batch.arrays:  # data held in the graph: every rank's one "example"
            return batch
        n = max(1, math.ceil(fraction * self.global_size(batch)))
        local = local_count(n, self.rank, self.size)
        return batch.head(local) if local else _Weightless(batch.arrays, batch.axes, batch.mask_index, batch.source)

    @property
    def is_writer(self) -> bool:
        """True on rank 0, the one rank that writes checkpoints and logs (all resume from its file)."""
        return self.rank == 0

    def shard(self, data):
        """This rank's share of ``data``: :func:`shard` over this reducer's communicator."""
        return shard(data, self.comm)

    def check_same(self, arrays, what: str = "the parameters") -> None:
        """:func:`check_same` over this reducer's communicator."""
        check_same(self.comm, arrays, what)

    def mean_square_per_example(self, fn, batch, max_examples, closed_form=None):
        """``1/N Σ_i (∇f_i)²`` over this rank's part of the global first ``max_examples`` examples."""
        m = local_count(max_examples, self.rank, self.size) if batch.size else 0
        if m:
            return super().mean_square_per_example(fn, batch, m, closed_form)
        g = np.asarray(call(fn, batch.head(1))[-1], dtype=np.float64)  # for the shape only
        return self.combine(*self._sums([([g], 0, True)]))[0]


# ---------------------------------------------------------------------- consistency
def _digest(arrays) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.view(np.uint8).reshape(-1) if a.size else b"")
    return h.digest()


def check_same(comm, arrays, what: str = "the parameters") -> None:
    """Raise on every rank unless every rank of ``comm`` holds bit-identical ``arrays``.

    One collective: each rank's 16-byte checksum (BLAKE2b of dtypes, shapes and
    bytes) and the sum of its values are gathered on every rank, so every rank
    reaches the same verdict and all raise together.

    Raises
    ------
    RuntimeError
        Naming the ranks whose ``what`` differ from rank 0's, with the sums.
    """
    arrays = [np.asarray(a) for a in arrays]
    with np.errstate(all="ignore"):
        total = float(sum(np.sum(a, dtype=np.float64) for a in arrays if a.dtype.kind in "fciub"))
    everyone = comm.allgather((_digest(arrays), total))
    if all(d == everyone[0][0] for d, _ in everyone):
        return
    differ = [r for r, (d, _) in enumerate(everyone) if d != everyone[0][0]]
    sums = ", ".join(f"rank {r}: {s!r}" for r, (_, s) in enumerate(everyone))
    raise RuntimeError(
        f"hf.mpi: {what} differ between ranks: rank(s) {differ} hold values different from rank 0's "
        f"(sums of the values: {sums}). Data-parallel training needs every rank to take identical steps; "
        "start every rank from the same parameters (the same seed), give every rank the same hf.mpi.shard "
        "of the same dataset, and use the same library builds on every node"
    )


# ---------------------------------------------------------------------- failures
#: Seconds a rank waits after writing why it aborts, before ``comm.Abort``: mpiexec forwards a
#: rank's output asynchronously and the abort tears the job down at once (without the pause the
#: Ctrl-C line was lost in about 1 run of 4).
_ABORT_PAUSE = 0.5

_hooked = {}


def _say_and_abort(comm, text, code):
    """Write ``text`` to stderr in one write, give mpiexec :data:`_ABORT_PAUSE` to forward it,
    then ``comm.Abort(code)`` (also when the write fails). One write: two lost the second at times."""
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
        sys.stdout.flush()
        time.sleep(_ABORT_PAUSE)
    finally:
        comm.Abort(code)


def abort_on_error(comm) -> None:
    """Make an uncaught exception on this rank end the whole MPI job (``comm.Abort(1)``).

    Without it the rank's interpreter would exit while the other ranks wait in
    a collective for ever. The traceback is printed first, prefixed with
    ``hf.mpi: rank r of P``. Installed once per process (``sys.excepthook``).

    Ctrl-C (SIGINT, which ``mpiexec`` forwards to every rank) aborts the job
    too, where SIGINT still has Python's default handler: the ranks would
    otherwise stop after different updates and wait for each other. The loop
    holds SIGINT back during an update and a checkpoint write, so the last
    checkpoint is whole; resume from it.

    ``sys.exit(n)`` on one rank is not an exception this hook sees: run the
    script with ``mpiexec -n P python -m mpi4py script.py``, which aborts the
    job on it (and on any exception raised before ``hf`` is used).
    """
    if _hooked.get("comm") is not None:
        return
    rank, size = _rank_size(comm)
    previous = sys.excepthook

    def hook(kind, value, tb):
        _say_and_abort(
            comm,
            f"hf.mpi: rank {rank} of {size}: uncaught {kind.__name__}; aborting the MPI job "
            "(comm.Abort) so that the other ranks do not wait for ever\n"
            + "".join(traceback.format_exception(kind, value, tb)),
            1,
        )
        previous(kind, value, tb)  # pragma: no cover - Abort does not return

    sys.excepthook = hook
    _hooked["comm"] = comm

    # Ctrl-C reaches every rank (mpiexec forwards it), but each would stop at the end
    # of its own update and wait in the next collective for the others: abort instead.
    # The training loop holds SIGINT back during an update and a checkpoint write, so
    # this runs between updates, and the last checkpoint is whole.
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.default_int_handler:

        def interrupted(signum, frame):
            _say_and_abort(
                comm,
                f"hf.mpi: rank {rank} of {size}: interrupted (Ctrl-C); aborting the MPI job. "
                "Resume from the last checkpoint\n",
                128 + signal.SIGINT,
            )

        signal.signal(signal.SIGINT, interrupted)


# ---------------------------------------------------------------------- sharding
def shard(data, comm=None, *, rank=None, size=None, axis=0):
    """This rank's share of ``data``: every batch dealt round-robin over the ranks.

    Parameters
    ----------
    data : hf.Dataset (any kind, hf.SequenceDataset included) or list of arrays
        The whole data, built the same way on every rank (same arrays, same
        ``batch_size``). A list of arrays (one
        full batch, HF's full-batch mode) gives each array's rows
        ``rank::size`` along ``axis``.
    comm : mpi4py communicator, optional
        Gives ``rank`` and ``size``. With it, ``shard`` is a collective: it
        checks that every rank built the same dataset (kind, name, sizes) and
        gives every rank rank 0's batch order and generator state, so a
        dataset made with ``rng=None`` is drawn the same way everywhere.
    rank, size : int, optional
        Instead of ``comm`` (e.g. to inspect the shards in one process).
    axis : int
        The examples' axis of a list of arrays (default 0).

    Returns
    -------
    ShardedDataset or list of arrays

    Raises
    ------
    ValueError
        When ranks built different datasets, or a batch has fewer examples
        than there are ranks (when it is drawn).
    """
    if comm is not None:
        rank, size = _rank_size(comm)
    if rank is None or size is None:
        raise TypeError("shard() needs comm=..., or rank= and size=")
    rank, size = int(rank), int(size)
    if not (size >= 1 and 0 <= rank < size):
        raise ValueError(f"shard(): rank {rank} is not in range({size})")
    if isinstance(data, ShardedDataset):
        raise TypeError(f"shard(): {data!r} is already sharded; shard the whole dataset once")
    if isinstance(data, Dataset):
        ds = ShardedDataset(data, rank, size)
        if comm is not None:
            _agree_on_dataset(comm, data)
        return ds
    if isinstance(data, (list, tuple)):
        out = []
        for i, x in enumerate(data):
            if not hasattr(x, "shape"):
                raise TypeError(f"shard(): item {i} is a {type(x).__name__}, not an array (wrap sequences "
                                "in an hf.SequenceDataset and shard that)")
            n = x.shape[axis]
            if n < size:
                raise ValueError(f"shard(): array {i} has {n} examples along axis {axis}, fewer than the "
                                 f"{size} ranks")
            out.append(materialize(x[(slice(None),) * (axis % len(x.shape)) + (slice(rank, None, size),)]))
        return type(data)(out)
    raise TypeError(f"shard() takes an hf.Dataset or a list of arrays, got {type(data).__name__}")


def _agree_on_dataset(comm, ds):
    """Check every rank built the same dataset; give every rank rank 0's batch order and generator."""
    summary = (type(ds).__name__, ds.name, ds.batch_size, ds.iteration_size, ds.n_examples, ds.n_batches)
    everyone = comm.allgather(summary)
    if any(other != everyone[0] for other in everyone):
        ranks = "; ".join(f"rank {r}: {other}" for r, other in enumerate(everyone))
        raise ValueError(
            f"hf.mpi.shard: the ranks built different datasets (kind, name, batch_size, iteration_size, "
            f"n_examples, n_batches): {ranks}. Build the same whole dataset on every rank and shard it"
        )
    state = comm.bcast(ds.state_dict() if comm.Get_rank() == 0 else None, root=0)
    ds.load_state_dict(state)


class ShardedDataset(Dataset):
    """One rank's view of a dataset whose batches are dealt round-robin over ``size`` ranks.

    Built by :func:`shard`. It draws the batches of the whole dataset, in its
    order, and returns examples ``rank::size`` of each, reading only those.
    Everything else -- name, batch size, passes, state for checkpoints -- is
    the whole dataset's, so the state is the same on every rank. It is an
    :class:`hf.Dataset`, so both optimizers take it as it is.
    """

    def __init__(self, dataset, rank, size):
        self.dataset = dataset
        self.rank = int(rank)
        self.size = int(size)

    # ------------------------------------------------------------ the whole dataset's attributes
    name = property(lambda self: self.dataset.name)
    batch_size = property(lambda self: self.dataset.batch_size)
    n_examples = property(lambda self: self.dataset.n_examples)
    n_batches = property(lambda self: self.dataset.n_batches)
    epoch = property(lambda self: self.dataset.epoch)
    rng = property(lambda self: self.dataset.rng)
    axis = property(lambda self: self.dataset.axis)
    mask_index = property(lambda self: self.dataset.mask_index)
    batch_axes = property(lambda self: self.dataset.batch_axes)

    @property
    def iteration_size(self):
        return self.dataset.iteration_size

    @iteration_size.setter
    def iteration_size(self, value):
        self.dataset.iteration_size = value

    @property
    def _kind(self):
        return self.dataset._kind

    @property
    def _owner(self):
        return f"{self.dataset._owner} (rank {self.rank} of {self.size})"

    def state_dict(self):
        """The whole dataset's state (the same on every rank)."""
        return self.dataset.state_dict()

    def load_state_dict(self, state):
        self.dataset.load_state_dict(state)

    def check_inputs(self, variables):
        self.dataset.check_inputs(variables)

    # ------------------------------------------------------------ batches
    def __iter__(self):
        return self.iterate()

    def iterate(self):
        """Yield this rank's part of the next ``iteration_size`` batches."""
        for _ in range(self.iteration_size):
            yield self.next_batch()

    def next_batch(self):
        """This rank's part of the whole dataset's next batch.

        A dataset of known size moves its cursor (:meth:`hf.data.FiniteDataset.advance`)
        and reads only this rank's examples of the batch
        (:meth:`~hf.data.FiniteDataset.read` with ``part=slice(rank, None, size)``);
        a callable's batch is drawn whole and sliced.
        """
        ds = self.dataset
        if not isinstance(ds, FiniteDataset):
            return self._slice(ds.next_batch(), "the next batch")
        position = ds.advance()
        self._check(len(ds.examples(position)), f"batch {position} of pass {ds.epoch}")
        return ds.read(position, part=slice(self.rank, None, self.size))

    def take(self, n=None):
        """This rank's part of the whole dataset's ``take(n)``."""
        return self._slice(self.dataset.take(n), f"take({n})")

    def _check(self, n, where):
        if n < self.size:
            raise ValueError(
                f"hf.mpi: {where} of {self.dataset._owner} has {n} examples, fewer than the {self.size} ranks "
                "it is shared among; use a batch_size (and data) of at least as many examples as ranks"
            )

    def _slice(self, batch, where):
        axes = self.dataset.batch_axes
        n = int(np.shape(batch[0])[axes[0]]) if batch else 0
        self._check(n, where)
        out = [materialize(b[(slice(None),) * a + (slice(self.rank, None, self.size),)]) for b, a in zip(batch, axes)]
        mi = self.dataset.mask_index
        if mi is not None:  # trim time-major arrays to this rank's longest sequence
            steps = np.flatnonzero(np.any(out[mi] != 0, axis=1))
            t = int(steps[-1]) + 1 if steps.size else 0
            out = [o[:t] if a == 1 else o for o, a in zip(out, axes)]
        return out

    def __repr__(self):
        return f"ShardedDataset({self.dataset!r}, rank={self.rank}, size={self.size})"
