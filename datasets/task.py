"""The container of a generated problem: :class:`SequenceTask`, time-major, and its criterion.

A task holds the inputs, targets and masks of a batch of sequences of one
pathological problem, converts its targets to what a network outputs, and
judges predictions by the criterion of [MS11]_.

References
----------
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011 (section 7 and its supplementary
   material).
"""
import dataclasses

import numpy as np

from ._checks import float_dtype

__all__ = ["SequenceTask", "SOLVED_TOLERANCE"]

#: Largest absolute error of a linear output that still counts as solved [MS11].
SOLVED_TOLERANCE = 0.04

_OUTPUTS = ("linear", "logistic", "softmax")


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceTask:
    """A batch of sequences of one pathological problem, stored time-major.

    Build one with a generator (:func:`~hf.datasets.addition`,
    :func:`~hf.datasets.temporal_order`...) or :func:`~hf.datasets.read_hdf5`.
    All arrays are read-only.

    Attributes
    ----------
    name : str
        Problem name, a key of :data:`~hf.datasets.TASKS` (``'temporal_order'`` for both
        the 2-bit and the 3-bit variant; ``params['bits']`` tells them apart).
    T : int
        The length parameter the task was generated with.
    output : {'linear', 'logistic', 'softmax'}
        Output nonlinearity with its matching loss: squared error for
        ``'linear'``, binary cross-entropy for ``'logistic'``, categorical
        cross-entropy for ``'softmax'``.
    n_out : int
        Number of output units (number of classes for ``'softmax'``).
    inputs : numpy.ndarray
        ``(T_total, n_sequences, n_in)`` floats; zero on padded steps.
    targets : numpy.ndarray
        If ``per_step`` is false (one target per sequence): ``(n_sequences,
        n_out)`` floats for ``'linear'``/``'logistic'``, ``(n_sequences,)``
        ``int64`` class labels for ``'softmax'``; the target belongs to step
        ``lengths - 1``.  If ``per_step`` is true: ``(T_total, n_sequences)``
        ``int64`` class labels, meaningful where ``target_mask`` is 1.
    target_mask : numpy.ndarray
        ``(T_total, n_sequences)`` floats in {0, 1}: the steps whose output
        enters the loss.
    score_mask : numpy.ndarray
        ``(T_total, n_sequences)`` floats in {0, 1}: the steps judged by
        :meth:`solved` and :meth:`score`.  Equal to ``target_mask`` unless a
        generator was asked to train on more steps than are judged.
    mask : numpy.ndarray
        ``(T_total, n_sequences)`` floats, 1 on the steps that exist
        (``t < lengths``) and 0 on padding.
    lengths : numpy.ndarray
        ``(n_sequences,)`` ``int64`` sequence lengths, ``<= T_total``.
    per_step : bool
        Whether ``targets`` is time-major (see above).
    params : dict
        Generation parameters as JSON-compatible values (windows, bits,
        alphabet...), kept for reference and written to HDF5.

    Notes
    -----
    For an RNN producing time-major outputs ``y`` of shape ``(T_total, n,
    n_out)`` the training loss is ``sum_t target_mask[t] * L(y[t],
    dense_targets()[t])`` for the loss ``L`` matching ``output``.  Because a
    sequence's output at step ``lengths - 1`` does not depend on the padded
    steps after it, padding never changes the loss.

    Examples
    --------
    >>> from hf.datasets import addition
    >>> task = addition(3, 20, seed=0)
    >>> task.inputs.shape, task.targets.shape, task.output
    ((22, 3, 2), (3, 1), 'linear')
    >>> task.score(task.targets)
    1.0
    """

    name: str
    T: int
    output: str
    n_out: int
    inputs: np.ndarray
    targets: np.ndarray
    target_mask: np.ndarray
    score_mask: np.ndarray
    mask: np.ndarray
    lengths: np.ndarray
    per_step: bool = False
    params: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.output not in _OUTPUTS:
            raise ValueError(
                f"SequenceTask: output must be one of {_OUTPUTS}, got output={self.output!r}"
            )
        inputs = np.asarray(self.inputs)
        if inputs.ndim != 3:
            raise ValueError(
                "SequenceTask: inputs must be time-major (T_total, n_sequences, n_in), "
                f"got shape {inputs.shape}"
            )
        T_total, n = inputs.shape[:2]
        label_dtype = np.int64
        if self.per_step:
            expected = (T_total, n)
        elif self.output == "softmax":
            expected = (n,)
        else:
            expected = (n, self.n_out)
            label_dtype = None
        targets = np.asarray(self.targets, dtype=label_dtype)
        if targets.shape != expected:
            raise ValueError(
                f"SequenceTask: targets must have shape {expected}, got {targets.shape}"
            )
        arrays = {"inputs": inputs, "targets": targets}
        for field in ("target_mask", "score_mask", "mask"):
            value = np.asarray(getattr(self, field))
            if value.shape != (T_total, n):
                raise ValueError(
                    f"SequenceTask: {field} must have shape {(T_total, n)}, got {value.shape}"
                )
            arrays[field] = value
        lengths = np.asarray(self.lengths, dtype=np.int64)
        if lengths.shape != (n,) or np.any(lengths < 1) or np.any(lengths > T_total):
            raise ValueError(
                f"SequenceTask: lengths must be {n} integers in [1, {T_total}], "
                f"got shape {lengths.shape}"
            )
        arrays["lengths"] = lengths
        for field, value in arrays.items():
            # A read-only view: the caller's array keeps its own flags.
            value = value.view()
            value.flags.writeable = False
            object.__setattr__(self, field, value)
        object.__setattr__(self, "T", int(self.T))
        object.__setattr__(self, "n_out", int(self.n_out))
        object.__setattr__(self, "per_step", bool(self.per_step))
        object.__setattr__(self, "params", dict(self.params))

    # -- sizes ---------------------------------------------------------------

    @property
    def n_sequences(self):
        """int: Number of sequences (axis 1 of the time-major arrays)."""
        return self.inputs.shape[1]

    @property
    def n_in(self):
        """int: Number of input channels."""
        return self.inputs.shape[2]

    @property
    def T_total(self):
        """int: Number of time steps of the padded arrays."""
        return self.inputs.shape[0]

    def __len__(self):
        return self.n_sequences

    def __repr__(self):
        return (
            f"SequenceTask(name={self.name!r}, T={self.T}, n_sequences={self.n_sequences}, "
            f"T_total={self.T_total}, n_in={self.n_in}, n_out={self.n_out}, "
            f"output={self.output!r}, per_step={self.per_step})"
        )

    # -- conversions ---------------------------------------------------------

    def dense_targets(self, dtype=None):
        """Targets as a time-major float array matching the network outputs.

        Parameters
        ----------
        dtype : numpy dtype, optional
            Float dtype of the result; defaults to ``inputs.dtype``.

        Returns
        -------
        numpy.ndarray
            ``(T_total, n_sequences, n_out)``; one-hot rows for ``'softmax'``.
            Entries on steps where ``target_mask`` is 0 are zero.
        """
        dtype = self.inputs.dtype if dtype is None else np.dtype(dtype)
        out = np.zeros((self.T_total, self.n_sequences, self.n_out), dtype=dtype)
        columns = np.arange(self.n_sequences)
        if self.per_step:
            steps, seqs = np.nonzero(self.target_mask)
            out[steps, seqs, self.targets[steps, seqs]] = 1
        elif self.output == "softmax":
            out[self.lengths - 1, columns, self.targets] = 1
        else:
            out[self.lengths - 1, columns, :] = self.targets
        return out

    def final_outputs(self, outputs):
        """Pick each sequence's output at its last step ``lengths - 1``.

        Parameters
        ----------
        outputs : array_like
            Time-major ``(T_total, n_sequences, ...)`` network outputs.

        Returns
        -------
        numpy.ndarray
            ``(n_sequences, ...)``.
        """
        outputs = np.asarray(outputs)
        if outputs.shape[:2] != (self.T_total, self.n_sequences):
            raise ValueError(
                "final_outputs: outputs must be time-major with leading shape "
                f"{(self.T_total, self.n_sequences)}, got {outputs.shape}"
            )
        return outputs[self.lengths - 1, np.arange(self.n_sequences)]

    def astype(self, dtype):
        """Copy of the task with the float arrays cast to ``dtype``.

        Parameters
        ----------
        dtype : numpy dtype
            A floating dtype such as ``'float32'``.

        Returns
        -------
        SequenceTask
        """
        dtype = float_dtype("astype", dtype)
        changes = {f: getattr(self, f).astype(dtype)
                   for f in ("inputs", "target_mask", "score_mask", "mask")}
        if not self.per_step and self.output != "softmax":
            changes["targets"] = self.targets.astype(dtype)
        return dataclasses.replace(self, **changes)

    def take(self, indices):
        """Subset of the sequences (for example a train/test split).

        Parameters
        ----------
        indices : array_like of int, or slice
            Sequences to keep, in order.

        Returns
        -------
        SequenceTask
        """
        if isinstance(indices, slice):
            indices = np.arange(self.n_sequences)[indices]
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        changes = {f: getattr(self, f)[:, indices]
                   for f in ("inputs", "target_mask", "score_mask", "mask")}
        changes["targets"] = self.targets[:, indices] if self.per_step else self.targets[indices]
        changes["lengths"] = self.lengths[indices]
        return dataclasses.replace(self, **changes)

    # -- success criterion ---------------------------------------------------

    def solved(self, predictions, *, tolerance=SOLVED_TOLERANCE):
        """Which sequences the predictions solve, by the criterion of [MS11]_.

        Parameters
        ----------
        predictions : array_like
            Network outputs after the output nonlinearity.  For tasks with one
            target per sequence (``per_step`` false): either the outputs at the
            scored step, shape ``(n_sequences, n_out)`` (or ``(n_sequences,)``
            when ``n_out == 1``), or the full time-major outputs ``(T_total,
            n_sequences, n_out)``, from which step ``lengths - 1`` is taken.
            For ``per_step`` tasks: the time-major outputs ``(T_total,
            n_sequences, n_out)``.  ``'linear'``: values; ``'logistic'``:
            probabilities (not logits); ``'softmax'``: probabilities or logits
            (only the argmax matters).
        tolerance : float, optional
            Largest absolute error that counts as solved for ``'linear'``
            outputs (default 0.04 as in [MS11]_); ignored otherwise.

        Returns
        -------
        numpy.ndarray
            ``(n_sequences,)`` booleans.  Sequences whose judged predictions
            are not finite are never solved.

        Notes
        -----
        * ``'linear'``: ``|y - target| <= tolerance`` for every output unit.
        * ``'logistic'``: ``(p > 0.5) == (target > 0.5)``.
        * ``'softmax'``: the argmax is the target class on every step where
          ``score_mask`` is 1.
        """
        p = np.asarray(predictions, dtype=np.float64)
        if self.per_step:
            shape = (self.T_total, self.n_sequences, self.n_out)
            if p.shape != shape:
                raise ValueError(
                    f"solved: predictions for the per-step task {self.name!r} must have "
                    f"shape {shape}, got {p.shape}"
                )
            judged = self.score_mask > 0
            right = (np.argmax(p, axis=-1) == self.targets) & np.all(np.isfinite(p), axis=-1)
            return np.all(right | ~judged, axis=0)
        p = self._predictions_at_end(p)
        finite = np.all(np.isfinite(p), axis=1)
        if self.output == "softmax":
            right = np.argmax(p, axis=1) == self.targets
        elif self.output == "logistic":
            right = np.all((p > 0.5) == (self.targets > 0.5), axis=1)
        else:
            tolerance = float(tolerance)
            if not tolerance >= 0:
                raise ValueError(f"solved: tolerance must be >= 0, got tolerance={tolerance!r}")
            right = np.all(np.abs(p - self.targets) <= tolerance, axis=1)
        return right & finite

    def score(self, predictions, *, tolerance=SOLVED_TOLERANCE):
        """Fraction of the sequences solved; see :meth:`solved`.

        Parameters
        ----------
        predictions : array_like
            As for :meth:`solved`.
        tolerance : float, optional
            As for :meth:`solved`.

        Returns
        -------
        float
            In ``[0, 1]``.
        """
        return float(np.mean(self.solved(predictions, tolerance=tolerance)))

    def _predictions_at_end(self, p):
        n, k = self.n_sequences, self.n_out
        if p.ndim == 3 and p.shape[:2] == (self.T_total, n):
            p = p[self.lengths - 1, np.arange(n)]
        elif p.ndim == 1 and k == 1 and p.shape == (n,):
            p = p[:, None]
        if p.shape != (n, k):
            raise ValueError(
                f"solved: predictions for {self.name!r} must have shape {(n, k)} or "
                f"{(self.T_total, n, k)}, got {p.shape}"
            )
        return p
