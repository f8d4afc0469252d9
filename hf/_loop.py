"""The training loop shared by :class:`hf.HFOptimizer` and ``hf.first_order``.

:class:`Trainer` owns everything an optimizer needs around its update rule:
the public ``iterate``/``train`` pair, validation, patience and relative
``min_improvement``, the best loss (float64) and parameters, callbacks, a
progress bar, checkpoints with exact resume, and one end path (update cap,
patience, Ctrl-C: final checkpoint, best parameters restored).

What a subclass supplies (the contract)
---------------------------------------
``params``
    The shared variables being trained.
``_loop_defaults``
    A dict with the defaults of ``max_updates``, ``patience`` and
    ``validate_every`` for this optimizer.
``reduce``
    The :class:`hf.reduce.ExampleMean` every mean over examples goes through.
    The loop asks it which process writes checkpoints and logs
    (``is_writer``) and lets it check after each update that the processes
    hold the same parameters (``check_after_update``); one process's reducer
    answers "this one" and checks nothing.
``_start(train, valid, **options) -> Run``
    Check the subclass's own keywords (``options``; an unknown one is a
    ``TypeError``), turn ``train``/``valid`` into datasets, compile what is
    needed, and return a :class:`Run`. Nothing may be trained or written here.
``_update(train) -> dict``
    One update on ``Run.train``; the dict has ``'loss'`` (the training loss the
    update saw). It changes the parameters only when it returns.
``evaluate(dataset) -> dict``
    ``'loss'`` and the monitors averaged over one pass of ``dataset``.
``_train_validation(metrics) -> dict or None``
    The validation metrics to use when there are no validation data (HF: the
    training loss after the step); None means "not validated".
``_optimizer_state() -> dict`` and ``_load_optimizer_state(state)``
    The optimizer's own state for checkpoints (named numpy values).
``_begin_call()`` (optional)
    Called when a new ``iterate`` call starts (not when it resumes from a
    checkpoint).

One call of ``iterate``
-----------------------
Each call is a run of its own: ``max_updates`` counts this call's updates, and
the best loss and parameters are this call's (a call resumed from
``checkpoint=`` continues the call the checkpoint belongs to, so resume is
exact). With validation data the parameters are validated before the first
update and after every ``validate_every``-th update, so every yielded pair
carries the latest validation metrics; when a call ends (update cap or
patience) after updates that were not validated, the final parameters are
validated too before the best ones are restored.
"""

from __future__ import annotations

import collections
import collections.abc
import contextlib
import dataclasses
import json
import logging
import math
import os
import signal
import threading
from typing import Any, Optional

import numpy as np

from . import _checks

log = logging.getLogger("hf")

__all__ = ["Trainer", "Run", "defer_interrupts", "monitor_pairs", "storage_key", "check_params",
           "check_finite_state"]

#: Names the metrics dictionaries use themselves; monitors may not take them.
RESERVED_NAMES = ("loss", "update", "best_loss", "seconds")


def monitor_pairs(monitors) -> list:
    """Check monitors given as ``(name, scalar expression)`` pairs or a dict; return the pairs.

    Names that the metrics dicts use themselves (``loss``, ``update``,
    ``best_loss``, ``seconds``, ``grad(...)``, ``valid_...``) are refused, and so
    is a name given twice.
    """
    from pytensor.graph.basic import Variable

    if isinstance(monitors, dict):
        monitors = list(monitors.items())
    pairs = []
    for i, item in enumerate(monitors):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(f"monitors[{i}] must be a (name, expression) pair, got {item!r}")
        name, expr = item
        if not isinstance(expr, Variable) or expr.ndim != 0:
            raise ValueError(f"monitor {name!r} must be a scalar symbolic expression, got {expr!r}")
        if name in RESERVED_NAMES or name.startswith(("grad(", "valid_")):
            raise ValueError(f"monitor name {name!r} is reserved")
        if name in (n for n, _ in pairs):
            raise ValueError(f"monitor name {name!r} is given twice")
        pairs.append((name, expr))
    return pairs


@contextlib.contextmanager
def _sigint_handled_by(handler):
    """``handler`` as the SIGINT handler for the block; yields the previous handler,
    which is put back however the block ends. Callers check for the main thread
    (``signal.signal`` works there only)."""
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, handler)
    try:
        yield previous
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)


@contextlib.contextmanager
def defer_interrupts():
    """Hold back SIGINT (Ctrl-C) until the block ends, so state is never half-written."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    with _sigint_handled_by(lambda signum, frame: received.append((signum, frame))) as previous:
        yield
    # Not reached when the block raised: a real error wins over a Ctrl-C that arrived meanwhile.
    if received:
        if callable(previous):
            previous(*received[0])
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt


class _StopRequest:
    """:meth:`Trainer.train`'s SIGINT handler: the first Ctrl-C asks the loop to stop
    before the next update; another one raises KeyboardInterrupt at once.

    Raising from the first Ctrl-C would lose it whenever it lands in a finalizer
    (a ``__del__`` or a weakref callback that the garbage collector runs between
    two updates): Python reports an exception raised there and carries on.
    """

    def __init__(self):
        self.count = 0

    def __call__(self, signum, frame):
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt


@contextlib.contextmanager
def _stop_requests():
    """A :class:`_StopRequest` as the SIGINT handler for the block (None, and no
    change, off the main thread or where SIGINT has a handler other than Python's
    default, e.g. one a data-parallel reducer installed)."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield None
        return
    request = _StopRequest()
    with _sigint_handled_by(request):
        yield request


def storage_key(name: str) -> str:
    """An HDF5-safe key for a parameter or metric name (``/`` and ``%`` escaped)."""
    key = name.replace("%", "%25").replace("/", "%2F")
    return "%2E" if key == "." else key


@dataclasses.dataclass
class Run:
    """What :meth:`Trainer._start` prepares for one ``iterate`` call.

    ``train`` is what ``_update`` receives, ``valid`` the validation dataset
    (or None) and ``datasets`` the named datasets whose cursors travel in
    checkpoints.
    """

    train: Any
    valid: Any = None
    datasets: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Settings:
    max_updates: Optional[int]
    patience: int
    validate_every: int
    min_improvement: float
    callback: Any
    checkpoint: Optional[str]
    checkpoint_every: int
    progress: Any


#: The loop's own keywords of ``iterate``/``train`` (defaults that are None come
#: from the subclass's ``_loop_defaults``).
LOOP_KEYWORDS = ("max_updates", "patience", "validate_every", "min_improvement", "callback",
                 "checkpoint", "checkpoint_every", "progress")


class Trainer:
    """Base class of both optimizers: the training loop (see the module docstring)."""

    _loop_defaults = {"max_updates": 1000, "patience": 10, "validate_every": 1}
    #: How progress shows by default: a tqdm bar on a terminal ('bar') or printed lines ('lines').
    _progress_style = "bar"
    def _init_loop(self):
        self.updates = 0  # all updates this optimizer has made (history, logs)
        self.call_updates = 0  # updates of the current iterate call (max_updates)
        self.best_loss = np.float64(np.inf)
        self.best_params = None
        self.bad_validations = 0
        self.history = []
        self._last_valid = collections.OrderedDict()

    # ------------------------------------------------------------------ params
    def get_param_values(self) -> list:
        """Copies of the current parameter values."""
        return [p.get_value(borrow=False) for p in self.params]

    def set_param_values(self, values) -> None:
        """Write ``values`` into the shared parameters (all or nothing, also on Ctrl-C).

        Raises
        ------
        ValueError
            When the number of arrays or a shape does not match the parameters
            (the message names the parameter); nothing is written then.
        """
        values = list(values)
        if len(values) != len(self.params):
            raise ValueError(f"values must hold {len(self.params)} arrays (one per parameter), got {len(values)}")
        arrays = []
        for i, (p, v) in enumerate(zip(self.params, values)):
            shape = p.get_value(borrow=True).shape
            a = np.asarray(v)
            if a.shape != shape:
                raise ValueError(
                    f"parameter {i} ({p.name or 'unnamed'!r}) has shape {shape}, got a value of shape {a.shape}"
                )
            arrays.append(a.astype(p.dtype))
        with defer_interrupts():
            for p, a in zip(self.params, arrays):
                p.set_value(a)

    def set_params(self, targets=None) -> None:
        """Set the parameters to ``targets`` (a list of arrays), or the best of the last run when None."""
        if targets is None:
            if self.best_params is not None:
                self.set_param_values(self.best_params)
            return
        if isinstance(targets, str) or not isinstance(targets, (list, tuple)):
            raise TypeError(f"targets must be None or a list of arrays, got {targets!r}")
        self.set_param_values(targets)

    def _param_names(self):
        """Checkpoint keys of the parameters: their names, HDF5-safe and unique."""
        names = []
        for i, p in enumerate(self.params):
            names.append(storage_key(p.name) if p.name else f"param{i}")
        if len(set(names)) != len(names):
            names = [f"{i}:{n}" for i, n in enumerate(names)]
        return names

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything needed to resume: parameters, optimizer and loop state."""
        names = self._param_names()
        return {
            "kind": type(self).__name__,
            "params": dict(zip(names, self.get_param_values())),
            "optimizer": self._optimizer_state(),
            "loop": {
                "updates": int(self.updates),
                "call_updates": int(self.call_updates),
                "best_loss": np.float64(self.best_loss),
                "bad_validations": int(self.bad_validations),
                "best_params": None if self.best_params is None else dict(zip(names, self.best_params)),
                "last_valid": {storage_key(k): np.float64(v) for k, v in self._last_valid.items()},
                "settings": {k: getattr(self, k) for k in _REPORTED_SETTINGS if hasattr(self, k)},
            },
            "options": self._options(),
            "history": json.dumps(self.history),
        }

    def _options(self) -> dict:
        """Hook: the optimizer's own options, stored in checkpoints so a resume can say
        which of those it is given now differ from the checkpoint's run."""
        return {}

    def _checkpoint_overrides(self, state) -> dict:
        """Hook: ``{option: what replaces it}`` for the options whose value a resume
        takes from the checkpoint's state instead (HF: ``damping``, the current λ)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`; parameter names and shapes must match."""
        from . import checkpoint as ckpt

        kind = state.get("kind")
        if kind is not None and kind != type(self).__name__:
            raise ckpt.CheckpointError(
                f"the checkpoint holds the state of a {kind} optimizer, not {type(self).__name__}; "
                "to start from its parameters only, use load_params(path)"
            )
        names = self._param_names()
        shapes = {n: p.get_value(borrow=True).shape for n, p in zip(names, self.params)}
        check_params(state["params"], shapes)
        loop = state["loop"]
        updates = int(loop["updates"])
        with defer_interrupts():
            self.set_param_values([state["params"][n] for n in names])
            self._load_optimizer_state(state["optimizer"])
            self.updates = updates
            self.call_updates = int(loop.get("call_updates", updates))
            self.best_loss = np.float64(loop["best_loss"])
            self.bad_validations = int(loop["bad_validations"])
            bp = loop.get("best_params")
            self.best_params = None if bp is None else [np.array(bp[n]) for n in names]
            self._last_valid = collections.OrderedDict(
                (_unescape(k), float(v)) for k, v in (loop.get("last_valid") or {}).items()
            )
            self.history = _history_from_state(state.get("history"))

    # ------------------------------------------------------------------ the loop
    def iterate(self, train=None, valid=None, **kwargs):
        """Train, yielding ``(train_metrics, valid_metrics)`` after each update.

        The subclass documents ``train``, ``valid`` and its own keywords; the loop's
        keywords are those of :meth:`train`. Everything that can fail on bad
        settings, bad data or a bad checkpoint fails when ``iterate`` is called,
        before any training and before anything is written.

        When the generator runs to its end (``max_updates``, ``patience``, or a
        Ctrl-C during an update) the checkpoint is written and the best
        parameters are restored; a loop left with ``break`` keeps the current
        parameters.
        """
        settings, options = self._settings(kwargs)
        run = self._start(train, valid, **options)
        gen = self._loop(run, settings, restore_best=True)
        self._open(settings, run, gen)
        return gen

    def train(self, train=None, valid=None, *, restore_best=True, **kwargs):
        """Run :meth:`iterate` to its end (update cap, patience or Ctrl-C).

        The first Ctrl-C stops the run before its next update (one during an
        update or a checkpoint write waits for it to finish); a second one, e.g.
        while a callback hangs, raises KeyboardInterrupt at once, between updates.
        Either way the run ends as below.

        Parameters
        ----------
        train, valid
            As for :meth:`iterate`.
        restore_best : bool
            Put the best parameters of this run into the model at the end
            (default True); False leaves the last ones.
        max_updates : int or None
            Updates of this call (default: the optimizer's).
        patience : int
            Stop when more than ``patience`` validations in a row brought no
            relative improvement larger than ``min_improvement``.
        validate_every : int
            Validate every this many updates.
        min_improvement : float
            Relative improvement of the validation loss that counts (default 0).
        callback : callable, optional
            ``callback(train_metrics, valid_metrics)`` after each update.
        checkpoint : path, optional
            HDF5 checkpoint written every ``checkpoint_every`` updates and at the
            end; when the file exists the run resumes from it. Its directory is
            checked for writing before the first update. The run holds the lock
            file ``<checkpoint>.lock`` (its process id) until it ends: a second
            live run on the same path is refused, a lock left by a killed
            process is taken over. A read-only checkpoint file is refused
            (``PermissionError``), never replaced. On resume, the options given
            now that differ from the checkpoint's run are named in a
            ``UserWarning``: those that apply from now on, and those the
            checkpoint's state overrides (HF's ``damping=``: the run goes on
            with the checkpoint's λ).
        checkpoint_every : int
            Default 1.
        progress : None, bool, 'bar' or 'lines'
            ``'bar'``: a tqdm progress bar on standard error; ``'lines'``: one line
            per update (and per validation) on standard output, the way downhill
            reports; False: nothing. None (default) is the optimizer's own choice:
            HF shows the bar when standard error is a terminal, the first-order
            optimizers print lines. True is the optimizer's style, always on.

        Returns
        -------
        (OrderedDict, OrderedDict)
            The last training and validation metrics.
        """
        _checks.boolean("restore_best", restore_best, f"{type(self).__name__}.train()")
        settings, options = self._settings(kwargs)
        run = self._start(train, valid, **options)
        with _stop_requests() as stop:
            gen = self._loop(run, settings, restore_best=restore_best, stop=stop)
            self._open(settings, run, gen)
            try:
                for _ in gen:
                    pass
            except KeyboardInterrupt:  # arrived between two updates, outside the generator
                try:
                    gen.throw(KeyboardInterrupt)
                except StopIteration:
                    pass
        train_metrics = collections.OrderedDict(self.history[-1]) if self.history else collections.OrderedDict()
        return train_metrics, collections.OrderedDict(self._last_valid)

    def _settings(self, kwargs):
        """Split ``kwargs`` into the loop's checked settings and the subclass's options."""
        owner = f"{type(self).__name__}.iterate()"
        loop = {k: kwargs[k] for k in LOOP_KEYWORDS if k in kwargs}
        options = {k: v for k, v in kwargs.items() if k not in LOOP_KEYWORDS}
        d = self._loop_defaults
        get = lambda k, default=None: loop.get(k, d.get(k, default))  # noqa: E731
        progress = get("progress")
        if progress is None or progress is True:
            progress = self._progress_style if progress else (None if self._progress_style == "bar" else "lines")
        elif progress not in (False, "bar", "lines"):
            raise ValueError(f"{owner}: progress must be None, True, False, 'bar' or 'lines', got {progress!r}")
        callback = get("callback")
        if callback is not None and not callable(callback):
            raise TypeError(f"{owner}: callback must be callable or None, got {callback!r}")
        checkpoint = get("checkpoint")
        if checkpoint is not None:
            try:
                checkpoint = os.fspath(checkpoint)
            except TypeError:
                raise TypeError(f"{owner}: checkpoint must be a path or None, got {checkpoint!r}") from None
        settings = _Settings(
            max_updates=_checks.positive_int("max_updates", get("max_updates"), owner, allow_none=True),
            patience=_checks.nonnegative_int("patience", get("patience"), owner),
            validate_every=_checks.positive_int("validate_every", get("validate_every"), owner),
            min_improvement=_checks.real("min_improvement", get("min_improvement", 0.0), owner, low=0),
            callback=callback,
            checkpoint=checkpoint,
            checkpoint_every=_checks.positive_int("checkpoint_every", get("checkpoint_every", 1), owner),
            progress=progress,
        )
        return settings, options

    def _open(self, settings, run, gen=None):
        """Start the call: resume from an existing checkpoint, or start fresh.

        The call's loop settings become attributes (``max_updates``, ``patience``,
        ``validate_every``, ``min_improvement``), as downhill users read them.
        A checkpoint path is locked for the run (``<path>.lock``, released when
        the generator ``gen`` ends or is closed): another live run on the same
        path is refused, and so is a read-only checkpoint file.
        """
        self.max_updates = settings.max_updates
        self.patience = settings.patience
        self.validate_every = settings.validate_every
        self.min_improvement = settings.min_improvement
        if settings.checkpoint is not None:
            from . import checkpoint as ckpt

            exists = os.path.exists(settings.checkpoint)
            if self.reduce.is_writer:
                ckpt.check_not_read_only(settings.checkpoint)
                if not exists:
                    ckpt.check_writable(settings.checkpoint)
                self._lock_checkpoint(settings.checkpoint, gen)
            try:
                if exists:
                    self.resume(settings.checkpoint, run.datasets, settings=settings)
                    return
            except BaseException:
                self._unlock_checkpoint()
                raise
        self.call_updates = 0
        self.best_loss = np.float64(np.inf)
        self.best_params = None
        self.bad_validations = 0
        self._last_valid = collections.OrderedDict()
        self._begin_call()

    def _begin_call(self):
        """Hook: a new call starts (not a resumed one)."""

    def _lock_checkpoint(self, path, gen):
        """Take ``<path>.lock`` for this optimizer's run (:class:`hf.checkpoint.CheckpointLock`)."""
        import uuid
        import weakref

        from . import checkpoint as ckpt

        self._unlock_checkpoint()
        token = self.__dict__.setdefault("_run_token", uuid.uuid4().hex)
        if gen is None:
            alive = None
        else:
            ref = weakref.ref(gen)

            def alive():  # the run holds the path until its generator ends, is closed or is collected
                g = ref()
                return g is not None and g.gi_frame is not None

        lock = ckpt.CheckpointLock(path, token)
        lock.acquire(alive, owner=f"{type(self).__name__}.iterate()")
        self._checkpoint_lock = lock

    def _unlock_checkpoint(self):
        lock = self.__dict__.pop("_checkpoint_lock", None)
        if lock is not None:
            lock.release()

    def _loop(self, run, s, restore_best, stop=None):
        """The generator behind :meth:`iterate` and :meth:`train`; its end is the one end path.

        ``stop``: :meth:`train`'s :class:`_StopRequest`, checked before each update."""
        try:
            yield from self._loop_body(run, s, restore_best, stop)
        finally:
            if s.checkpoint is not None:
                self._unlock_checkpoint()

    def _loop_body(self, run, s, restore_best, stop):
        bar = None
        if s.progress in (None, "bar") and self.reduce.is_writer:
            bar = _progress_bar(s.progress, s.max_updates, self.call_updates, type(self).__name__)
        self._print_lines = s.progress == "lines" and self.reduce.is_writer
        try:
            if run.valid is not None and self.call_updates == 0 and not self._last_valid:
                self._validate(self.evaluate(run.valid), s.min_improvement)
                self._log_validation()
            while True:
                if stop is not None and stop.count:
                    raise KeyboardInterrupt
                if s.max_updates is not None and self.call_updates >= s.max_updates:
                    break
                if self.bad_validations > s.patience:  # also true for a resumed run that had stopped
                    log.info("stopping: %d validations without improvement (patience %d)",
                             self.bad_validations, s.patience)
                    break
                with defer_interrupts():
                    metrics, valid_metrics = self._one_update(run, s)
                if bar is not None:
                    # The postfix first: update() draws the bar, and a postfix set after it would
                    # show one update late (the bar's last two lines with different losses).
                    bar.set_postfix_str(_postfix(metrics, valid_metrics), refresh=False)
                    bar.update(1)
                if s.callback is not None:
                    s.callback(metrics, valid_metrics)
                yield metrics, valid_metrics
            if self.call_updates and self.history and "valid_loss" not in self.history[-1]:
                # The last updates were not validated: validate them before the best
                # parameters are restored, so they are not thrown away unseen.
                self._validate_update(run, self.history[-1], s.min_improvement)
        except KeyboardInterrupt:
            log.warning("interrupted after %d updates of this run", self.call_updates)
        finally:
            if bar is not None:
                bar.close()
        self._finish(s.checkpoint, run.datasets, restore_best)

    def _one_update(self, run, s):
        """One update, its validation and its checkpoint (Ctrl-C held back by the caller)."""
        before = self.get_param_values()
        metrics = self._update(run.train)
        if not (math.isfinite(metrics["loss"]) and all(np.all(np.isfinite(p.get_value(borrow=True)))
                                                       for p in self.params)):
            self.set_param_values(before)
            raise FloatingPointError(
                f"{type(self).__name__}: training diverged at update {self.updates + 1} "
                f"(training loss {metrics['loss']!r}); the parameters were put back to their values "
                "before that update (lower the learning rate, or raise the damping)"
            )
        self.updates += 1
        self.call_updates += 1
        metrics = collections.OrderedDict([("update", self.updates), *((k, _plain(v)) for k, v in metrics.items())])
        self.history.append(metrics)
        if self._print_lines:  # before the validation line of this update
            print(_line(type(self).__name__, metrics), flush=True)
        self.reduce.check_after_update(self.updates, self.get_param_values)  # processes agree (several)
        if self.call_updates % s.validate_every == 0:
            self._validate_update(run, metrics, s.min_improvement)
        if s.checkpoint is not None and self.call_updates % s.checkpoint_every == 0:
            self.save_checkpoint(s.checkpoint, run.datasets)
        return metrics, collections.OrderedDict(self._last_valid)

    def _validate_update(self, run, metrics, min_improvement):
        """Validate the parameters after an update; the metrics row gets ``valid_*`` entries."""
        vm = self.evaluate(run.valid) if run.valid is not None else self._train_validation(metrics)
        if vm is None:
            return
        self._validate(vm, min_improvement)
        for k, v in self._last_valid.items():
            metrics[f"valid_{k}"] = v
        self._log_validation()

    def _log_validation(self):
        improved = " *" if self.bad_validations == 0 else ""
        log.info("validation after update %d: %s%s", self.updates,
                 " ".join(f"{k} {v:.6g}" for k, v in self._last_valid.items()), improved)
        if getattr(self, "_print_lines", False):
            print(f"validation after update {self.updates}: "
                  + _line("", self._last_valid).strip() + improved, flush=True)

    def _train_validation(self, metrics):
        """Without validation data: the training loss after the update (``new_loss``
        when the update reports it)."""
        return collections.OrderedDict(loss=float(metrics.get("new_loss", metrics["loss"])))

    def _validate(self, vm, min_improvement):
        loss = np.float64(vm["loss"])
        improved = np.isfinite(loss) and (
            not np.isfinite(self.best_loss) or self.best_loss - loss > min_improvement * abs(self.best_loss)
        )
        if improved:
            self.best_loss = loss
            self.best_params = self.get_param_values()
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        self._last_valid = collections.OrderedDict((k, float(v)) for k, v in vm.items())
        self._last_valid["best_loss"] = float(self.best_loss)

    def _finish(self, checkpoint, datasets, restore_best):
        """The end of a run: the checkpoint gets the final state (its ``params`` the
        last parameters, ``loop/best_params`` the best: :meth:`load_params` reads
        the best by default, so the file and a model after ``train()`` agree), then
        the best parameters go into the model."""
        if checkpoint is not None:
            self.save_checkpoint(checkpoint, datasets)
        if restore_best:
            self.set_params(None)

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path, datasets=None) -> None:
        """Write the full training state to ``path`` atomically (HDF5)."""
        from . import checkpoint as ckpt

        if not self.reduce.is_writer:  # one process writes; all resume from its file
            return
        state = self.state_dict()
        state["datasets"] = {
            name: ds.state_dict() for name, ds in (datasets or {}).items() if hasattr(ds, "state_dict")
        }
        with defer_interrupts():
            ckpt.save(path, state)

    def load_params(self, path, which="best") -> None:
        """Set the parameters from any ``hf`` checkpoint (e.g. a first-order warm start).

        Parameters
        ----------
        path : path
            An ``hf`` checkpoint of any optimizer; names and shapes must match.
        which : {'best', 'last'}
            ``'best'`` (default): the best parameters of the run, which is what
            the model holds after ``train()``; the last ones when the run never
            validated. ``'last'``: the parameters of the last update.

        The optimizer and loop state of this optimizer are left as they are.
        """
        from . import checkpoint as ckpt

        if which not in ("best", "last"):
            raise ValueError(f"load_params: which must be 'best' or 'last', got {which!r}")
        state = ckpt.load(path)
        names = self._param_names()
        shapes = {n: p.get_value(borrow=True).shape for n, p in zip(names, self.params)}
        saved = state["params"]
        best = (state.get("loop") or {}).get("best_params")
        if which == "best" and best is not None:
            saved = best
        check_params(saved, shapes, path=os.fspath(path))
        self.set_param_values([saved[n] for n in names])
        log.info("%s parameters loaded from %s (%s checkpoint)", which, path, state.get("kind", "unknown"))

    def resume(self, path, datasets=None, *, settings=None) -> None:
        """Load the training state written by :meth:`save_checkpoint`.

        The options given now and those of the checkpoint's run are compared:
        a ``UserWarning`` names each one that differs, saying whether it applies
        from now on or is overridden by the checkpoint's state (HF's ``damping=``
        is: the run goes on with the checkpoint's λ). ``settings``: the loop
        settings of the call that resumes.
        """
        from . import checkpoint as ckpt

        state = ckpt.load(path)
        changes = self._changed_options(state, settings)
        datasets = {n: ds for n, ds in (datasets or {}).items() if hasattr(ds, "load_state_dict")}
        saved = state.get("datasets") or {}
        backup = self.state_dict()
        backup_ds = {n: ds.state_dict() for n, ds in datasets.items()}
        try:
            self.load_state_dict(state)
            for name, ds in datasets.items():
                if name in saved:
                    ds.load_state_dict(saved[name])
        except Exception as err:
            # Leave the model and the datasets exactly as they were.
            self.load_state_dict(backup)
            for name, ds in datasets.items():
                ds.load_state_dict(backup_ds[name])
            if isinstance(err, ckpt.CheckpointError):
                raise
            raise ckpt.CheckpointError(f"cannot resume from {os.fspath(path)}: {err}") from err
        log.info("resumed from %s at update %d", path, self.updates)
        if changes:
            import warnings

            warnings.warn(
                f"{type(self).__name__}: resuming from {os.fspath(path)!r} at update {self.updates} with options "
                f"that differ from the checkpoint's run: {'; '.join(changes)}",
                UserWarning,
                stacklevel=2 if settings is None else 4,  # the caller of resume(), or of iterate()/train()
            )

    def _changed_options(self, state, settings) -> list:
        """How each option given now that differs from the checkpoint's run is treated."""
        overrides = self._checkpoint_overrides(state)
        given = dict(self._options())
        saved = dict(state.get("options") or {})
        if settings is not None:
            given.update((k, getattr(settings, k)) for k in _REPORTED_SETTINGS)
            saved.update((state.get("loop") or {}).get("settings") or {})
        changes = []
        for name, value in given.items():
            if name not in saved or _same(saved[name], value):
                continue
            if name in overrides:
                changes.append(f"{name}={value!r} is overridden by the checkpoint's {overrides[name]}")
            else:
                changes.append(f"{name}={value!r} applies (the checkpoint's run used {saved[name]!r})")
        return changes


#: Loop settings a checkpoint records, so a resume can say which of them changed.
#: (Not ``max_updates``: a resume with a larger one is how a run is extended.)
_REPORTED_SETTINGS = ("patience", "validate_every", "min_improvement")


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 (values that do not compare are different)
        return False


def _progress_bar(progress, total, initial, label):
    """A tqdm bar on standard error (``progress`` None: only on a terminal; 'bar': always)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=label, unit="update", disable=None if progress is None else False,
                leave=True, dynamic_ncols=True)


def _line(label, metrics):
    """One progress line: ``label key=value ...`` with six decimals, as downhill prints."""
    fields = " ".join(f"{k}={v:.6f}" for k, v in metrics.items()
                      if k not in ("update", "seconds") and not k.startswith("valid_")
                      and isinstance(v, (int, float)) and not isinstance(v, bool))
    number = f" {metrics['update']}" if "update" in metrics else ""
    return f"{label}{number} {fields}"


def _postfix(metrics, valid):
    parts = [f"loss={metrics['loss']:.4g}"]
    if "damping" in metrics:
        parts.append(f"damping={metrics['damping']:.2g}")
    if "loss" in valid:
        parts.append(f"valid={valid['loss']:.4g}")
    return " ".join(parts)


def _unescape(key):
    return "." if key == "%2E" else key.replace("%2F", "/").replace("%25", "%")


def _plain(value):
    """A metric as a plain Python value, so history rows survive JSON unchanged."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _plain(value.item())
    return value


def _history_from_state(value):
    """History rows from a checkpoint: a JSON list of rows, or (older files) numeric columns."""
    if not value:
        return []
    if isinstance(value, (str, bytes)):
        return [collections.OrderedDict(row) for row in json.loads(value)]
    n = len(next(iter(value.values())))
    return [collections.OrderedDict((_unescape(k), float(v[i])) for k, v in value.items()) for i in range(n)]


# --------------------------------------------------------------------------- checkpoint rules
# What a training checkpoint (the layout of Trainer.state_dict) must hold.  hf.checkpoint.load
# applies check_finite_state to every file it reads; the trainer calls check_params before it
# sets a model's parameters from one.

#: Top-level groups whose floating-point values must be finite, and the exceptions inside them.
_FINITE_GROUPS = ("optimizer", "loop")
_ANY_VALUE = ("loop", "last_valid")     # validation metrics as last seen: NaN/inf possible
_INF_ALLOWED = ("loop", "best_loss")    # +inf before the first finite validation loss


def check_finite_state(state, path):
    """Refuse a training checkpoint holding a non-finite value that resuming cannot recover from.

    Non-finite floating-point values (NaN, +inf, -inf, in scalars and in arrays,
    complex included) are refused anywhere under the top-level ``optimizer``
    and ``loop`` groups, since resuming from them cannot make progress (a NaN
    damping stalls training), with two exceptions:

    * ``loop/best_loss`` may be ``+inf`` (no finite validation loss yet), not
      NaN or ``-inf``;
    * ``loop/last_valid`` holds the validation metrics as last measured and may
      hold any value (a diverged validation loss is NaN or inf).

    Other groups are not checked: ``history`` records missing entries and
    diverged losses as they were, ``params`` are the user's and ``datasets``
    hold no floating-point state that must be finite.

    Parameters
    ----------
    state : dict
        A state read by :func:`hf.checkpoint.load`.
    path : str
        The checkpoint's path, named in the error message.

    Raises
    ------
    hf.checkpoint.CheckpointError
        Naming ``path``, the value's key path and what it must be.
    """
    for group in _FINITE_GROUPS:
        if group in state:
            _check_finite_node(state[group], (group,), path)


def _check_finite_node(value, where, path):
    if where == _ANY_VALUE:
        return
    if isinstance(value, collections.abc.Mapping):
        for key, item in value.items():
            _check_finite_node(item, where + (key,), path)
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite_node(item, where + (str(i),), path)
        return
    if isinstance(value, (float, np.floating, np.complexfloating)) or (
            isinstance(value, np.ndarray) and value.dtype.kind in "fc"):
        array = np.asarray(value)
        if where == _INF_ALLOWED and array.dtype.kind == "f":
            bad = ~(np.isfinite(array) | np.isposinf(array))
            allowed = "finite or +inf"
        else:
            bad = ~np.isfinite(array)
            allowed = "finite"
        if np.any(bad):
            from .checkpoint import CheckpointError

            shown = value if array.ndim == 0 else f"{int(np.count_nonzero(bad))} non-finite entries"
            raise CheckpointError(f"cannot read checkpoint {path!r}: {'/'.join(where)} must be "
                                  f"{allowed}, got {shown}")


def check_params(saved, params, *, path=None):
    """Check that saved parameter arrays fit a model's parameters.

    Parameters
    ----------
    saved : dict of str to ndarray
        Parameter values read from a checkpoint.
    params : dict of str to tuple of int
        The model's parameter shapes by name (values may also be objects with a
        ``shape`` attribute).
    path : str, optional
        Checkpoint path, named in the error message.

    Raises
    ------
    hf.checkpoint.CheckpointError
        Listing every missing name (in the model, not the checkpoint), every
        unexpected name (in the checkpoint, not the model) and every shape
        mismatch as ``name: saved shape (...) != model shape (...)``.
    """
    problems = []
    missing = [name for name in params if name not in saved]
    unexpected = [name for name in saved if name not in params]
    if missing:
        problems.append("missing from the checkpoint: " + ", ".join(map(repr, missing)))
    if unexpected:
        problems.append("unexpected in the checkpoint: " + ", ".join(map(repr, unexpected)))
    for name, shape in params.items():
        if name not in saved:
            continue
        model_shape = tuple(getattr(shape, "shape", shape))
        saved_shape = tuple(np.shape(saved[name]))
        if saved_shape != model_shape:
            problems.append(f"parameter {name!r}: saved shape {saved_shape} != "
                            f"model shape {model_shape}")
    if problems:
        from .checkpoint import CheckpointError

        where = f"checkpoint {path!r}" if path is not None else "checkpoint"
        raise CheckpointError(f"{where} does not match the model parameters: "
                              + "; ".join(problems))
