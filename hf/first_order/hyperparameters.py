"""The first-order hyperparameters, each declared once: name, default, range and meaning.

An algorithm lists the declarations it uses in its class attribute
``hyperparameters`` (those of its base classes are inherited), so its keywords,
their defaults, their checks and the list in its docstring all come from here.
:data:`HYPERPARAMETERS` (name -> default) is built from :data:`ALL`.

Most numeric hyperparameters enter the compiled step through a shared scalar
that the optimizer owns: ``attribute`` names it (downhill's attribute name,
e.g. ``epsilon`` for ``rms_regularizer``) and ``transform`` maps the keyword's
value to the value it holds (a halflife to an EWMA weight). Setting a new value
on it, or passing a new keyword value to another ``iterate`` call, changes the
step without compiling it again.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import warnings
from typing import Callable, Optional

from pytensor.graph.basic import Variable

from .. import _checks

__all__ = [
    "Hyperparameter", "HyperparameterWarning", "ALL", "BY_NAME", "HYPERPARAMETERS", "halflife_to_decay",
    "LEARNING_RATE", "MOMENTUM", "NESTEROV", "MAX_GRADIENT_NORM", "MAX_GRADIENT_ELEM",
    "RMS_HALFLIFE", "RMS_REGULARIZER", "BETA1_HALFLIFE", "BETA2_HALFLIFE", "BETA1_DECAY",
    "RPROP_INCREASE", "RPROP_DECREASE", "RPROP_MIN_STEP", "RPROP_MAX_STEP", "KINGMA_BA",
]


class HyperparameterWarning(UserWarning):
    """A hyperparameter outside its meaningful range (accepted, as downhill accepts it)."""


def halflife_to_decay(halflife: float) -> float:
    """EWMA weight of a halflife ``h``: :math:`\\gamma = e^{-\\ln 2 / h}`, so ``γ**h == 1/2``."""
    return math.exp(-math.log(2.0) / halflife)


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One keyword of the first-order algorithms.

    A numeric hyperparameter must be a finite real; outside its meaningful
    interval from ``low`` to ``high`` (an end excluded when ``low_open`` /
    ``high_open``) it is accepted with a :class:`HyperparameterWarning`, as
    downhill accepts it, unless it is ``strict`` (the update cannot be computed
    with it: a halflife of 0), which is a ``ValueError``. A ``flag`` must be True
    or False. With ``symbolic``, a PyTensor scalar (e.g. a shared variable
    driven by a schedule) is accepted too and used as is. With ``attribute``,
    the optimizer keeps the value in a float64 shared scalar of that name
    (``transform(value)`` when a transform is given), which the compiled step
    reads.
    """

    name: str
    default: object
    doc: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    flag: bool = False
    symbolic: bool = False
    strict: bool = False
    attribute: str = ""
    transform: Optional[Callable[[float], float]] = None

    def shared_value(self, value: float) -> float:
        """What the shared scalar ``attribute`` holds for the keyword value ``value``."""
        return float(value if self.transform is None else self.transform(value))

    def check(self, value, owner=None):
        """``value`` checked: a float, a bool for a flag, or a symbolic scalar where allowed.

        Raises TypeError for a value of the wrong type, ValueError for one out of range.
        """
        if self.flag:
            return _checks.boolean(self.name, value, owner)
        if isinstance(value, Variable):
            prefix = f"{owner}: " if owner else ""
            if not self.symbolic:
                raise TypeError(f"{prefix}{self.name} must be a number, got the symbolic {value!r}")
            if value.ndim != 0:
                raise ValueError(f"{prefix}a symbolic {self.name} must be a scalar, got ndim={value.ndim}")
            return value
        x = _checks.real(self.name, value, owner)  # a finite real: TypeError / ValueError otherwise
        inside = (x > self.low or (not self.low_open and x == self.low)) and (
            x < self.high or (not self.high_open and x == self.high))
        if not inside:
            message = f"{owner + ': ' if owner else ''}{self.name} = {value!r} is outside {self.interval()}"
            if self.strict:
                raise ValueError(message)
            warnings.warn(message + " (accepted)", HyperparameterWarning, stacklevel=4)
        return x

    def interval(self) -> str:
        """The allowed values, e.g. ``'(0, inf)'`` or ``'True or False'``."""
        if self.flag:
            return "True or False"
        left = "(" if self.low_open or self.low == -math.inf else "["
        right = ")" if self.high_open or self.high == math.inf else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def describe(self) -> str:
        """One numpydoc-style entry: ``name : type, default ...`` and the meaning, indented."""
        kind = "bool" if self.flag else "float" + (" or symbolic scalar" if self.symbolic else "")
        head = f"{self.name} : {kind}, default {self.default!r}"
        if not self.flag:
            head += f", in {self.interval()}"
        return f"{head}\n    {self.doc}"


_POSITIVE = dict(low=0.0, low_open=True)
_NONNEGATIVE = dict(low=0.0)

LEARNING_RATE = Hyperparameter(
    "learning_rate", 1e-4, "Step size η.", symbolic=True, attribute="learning_rate", **_POSITIVE)
MOMENTUM = Hyperparameter(
    "momentum", 0.0, "Momentum μ (0: none).", high=1.0, high_open=True, symbolic=True, **_NONNEGATIVE)
NESTEROV = Hyperparameter(
    "nesterov", False, "Nesterov's form of momentum instead of the classical one.", flag=True)
MAX_GRADIENT_NORM = Hyperparameter(
    "max_gradient_norm", 0.0, "Rescale each parameter's gradient to at most this norm (0: off).", **_NONNEGATIVE)
MAX_GRADIENT_ELEM = Hyperparameter(
    "max_gradient_elem", 0.0,
    "Clip gradient elements to [-c, c] (0: off); takes precedence over max_gradient_norm.", **_NONNEGATIVE)
RMS_HALFLIFE = Hyperparameter(
    "rms_halflife", 14.0, "Halflife h of the moving averages, γ = exp(-ln 2 / h) (attribute ``ewma``).",
    strict=True, attribute="ewma", transform=halflife_to_decay, **_POSITIVE)
RMS_REGULARIZER = Hyperparameter(
    "rms_regularizer", 1e-8, "ε added to the scaling denominator (attribute ``epsilon``).",
    attribute="epsilon", **_NONNEGATIVE)
BETA1_HALFLIFE = Hyperparameter(
    "beta1_halflife", 7.0, "Halflife of the first-moment average, β₁ = exp(-ln 2 / h) (attribute ``beta1``).",
    strict=True, attribute="beta1", transform=halflife_to_decay, **_POSITIVE)
BETA2_HALFLIFE = Hyperparameter(
    "beta2_halflife", 69.0, "Halflife of the second-moment average, β₂ = exp(-ln 2 / h) (attribute ``beta2``).",
    strict=True, attribute="beta2", transform=halflife_to_decay, **_POSITIVE)
BETA1_DECAY = Hyperparameter(
    "beta1_decay", 1 - 1e-6, "λ: β₁ is multiplied by it after every step.", low=0.0, low_open=True, high=1.0,
    attribute="beta1_decay")
RPROP_INCREASE = Hyperparameter(
    "rprop_increase", 1.01, "η⁺: step size factor when the gradient keeps its sign (attribute ``step_increase``).",
    low=1.0, attribute="step_increase")
RPROP_DECREASE = Hyperparameter(
    "rprop_decrease", 0.99, "η⁻: step size factor when the gradient changes sign (attribute ``step_decrease``).",
    low=0.0, low_open=True, high=1.0, attribute="step_decrease")
RPROP_MIN_STEP = Hyperparameter(
    "rprop_min_step", 0.0, "Smallest step size (at most rprop_max_step; attribute ``min_step``).",
    attribute="min_step", **_NONNEGATIVE)
RPROP_MAX_STEP = Hyperparameter(
    "rprop_max_step", 100.0, "Largest step size (attribute ``max_step``).", attribute="max_step", **_POSITIVE)
KINGMA_BA = Hyperparameter(
    "kingma_ba", False,
    "Adam's bias correction as in Kingma & Ba's Algorithm 1, (1 - β₁ᵗ) and (1 - β₂ᵗ), instead of "
    "downhill's (1 - β₁,ₜ) and (1 - β₂).", flag=True)

#: Every hyperparameter of :mod:`hf.first_order`, in the order of the docs.
ALL = (
    LEARNING_RATE, MOMENTUM, NESTEROV, MAX_GRADIENT_NORM, MAX_GRADIENT_ELEM,
    RMS_HALFLIFE, RMS_REGULARIZER, BETA1_HALFLIFE, BETA2_HALFLIFE, BETA1_DECAY,
    RPROP_INCREASE, RPROP_DECREASE, RPROP_MIN_STEP, RPROP_MAX_STEP, KINGMA_BA,
)

#: Every hyperparameter any algorithm of :mod:`hf.first_order` understands, with its default.
#: An algorithm accepts all of them; those it does not use are checked and ignored
#: (logged), so one keyword dictionary can drive several algorithms, as with downhill.
HYPERPARAMETERS = collections.OrderedDict((h.name, h.default) for h in ALL)

#: The declarations by name.
BY_NAME = {h.name: h for h in ALL}
