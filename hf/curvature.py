"""Symbolic curvature products: Gauss-Newton G·v and the structural damping term.

All curvature graph building lives here; the optimizer compiles these graphs
once and calls them on flat vectors. The graph helpers (free inputs, parameter
checks, flatten/unflatten) live in :mod:`hf.graph` and are re-exported here.

References
----------
.. [Schr02] N. Schraudolph, "Fast curvature matrix-vector products for
   second-order gradient descent", Neural Computation, 2002.
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedInputError, grad, pullback, pushforward
from pytensor.graph.basic import Variable
from pytensor.graph.traversal import ancestors

# The graph helpers moved to hf.graph; they stay importable from here.
from .graph import (  # noqa: F401
    check_connected,
    check_inputs_used,
    check_params,
    flatten,
    free_inputs,
    param_label,
    roots,
    unflatten,
)

__all__ = [
    "gauss_newton_product",
    "gauss_newton_form",
    "damped_gauss_newton_product",
    "StructuralDamping",
    "structural_damping_product",
    "check_params",
    "flatten",
    "unflatten",
]


def _check_scalar(cost, name="cost"):
    if not isinstance(cost, Variable):
        raise TypeError(f"{name} must be a symbolic PyTensor variable, got {type(cost).__name__}")
    if cost.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got a variable with ndim={cost.ndim}: {cost!r}")


def _check_connected(s, params, what="s"):
    check_connected(
        s,
        params,
        what,
        why=f": the Gauss-Newton product is defined through {what} only, so every parameter must influence it",
    )


def _reaching(a, params, what="the structural damping preactivation"):
    """Indices of the parameters ``a`` depends on; ``ValueError`` naming them all if none."""
    reach = {id(v) for v in roots([a])}
    used = [i for i, p in enumerate(params) if id(p) in reach]
    if not used:
        names = ", ".join(param_label(p, i) for i, p in enumerate(params))
        raise ValueError(f"{what} {a!r} is not connected to any parameter: none of {names} influences it")
    return used


def _loss_hessian_product(cost, s, Jv):
    """``H_L Jv``: the directional derivative of dL/ds along ``Jv``, ``Jv`` held constant."""
    dL_ds = grad(cost, s)
    try:
        return grad(pt.sum(dL_ds * Jv), s, consider_constant=[Jv])
    except DisconnectedInputError:
        raise ValueError(
            f"the cost is linear in s={s!r}: its Hessian d²L/ds² is identically zero, so the "
            "Gauss-Newton product is zero for every v; cut the graph where the loss has "
            "curvature (pre-softmax logits with cross-entropy, a linear output with squared error)"
        ) from None


def _check_tangents(params, v, name="v"):
    v = list(v)
    if len(v) != len(params):
        raise ValueError(f"{name} must hold one tensor per parameter ({len(params)}), got {len(v)}")
    for i, (p, vi) in enumerate(zip(params, v)):
        if getattr(vi, "ndim", None) != p.ndim:
            raise ValueError(
                f"{name}[{i}] must have ndim={p.ndim} like parameter {p.name!r}, "
                f"got ndim={getattr(vi, 'ndim', None)}"
            )
    return v


def _check_product_args(cost, s, params, v):
    """Validate the arguments of a Gauss-Newton product; return ``(params, v)`` as lists."""
    _check_scalar(cost)
    params = check_params(params)
    if not isinstance(s, Variable):
        raise TypeError(f"s must be a symbolic PyTensor variable, got {type(s).__name__}")
    if s not in set(ancestors([cost])):
        raise ValueError(f"cost does not depend on s={s!r}: cut the graph at a variable the cost uses")
    _check_connected(s, params)
    return params, _check_tangents(params, v)


def _jv(outputs, params, v, jv):
    """Jacobian-vector products of ``outputs`` along ``v``.

    ``jv='pullback'`` builds them from two reverse-mode products (PyTensor's
    default, which works for every op); ``'op'`` uses the ops' own forward-mode
    rules, which ``Dot``, ``Elemwise`` and ``Scan`` have but 2-D ``@`` (a
    ``Blockwise`` ``Matmul`` in PyTensor 3) does not; ``'auto'`` tries ``'op'``
    and falls back to ``'pullback'`` where an op has no rule.
    """
    if jv not in ("pullback", "op", "auto"):
        raise ValueError(f"jv must be 'pullback', 'op' or 'auto', got {jv!r}")
    if jv == "pullback":
        return pushforward(outputs, params, v)
    try:
        return pushforward(outputs, params, v, use_op_pushforward=True)
    except NotImplementedError as err:
        if jv == "op":
            raise ValueError(f"jv='op': {err}; write the graph with pt.dot instead of @, or use jv='auto'") from err
        return pushforward(outputs, params, v)


def gauss_newton_product(cost, s, params, v, *, jv="pullback") -> list:
    """Symbolic Gauss-Newton matrix-vector product ``G·v = Jᵀ H_L J v``.

    Parameters
    ----------
    cost : scalar TensorVariable
        The loss ``L``; it must be convex in ``s`` for ``G`` to be positive
        semi-definite (e.g. cross-entropy of pre-softmax logits, squared error of a
        linear output).
    s : TensorVariable
        The variable at which the graph is cut (the network output before the
        loss's matching nonlinearity). May be the output of ``pytensor.scan``.
    params : list of shared variables
        Parameters θ; each must influence ``s``.
    v : list of TensorVariable
        One tangent per parameter, with the parameter's shape.
    jv : {'pullback', 'op', 'auto'}
        How ``Jv`` is built (see :func:`_jv`): from two reverse-mode products
        (default), from the ops' forward-mode rules, or the latter where every op
        has one.

    Returns
    -------
    list of TensorVariable
        ``G·v`` split per parameter.

    Raises
    ------
    ValueError
        If ``cost`` is not scalar, ``s`` does not reach ``cost``, a parameter does
        not reach ``s`` (the message names it), the cost is linear in ``s`` (zero
        ``H_L``), or ``v`` does not match ``params``.
    TypeError
        If a parameter is not a float shared variable.

    Notes
    -----
    With :math:`J = \\partial s / \\partial \\theta` and :math:`H_L = \\partial^2 L /
    \\partial s^2` [Schr02]:

    1. :math:`Jv` — forward-mode product (R-op) of ``s`` along ``v``;
    2. :math:`H_L J v = \\partial/\\partial s\\,[(\\partial L/\\partial s)^\\top Jv]` with
       :math:`Jv` held constant;
    3. :math:`J^\\top (H_L J v)` — reverse-mode product (L-op) of ``s``.

    Curvature of terms that bypass ``s`` (e.g. weight decay) is not included.
    """
    params, v = _check_product_args(cost, s, params, v)

    # 1. Jv: how s moves along v.
    Jv = _jv(s, params, v, jv)
    # 2. H_L Jv: directional derivative of dL/ds along Jv, Jv treated as a constant.
    HJv = _loss_hessian_product(cost, s, Jv)
    # 3. Jᵀ (H_L Jv): pull the result back to the parameters.
    return list(pullback(s, params, HJv))


def gauss_newton_form(cost, s, params, v, *, jv="pullback"):
    """Symbolic quadratic form ``vᵀ G v = (J v)ᵀ H_L (J v)``, a scalar.

    The same curvature as :func:`gauss_newton_product` (same arguments, same
    checks), without its last step: the pull back of ``H_L J v`` to the
    parameters. What HF's reduction ratio needs on the gradient batch is this one
    number, ``pᵀGp``; built as a form it skips the reverse pass of a full product
    (``bench/gv_form.py`` times the two).

    Returns
    -------
    scalar TensorVariable

    Raises
    ------
    ValueError, TypeError
        As :func:`gauss_newton_product`.
    """
    params, v = _check_product_args(cost, s, params, v)
    Jv = _jv(s, params, v, jv)
    return pt.sum(Jv * _loss_hessian_product(cost, s, Jv))


_NONLINEARITIES = ("tanh", "logistic")


@dataclasses.dataclass(frozen=True)
class StructuralDamping:
    """Structural damping specification for recurrent networks [MS11].

    Parameters
    ----------
    preactivation : TensorVariable
        The hidden pre-activations ``a`` over all time steps, typically a ``scan``
        output of shape ``(T, batch, hidden)``; the hidden states are
        ``nonlinearity(a)``.
    nonlinearity : {'tanh', 'logistic'}
        The hidden units' nonlinearity. It fixes ``D``, the Hessian of the matching
        loss: ``h(1-h)`` for logistic units, ``1-h²`` for tanh.
    weight : float
        μ: the structural term is ``λ·μ·J_aᵀ D J_a v`` (λ the Tikhonov damping).
    mask : TensorVariable, optional
        ``(T, batch)`` 0/1 mask: padded steps contribute nothing. Its shape must
        be that of the preactivation's leading axes (through ``batch_axis`` at
        least): a wrong number of axes, or static shapes that differ (a
        transposed mask), are refused here, and :class:`hf.HFOptimizer` checks
        the shapes again on the first batch.
    batch_axis : int
        Axis of ``preactivation`` that indexes examples (1 for time-major scans);
        the term is averaged over it like a mean loss.
    hidden : TensorVariable, optional
        theano-hf's form of the term (Boulanger-Lewandowski's ``hf_optimizer``
        with ``h`` and ``ha``): a function of ``preactivation`` with values in
        (0, 1), e.g. ``0.5 * (tanh(a) + 1)``. ``D`` is then the Hessian with
        respect to ``preactivation`` of the cross-entropy between ``hidden`` and
        a constant copy of it, summed and divided by ``hidden.shape[0]``
        (the number of steps of a graph with no batch axis); ``nonlinearity`` and
        ``batch_axis`` are not used, and ``mask`` must be None.
    """

    preactivation: Variable
    nonlinearity: str = "tanh"
    weight: float = 0.03
    mask: Variable | None = None
    batch_axis: int = 1
    hidden: Variable | None = None

    def __post_init__(self):
        if not isinstance(self.preactivation, Variable):
            raise TypeError(
                f"preactivation must be a symbolic PyTensor variable, got {type(self.preactivation).__name__}"
            )
        if self.nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"nonlinearity must be one of {_NONLINEARITIES}, got {self.nonlinearity!r}")
        weight = float(self.weight)
        if not np.isfinite(weight) or weight < 0:
            raise ValueError(f"weight (structural damping μ) must be finite and >= 0, got {self.weight!r}")
        if not -self.preactivation.ndim <= self.batch_axis < self.preactivation.ndim:
            raise ValueError(
                f"batch_axis={self.batch_axis!r} is out of range for preactivation with ndim={self.preactivation.ndim}"
            )
        if self.mask is not None and not isinstance(self.mask, Variable):
            raise TypeError(f"mask must be a symbolic PyTensor variable or None, got {type(self.mask).__name__}")
        if self.mask is not None:
            a, m = self.preactivation, self.mask
            axis = self.batch_axis % a.ndim
            if not axis + 1 <= m.ndim <= a.ndim:
                raise ValueError(
                    f"StructuralDamping: mask must have one axis per leading axis of preactivation up to its "
                    f"batch axis {axis} (ndim {axis + 1}{f' to {a.ndim}' if a.ndim > axis + 1 else ''}; "
                    f"(T, batch) for a time-major scan), got {m} of ndim {m.ndim}"
                )
            a_shape, m_shape = a.type.shape[: m.ndim], m.type.shape
            if any(x is not None and y is not None and x != y for x, y in zip(a_shape, m_shape)):
                shown = lambda shape: "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"  # noqa: E731
                raise ValueError(
                    f"StructuralDamping: mask has shape {shown(m_shape)}, while the preactivation's leading "
                    f"axes have shape {shown(a_shape)}: the mask must match them ((T, batch) for a time-major "
                    "scan); is it transposed?"
                )
        if self.hidden is not None:
            if not isinstance(self.hidden, Variable):
                raise TypeError(f"hidden must be a symbolic PyTensor variable or None, got {type(self.hidden).__name__}")
            if self.mask is not None:
                raise ValueError("mask is not supported with hidden (theano-hf's cross-entropy form has no mask)")
            if self.hidden.ndim < 1:
                raise ValueError(f"hidden must have at least one axis (steps first), got ndim={self.hidden.ndim}")
            if self.preactivation not in set(ancestors([self.hidden])):
                raise ValueError(
                    f"hidden {self.hidden!r} is not a function of preactivation {self.preactivation!r}: compute "
                    "it from the preactivation (e.g. 0.5 * (tanh(a) + 1) outside the scan) so that the "
                    "cross-entropy can be differentiated with respect to it"
                )


def _matching_hessian(spec: StructuralDamping):
    """D: the matching loss's Hessian at the hidden states, masked, per example, constant."""
    a = spec.preactivation
    if spec.nonlinearity == "tanh":
        h = pt.tanh(a)
        D = 1.0 - h**2
    else:
        h = pt.sigmoid(a)
        D = h * (1.0 - h)
    if spec.mask is not None:
        # Broadcast a (T, batch) mask over trailing feature axes.
        D = D * pt.shape_padright(spec.mask, a.ndim - spec.mask.ndim)
    n = pt.cast(a.shape[spec.batch_axis], a.dtype)
    return pytensor.gradient.disconnected_grad(D / n)


def _cross_entropy_hessian_product(spec: StructuralDamping, Jav):
    """theano-hf's ``D J_a v``: the Hessian of its cross-entropy penalty at ``a`` times ``J_a v``.

    The penalty is ``Σ CE(ĥ, h) / h.shape[0]`` with ``ĥ`` a copy of ``h`` held
    constant, so its gradient vanishes at ``ĥ = h`` and its Hessian with respect
    to ``a`` is, for elementwise ``h = h(a)``, ``h'² / (h(1 - h))`` (``1 - tanh²``
    for ``h = (tanh + 1)/2``). The product is built the generic way
    (directional derivative of the gradient), as theano-hf does, so any ``h(a)``
    works; ``10⁻¹⁰`` inside the logarithms keeps saturated units finite.
    """
    h, a = spec.hidden, spec.preactivation
    target = pytensor.gradient.disconnected_grad(h)  # ĥ: the value of h, constant for every derivative
    eps = np.asarray(1e-10, dtype=h.dtype)
    ce = -(target * pt.log(h + eps) + (1 - target) * pt.log(1 - h + eps))
    penalty = pt.sum(ce) / pt.cast(h.shape[0], h.dtype)
    dP_da = grad(penalty, a)
    return grad(pt.sum(dP_da * Jav), a, consider_constant=[Jav])


def _matching_hessian_product(spec: StructuralDamping, Jav):
    """``D J_a v`` (without λμ) for either form of the structural damping term."""
    if spec.hidden is not None:
        return _cross_entropy_hessian_product(spec, Jav)
    return _matching_hessian(spec) * Jav


def structural_damping_product(spec: StructuralDamping, params, v) -> list:
    """Symbolic ``J_aᵀ D J_a v`` for the structural damping term of [MS11].

    Parameters
    ----------
    spec : StructuralDamping
    params, v : list
        As in :func:`gauss_newton_product`.

    Returns
    -------
    list of TensorVariable
        The product per parameter, averaged over the batch axis (without λμ).

    Notes
    -----
    The penalty is the Gauss-Newton matrix of the matching loss of the hidden
    units, evaluated at the current hidden states: for ``h = σ(a)`` the matching
    loss is cross-entropy with Hessian ``h(1-h)``; for ``h = tanh(a)`` it is
    ``1 - h²``.
    """
    if not isinstance(spec, StructuralDamping):
        raise TypeError(f"spec must be a StructuralDamping, got {type(spec).__name__}")
    params = check_params(params)
    a = spec.preactivation
    v = _check_tangents(params, v)
    # Parameters that do not reach the hidden units (e.g. output weights) get zero.
    used = _reaching(a, params)
    Jav = pushforward(a, [params[i] for i in used], [v[i] for i in used])
    pulled = pullback(a, [params[i] for i in used], _matching_hessian_product(spec, Jav))
    out = [pt.zeros_like(p) for p in params]
    for i, term in zip(used, pulled):
        out[i] = term
    return out


def damped_gauss_newton_product(cost, s, params, v, spec: StructuralDamping, coef, *, jv="pullback") -> list:
    """``G·v + coef · J_aᵀ D J_a v`` in one forward and one reverse pass.

    Equal to :func:`gauss_newton_product` plus ``coef`` times
    :func:`structural_damping_product`, but the R-op and the L-op run once through
    ``[s, a]`` together instead of once for ``s`` and once for ``a``.

    Parameters
    ----------
    cost, s, params, v
        As in :func:`gauss_newton_product`.
    spec : StructuralDamping
    coef : scalar TensorVariable
        ``λ·μ``, usually a compiled function's input.

    Raises
    ------
    ValueError
        As :func:`gauss_newton_product`, and if no parameter reaches the
        preactivation (the message names them).
    """
    params, v = _check_product_args(cost, s, params, v)
    if not isinstance(spec, StructuralDamping):
        raise TypeError(f"spec must be a StructuralDamping, got {type(spec).__name__}")
    a = spec.preactivation
    _reaching(a, params)
    # 1. J v and J_a v together.
    Jv, Jav = _jv([s, a], params, v, jv)
    # 2. H_L J v, and D J_a v scaled by λμ.
    HJv = _loss_hessian_product(cost, s, Jv)
    DJav = pt.cast(coef, a.dtype) * _matching_hessian_product(spec, Jav)
    # 3. One pullback of both cotangents.
    return list(pullback([s, a], params, [HJv, DJav]))
