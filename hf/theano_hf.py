"""theano-hf's public API on top of :class:`hf.HFOptimizer`.

Scripts written for theano-hf (N. Boulanger-Lewandowski's Theano package,
2012-2014: ``hf_optimizer`` and ``SequenceDataset``) run on ``hf`` by changing
their imports::

    from hf.theano_hf import hf_optimizer, SequenceDataset

    gradient = SequenceDataset([xs, ts], batch_size=None, number_batches=1000)
    cg = SequenceDataset([xs, ts], batch_size=None, number_batches=200)
    best = hf_optimizer(params, [x, t], s, [cost, error]).train(gradient, cg, num_updates=50)

In theano-hf a graph has no batch axis: each item a dataset yields (one
sequence, or one mini-batch the graph reduces itself) is one call of the
compiled functions, and a gradient or a Gauss-Newton product is the plain mean
over the ``number_batches`` items of a batch, each item of weight 1. Here such a
batch of items is an :class:`hf.Batch` whose examples are the items, so
:class:`hf.ExampleMean` averages them and every part of an update (CG,
backtracking, ρ, Levenberg-Marquardt, line search, preconditioner, structural
damping, HDF5 checkpoints) is :class:`hf.HFOptimizer`'s.

What differs from theano-hf, and why, is listed in ``docs/legacy.md``; in short:
a step that does not lower the loss on the gradient batch is rejected (theano-hf
keeps it), ρ is measured on one batch, λ is kept in ``[1e-6, 1e6]``, the
checkpoint is an atomic HDF5 file that also holds the datasets' order and
random state, the best parameters are put back into the model, and
``global_backtracking=True`` takes the lowest of the kept CG iterates
(``HFOptimizer(backtracking='global')``), as theano-hf does.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
.. [BBV12] N. Boulanger-Lewandowski, Y. Bengio, P. Vincent, "Modeling temporal
   dependencies in high-dimensional sequences: application to polyphonic music
   generation and transcription", ICML 2012 (theano-hf's paper).
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import sys
import time

import numpy as np
from pytensor.graph.basic import Variable

from . import _checks
from . import cg as _cg
from . import damping as _damping
from .data._array_like import check_specs
from ._loop import Run
from ._rng_state import rng_from_state, rng_state, set_rng_state
from .curvature import StructuralDamping
from .optimizer import HFOptimizer
from .data import Batch
from .update import DampingState

__all__ = ["hf_optimizer", "SequenceDataset", "ItemHFOptimizer"]


# --------------------------------------------------------------------------- datasets


class SequenceDataset:
    """theano-hf's dataset: a shuffled list of items, ``number_batches`` at a time.

    Parameters
    ----------
    data : list of lists of arrays
        One list per graph input, each holding one array per sequence (or per
        mini-batch): ``data[k][i]`` is input ``k`` of sequence ``i``.
    batch_size : int or None
        None: each sequence is one item. An int: each sequence is cut along its
        first axis into chunks of ``batch_size`` steps (the inputs of a sequence
        must then have the same length), each chunk one item.
    number_batches : int
        Items per pass of :meth:`iterate`: a gradient or a Gauss-Newton product
        is their mean.
    minimum_size : int
        With ``batch_size``, a chunk is kept only when at least ``minimum_size``
        steps of its sequence remain from its start (default 10): a short tail
        is dropped. This is theano-hf's rule; it keeps chunks shorter than
        ``minimum_size`` only when ``batch_size < minimum_size``.
    rng : None, int or numpy.random.Generator, keyword-only
        The shuffling order's source. None (default) seeds a Generator from
        numpy's global random state, so ``numpy.random.seed`` makes a script
        repeatable as it did with theano-hf; the Generator's state then travels
        in checkpoints.

    Attributes
    ----------
    items : list of lists of arrays
        The items, in the current shuffled order.
    number_batches : int
    current_batch : int
        Position of the next pass in :attr:`items`.

    Raises
    ------
    TypeError
        For ``data`` that is not a list of lists of arrays, and non-integer sizes.
    ValueError
        For inputs with different numbers of sequences, chunked inputs of
        different lengths, non-finite values, non-positive sizes, or no item left.

    Notes
    -----
    :meth:`iterate` yields ``items[(current_batch + b) % len(items)]`` for
    ``b < number_batches``; :meth:`update` moves ``current_batch`` on by
    ``number_batches`` and reshuffles when the next pass would reach the end of
    the list, as in theano-hf.

    Examples
    --------
    >>> import numpy as np
    >>> xs = [np.arange(25.0).reshape(25, 1)]
    >>> ds = SequenceDataset([xs], batch_size=10, number_batches=2, rng=0)
    >>> sorted(len(item[0]) for item in ds.items)  # the 5-step tail is dropped
    [10, 10]
    """

    _kind = "theano_hf.SequenceDataset"

    def __init__(self, data, batch_size, number_batches, minimum_size=10, *, rng=None):
        owner = "SequenceDataset"
        self.number_batches = _checks.positive_int("number_batches", number_batches, owner)
        batch_size = _checks.positive_int("batch_size", batch_size, owner, allow_none=True)
        minimum_size = _checks.positive_int("minimum_size", minimum_size, owner)
        inputs = _check_data(data, owner)
        items = []
        for i in range(len(inputs[0])):
            arrays = [np.asarray(x[i]) for x in inputs]
            for k, a in enumerate(arrays):
                if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
                    raise ValueError(f"{owner}: data[{k}][{i}] holds NaN or Inf")
            if batch_size is None:
                items.append(arrays)
                continue
            lengths = [len(a) if a.ndim else None for a in arrays]
            if None in lengths or len(set(lengths)) != 1:
                raise ValueError(
                    f"{owner}: with batch_size={batch_size} the inputs of a sequence are cut along their "
                    f"first axis and must have the same length; sequence {i} has lengths {lengths}"
                )
            for start in range(0, lengths[0] - minimum_size + 1, batch_size):
                items.append([a[start:start + batch_size] for a in arrays])
        if not items:
            raise ValueError(
                f"{owner}: no item left: every sequence is shorter than minimum_size={minimum_size} "
                f"(batch_size={batch_size})"
            )
        if rng is None:
            rng = int(np.random.randint(0, 2**31 - 1))  # numpy.random.seed makes the order repeatable
        self.rng = _checks.rng_from("rng", rng, owner)
        self._source = items
        self._order = np.arange(len(items), dtype=np.int64)
        self.items = list(items)
        self.current_batch = 0
        self.shuffle()

    def shuffle(self):
        """Put :attr:`items` in a new random order."""
        self._order = self._order[self.rng.permutation(len(self._order))]
        self.items = [self._source[i] for i in self._order]

    def iterate(self, update=True):
        """Yield the ``number_batches`` items of the current pass.

        Parameters
        ----------
        update : bool
            Move on to the next pass (:meth:`update`) once the items have all
            been yielded (default True); False yields the same items again on
            the next call.

        Yields
        ------
        item : list of arrays
            One array per graph input.
        """
        n = len(self.items)
        for b in range(self.number_batches):
            yield self.items[(self.current_batch + b) % n]
        if update:
            self.update()

    def update(self):
        """Move on to the next ``number_batches`` items, reshuffling at the end of the list."""
        if self.current_batch + self.number_batches >= len(self.items):
            self.shuffle()
            self.current_batch = 0
        else:
            self.current_batch += self.number_batches

    def state_dict(self):
        """Checkpointable state: the order of the items, the position and the generator's state."""
        return {
            "kind": self._kind,
            "n_items": len(self._source),
            "number_batches": self.number_batches,
            "order": self._order.copy(),
            "current_batch": int(self.current_batch),
            "rng": rng_state(self.rng),
        }

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` of a dataset over the same items.

        Raises
        ------
        ValueError
            When the state belongs to another kind of dataset, another number of
            items or of ``number_batches``, or is malformed.
        """
        owner = "SequenceDataset"
        try:
            kind, n, nb = state["kind"], state["n_items"], state["number_batches"]
            order, position, rng = np.asarray(state["order"]), state["current_batch"], state["rng"]
        except (KeyError, TypeError) as err:
            raise ValueError(f"{owner}: malformed dataset state (missing {err})") from err
        if kind != self._kind:
            raise ValueError(f"{owner}: state is from a {kind!r}, not a {self._kind!r}")
        if n != len(self._source) or nb != self.number_batches:
            raise ValueError(
                f"{owner}: state has n_items={n!r}, number_batches={nb!r}; this dataset has "
                f"n_items={len(self._source)}, number_batches={self.number_batches}"
            )
        if order.shape != (n,) or order.dtype.kind not in "iu" or not np.array_equal(np.sort(order), np.arange(n)):
            raise ValueError(f"{owner}: state order is not a permutation of the {n} items")
        if not _checks.is_int(position) or not 0 <= position < n:
            raise ValueError(f"{owner}: state has invalid current_batch={position!r}")
        if isinstance(rng, dict) and rng.get("bit_generator") == type(self.rng.bit_generator).__name__:
            set_rng_state(self.rng, rng)
        else:
            self.rng = rng_from_state(rng)
        self._order = order.astype(np.int64)
        self.items = [self._source[i] for i in self._order]
        self.current_batch = int(position)

    def __repr__(self):
        return f"SequenceDataset(items={len(self.items)}, number_batches={self.number_batches})"


def _check_data(data, owner):
    """``data`` as a list of lists, one per input, all with the same number of sequences."""
    if isinstance(data, np.ndarray) or not isinstance(data, (list, tuple)):
        raise TypeError(f"{owner}: data must be a list (one per graph input) of lists of arrays, "
                        f"got {type(data).__name__}")
    if not data:
        raise ValueError(f"{owner}: data is an empty list; give one list of arrays per graph input")
    inputs = []
    for k, x in enumerate(data):
        if isinstance(x, np.ndarray) or not isinstance(x, (list, tuple)):
            raise TypeError(f"{owner}: data[{k}] must be a list of arrays (one per sequence), "
                            f"got {type(x).__name__}")
        inputs.append(list(x))
    counts = [len(x) for x in inputs]
    if counts[0] == 0:
        raise ValueError(f"{owner}: data[0] holds no sequence")
    for k, n in enumerate(counts):
        if n != counts[0]:
            raise ValueError(f"{owner}: every input must hold the same number of sequences; "
                             f"data[0] has {counts[0]}, data[{k}] has {n}")
    return inputs


# --------------------------------------------------------------------------- batches of items


@dataclasses.dataclass(frozen=True)
class _Items(Batch):
    """A batch whose examples are theano-hf items: ``arrays`` holds one tuple of
    arrays (one per graph input, no batch axis) per item, each of weight 1."""

    @property
    def size(self) -> int:
        return len(self.arrays)

    def chunks(self, chunk_size):
        """One chunk per item (a compiled function takes one item per call)."""
        for item in self.arrays:
            yield Batch(tuple(item), (), None, self.source), 1

    def head(self, n: int) -> "_Items":
        return _Items(self.arrays[:n], (), None, self.source)


class ItemHFOptimizer(HFOptimizer):
    """:class:`hf.HFOptimizer` over theano-hf datasets: items without a batch axis.

    ``train`` is a pair ``(gradient_dataset, cg_dataset)`` of objects with
    theano-hf's dataset methods (``iterate(update)``, ``update()``); ``valid`` is
    such a dataset, a callable returning a list of costs (the first is the
    validation loss), or None (no validation: nothing is restored at the end,
    and patience does not apply). Each update takes one pass of the gradient
    dataset for the gradient, one pass of the CG dataset (the same items for the
    whole update, then ``update()``) for the curvature products and
    backtracking, and averages over items with weight 1.

    Built by :class:`hf_optimizer`; its constructor is :class:`hf.HFOptimizer`'s.

    Attributes
    ----------
    forward_cache_budget : int
        The forward pass of the Gauss-Newton product is cached for the CG
        batch's items when the cache fits in this many bytes (estimated from
        the largest item before each update; default 1 GiB), else recomputed in
        every product, as theano-hf does. A scan's cache can be large: 26 MB
        per sequence for theano-hf's memorization RNN (T = 100, 100 units; three
        ``(T + 1, 100, 100)`` arrays among its values), 26 GB for its
        1,000-sequence CG batch.
    """

    forward_cache_budget = 2**30

    def _start(self, train, valid, cg=None, **unknown):
        if unknown:
            raise TypeError(f"ItemHFOptimizer.iterate() got unexpected keyword argument(s) {sorted(unknown)}")
        if cg is not None:
            raise TypeError("ItemHFOptimizer.iterate(): pass the CG dataset in train=(gradient, cg), not cg=")
        gradient, cg = train
        named = {"gradient": gradient, "cg": cg}
        if valid is not None and hasattr(valid, "iterate"):
            named["validation"] = valid
        datasets = {k: v for k, v in named.items() if hasattr(v, "state_dict") and hasattr(v, "load_state_dict")}
        return Run(train=(gradient, cg), valid=valid, datasets=datasets)

    def _items(self, items, name) -> _Items:
        """The items a dataset's ``iterate`` yields, checked against the graph inputs."""
        items = [tuple(item) for item in items]
        if not items:
            raise ValueError(f"{name}.iterate() yielded no item")
        first = items[0]
        check_specs(name, [(np.ndim(a), np.asarray(a).dtype) for a in first], self.inputs)
        for i, item in enumerate(items):
            if len(item) != len(first):
                raise ValueError(f"{name}: item {i} holds {len(item)} arrays, item 0 holds {len(first)}")
        return _Items(tuple(items), (), None, name)

    def _update(self, train):
        gradient, cg = train
        t0 = time.perf_counter()
        batch = self._items(gradient.iterate(update=True), "gradient_dataset")
        cg_batch = self._items(cg.iterate(update=False), "cg_dataset")
        self.preconditioner_examples = cg_batch.size  # all items of the CG batch, as theano-hf
        self.forward_cache = self._cache_fits(cg_batch)
        metrics = self.step(batch, cg_batch, t0=t0)
        cg.update()
        return metrics

    def mean_square_gradients(self, batch, max_examples):
        """Mean of the squared per-item gradients, one call per item: an item's rows (if it
        has any) are not examples, so no per-row closed form applies."""
        return self.reduce.mean_square_per_example(self._f_loss_grad, self._check_batch(batch), max_examples)

    def _cache_fits(self, batch) -> bool:
        """Whether the forward-pass cache of ``batch`` fits in :attr:`forward_cache_budget`."""
        if getattr(self, "_f_forward", None) is None:  # compiled with forward_cache=False
            return False
        largest = max(batch.arrays, key=lambda item: sum(np.asarray(a).nbytes for a in item))
        outputs = self._f_forward(*largest)
        per_item = sum(np.asarray(o).nbytes for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs]))
        return per_item * batch.size <= self.forward_cache_budget

    def evaluate(self, dataset) -> collections.OrderedDict:
        """Validation metrics: the mean over one pass of a dataset's items, or a callable's costs."""
        if hasattr(dataset, "iterate"):
            values = self.reduce(self._f_loss, self._items(dataset.iterate(), "validation"))
            names = ["loss"] + [n for n, _ in self.monitors]
            return collections.OrderedDict(zip(names, map(float, values)))
        costs = np.ravel(np.asarray(dataset(), dtype=np.float64))
        if costs.size == 0:
            raise ValueError("validation() returned no cost; it must return a list of costs, the first the loss")
        names = ["loss"] + [f"costs[{i}]" for i in range(1, costs.size)]
        return collections.OrderedDict(zip(names, map(float, costs)))

    def _train_validation(self, metrics):
        return None  # no validation: theano-hf neither validates nor stops early


# --------------------------------------------------------------------------- the optimizer


class hf_optimizer:  # noqa: N801 -- theano-hf's name
    """theano-hf's Hessian-free optimizer, compiled on construction.

    Parameters
    ----------
    p : list of shared variables
        The parameters to train.
    inputs : list of TensorVariable
        The graph inputs (targets included), in the order of the arrays of an item.
    s : TensorVariable
        Where the graph is cut for the Gauss-Newton matrix: the loss must be
        convex in ``s`` (e.g. the output layer's pre-sigmoid activation with
        cross-entropy).
    costs : list of scalar TensorVariable
        ``costs[0]`` is the objective; the others are monitored (``costs[i]``).
    h : TensorVariable, optional
        Structural damping [MS11] in theano-hf's form: the hidden states it
        applies to, with values in (0, 1) (``0.5 * (tanh_h + 1)`` for tanh units),
        and a cross-entropy matching loss.
    ha : TensorVariable, optional
        The variable at which that penalty's Gauss-Newton matrix is taken (the
        hidden pre-activations; default ``h``). ``h`` must be computed from it.

    Attributes
    ----------
    optimizer : ItemHFOptimizer
        The :class:`hf.HFOptimizer` doing the work (``history``, ``state_dict()``,
        ``best_loss``, ...).
    p : list of shared variables
    lambda_ : float
        The damping λ of the next update.

    Raises
    ------
    TypeError, ValueError
        For arguments :class:`hf.HFOptimizer` refuses (messages name them), an
        empty ``costs``, or ``ha`` without ``h``.

    Notes
    -----
    With λ the damping and μ ``train``'s ``mu``, CG solves
    :math:`(\\bar G + \\lambda I + \\lambda\\mu\\,\\bar S)\\,p = -\\bar g` where the bars
    are plain means over the items of a batch, :math:`G = J_s^\\top H_L J_s` and,
    with ``h``, :math:`S = J_a^\\top \\nabla^2_a P\\, J_a` for theano-hf's penalty
    :math:`P = \\sum \\mathrm{CE}(\\hat h, h) / T` (``T = h.shape[0]``, :math:`\\hat h` a
    constant copy of ``h``), i.e. :math:`J_h^\\top \\mathrm{diag}(1/(h(1-h)))\\,J_h / T`
    (:class:`hf.StructuralDamping` with ``hidden=h``).
    """

    def __init__(self, p, inputs, s, costs, h=None, ha=None):
        owner = "hf_optimizer"
        if isinstance(costs, Variable) or not isinstance(costs, (list, tuple)):
            raise TypeError(f"{owner}: costs must be a list of scalar expressions, the first the objective, "
                            f"got {type(costs).__name__}")
        costs = list(costs)
        if not costs:
            raise ValueError(f"{owner}: costs is an empty list; give at least the objective")
        if isinstance(inputs, Variable) or not isinstance(inputs, (list, tuple)):
            raise TypeError(f"{owner}: inputs must be a list of variables, got {type(inputs).__name__}")
        spec = None
        if h is None:
            if ha is not None:
                raise ValueError(f"{owner}: ha={ha!r} was given without h; structural damping needs h")
        else:
            spec = StructuralDamping(h if ha is None else ha, weight=0.03, hidden=h)
        monitors = [(f"costs[{i}]", c) for i, c in enumerate(costs[1:], 1)]
        self.optimizer = ItemHFOptimizer(costs[0], s, p, list(inputs), monitors, damping=0.1,
                                         structural_damping=spec)
        self.p = self.optimizer.params
        self.structural = spec is not None
        # What theano-hf's train() sets; batch_Gv, quick_cost and cg read them.
        self.mu = 0.03
        self.global_backtracking = False
        self.preconditioner = False
        self.max_cg_iterations = 250
        self.cg_dataset = None

    @property
    def lambda_(self) -> float:
        """The damping λ of the next update."""
        return self.optimizer.damping

    @lambda_.setter
    def lambda_(self, value):
        lam = _checks.real("lambda_", value, "hf_optimizer", low=0, low_open=True)
        self.optimizer.state = DampingState(lam, self.optimizer.state.cg_x)

    # ------------------------------------------------------------------ training
    def train(self, gradient_dataset, cg_dataset, initial_lambda=0.1, mu=0.03, global_backtracking=False,
              preconditioner=False, max_cg_iterations=250, num_updates=100, validation=None,
              validation_frequency=1, patience=np.inf, save_progress=None):
        """Train with Hessian-free updates; return the best parameters.

        Parameters
        ----------
        gradient_dataset : SequenceDataset or alike
            Each update's gradient is the mean over one pass of
            ``iterate(update=True)``.
        cg_dataset : SequenceDataset or alike
            The curvature products, CG backtracking and the preconditioner use one
            pass of ``iterate(update=False)``, the same items for a whole update;
            ``update()`` is called after it.
        initial_lambda : float
            Initial Tikhonov damping λ (> 0; kept in ``[1e-6, 1e6]``).
        mu : float
            Structural damping μ (≥ 0); the term is weighted by λμ. Unused without ``h``.
        global_backtracking : bool
            theano-hf's choice of the CG iterate with the lowest CG-batch cost
            (``HFOptimizer(backtracking='global')``); False: Martens' rule, step
            back from the last kept iterate while the previous one is lower [Mart10].
        preconditioner : bool
            Martens' diagonal preconditioner ``(mean of squared per-item
            gradients + λ)^0.75`` over the CG batch's items [Mart10].
        max_cg_iterations : int
            CG iteration cap per update.
        num_updates : int
            Updates of this call, counting those of a checkpoint it resumes.
        validation : SequenceDataset or alike, callable, or None
            Validated every ``validation_frequency`` updates (and before the
            first): the mean of ``costs`` over one pass of ``iterate()``, or the
            list of costs the callable returns. Its first cost selects the best
            parameters. None: no validation, no early stopping, and the last
            parameters are returned.
        validation_frequency : int
            Validate every this many updates.
        patience : int or inf
            Stop when the best validation cost is more than ``patience`` updates
            old (checked after each validation).
        save_progress : path or None
            An HDF5 checkpoint (:mod:`hf.checkpoint`) written after every update;
            when the file exists, training resumes from it (parameters, λ, CG warm
            start, best parameters, update count and the datasets' order and
            random state).

        Returns
        -------
        list of ndarray
            The parameters with the lowest validation cost (the last ones without
            validation); the model's shared variables hold them too.

        Raises
        ------
        TypeError
            For an unknown keyword, or arguments of the wrong type.
        ValueError
            For out-of-range values (the message names the argument and value).
        """
        owner = "hf_optimizer.train()"
        for name, ds, needs in (("gradient_dataset", gradient_dataset, ("iterate",)),
                                ("cg_dataset", cg_dataset, ("iterate", "update"))):
            missing = [m for m in needs if not callable(getattr(ds, m, None))]
            if missing:
                raise TypeError(f"{owner}: {name} must have the method(s) {missing} of a theano-hf dataset "
                                f"(e.g. hf.theano_hf.SequenceDataset), got {type(ds).__name__}")
        opt = self.optimizer
        lo, hi = opt.config.min_damping, opt.config.max_damping
        initial_lambda = _checks.real("initial_lambda", initial_lambda, owner, low=lo, high=hi)
        mu = _checks.real("mu", mu, owner, low=0)
        global_backtracking = _checks.boolean("global_backtracking", global_backtracking, owner)
        preconditioner = _checks.boolean("preconditioner", preconditioner, owner)
        max_cg_iterations = _checks.positive_int("max_cg_iterations", max_cg_iterations, owner)
        num_updates = _checks.positive_int("num_updates", num_updates, owner)
        validation_frequency = _checks.positive_int("validation_frequency", validation_frequency, owner)
        patience = _checks.real("patience", patience, owner, low=0, allow_inf=True)
        if validation is not None and not (hasattr(validation, "iterate") or callable(validation)):
            raise TypeError(f"{owner}: validation must be a dataset with iterate(), a callable returning a "
                            f"list of costs, or None, got {type(validation).__name__}")
        if save_progress is not None:
            try:
                save_progress = os.fspath(save_progress)
            except TypeError:
                raise TypeError(f"{owner}: save_progress must be a path or None, got {save_progress!r}") from None
        if preconditioner and not opt.inputs:
            raise ValueError(f"{owner}: preconditioner=True needs per-item gradients, so the graph needs inputs")
        self.mu, self.global_backtracking = mu, global_backtracking
        self.preconditioner, self.max_cg_iterations = preconditioner, max_cg_iterations
        self.cg_dataset = cg_dataset
        opt.config = dataclasses.replace(opt.config, max_cg_iters=max_cg_iterations,
                                         structural_weight=mu if self.structural else 0.0,
                                         backtracking="global" if global_backtracking else "martens")
        opt.preconditioner = preconditioner
        opt.initial_damping = initial_lambda
        opt.state = DampingState(initial_lambda, opt.state.cg_x)  # a checkpoint, if any, overrides both
        # theano-hf counts patience in updates; hf counts validations.
        hf_patience = sys.maxsize if math.isinf(patience) else int(patience // validation_frequency)

        def report(metrics, valid):
            print(_update_line(opt, metrics, num_updates), flush=True)

        if save_progress is not None and os.path.exists(save_progress):
            print(f"resuming from {save_progress}", flush=True)
        opt.train((gradient_dataset, cg_dataset), validation, max_updates=num_updates, patience=hf_patience,
                  validate_every=validation_frequency, checkpoint=save_progress, callback=report, progress=False)
        return opt.get_param_values()

    # ------------------------------------------------------------------ theano-hf's helpers
    def _cg_items(self):
        if self.cg_dataset is None:
            raise ValueError("hf_optimizer: no cg_dataset yet; call train() or set cg_dataset first")
        return self.optimizer._items(self.cg_dataset.iterate(update=False), "cg_dataset")

    def quick_cost(self, delta=0):
        """The objective on the CG dataset's current items at the parameters plus ``delta``
        (a flat vector or one array per parameter; a number means no change)."""
        opt = self.optimizer
        if np.isscalar(delta):
            x = np.zeros(opt.n_params)
        elif isinstance(delta, (list, tuple)):
            x = np.concatenate([np.ravel(np.asarray(d, dtype=np.float64)) for d in delta])
        else:
            x = np.asarray(delta, dtype=np.float64)
        return opt.loss_at(opt._theta() + x, self._cg_items())

    def batch_Gv(self, vector, lambda_=None):  # noqa: N802 -- theano-hf's name
        """``(G + λI + λμ S) v`` averaged over the CG dataset's current items (λ: ``lambda_``)."""
        lam = self.lambda_ if lambda_ is None else float(lambda_)
        v = np.asarray(vector, dtype=np.float64)
        return self.optimizer.gv(v, self._cg_items(), lam * self.mu) + lam * v

    def cg(self, b):
        """Solve ``batch_Gv(x) = b`` by truncated CG from the last solution, with backtracking.

        Returns
        -------
        (cost, x, iteration, iterations)
            ``quick_cost`` of the chosen iterate, the iterate, the CG iteration it
            came from (global minimum of ``quick_cost`` with
            ``global_backtracking``, else Martens' rule), and the iterations run.
        """
        b = np.asarray(b, dtype=np.float64)
        psolve = None
        if self.preconditioner:
            opt = self.optimizer
            items = self._cg_items()
            diag = _damping.martens_preconditioner(opt.mean_square_gradients(items, items.size), self.lambda_)
            psolve = lambda r: r / diag  # noqa: E731
        x0 = getattr(self, "_cg_last_x", None)
        run = _cg.cg(self.batch_Gv, b, x0, psolve=psolve, max_iters=self.max_cg_iterations)
        self._cg_last_x = run.x.copy()
        iterations = [i for i, _ in run.kept]
        if self.global_backtracking:
            values = [float(self.quick_cost(x)) for _, x in run.kept]
            j = int(np.argmin(values))
            chosen = (values[j], run.kept[j][1])
        else:
            bt = _damping.backtrack([x for _, x in run.kept], self.quick_cost)
            j, chosen = bt.index, (bt.objective, bt.x)
        return chosen[0], chosen[1], iterations[j], run.iterations


def _update_line(opt, m, num_updates) -> str:
    """One line per update: the gradient batch's costs, λ, CG, ρ and the validation costs."""
    costs = [m["loss"]] + [m[n] for n, _ in opt.monitors]
    line = (f"update {opt.call_updates}/{num_updates}: costs [{', '.join(f'{c:.6g}' for c in costs)}]"
            f" lambda {m['damping']:.4g}, cg {m['cg_iters']} iterations (step from iteration {m['backtrack']}),"
            f" rho {m['rho']:.3g}, {'step rate ' + format(m['step_rate'], '.3g') if m['accepted'] else 'step rejected'}")
    if "valid_loss" in m:
        names = ["valid_loss"] + [k for k in m if k.startswith("valid_costs[")]
        line += f", validation [{', '.join(f'{m[k]:.6g}' for k in names)}]"
        if opt.bad_validations == 0:
            line += " *best"
    return line
