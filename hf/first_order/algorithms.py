"""The first-order algorithms: each its ``hyperparameters`` and a short ``_get_updates_for``.

Notation: ``g`` is the (clipped) gradient of the current mini-batch, ``Δ`` the
step yielded for the parameter (subtracted from it, or fed to momentum by
:class:`~hf.first_order.base.Optimizer`), ``_tm1`` a value from the previous
step and ``_t`` its new value. An EWMA weight comes from a halflife ``h`` as
:math:`\\gamma = e^{-\\ln 2 / h}`.

References
----------
.. [Duch11] J. Duchi, E. Hazan, Y. Singer, "Adaptive subgradient methods for online
   learning and stochastic optimization", JMLR 12, 2011.
.. [Zeil12] M. Zeiler, "ADADELTA: an adaptive learning rate method", arXiv:1212.5701, 2012.
.. [Grav13] A. Graves, "Generating sequences with recurrent neural networks",
   arXiv:1308.0850, 2013, eqs. (38)-(41).
.. [Daup15] Y. Dauphin, H. de Vries, Y. Bengio, "Equilibrated adaptive learning rates
   for non-convex optimization", NIPS 2015.
.. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015.
.. [RB93] M. Riedmiller, H. Braun, "A direct adaptive method for faster backpropagation
   learning: the RPROP algorithm", ICNN 1993.
.. [IH00] C. Igel, M. Hüsken, "Improving the Rprop learning algorithm", NC 2000.
.. [Sut13] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
   initialization and momentum in deep learning", ICML 2013.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.gradient import pullback, pushforward

from . import hyperparameters as hp
from .base import Optimizer

__all__ = ["SGD", "NAG", "RProp", "ADAGRAD", "RMSProp", "ADADELTA", "ESGD", "Adam"]


class SGD(Optimizer):
    """Stochastic gradient descent: :math:`\\Delta = \\eta g`.

    With ``momentum`` μ > 0 the base class adds classical (or, with
    ``nesterov=True``, Nesterov) momentum.
    """

    def _get_updates_for(self, param, grad):
        yield param, self._as(self.learning_rate, param) * grad


class NAG(SGD):
    """SGD with Nesterov's accelerated gradient [Sut13]_: ``SGD`` with ``nesterov=True``.

    The velocity follows :math:`v \\leftarrow \\mu^2 v - (1+\\mu)\\eta g`,
    :math:`\\theta \\leftarrow \\theta + v`; with ``momentum=0`` (the default)
    this is plain SGD, so give a momentum.
    """

    fixed_hyperparameters = {"nesterov": True}


class RProp(Optimizer):
    """Resilient backpropagation, the iRprop− variant [RB93]_, [IH00]_.

    Each weight has its own step size :math:`s`, starting at ``learning_rate``:

    .. math::
        s_t = \\min(\\max(c_t\\, s_{t-1}, s_{min}), s_{max}), \\quad
        c_t = \\begin{cases}
            \\eta^+ & g_t g_{t-1} > 0 \\\\
            \\eta^- & g_t g_{t-1} < 0 \\\\
            1 & \\text{otherwise}
        \\end{cases}

    after a sign change the gradient is forgotten (:math:`g_t \\leftarrow 0`,
    no move on that weight), and :math:`\\Delta = \\operatorname{sign}(g_t)\\, s_t`.
    ``rprop_increase`` is η⁺, ``rprop_decrease`` η⁻, ``rprop_min_step`` and
    ``rprop_max_step`` bound :math:`s`.
    """

    hyperparameters = (hp.RPROP_INCREASE, hp.RPROP_DECREASE, hp.RPROP_MIN_STEP, hp.RPROP_MAX_STEP)

    @classmethod
    def _check_hyperparameters(cls, hyper, owner):
        lo, hi = hyper["rprop_min_step"], hyper["rprop_max_step"]
        if lo > hi:
            warnings.warn(f"{owner}: rprop_min_step ({lo!r}) exceeds rprop_max_step ({hi!r}) (accepted: "
                          "every step size is then clipped to rprop_max_step)", hp.HyperparameterWarning,
                          stacklevel=4)

    def _get_updates_for(self, param, grad):
        lr = self.learning_rate  # a shared scalar: the step sizes (re)start from its value then
        initial = lr if isinstance(lr, SharedVariable) else float(lr.eval())
        grad_tm1 = self._slot(param, "grad")
        step_tm1 = self._slot(param, "step", initial)
        same = grad * grad_tm1
        factor = pt.switch(same > 0, self._as(self.step_increase, param),
                           pt.switch(same < 0, self._as(self.step_decrease, param), self._as(1.0, param)))
        # Every step size is clipped, the unchanged ones too, as downhill does: min(max(s, lo), hi).
        step_t = pt.minimum(pt.maximum(step_tm1 * factor, self._as(self.min_step, param)),
                            self._as(self.max_step, param))
        grad_t = pt.switch(same < 0, pt.zeros_like(grad), grad)
        yield param, pt.sign(grad_t) * step_t
        yield grad_tm1, grad_t
        yield step_tm1, step_t


class ADAGRAD(Optimizer):
    """Adaptive subgradient steps [Duch11]_ (diagonal version).

    :math:`G_t = G_{t-1} + g^2`, :math:`\\Delta = \\eta\\, g / \\sqrt{G_t + \\epsilon}`
    with ε = ``rms_regularizer``.
    """

    hyperparameters = (hp.RMS_REGULARIZER,)

    def _get_updates_for(self, param, grad):
        g2_tm1 = self._slot(param, "g2_sum")
        g2_t = g2_tm1 + grad * grad
        yield g2_tm1, g2_t
        yield param, self._as(self.learning_rate, param) * grad / pt.sqrt(g2_t + self._as(self.epsilon, param))


class RMSProp(Optimizer):
    """RMSProp in Graves' centred form [Grav13]_.

    .. math::
        f_t = \\gamma f_{t-1} + (1-\\gamma) g, \\quad
        s_t = \\gamma s_{t-1} + (1-\\gamma) g^2, \\quad
        \\Delta = \\eta\\, g / \\sqrt{s_t - f_t^2 + \\epsilon}

    with γ from ``rms_halflife`` and ε = ``rms_regularizer``. (Graves' own
    momentum term is the base class's ``momentum``.)
    """

    hyperparameters = (hp.RMS_HALFLIFE, hp.RMS_REGULARIZER)

    def _get_updates_for(self, param, grad):
        gamma = self._as(self.ewma, param)
        one = self._as(1.0, param)
        g1_tm1 = self._slot(param, "g1_ewma")
        g2_tm1 = self._slot(param, "g2_ewma")
        g1_t = gamma * g1_tm1 + (one - gamma) * grad
        g2_t = gamma * g2_tm1 + (one - gamma) * grad * grad
        rms = pt.sqrt(g2_t - g1_t * g1_t + self._as(self.epsilon, param))
        yield g1_tm1, g1_t
        yield g2_tm1, g2_t
        yield param, self._as(self.learning_rate, param) * grad / rms


class ADADELTA(RMSProp):
    """ADADELTA, [Zeil12]_ Algorithm 1.

    .. math::
        s_t = \\gamma s_{t-1} + (1-\\gamma) g^2, \\quad
        \\Delta = g \\sqrt{x_{t-1} + \\epsilon} / \\sqrt{s_t + \\epsilon}, \\quad
        x_t = \\gamma x_{t-1} + (1-\\gamma) \\Delta^2

    with γ (Zeiler's ρ) from ``rms_halflife`` and ε = ``rms_regularizer``. The
    method has no learning rate: ``learning_rate`` is not used.
    """

    unused_hyperparameters = ("learning_rate",)

    def _get_updates_for(self, param, grad):
        gamma = self._as(self.ewma, param)
        one = self._as(1.0, param)
        eps = self._as(self.epsilon, param)
        x2_tm1 = self._slot(param, "x2_ewma")
        g2_tm1 = self._slot(param, "g2_ewma")
        g2_t = gamma * g2_tm1 + (one - gamma) * grad * grad
        delta = grad * pt.sqrt(x2_tm1 + eps) / pt.sqrt(g2_t + eps)
        x2_t = gamma * x2_tm1 + (one - gamma) * delta * delta
        yield g2_tm1, g2_t
        yield x2_tm1, x2_t
        yield param, delta


class ESGD(RMSProp):
    """Equilibrated SGD [Daup15]_, as downhill computes it.

    Each step draws :math:`v \\sim \\mathcal N(0, I)` shaped like each parameter
    :math:`p` and forms :math:`H_{pp} v`, the product of the mini-batch loss's
    Hessian block of :math:`p` with :math:`v` (the derivative of :math:`p`'s
    gradient with respect to :math:`p` alone along :math:`v`). The equilibration
    preconditioner :math:`D \\approx \\operatorname{diag}(H^2)` is an EWMA of
    :math:`(H_{pp} v)^2`:

    .. math::
        D_t = \\gamma D_{t-1} + (1-\\gamma) (H_{pp} v)^2, \\quad
        \\Delta = \\eta\\, g / (\\sqrt{D_t} + \\epsilon)

    with γ from ``rms_halflife`` and ε = ``rms_regularizer``. [Daup15]_
    averages :math:`(Hv)^2` over all steps instead; the EWMA follows downhill.

    Parameters
    ----------
    loss, params, inputs, updates, monitors, monitor_gradients
        As for :class:`~hf.first_order.base.Optimizer`.
    hv_method : {'rop', 'lop', 'grad'}
        How :math:`H_{pp} v` is built: ``'rop'`` (default) the forward-mode
        derivative of the gradient (:func:`pytensor.gradient.pushforward`),
        ``'lop'`` the reverse-mode one (:func:`pytensor.gradient.pullback`; the
        block is symmetric, so the value is the same), ``'grad'`` the gradient of
        :math:`g^\\top v`. All three give the same numbers; they differ in the graph.
    rng : None, int or numpy.random.Generator, optional
        Source of ``v``: a seed (default 0, so that runs are reproducible) or a
        Generator, used as is.

    Notes
    -----
    ``v`` comes from a numpy Generator held in a shared variable, drawn
    parameter after parameter, in order, as ``Generator.normal(size=shape)``.
    Its state is part of :meth:`state_dict` and of checkpoints, so a resumed run
    draws the same vectors as an uninterrupted one.
    """

    HV_METHODS = ("rop", "lop", "grad")

    def __init__(self, loss, params=None, inputs=None, updates=(), monitors=(), monitor_gradients=False,
                 hv_method="rop", rng=None):
        if not isinstance(hv_method, str):
            raise TypeError(f"ESGD: hv_method must be one of {self.HV_METHODS}, got {hv_method!r}")
        if hv_method.lower() not in self.HV_METHODS:
            raise ValueError(f"ESGD: hv_method must be one of {self.HV_METHODS}, got {hv_method!r}")
        self.hv_method = hv_method.lower()
        super().__init__(loss, params=params, inputs=inputs, updates=updates, monitors=monitors,
                         monitor_gradients=monitor_gradients)
        self._random_generator(rng)

    def _graph_key(self):
        return (self.hv_method,)

    def _hessian_block_product(self, grad, param, v):
        if self.hv_method == "rop":
            return pushforward(grad, param, v, disconnected_outputs="ignore")
        if self.hv_method == "lop":
            return pullback(grad, param, v, disconnected_inputs="ignore")
        return pytensor.grad((grad * v).sum(), param, disconnected_inputs="ignore")

    def _begin(self):
        rng = self._random
        self._hv = {}
        for param, grad in zip(self.params, self._grads):
            rng, v = pt.random.normal(0.0, 1.0, size=param.shape, rng=rng, dtype=param.dtype, return_next_rng=True)
            self._hv[id(param)] = self._hessian_block_product(grad, param, v)
        yield self._random, rng

    def _get_updates_for(self, param, grad):
        gamma = self._as(self.ewma, param)
        hv = self._hv[id(param)]
        d_tm1 = self._slot(param, "hv2_ewma")
        d_t = gamma * d_tm1 + (self._as(1.0, param) - gamma) * hv * hv
        yield d_tm1, d_t
        yield param, self._as(self.learning_rate, param) * grad / (pt.sqrt(d_t) + self._as(self.epsilon, param))


class Adam(Optimizer):
    """Adam as downhill documents and computes it [King15]_.

    With :math:`t = 0, 1, 2, \\dots` the number of steps taken before this one:

    .. math::
        \\beta_{1,t} = \\beta_1 \\lambda^{t}, \\quad
        m_t = \\beta_{1,t} m_{t-1} + (1-\\beta_{1,t}) g, \\quad
        v_t = \\beta_2 v_{t-1} + (1-\\beta_2) g^2,

        \\Delta = \\eta \\, \\frac{m_t / (1-\\beta_{1,t})}{\\sqrt{v_t / (1-\\beta_2)} + \\epsilon}

    with β₁, β₂ from ``beta1_halflife``, ``beta2_halflife``, λ = ``beta1_decay``
    and ε = ``rms_regularizer``. These bias terms are downhill's, not those of
    [King15]_'s Algorithm 1; ``kingma_ba=True`` uses the latter,
    :math:`\\Delta = \\eta\\, (m_t / (1-\\beta_1^{t+1})) / (\\sqrt{v_t / (1-\\beta_2^{t+1})} + \\epsilon)`.
    The step counter is one int64 shared by all parameters; the scalar factors
    are computed in float64.
    """

    hyperparameters = (hp.BETA1_HALFLIFE, hp.BETA2_HALFLIFE, hp.BETA1_DECAY, hp.RMS_REGULARIZER, hp.KINGMA_BA)

    def _begin(self):
        t_tm1 = self._global_slot("step", np.int64(0))
        t = pt.cast(t_tm1, "float64")  # steps before this one
        one = pt.constant(np.float64(1.0))
        beta1, beta2, decay = (pt.cast(x, "float64") for x in (self.beta1, self.beta2, self.beta1_decay))
        self._beta1_t = beta1 * decay**t
        if self.kingma_ba:
            self._m_scale = one / (one - beta1 ** (t + one))
            self._v_scale = one / (one - beta2 ** (t + one))
        else:
            self._m_scale = one / (one - self._beta1_t)
            self._v_scale = one / (one - beta2)
        yield t_tm1, t_tm1 + 1

    def _get_updates_for(self, param, grad):
        beta1_t = pt.cast(self._beta1_t, param.dtype)
        beta2 = self._as(self.beta2, param)
        one = self._as(1.0, param)
        m_tm1 = self._slot(param, "m")
        v_tm1 = self._slot(param, "v")
        m_t = beta1_t * m_tm1 + (one - beta1_t) * grad
        v_t = beta2 * v_tm1 + (one - beta2) * grad * grad
        m_hat = m_t * pt.cast(self._m_scale, param.dtype)
        v_hat = v_t * pt.cast(self._v_scale, param.dtype)
        yield m_tm1, m_t
        yield v_tm1, v_t
        yield param, self._as(self.learning_rate, param) * m_hat / (pt.sqrt(v_hat) + self._as(self.epsilon, param))
