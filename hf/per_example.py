"""Per-example squared gradients in one pass, for Martens' preconditioner, where the graph allows it.

Martens' diagonal preconditioner [Mart10]_ needs :math:`\\sum_i (\\nabla f_i)^2`,
the sum over the examples of a batch of each example's squared gradient. A loop
over the examples costs one compiled call each. For the parameters of dense
layers there is a closed form [Good15]_: with :math:`z = h W (+ b)`, rows of
``h`` and ``z`` being the examples, and :math:`\\delta_i = \\partial f_i /
\\partial z_i` (``N`` times the gradient of the batch mean with respect to
``z``), example ``i``'s gradient is :math:`h_i^\\top \\delta_i` for ``W`` and
:math:`\\delta_i` for ``b``, so

.. math::
    \\sum_i (\\nabla_W f_i)^2 = (h \\odot h)^\\top (\\delta \\odot \\delta), \\qquad
    \\sum_i (\\nabla_b f_i)^2 = \\sum_i \\delta_i \\odot \\delta_i,

one backward pass for the whole batch. :func:`square_gradient_sums` builds
that graph when every parameter enters the cost in one such place; the
optimizer checks it once against the loop on a few examples (a graph that mixes
rows, e.g. a normalization over the batch, breaks the assumption) and keeps
the loop otherwise.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
.. [Good15] I. Goodfellow, "Efficient per-example gradient computations",
   arXiv:1510.01799, 2015.
"""

from __future__ import annotations

import pytensor
import pytensor.tensor as pt
from pytensor.graph.traversal import io_toposort
from pytensor.tensor.blockwise import Blockwise
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.math import Dot

__all__ = ["square_gradient_sums"]


def _is_matmul(op):
    if isinstance(op, Dot):
        return True
    return isinstance(op, Blockwise) and type(op.core_op).__name__ in ("Dot", "Matmul", "Dot22")


def _clients(graph_outputs, inputs):
    """For each variable of the graph from ``inputs`` to ``graph_outputs``: the (node, index) pairs using it."""
    clients = {}
    for node in io_toposort(inputs, graph_outputs):
        for i, var in enumerate(node.inputs):
            clients.setdefault(var, []).append((node, i))
    return clients


def _layer_of(param, clients):
    """``('W', h, z)`` for ``z = h @ param``, ``('b', None, z)`` for ``z = x + param`` broadcast over rows;
    None when ``param`` enters the graph otherwise or in more than one place."""
    uses = clients.get(param, [])
    if len(uses) != 1:
        return None
    node, index = uses[0]
    if param.ndim == 2 and index == 1 and _is_matmul(node.op) and node.inputs[0].ndim == 2:
        return "W", node.inputs[0], node.outputs[0]
    if (param.ndim == 1 and isinstance(node.op, DimShuffle) and tuple(node.op.new_order) == ("x", 0)):
        shuffled = node.outputs[0]
        after = clients.get(shuffled, [])
        if len(after) == 1:
            add, _ = after[0]
            if isinstance(add.op, Elemwise) and type(add.op.scalar_op).__name__ == "Add" and add.outputs[0].ndim == 2:
                return "b", None, add.outputs[0]
    return None


def square_gradient_sums(cost, params, inputs):
    """The flat vector :math:`\\sum_i (\\nabla f_i)^2` of a batch mean ``cost``, or None.

    Parameters
    ----------
    cost : scalar TensorVariable
        The mean over the examples of a batch (rows of the inputs).
    params : list of shared variables
    inputs : list of TensorVariable

    Returns
    -------
    (TensorVariable, TensorVariable) or None
        The sums over the batch's examples, concatenated in the order of
        ``params`` (each flattened row-major, as the optimizer's flat vectors),
        and the number of examples (rows) they sum over, a float64 scalar;
        None when some parameter is not a dense layer's weight matrix or bias
        used once, where only the loop over examples applies.
    """
    clients = _clients([cost], list(inputs) + list(params))
    layers = [_layer_of(p, clients) for p in params]
    if any(layer is None for layer in layers):
        return None
    zs = []
    for _, _, z in layers:
        if not any(z is seen for seen in zs):
            zs.append(z)
    n = pt.cast(zs[0].shape[0], "float64")
    deltas = dict(zip(zs, pytensor.grad(cost, zs)))
    parts = []
    for kind, h, z in layers:
        d2 = pt.sqr(pt.cast(deltas[z], "float64") * n)
        if kind == "W":
            parts.append(pt.dot(pt.sqr(pt.cast(h, "float64")).T, d2).flatten())
        else:
            parts.append(d2.sum(axis=0))
    return pt.concatenate(parts), n
