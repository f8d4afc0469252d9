"""Means over the examples of a batch: the one place where the optimizers sum over examples.

Loss, gradient, Gauss-Newton products and per-example gradient squares are all
computed by calling a compiled function on a batch and averaging the results
over examples here. Large batches are split into chunks of at most
``chunk_size`` examples, evaluated one after another and combined weighted by
their true sizes, so peak memory is bounded by the chunk, not the batch.

The reducer is also the optimizers' one seam to data parallelism: besides the
means it says which process writes checkpoints and logs (:attr:`ExampleMean.is_writer`),
takes the CG batch's head (:meth:`ExampleMean.head`), shards a dataset
(:meth:`ExampleMean.shard`) and checks that the processes hold the same
parameters (:meth:`ExampleMean.check_same`, :meth:`ExampleMean.check_after_update`).
:class:`ExampleMean` gives one process's answers; :func:`reducer_for` builds
:class:`hf.mpi.DistributedMean` for an MPI communicator, so the optimizers and
the training loop never see MPI.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Callable

import numpy as np

from ._checks import positive_int
from .data import Batch, as_batch  # noqa: F401  (as_batch: imported from here before hf.data)

__all__ = ["Batch", "ExampleMean", "as_batch", "call", "reducer_for"]


def reducer_for(comm=None, chunk_size: int | None = None) -> "ExampleMean":
    """The reducer of an optimizer given ``comm=``: :class:`ExampleMean` for one process
    (None), :class:`hf.mpi.DistributedMean` for an mpi4py communicator.

    ``hf.mpi`` (and so mpi4py) is imported only for a communicator: one process
    never imports it.
    """
    if comm is None:
        return ExampleMean(chunk_size)
    from . import mpi

    return mpi.DistributedMean(chunk_size, comm)


class ExampleMean:
    """Average compiled-function outputs over the examples of a batch.

    Parameters
    ----------
    chunk_size : int or None
        Largest number of examples given to one call; None evaluates whole batches.

    Notes
    -----
    A function whose output is a mean over the examples it is given (the loss, its
    gradient, a Gauss-Newton product of a mean loss) gives the batch mean as
    :math:`\\sum_c n_c\\,\\bar f_c / \\sum_c n_c` over chunks :math:`c` of size
    :math:`n_c`: chunks of unequal size are weighted by their true size.

    Every method sums ``n_c · f̄_c`` and ``n_c`` over this process's chunks and
    ends in :meth:`combine`, which divides; a data-parallel subclass
    (:class:`hf.mpi.DistributedMean`) overrides :meth:`combine` alone, to add the
    sums of all processes first.

    The rest of the process-level interface has one process's answers here:
    this process writes (:attr:`is_writer`), a batch's head is its own
    (:meth:`head`), a dataset is not sharded (:meth:`shard`), and there is no
    other process to disagree with (:meth:`check_same`,
    :meth:`check_after_update`).
    """

    #: Check that all processes hold the same parameters every this many updates
    #: (:meth:`check_after_update`); None: never (one process has no other to check).
    consistency_check_every = None

    def __init__(self, chunk_size: int | None = None):
        self.chunk_size = positive_int("chunk_size", chunk_size, allow_none=True)
        #: Set to a dict (e.g. ``collections.Counter()``) to accumulate the seconds spent in
        #: each compiled function, by its name (``hf_gv_cached``, ...): where an update's time goes.
        self.timings = None
        #: The clock of :attr:`timings` (wall-clock; ``time.process_time`` counts this process's CPU only).
        self.clock = time.perf_counter

    def _call(self, fn, batch, *args):
        if self.timings is None:
            return call(fn, batch, *args)
        t0 = self.clock()
        try:
            return call(fn, batch, *args)
        finally:
            name = getattr(fn, "name", None) or repr(fn)
            self.timings[name] = self.timings.get(name, 0.0) + self.clock() - t0

    # ------------------------------------------------------------------ processes
    @property
    def is_writer(self) -> bool:
        """True for the process that writes checkpoints and logs (the only one here)."""
        return True

    def head(self, batch: Batch, fraction: float) -> Batch:
        """The first ``ceil(fraction · N)`` examples (at least one) of a batch of ``N``: the CG batch."""
        return batch.head(max(1, math.ceil(fraction * batch.size)))

    def shard(self, data):
        """This process's share of ``data`` (a dataset or a list of arrays): all of it here."""
        return data

    def check_same(self, arrays, what: str = "the parameters") -> None:
        """Raise unless every process holds bit-identical ``arrays`` (nothing to compare here)."""

    def check_after_update(self, update: int, values: Callable) -> None:
        """After update number ``update``, every :attr:`consistency_check_every` updates,
        :meth:`check_same` on ``values()`` (the parameters); never called here."""
        every = self.consistency_check_every
        if every and update % every == 0:
            self.check_same(values(), f"the parameters after update {update}")

    # ------------------------------------------------------------------ means
    def combine(self, totals: list, count: int) -> list:
        """Means from this process's size-weighted sums ``totals`` over ``count`` examples."""
        if not count:
            raise ValueError("no examples to average over")
        out = []
        for t in totals:  # the sums are _sums' own arrays: divided in place
            if getattr(t, "ndim", 0):
                t /= count
                out.append(t)
            else:
                out.append(t / count)
        return out

    @staticmethod
    def _sums(rows):
        """Size-weighted sums and the example count of ``(outputs, n, owned)`` rows (float64).

        ``owned``: the outputs are fresh arrays no one else holds (a compiled
        PyTensor function's, whose outputs are never its internal storage), scaled
        in place; on a model of millions of parameters each new vector is a
        page-faulting allocation. The sums are this method's own arrays either way.
        """
        totals, count = None, 0
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged loss is reported, not warned about
            for values, n, owned in rows:
                scaled = []
                for v in values:
                    a = np.asarray(v, dtype=np.float64)
                    if owned and a is v and a.ndim and a.flags.writeable:
                        a *= n
                    else:
                        a = a * n
                    scaled.append(a)
                if totals is None:
                    totals = scaled
                else:
                    for k, (t, a) in enumerate(zip(totals, scaled)):
                        if t.ndim:
                            t += a
                        else:
                            totals[k] = t + a
                count += n
        return totals, count

    def _mean(self, rows) -> list:
        """``combine(*_sums(rows))``; one chunk's outputs are its mean as they are.

        A batch of one chunk (no ``chunk_size``, or a batch no larger) has its
        mean in the function's outputs: scaling them by ``n`` and dividing by
        ``n`` again would be two passes over every output (a gradient, each of
        CG's products) that change nothing but the last bit. A subclass that
        combines sums across processes (:class:`hf.mpi.DistributedMean`)
        always goes through :meth:`_sums` and :meth:`combine`.
        """
        if type(self).combine is not ExampleMean.combine or type(self)._sums is not ExampleMean._sums:
            return self.combine(*self._sums(rows))
        rows = iter(rows)
        head = list(itertools.islice(rows, 2))
        if len(head) != 1 or not head[0][1]:
            return self.combine(*self._sums(itertools.chain(head, rows)))
        values, _, owned = head[0]
        out = []
        for v in values:
            a = np.asarray(v, dtype=np.float64)
            if a.ndim == 0:
                out.append(a[()])
            else:  # this method's own array, as combine's are: a caller may write into it
                out.append(a if (owned or a is not v) and a.flags.writeable else a.copy())
        return out

    def __call__(self, fn: Callable, batch: Batch, *args) -> list:
        """Mean over examples of each output of ``fn(*chunk_arrays, *args)`` (float64)."""
        return self.over(fn, [batch], *args)

    def over(self, fn: Callable, batches, *args) -> list:
        """Mean over the examples of several batches (a validation pass), one combination."""
        return self._mean(
            (_outputs(self._call(fn, chunk, *args)), n, _owned(fn))
            for batch in batches for chunk, n in batch.chunks(self.chunk_size)
        )

    def cached(self, forward: Callable, fn: Callable, batch: Batch, max_bytes: int | None = None) -> Callable:
        """``fn``'s mean over ``batch`` as a function of its trailing arguments, with
        ``forward`` evaluated once per chunk now and its outputs passed to every call.

        ``forward(*chunk_arrays)`` returns the values that do not change between
        calls (a Gauss-Newton product's forward pass); the returned function
        computes the mean over examples of ``fn(*chunk_arrays, *cache, *args)``.
        With ``max_bytes``, chunks are cached in order while the cache stays
        within that many bytes; the forward pass of every later chunk is
        recomputed in each call and dropped, so the memory held is bounded
        whatever the batch's size (cut it in chunks with ``chunk_size``). The
        attribute ``nbytes`` of the returned function is the cache's size.
        """
        chunks = list(batch.chunks(self.chunk_size))
        caches, total = [], 0
        for chunk, _ in chunks:
            cache = None
            if max_bytes is None or total < max_bytes:
                cache = list(_outputs(self._call(forward, chunk)))
                size = sum(np.asarray(c).nbytes for c in cache)
                if max_bytes is not None and total + size > max_bytes:
                    cache = None  # over the budget: this chunk and the next recompute their forward pass
                    total = max_bytes
                else:
                    total += size
            caches.append(cache)

        owned = _owned(fn)

        def mean(*args):
            def rows():
                for (chunk, n), cache in zip(chunks, caches):
                    values = cache if cache is not None else list(_outputs(self._call(forward, chunk)))
                    yield _outputs(self._call(fn, chunk, *values, *args)), n, owned

            return self._mean(rows())

        mean.nbytes = int(sum(np.asarray(c).nbytes for cache in caches if cache is not None for c in cache))
        return mean

    def mean_square_per_example(self, fn: Callable, batch: Batch, max_examples: int, closed_form=None) -> np.ndarray:
        """``1/N Σ_i (∇f_i)²`` over the first ``max_examples`` examples, one call each.

        ``fn`` returns the flat gradient as its last output. ``closed_form``, if
        given, returns that mean over a chunk's examples in one call
        (:mod:`hf.per_example`), and is used instead of ``fn``.
        """
        if closed_form is not None:
            return self(closed_form, batch.head(int(max_examples)))[0]

        def squares():
            for chunk, _ in itertools.islice(batch.chunks(1), int(max_examples)):
                g = np.asarray(self._call(fn, chunk)[-1], dtype=np.float64)
                yield [g * g], 1, True

        return self.combine(*self._sums(squares()))[0]


def _owned(fn) -> bool:
    """Whether ``fn`` returns fresh arrays the caller may overwrite: a compiled PyTensor
    function, or a wrapper of one that says so (``fn.fresh_outputs = True``, e.g. a timer)."""
    from pytensor.compile.executor import Function

    return isinstance(fn, Function) or getattr(fn, "fresh_outputs", False) is True


def _outputs(outs):
    return outs if isinstance(outs, (list, tuple)) else [outs]


def call(fn: Callable, batch: Batch, *args):
    """``fn(*batch.arrays, *args)``, with an error that names the batch when the data are at fault.

    A compiled function fails deep inside PyTensor when the user's arrays do not
    fit the graph (a wrong feature dimension, a label out of range); the error is
    re-raised as a ``ValueError`` naming the batch's source and the inputs' names
    and shapes, with PyTensor's message after them. A negative value in an
    integer input that the graph uses as an index (a class label) is refused the
    same way before the call: PyTensor, like numpy, would count it from the end
    (label -1 picks the last class) and train on it without a word.
    """
    for i in index_positions(fn):
        if i < len(batch.arrays):
            a = batch.arrays[i]
            if getattr(a, "size", 0) and np.min(a) < 0:
                where = tuple(int(k) for k in np.argwhere(np.asarray(a) < 0)[0])
                name = _input_names(fn)[i] or f"input {i}"
                raise _data_error(
                    fn, batch,
                    f"input {name!r} holds {np.asarray(a)[where].item()!r} at index {where if len(where) > 1 else where[0]}, "
                    "and the graph uses it as an index (a class label): a negative index would count from the "
                    "end and pick the last class without a word",
                )
    try:
        return fn(*batch.arrays, *args)
    except (ValueError, IndexError, TypeError, AssertionError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise _data_error(fn, batch, f"{type(err).__name__}: {first}") from err


def _input_names(fn) -> list:
    return [getattr(getattr(i, "variable", None), "name", None) for i in getattr(getattr(fn, "maker", None), "inputs", ())]


def _data_error(fn, batch: Batch, reason: str) -> ValueError:
    """The ValueError of :func:`call`: the function, the batch's source, its inputs and ``reason``."""
    names = _input_names(fn)
    shapes = ", ".join(
        f"{names[i] if i < len(names) and names[i] else f'input {i}'} {np.shape(a)} {getattr(a, 'dtype', '')}"
        for i, a in enumerate(batch.arrays)
    )
    where = f"a batch of {batch.source}" if batch.source else "a batch"
    return ValueError(
        f"{getattr(fn, 'name', None) or 'a compiled function'} failed on {where} with inputs [{shapes}]: "
        f"{reason}. Check that the data match the graph's inputs (feature sizes, label ranges)"
    )


#: Ops whose output holds values of their first input unchanged (views, casts, slices, gathers).
_VALUE_PRESERVING = frozenset({"DimShuffle", "Reshape", "SpecifyShape", "Subtensor", "AdvancedSubtensor",
                               "AdvancedSubtensor1", "DeepCopyOp", "OutputGuard", "Assert"})


def index_positions(fn) -> tuple:
    """Positions of ``fn``'s integer inputs that its graph uses as indices (advanced indexing).

    Read once from the compiled graph (``fn.maker.fgraph``, ``scan`` inner graphs
    included) and remembered on ``fn`` (or on ``fn.maker`` when ``fn`` takes no new
    attribute, as a compiled function does not); a callable that is not a compiled
    PyTensor function has none.
    """
    maker = getattr(fn, "maker", None)
    for holder in (fn, maker):
        cached = getattr(holder, "_hf_index_positions", None)
        if cached is not None:
            return cached
    fgraph = getattr(maker, "fgraph", None)
    positions = ()
    if fgraph is not None:
        used = _used_as_index(fgraph.outputs)
        positions = tuple(i for i, v in enumerate(fgraph.inputs)
                          if id(v) in used and str(getattr(v.type, "dtype", "")).startswith(("int", "uint")))
    # A compiled PyTensor function has __slots__: the memo goes on its FunctionMaker (one per function).
    for holder in (fn, maker):
        try:
            holder._hf_index_positions = positions
            break
        except AttributeError:
            continue
    return positions


def _used_as_index(outputs) -> set:
    """Ids of the root variables of ``outputs`` whose values reach an index slot of an
    advanced-indexing op through value-preserving ops only."""
    from pytensor.graph.traversal import io_toposort, graph_inputs

    seeds = []
    for node in io_toposort(list(graph_inputs(outputs)), list(outputs)):
        name = type(node.op).__name__
        if name in ("AdvancedSubtensor", "AdvancedSubtensor1"):
            seeds.extend(node.inputs[1:])
        elif name in ("AdvancedIncSubtensor", "AdvancedIncSubtensor1"):
            seeds.extend(node.inputs[2:])
        elif name == "Scan":
            inner = node.op.inner_inputs
            used = _used_as_index(node.op.inner_outputs)
            n_seqs, n_non = node.op.info.n_seqs, node.op.info.n_non_seqs
            pairs = list(zip(node.inputs[1:1 + n_seqs], inner[:n_seqs]))
            if n_non:
                pairs += list(zip(node.inputs[-n_non:], inner[-n_non:]))
            seeds.extend(outer for outer, v in pairs if id(v) in used)
    found, seen = set(), set()
    while seeds:  # each variable is expanded once: bounded by the graph's size
        v = seeds.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        owner = v.owner
        if owner is None:
            found.add(id(v))
            continue
        op = owner.op
        name = type(op).__name__
        cast = name == "Elemwise" and type(getattr(op, "scalar_op", None)).__name__ in ("Cast", "Identity")
        if (name in _VALUE_PRESERVING or cast) and owner.inputs:
            seeds.append(owner.inputs[0])
    return found
