"""First-order optimizers with downhill 0.4.0's API, for PyTensor graphs.

``import hf.first_order as downhill`` runs code written for downhill 0.4.0::

    import hf.first_order as downhill

    downhill.minimize(loss, [x_train, y_train], valid=[x_valid, y_valid],
                      algo='adam', learning_rate=1e-3, batch_size=64,
                      monitors=[('err', err)], max_gradient_norm=1)

    opt = downhill.build('rmsprop', loss=loss, params=[w], inputs=[x, y])
    for train_monitors, valid_monitors in opt.iterate(train, valid, momentum=0.9):
        ...

Algorithms (``algo`` names are the lower-cased class names): :class:`SGD`,
:class:`NAG`, :class:`RProp`, :class:`ADAGRAD`, :class:`RMSProp`,
:class:`ADADELTA`, :class:`ESGD`, :class:`Adam`. ``Adam`` keeps downhill's
defaults; :func:`kingma_ba_adam` gives the keywords of Kingma & Ba's Algorithm 1
and :func:`sutskever_momentum` the momentum schedule of Sutskever et al. 2013
for ``NAG``, the baselines a comparison should use. The training loop, datasets and
checkpoints are shared with :class:`hf.HFOptimizer` (:mod:`hf._loop`,
:mod:`hf.data`, :mod:`hf.checkpoint`).
"""

from .. import dataset  # noqa: F401  (downhill.dataset)
from ..data import Dataset
from . import algorithms, base  # noqa: F401  (downhill-style module attributes)
from .algorithms import ADADELTA, ADAGRAD, ESGD, NAG, SGD, Adam, RMSProp, RProp
from .base import HYPERPARAMETERS, LOOP_KEYWORDS, Optimizer, build, minimize
from .presets import kingma_ba_adam, momentum_schedule, sutskever_momentum

# downhill 0.4.0 kept its algorithms in the modules ``first_order`` and ``adaptive``;
# code that reaches them as attributes (``downhill.adaptive.Adam``) finds them here.
first_order = adaptive = algorithms

__all__ = [
    "minimize",
    "build",
    "Optimizer",
    "Dataset",
    "SGD",
    "NAG",
    "RProp",
    "ADAGRAD",
    "RMSProp",
    "ADADELTA",
    "ESGD",
    "Adam",
    "HYPERPARAMETERS",
    "LOOP_KEYWORDS",
    "kingma_ba_adam",
    "sutskever_momentum",
    "momentum_schedule",
]
