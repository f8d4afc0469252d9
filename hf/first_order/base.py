"""The shared base of the first-order optimizers: graph, keywords, momentum, clipping, loop.

An algorithm subclasses :class:`Optimizer` (or another algorithm) and writes,
following downhill's layout:

- ``hyperparameters``, a class attribute: the declarations
  (:class:`~hf.first_order.hyperparameters.Hyperparameter`) of the keywords it
  adds to those of its base classes. Their checked values become attributes of
  the same name before the graph is built; ``_prepare(self, **hyper)`` may
  derive more from them (e.g. an EWMA weight from a halflife);
- ``_get_updates_for(self, param, grad)`` yields ``(shared, new_value)`` pairs.
  The pair whose first item is ``param`` itself carries the *step* ``Δ`` (the
  base subtracts it, through momentum when asked); every other pair updates an
  accumulator created with :meth:`Optimizer._slot`.

Everything else lives here: finding parameters and inputs, validating keywords,
gradient clipping, classical and Nesterov momentum, monitors, compiling, the
per-epoch loop (through :class:`hf._loop.Trainer`) and the optimizer state for
checkpoints.
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import textwrap
import time
import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable

from .. import _checks, _compile
from .._loop import Run, Trainer, log, monitor_pairs
from ..graph import check_connected, check_inputs_used, find_inputs_and_params, is_trainable
from .._rng_state import rng_from_state, rng_state, set_rng_state
from ..data import Batch, BatchList, Dataset, as_dataset
from ..data._coerce import is_batch_list
from ..reduce import ExampleMean
from . import hyperparameters as hp
from .hyperparameters import HYPERPARAMETERS, halflife_to_decay  # noqa: F401  (halflife_to_decay: old home)

__all__ = ["Optimizer", "build", "minimize", "HYPERPARAMETERS", "LOOP_KEYWORDS", "BUILD_KEYWORDS"]

#: Keywords of the training loop (handled by :class:`hf._loop.Trainer`) and their defaults.
LOOP_KEYWORDS = collections.OrderedDict(
    patience=5,
    validate_every=10,
    min_improvement=0.0,
    checkpoint=None,
    checkpoint_every=1,
    callback=None,
    progress=None,
)

# Evaluating "no data" (a graph without inputs) is one call of the compiled function.
_NO_DATA = object()


#: The Dataset keywords downhill users pass to iterate(), minimize() and get_updates().
DATASET_KEYWORDS = ("batch_size", "iteration_size", "axis", "rng")

#: Arguments downhill defines for build() and minimize() that code written for it
#: also passes to iterate() (downhill ignored them there). They are accepted;
#: ``train_batches`` and ``valid_batches`` set the batches per epoch and per
#: validation of data given as arrays, the others are fixed when the optimizer is
#: built, and a value other than the optimizer's is ignored with a warning.
BUILD_KEYWORDS = ("loss", "params", "inputs", "algo", "updates", "monitors", "monitor_gradients",
                  "hv_method", "train_batches", "valid_batches")


class _Unmoved:
    """The training dataset, evaluated as validation data with its cursor put back after."""

    def __init__(self, dataset):
        self.dataset = dataset


def _key(name, value):
    """Hashable stand-in for a hyperparameter value in the cache of compiled steps.

    Symbolic values count by identity; a number held in one of the optimizer's
    shared scalars does not count at all (the step reads the shared scalar).
    """
    if isinstance(value, Variable):
        return ("var", id(value))
    declaration = hp.BY_NAME.get(name)
    if declaration is not None and declaration.attribute:
        return ("shared",)
    return value


# --------------------------------------------------------------------------- optimizer


class Optimizer(Trainer):
    """Base class of the first-order optimizers (downhill 0.4.0's ``Optimizer``).

    Parameters
    ----------
    loss : scalar TensorVariable
        The loss to minimize, a mean over the examples of a batch.
    params : list of shared variables, optional
        Parameters to train. Default: the floating-point shared variables of
        ``loss`` in the order of :func:`find_inputs_and_params` (targets of
        ``updates`` left out). Read the order from :attr:`params`.
    inputs : list of TensorVariable, optional
        Graph inputs, in the order of the arrays of a batch. Default: the free
        inputs of ``loss`` and the monitors, sorted by name.
    updates : sequence of (shared, expression) pairs, optional
        Extra updates applied with every training step (not during evaluation).
    monitors : sequence of (name, scalar expression) pairs, or dict, optional
        Quantities reported beside the loss, averaged over the examples.
    monitor_gradients : bool, optional
        Also report ``grad(<param name>)``, the squared norm of each
        parameter's gradient.

    Notes
    -----
    Hyperparameters are keywords of :meth:`iterate`, :meth:`minimize` and
    :meth:`get_updates` (see :data:`HYPERPARAMETERS`, :data:`LOOP_KEYWORDS`).
    With ``g`` the gradient of one mini-batch, clipped elementwise to
    ``[-max_gradient_elem, max_gradient_elem]`` when that is positive, else
    rescaled per parameter to norm at most ``max_gradient_norm`` when that is
    positive, each algorithm computes a step ``Δ(g)`` and the parameter moves by

    - no momentum: :math:`\\theta \\leftarrow \\theta - \\Delta`;
    - classical momentum: :math:`v \\leftarrow \\mu v - \\Delta`,
      :math:`\\theta \\leftarrow \\theta + v`;
    - ``nesterov=True``: :math:`v \\leftarrow \\mu^2 v - (1 + \\mu)\\Delta`,
      :math:`\\theta \\leftarrow \\theta + v`, downhill's form of Nesterov's
      accelerated gradient [Sut13]_.

    One update of the training loop is one *epoch*: ``iteration_size``
    mini-batches of the training :class:`hf.Dataset`. The loop (validation every
    ``validate_every`` epochs, ``patience`` validations, relative
    ``min_improvement``, best parameters, checkpoints) is
    :class:`hf._loop.Trainer`'s.

    Once :meth:`iterate` (or :meth:`get_updates`) has set them, the
    hyperparameters the step reads are float64 shared scalars with downhill's
    attribute names: ``learning_rate``, and per algorithm ``ewma`` (from
    ``rms_halflife``), ``epsilon`` (``rms_regularizer``), ``beta1``, ``beta2``,
    ``beta1_decay``, ``step_increase``, ``step_decrease``, ``min_step`` and
    ``max_step`` (the ``rprop_*`` keywords). ``opt.learning_rate.set_value(0.01)``
    between updates changes the next steps without compiling anything; a
    keyword given to the next :meth:`iterate` call sets it again (a value
    left out goes back to its default). The other keywords (``momentum``,
    ``nesterov``, gradient clipping) are plain attributes built into the
    step, and the keyword values themselves stay attributes of their own names
    (``opt.rms_halflife``). A symbolic ``learning_rate`` or ``momentum`` given
    as a keyword is used as it is.

    Optimizer state (accumulators, velocities, step counters, the random
    generator of :class:`ESGD`) lives in shared variables owned by the
    optimizer, one per (parameter, slot). They persist across calls of
    :meth:`iterate` and :meth:`get_updates` and travel in :meth:`state_dict`
    and checkpoints, so a resumed run continues bit-identically.

    References
    ----------
    .. [Sut13] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
       initialization and momentum in deep learning", ICML 2013.
    """

    _loop_defaults = {"max_updates": None, "patience": 5, "validate_every": 10}
    _progress_style = "lines"

    _registry: dict = {}
    #: Declarations of the hyperparameters this class adds to those of its bases
    #: (:mod:`hf.first_order.hyperparameters`); the base's are shared by every algorithm.
    hyperparameters: tuple = (hp.LEARNING_RATE, hp.MOMENTUM, hp.NESTEROV, hp.MAX_GRADIENT_NORM, hp.MAX_GRADIENT_ELEM)
    #: Names of inherited hyperparameters this algorithm accepts but does not use.
    unused_hyperparameters: tuple = ()
    #: Hyperparameters this algorithm always sets to one value (a value given is ignored).
    fixed_hyperparameters: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Optimizer._registry[cls.__name__.lower()] = cls
        if cls.__dict__.get("__doc__"):
            cls.__doc__ = inspect.cleandoc(cls.__doc__) + "\n\n" + cls._hyperparameter_doc()

    @classmethod
    def _hyperparameter_doc(cls):
        """The "Hyperparameters" section appended to an algorithm's docstring."""
        lines = ["Hyperparameters", "---------------"]
        own = cls._own_hyperparameters()
        for h in own.values():
            if h.name in cls.fixed_hyperparameters:
                value = cls.fixed_hyperparameters[h.name]
                lines += [dataclasses.replace(h, default=value).describe(),
                          f"    Always {value!r} here: a value given is ignored."]
            else:
                lines.append(h.describe())
        unused = [n for n in HYPERPARAMETERS if n not in own]
        if unused:
            lines += ["", textwrap.fill("Accepted and ignored (logged), so that one keyword dictionary can drive "
                                        "several algorithms: " + ", ".join(unused) + ".", 79)]
        return "\n".join(lines)

    def __init__(self, loss, params=None, inputs=None, updates=(), monitors=(), monitor_gradients=False):
        owner = type(self).__name__
        if not isinstance(loss, Variable) or loss.ndim != 0:
            raise ValueError(f"{owner}: loss must be a scalar symbolic expression, got {loss!r}")
        self.loss = loss
        self.monitors = monitor_pairs(monitors)
        if isinstance(updates, dict):
            updates = list(updates.items())
        self.user_updates = [tuple(u) for u in updates]
        for i, u in enumerate(self.user_updates):
            if len(u) != 2 or not isinstance(u[0], SharedVariable):
                raise TypeError(f"{owner}: updates[{i}] must be a (shared variable, expression) pair, got {u!r}")
        found_inputs, found_params = find_inputs_and_params(
            loss, [e for _, e in self.monitors], exclude=[u[0] for u in self.user_updates]
        )
        self.params = list(found_params if params is None else params)
        if not self.params:
            raise ValueError(f"{owner}: no parameters: the loss has no floating-point shared variables")
        for i, p in enumerate(self.params):
            if not is_trainable(p):
                raise TypeError(f"{owner}: params[{i}] must be a floating-point shared variable, got {p!r}")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{owner}: params lists a variable twice")
        self.inputs = list(found_inputs if inputs is None else inputs)
        if inputs is not None:  # found inputs are the graph's own free inputs
            check_inputs_used(
                self.inputs, [loss] + [e for _, e in self.monitors] + [u[1] for u in self.user_updates], owner
            )
        self.monitor_gradients = bool(monitor_gradients)
        check_connected(loss, self.params, "the loss", owner=owner)
        self._grads = pytensor.grad(loss, self.params)
        self.monitor_names = ["loss"] + [n for n, _ in self.monitors]
        self._monitor_exprs = [loss] + [e for _, e in self.monitors]
        if self.monitor_gradients:  # downhill's names: grad(<name>), unnamed ones counted
            unnamed = 0
            for p, g in zip(self.params, self._grads):
                if p.name:
                    label = p.name
                else:
                    label, unnamed = f"unnamed{unnamed}", unnamed + 1
                self.monitor_names.append(f"grad({label})")
                self._monitor_exprs.append((g * g).sum())
        self._slots = collections.OrderedDict()  # (owner, slot) -> shared variable
        self._slot_init = {}  # (owner, slot) -> initial value, or a function returning it
        self._shared_hyper = {}  # attribute name -> float64 shared scalar of a hyperparameter
        self._random = None  # shared numpy Generator (ESGD)
        self._step_fns = {}
        self._f_step = None
        self._f_eval = None
        self.reduce = ExampleMean()  # no chunking: one call per batch
        self._init_loop()

    # ------------------------------------------------------------------ keywords
    @classmethod
    def _own_hyperparameters(cls):
        """The hyperparameters this algorithm uses: name -> declaration, base classes' first."""
        own = collections.OrderedDict()
        for klass in reversed(cls.__mro__):
            for h in klass.__dict__.get("hyperparameters", ()):
                own[h.name] = h
        for name in cls.unused_hyperparameters:
            own.pop(name, None)
        return own

    def _split_kwargs(self, kwargs, where):
        """Check keywords; return (this algorithm's hyperparameters with defaults, loop keywords).

        Every hyperparameter of :data:`HYPERPARAMETERS` is accepted and checked;
        those this algorithm does not use are left out of the result (and logged).
        """
        owner = f"{type(self).__name__}.{where}()"
        kwargs = {k: v for k, v in kwargs.items() if k not in BUILD_KEYWORDS or self._build_keyword(k, v, owner)}
        own = self._own_hyperparameters()
        declared = {**hp.BY_NAME, **own}
        unknown = [k for k in kwargs if k not in declared and k not in LOOP_KEYWORDS]
        if unknown:
            known = ", ".join(sorted({*declared, *LOOP_KEYWORDS, *BUILD_KEYWORDS}))
            raise TypeError(
                f"{owner} got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; known: {known}"
            )
        hyper = collections.OrderedDict((name, h.default) for name, h in own.items())
        ignored = []
        for k, v in kwargs.items():
            if k in LOOP_KEYWORDS:
                continue
            value = declared[k].check(v, owner)
            if k in own:
                hyper[k] = value
            else:
                ignored.append(k)
        for k, v in self.fixed_hyperparameters.items():
            if k in kwargs and hyper[k] != v:
                ignored.append(f"{k} (always {v!r})")
            hyper[k] = v
        if ignored:
            log.info("%s: %s not used by this algorithm (ignored)", owner, ", ".join(ignored))
        self._check_hyperparameters(hyper, owner)
        loop = collections.OrderedDict((k, kwargs.get(k, d)) for k, d in LOOP_KEYWORDS.items())
        return hyper, loop

    def _build_keyword(self, name, value, owner):
        """Handle a :data:`BUILD_KEYWORDS` argument given to ``owner``; return False (consumed).

        ``train_batches`` and ``valid_batches`` are applied by :meth:`_start`; the
        other arguments are the optimizer's own, so one that asks for something
        else is ignored with a warning.
        """
        if name in ("train_batches", "valid_batches"):
            return False
        if name == "monitor_gradients":
            same = bool(value) == self.monitor_gradients
        elif name == "algo":
            same = isinstance(value, str) and value.lower() == type(self).__name__.lower()
        elif name == "hv_method":
            same = isinstance(value, str) and value.lower() == getattr(self, "hv_method", None)
        elif name == "loss":
            same = value is self.loss
        elif name in ("params", "inputs"):
            mine = getattr(self, name)
            same = value is None or (isinstance(value, (list, tuple)) and len(value) == len(mine)
                                     and all(v is m for v, m in zip(value, mine)))
        else:
            same = value is None or (isinstance(value, (list, tuple, dict)) and len(value) == 0)
        if not same:
            warnings.warn(f"{owner}: {name}={value!r} ignored: it is an argument of build() and minimize(), fixed "
                          "when the optimizer is built", UserWarning, stacklevel=5)
        return False

    # ------------------------------------------------------------------ algorithm hooks
    @classmethod
    def _check_hyperparameters(cls, hyper, owner):
        """Check hyperparameters against each other (each alone is already checked)."""

    def _prepare(self, **hyper):
        """Store the hyperparameters (checked values) as attributes.

        A keyword's value becomes the attribute of its name. A hyperparameter
        declared with an ``attribute`` also sets the optimizer's float64 shared
        scalar of that name (created on first use, then reused, so compiled steps
        keep reading it), or, given as a symbolic scalar, puts that variable
        there. Algorithms that derive more from the values extend this and call
        ``super()._prepare``.
        """
        for name, value in hyper.items():
            declaration = hp.BY_NAME.get(name)
            attribute = declaration.attribute if declaration is not None else ""
            if attribute:
                if isinstance(value, Variable):
                    setattr(self, attribute, value)
                else:
                    shared = self._shared_hyper.get(attribute)
                    if shared is None:
                        shared = self._shared_hyper[attribute] = pytensor.shared(np.float64(0.0), name=attribute)
                    shared.set_value(np.float64(declaration.shared_value(value)))
                    setattr(self, attribute, shared)
                if attribute == name:
                    continue
            setattr(self, name, value)

    def _begin(self):
        """Yield updates of optimizer-wide state (step counters, random generators)."""
        return iter(())

    def _get_updates_for(self, param, grad):
        """Yield ``(param, Δ)`` and ``(accumulator, new value)`` pairs for one parameter."""
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for algorithms
    @staticmethod
    def _as(value, like):
        """``value`` as a scalar of ``like``'s dtype (a constant, or a cast symbolic scalar)."""
        if isinstance(value, Variable):
            return pt.cast(value, like.dtype)
        return pt.constant(np.asarray(value, dtype=like.dtype))

    def _slot(self, param, name, value=0.0):
        """The persistent accumulator ``name`` of ``param`` (created filled with ``value``).

        ``value`` may be a shared scalar (e.g. the learning rate): the
        accumulator then starts, and restarts, from its value at that time.
        """
        owner = "" if param is None else self._param_names()[self._param_index(param)]
        key = (owner, name)
        if key not in self._slots:
            if param is None:
                shape, dtype, label = None, None, name
            else:
                shape, dtype, label = param.get_value(borrow=True).shape, param.dtype, f"{owner}_{name}"

            def initial(value=value):
                if isinstance(value, SharedVariable):
                    value = value.get_value()
                return np.asarray(value) if shape is None else np.full(shape, value, dtype=dtype)

            self._slot_init[key] = initial if isinstance(value, SharedVariable) else initial()
            self._slots[key] = pytensor.shared(self._initial(key), name=label)
        return self._slots[key]

    def _initial(self, key):
        """A fresh copy of the initial value of accumulator ``key``."""
        init = self._slot_init[key]
        return init() if callable(init) else init.copy()

    def _global_slot(self, name, value):
        """An optimizer-wide accumulator (e.g. a step counter)."""
        return self._slot(None, name, value)

    def _param_index(self, param):
        for i, p in enumerate(self.params):
            if p is param:
                return i
        raise ValueError(f"{param!r} is not one of the optimizer's params")

    def _random_generator(self, rng=None):
        """Create the shared numpy Generator behind random draws in the graph.

        ``rng`` is None (seed 0), a non-negative int seed, a Generator (used as
        is) or anything else :func:`hf._checks.rng_from` takes.
        """
        generator = _checks.rng_from("rng", rng, type(self).__name__, default_seed=0)
        self._random = pytensor.shared(generator, name="rng")
        return self._random

    def _clip(self, grad):
        if self.max_gradient_elem > 0:
            c = self._as(self.max_gradient_elem, grad)
            return pt.clip(grad, -c, c)
        if self.max_gradient_norm > 0:
            c = self._as(self.max_gradient_norm, grad)
            norm = pt.sqrt((grad * grad).sum())
            return grad * pt.minimum(self._as(1.0, grad), c / norm)
        return grad

    # ------------------------------------------------------------------ updates
    def get_updates(self, **kwargs):
        """Update pairs for one training step, to compile yourself.

        Parameters
        ----------
        **kwargs
            Hyperparameters (:data:`HYPERPARAMETERS`); loop keywords and
            downhill's :data:`BUILD_KEYWORDS` are accepted and ignored here.

        Returns
        -------
        iterator of (shared variable, expression)
            Updates of the parameters and of the optimizer's accumulators, e.g.
            ``pytensor.function(inputs, loss, updates=list(opt.get_updates(learning_rate=0.1)))``.
            The user's ``updates`` are not included. They read the
            optimizer's shared hyperparameters (``opt.learning_rate``, ...),
            which a later :meth:`get_updates` or :meth:`iterate` call sets
            anew.

        Raises
        ------
        TypeError
            For an unknown keyword.
        ValueError
            For an invalid value.
        """
        dataset_kw = {k: kwargs.pop(k) for k in DATASET_KEYWORDS if k in kwargs}
        if dataset_kw:
            log.info("%s.get_updates(): %s concern the data, which get_updates() does not see (ignored)",
                     type(self).__name__, ", ".join(dataset_kw))
        hyper, _ = self._split_kwargs(kwargs, "get_updates")
        updates = self._updates_from(hyper)
        self._reset_accumulators()  # fresh accumulators for each set of updates, as in downhill
        return iter(updates)

    def _reset_accumulators(self):
        for key, var in self._slots.items():
            var.set_value(self._initial(key))

    def _begin_call(self):
        """A new ``iterate`` call starts its accumulators afresh (downhill's behaviour)."""
        self._reset_accumulators()

    def _updates_from(self, hyper):
        self._prepare(**hyper)
        updates = list(self._begin())
        for param, grad in zip(self.params, self._grads):
            grad = self._clip(grad)
            for var, new in self._get_updates_for(param, grad):
                if var is not param:
                    updates.append((var, pt.cast(new, var.dtype)))
                    continue
                delta = new
                if not isinstance(self.momentum, Variable) and self.momentum == 0:
                    updates.append((param, pt.cast(param - delta, param.dtype)))
                    continue
                mu = self._as(self.momentum, param)
                vel_tm1 = self._slot(param, "vel")
                if self.nesterov:
                    vel_t = mu * mu * vel_tm1 - (self._as(1.0, param) + mu) * delta
                else:
                    vel_t = mu * vel_tm1 - delta
                updates.append((vel_tm1, pt.cast(vel_t, param.dtype)))
                updates.append((param, pt.cast(param + vel_t, param.dtype)))
        return updates

    # ------------------------------------------------------------------ compiled functions
    def _graph_key(self):
        """Settings other than hyperparameters that the compiled step depends on."""
        return ()

    def _compile_step(self, hyper):
        key = tuple((k, _key(k, v)) for k, v in hyper.items()) + self._graph_key()
        if key not in self._step_fns:
            label = type(self).__name__
            log.info("compiling %s optimizer", label)
            updates = self.user_updates + self._updates_from(hyper)
            self._step_fns[key] = _compile.function(self.inputs, self._monitor_exprs, updates=updates, name=label)
        else:
            self._prepare(**hyper)
        self._f_step = self._step_fns[key]
        return self._f_step

    def _compile_eval(self):
        if self._f_eval is None:
            log.info("compiling evaluation function")
            self._f_eval = _compile.function(self.inputs, self._monitor_exprs, name="evaluation")
        return self._f_eval

    # ------------------------------------------------------------------ data
    def _dataset(self, data, name, **kwargs):
        """``data`` as a dataset by :func:`hf.data.as_dataset`'s rule, a list of lists of
        arrays being downhill's list of batches, checked against the graph's inputs."""
        return as_dataset(data, name, inputs=self.inputs, required=True, batch_lists=True,
                          owner=type(self).__name__, **kwargs)

    def _batches(self, ds):
        """One pass of ``ds`` as :class:`hf.Batch` objects (one empty batch without data)."""
        if ds is None:
            yield Batch((), ())
            return
        yield from ds.batches()

    def _mean(self, fn, ds):
        """Outputs of ``fn`` averaged over the examples of one pass of ``ds`` (float64)."""
        values = self.reduce.over(fn, self._batches(ds))  # one call per batch, weighted by size
        return collections.OrderedDict(zip(self.monitor_names, map(float, values)))

    def evaluate(self, dataset):
        """Loss and monitors averaged over the examples of one pass of ``dataset``.

        Parameters
        ----------
        dataset : hf.Dataset, array, list of arrays, callable or None
            None when the graph has no inputs (data in shared variables).

        Returns
        -------
        OrderedDict
            ``'loss'``, the monitors, and ``grad(<param>)`` with ``monitor_gradients``.
            Batches are weighted by their number of examples.
        """
        if isinstance(dataset, _Unmoved) and isinstance(dataset.dataset, BatchList):
            dataset = dataset.dataset
        if isinstance(dataset, _Unmoved):
            state = dataset.dataset.state_dict()
            try:
                return self._mean(self._compile_eval(), dataset.dataset)
            finally:
                dataset.dataset.load_state_dict(state)
        ds = None if dataset is _NO_DATA else self._dataset(dataset, "dataset")
        return self._mean(self._compile_eval(), ds)

    def _update(self, train):
        """One epoch: a training step on each of ``iteration_size`` mini-batches."""
        t0 = time.perf_counter()
        metrics = self._mean(self._f_step, train)
        metrics["seconds"] = time.perf_counter() - t0
        return metrics

    # ------------------------------------------------------------------ state
    def _optimizer_state(self):
        slots = collections.OrderedDict()
        globals_ = collections.OrderedDict()
        for (owner, name), var in self._slots.items():
            value = var.get_value(borrow=False)
            if owner:
                slots.setdefault(owner, collections.OrderedDict())[name] = value
            else:
                globals_[name] = value
        return {
            "algorithm": type(self).__name__,
            "slots": dict(slots),
            "global": dict(globals_),
            "rng": None if self._random is None else rng_state(self._random.get_value(borrow=True)),
        }

    def _load_optimizer_state(self, state):
        owner = type(self).__name__
        if state.get("algorithm", owner) != owner:
            raise ValueError(f"{owner}: the saved optimizer state is from {state['algorithm']!r}")
        names = self._param_names()
        saved = {}
        for pname, slots in (state.get("slots") or {}).items():
            if pname not in names:
                raise ValueError(f"{owner}: saved state has accumulators for unknown parameter {pname!r}")
            for name, value in slots.items():
                saved[(pname, name)] = np.asarray(value)
        for name, value in (state.get("global") or {}).items():
            saved[("", name)] = np.asarray(value)
        for key, value in saved.items():
            pname, name = key
            if key in self._slots:
                var = self._slots[key]
                shape = var.get_value(borrow=True).shape
                if value.shape != shape:
                    raise ValueError(f"{owner}: saved {name!r} of {pname!r} has shape {value.shape}, expected {shape}")
                var.set_value(value.astype(var.dtype))
            elif pname:
                param = self.params[names.index(pname)]
                if value.shape != param.get_value(borrow=True).shape:
                    raise ValueError(f"{owner}: saved {name!r} of {pname!r} has shape {value.shape}")
                self._slot(param, name).set_value(value.astype(param.dtype))
            else:
                self._global_slot(name, np.zeros_like(value)).set_value(value)
        for key, var in self._slots.items():  # accumulators the saved run did not have
            if key not in saved:
                var.set_value(self._initial(key))
        rng = state.get("rng")
        if rng is not None:
            if self._random is None:
                self._random = pytensor.shared(rng_from_state(rng), name="rng")
            else:
                generator = self._random.get_value(borrow=False)
                set_rng_state(generator, rng)
                self._random.set_value(generator)

    # ------------------------------------------------------------------ public loop
    def set_params(self, targets=None):
        """Set the parameters to ``targets`` (a list of arrays) or, for None or ``'best'``, the best seen.

        Raises
        ------
        TypeError
            For any other string or a value that is not a list or tuple of arrays.
        """
        if isinstance(targets, str) and targets == "best":
            targets = None
        super().set_params(targets)

    # downhill 0.4.0 kept these in private attributes, which code written for it reads and sets.
    @property
    def _params(self):
        """downhill's name for :attr:`params`."""
        return self.params

    @property
    def _best_params(self):
        """downhill's name for :attr:`best_params` (settable: ``set_params('best')`` then uses it)."""
        return self.best_params

    @_best_params.setter
    def _best_params(self, values):
        self.best_params = None if values is None else [np.array(v) for v in values]

    def iterate(self, train=None, valid=None, max_updates=None, **kwargs):
        """Train, yielding the monitors after each epoch.

        Parameters
        ----------
        train : hf.Dataset, array, list of arrays, list of batches, callable or None
            Training mini-batches; arrays and callables are wrapped in a
            :class:`hf.Dataset` with its defaults (``batch_size=32``) or the
            Dataset keywords given here. None when the graph has no inputs.
        valid : same types, optional
            Validation data, evaluated before the first epoch and every
            ``validate_every`` epochs. Without it the training data are
            evaluated instead (as downhill does).
        max_updates : int, optional
            Epochs of this call (a call resumed from ``checkpoint=`` continues
            the count of the call it belongs to); None runs until ``patience``
            stops training.
        **kwargs
            Hyperparameters (:data:`HYPERPARAMETERS`; they set the shared
            scalars described in the class notes), loop keywords
            (``patience``, ``validate_every``, ``min_improvement``,
            ``checkpoint``, ``checkpoint_every``, ``callback``, ``progress``),
            the Dataset keywords ``batch_size``, ``iteration_size``, ``axis``
            and ``rng``, and downhill's arguments of :func:`build` and
            :func:`minimize` (:data:`BUILD_KEYWORDS`): ``train_batches`` and
            ``valid_batches`` give the batches per epoch and per validation,
            the others cannot change here and are ignored with a warning when
            they differ from the optimizer's.

        Returns
        -------
        generator of (OrderedDict, OrderedDict)
            ``(train_monitors, valid_monitors)`` per epoch. ``train_monitors``
            has ``'update'`` (the epoch number), ``'loss'``, the monitors (means
            over the epoch's examples, taken before each step), ``grad(...)``
            entries and ``'seconds'``; ``valid_monitors`` those of the latest
            validation plus ``'best_loss'``. When the generator runs to its end
            (``max_updates``, ``patience`` or Ctrl-C), the checkpoint is written
            and the best parameters are restored; a loop left with ``break``
            keeps the current ones.

        Raises
        ------
        TypeError
            For an unknown keyword.
        ValueError
            For an invalid hyperparameter or loop keyword, or a checkpoint that
            does not match the model.
        FloatingPointError
            When an epoch makes the loss or a parameter non-finite; the
            parameters are put back to their values before that epoch.
        """
        return super().iterate(train, valid, max_updates=max_updates, **kwargs)

    def _start(self, train, valid, **kwargs):
        dataset_kw = {k: kwargs.pop(k) for k in DATASET_KEYWORDS if k in kwargs}
        batches = {k: kwargs.pop(k) for k in ("train_batches", "valid_batches") if k in kwargs}
        if "train_batches" in batches and "iteration_size" in dataset_kw:
            raise TypeError(f"{type(self).__name__}.iterate() got both train_batches and iteration_size")
        hyper, _ = self._split_kwargs(kwargs, "iterate")
        if batches.get("train_batches") is not None:
            dataset_kw["iteration_size"] = batches["train_batches"]
        train_ds = self._dataset(train, "train", **dataset_kw)
        dataset_kw.pop("iteration_size", None)  # the number of training batches per epoch only
        if batches.get("valid_batches") is not None:
            dataset_kw["iteration_size"] = batches["valid_batches"]
        if valid is not None:
            valid = self._dataset(valid, "valid", **dataset_kw)
        # Without validation data the training data are evaluated (downhill's rule),
        # from a copy of their cursor so that validating never changes the batches
        # that training sees.
        valid_ds = _Unmoved(train_ds) if valid is None and train_ds is not None else self._dataset(valid, "valid")
        self._compile_step(hyper)
        self._compile_eval()
        datasets = {k: v for k, v in (("train", train_ds), ("valid", valid_ds)) if v is not None}
        return Run(train=train_ds, valid=valid_ds if valid_ds is not None else _NO_DATA, datasets=datasets)

    def minimize(self, *args, **kwargs):
        """Run :meth:`iterate` to its end; return the last ``(train_monitors, valid_monitors)``.

        The best parameters are restored when it returns.
        """
        result = (collections.OrderedDict(), collections.OrderedDict())
        for result in self.iterate(*args, **kwargs):
            pass
        return result


# --------------------------------------------------------------------------- module API


def build(algo, loss, params=None, inputs=None, updates=(), monitors=(), monitor_gradients=False, **kwargs):
    """Create the optimizer named ``algo`` (a class name, any case, e.g. ``'rmsprop'``).

    Parameters
    ----------
    algo : str
        One of the registered algorithms (``sorted(Optimizer._registry)``).
    loss, params, inputs, updates, monitors, monitor_gradients
        As for :class:`Optimizer`.
    **kwargs
        Further arguments of the algorithm's constructor (``ESGD``'s ``hv_method``
        and ``rng``).

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        For an unknown algorithm name.
    """
    if not isinstance(algo, str):
        raise TypeError(f"build: algo must be a string, got {algo!r}")
    cls = Optimizer._registry.get(algo.lower())
    if cls is None:
        raise ValueError(f"build: unknown algorithm {algo!r}; known: {', '.join(sorted(Optimizer._registry))}")
    return cls(loss, params=params, inputs=inputs, updates=updates, monitors=monitors,
               monitor_gradients=monitor_gradients, **kwargs)


def minimize(
    loss,
    train,
    valid=None,
    params=None,
    inputs=None,
    algo="rmsprop",
    updates=(),
    monitors=(),
    monitor_gradients=False,
    batch_size=32,
    train_batches=None,
    valid_batches=None,
    **kwargs,
):
    """Minimize ``loss`` on ``train`` with the first-order algorithm ``algo``.

    Parameters
    ----------
    loss, params, inputs, updates, monitors, monitor_gradients
        As for :class:`Optimizer`.
    train : hf.Dataset, array, list of arrays or callable
        Training data; arrays and callables become a :class:`hf.Dataset` with
        ``batch_size`` and ``iteration_size=train_batches``.
    valid : same types, optional
        Validation data (``valid_batches`` batches per validation).
    algo : str
        Algorithm name (default ``'rmsprop'``), see :func:`build`.
    batch_size : int
        Examples per mini-batch (default 32).
    train_batches, valid_batches : int, optional
        Mini-batches per epoch / per validation (default: one pass).
    **kwargs
        Hyperparameters and loop keywords, as for :meth:`Optimizer.iterate`,
        plus ``max_updates``, and :class:`ESGD`'s ``hv_method``.

    Returns
    -------
    (OrderedDict, OrderedDict)
        The last training and validation monitors; the parameters hold the best
        values found.

    Examples
    --------
    downhill's own call, unchanged::

        import numpy as np, pytensor, pytensor.tensor as pt
        import hf.first_order as downhill

        x = pt.matrix('x')
        w = pytensor.shared(np.zeros(3), name='w')
        loss = ((x.dot(w) - 1) ** 2).mean()
        downhill.minimize(loss, [np.ones((64, 3))], algo='adam', learning_rate=0.01, max_updates=5)
    """
    data = {k: kwargs.pop(k) for k in ("axis", "rng") if k in kwargs}
    if "iteration_size" in kwargs:  # downhill's Dataset keyword for the training batches per epoch
        if train_batches is not None:
            raise TypeError("minimize() got both train_batches and iteration_size")
        train_batches = kwargs.pop("iteration_size")

    def wrap(d, name, batches):
        if d is None or isinstance(d, Dataset) or is_batch_list(d):
            return d
        return as_dataset(d, name=name, batch_size=batch_size, iteration_size=batches, **data)

    # ESGD's hv_method is an argument of its constructor; downhill's minimize() dropped it, hf passes it on.
    cls = Optimizer._registry.get(algo.lower()) if isinstance(algo, str) else None
    extra = {}
    if "hv_method" in kwargs and cls is not None and "hv_method" in inspect.signature(cls).parameters:
        extra["hv_method"] = kwargs.pop("hv_method")
    opt = build(algo, loss, params=params, inputs=inputs, updates=updates, monitors=monitors,
                monitor_gradients=monitor_gradients, **extra)
    return opt.minimize(wrap(train, "train", train_batches), wrap(valid, "valid", valid_batches), **kwargs)
