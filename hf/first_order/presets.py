"""The first-order settings the literature means: Kingma & Ba's Adam and Sutskever et al.'s momentum schedule.

:class:`~hf.first_order.Adam` keeps downhill's defaults for drop-in users
(halflives 7 and 69, downhill's bias terms). A comparison against "Adam" means
[King15]_'s Algorithm 1: :func:`kingma_ba_adam` gives its keywords.
:func:`sutskever_momentum` gives NAG the momentum schedule of [Sut13]_.

Examples
--------
>>> from hf.first_order.hyperparameters import halflife_to_decay
>>> kw = kingma_ba_adam()
>>> round(halflife_to_decay(kw["beta1_halflife"]), 12), round(halflife_to_decay(kw["beta2_halflife"]), 12)
(0.9, 0.999)
>>> momentum_schedule([0, 249, 250, 750, 10**6], 0.99).tolist()
[0.5, 0.5, 0.75, 0.875, 0.99]

References
----------
.. [King15] D. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015, Algorithm 1.
.. [Sut13] I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
   initialization and momentum in deep learning", ICML 2013, Sec. 3.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt

from .. import _checks

__all__ = ["kingma_ba_adam", "momentum_schedule", "sutskever_momentum", "halflife_of"]


def halflife_of(decay: float) -> float:
    """The halflife ``h`` whose EWMA weight (``hyperparameters.halflife_to_decay``) is ``decay``: ``h = -ln 2 / ln γ``."""
    _checks.real("decay", decay, "halflife_of", low=0.0, low_open=True, high=1.0, high_open=True)
    return -math.log(2.0) / math.log(decay)


def kingma_ba_adam(beta1=0.9, beta2=0.999, epsilon=1e-8) -> dict:
    """Keywords that make :class:`~hf.first_order.Adam` [King15]_'s Algorithm 1.

    Bias-corrected moments (``kingma_ba=True``), ``β₁``, ``β₂`` as given
    (default 0.9 and 0.999, written as halflives), no decay of β₁, and
    ``ε = epsilon``. Add ``learning_rate`` (Algorithm 1's α; tune it).
    """
    return {"kingma_ba": True, "beta1_halflife": halflife_of(beta1), "beta2_halflife": halflife_of(beta2),
            "beta1_decay": 1.0, "rms_regularizer": float(epsilon)}


def momentum_schedule(t, max_momentum):
    """[Sut13]_'s momentum at step ``t``: :math:`\\min(1 - 2^{-1-\\log_2(\\lfloor t/250 \\rfloor + 1)}, \\mu_{max})`.

    ``t`` counts the mini-batch steps taken before this one, from 0 (an int or
    an array of ints). The momentum starts at 1/2 and rises towards 1 every 250
    steps, capped at ``max_momentum`` ([Sut13]_ tried 0.9, 0.99, 0.995, 0.999).
    """
    k = np.floor(np.asarray(t, dtype=np.float64) / 250.0) + 1.0
    return np.minimum(1.0 - 2.0 ** (-1.0 - np.log2(k)), max_momentum)


def sutskever_momentum(max_momentum):
    """A symbolic [Sut13]_ schedule for a first-order optimizer's ``momentum``.

    Returns
    -------
    momentum : scalar TensorVariable
        :func:`momentum_schedule` of a step counter, to pass as ``momentum=``.
    counter_update : (shared variable, expression)
        Advances the counter by one per step: pass it in the optimizer's
        ``updates=``. The counter is ``counter_update[0]``, an int64 shared
        scalar starting at 0 (set it to resume a schedule).

    Examples
    --------
    >>> mu, tick = sutskever_momentum(0.99)
    >>> opt = hf.first_order.build('nag', loss, params, inputs, updates=[tick])   # doctest: +SKIP
    >>> opt.iterate(train, learning_rate=1e-3, momentum=mu)                       # doctest: +SKIP
    """
    max_momentum = _checks.real("max_momentum", max_momentum, "sutskever_momentum", low=0.0, high=1.0,
                                high_open=True)
    step = pytensor.shared(np.int64(0), name="momentum_step")
    k = pt.floor(pt.cast(step, "float64") / 250.0) + 1.0
    momentum = pt.minimum(1.0 - 2.0 ** (-1.0 - pt.log2(k)), np.float64(max_momentum))
    return momentum, (step, step + 1)

