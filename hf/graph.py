"""Graph helpers shared by :mod:`hf.curvature`, :class:`hf.HFOptimizer` and
:mod:`hf.first_order`: walking a PyTensor graph for its inputs and parameters,
checking user-supplied ``inputs`` and ``params``, and moving between
per-parameter tensors and one flat vector.

Nothing here builds curvature products; those live in :mod:`hf.curvature`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pytensor.tensor as pt
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Apply, Constant, Variable
from pytensor.graph.op import Op

__all__ = [
    "roots",
    "free_inputs",
    "is_trainable",
    "trainable_params",
    "find_inputs_and_params",
    "check_inputs_used",
    "check_params",
    "check_scalar_cost",
    "check_connected",
    "param_label",
    "flatten",
    "unflatten",
    "FlatPiece",
    "FlatConcat",
]


# --------------------------------------------------------------------------- walking


def roots(outputs: Iterable[Variable]) -> list:
    """Root variables (those without an owner) of a graph, each once.

    The order is that of first appearance in a depth-first walk from ``outputs``
    (left to right) that visits each operation's inputs left to right, so
    ``x @ W + b`` gives ``[x, W, b]``. It depends only on the graph, never on
    hashing or memory addresses. The walk is iterative: deep graphs (long
    unrolled chains) do not hit Python's recursion limit. Inner graphs of ``scan``
    are not entered; their shared variables appear as inputs of the scan node.
    """
    seen, found = set(), []
    stack = list(reversed(list(outputs)))
    while stack:  # each variable is expanded once: bounded by the graph's size
        v = stack.pop()
        if id(v) in seen:
            continue
        seen.add(id(v))
        if v.owner is None:
            found.append(v)
        else:
            stack.extend(reversed(v.owner.inputs))
    return found


def free_inputs(outputs: Iterable[Variable]) -> list:
    """The free (neither shared nor constant) inputs ``outputs`` depend on, in :func:`roots` order."""
    return [v for v in roots(outputs) if not isinstance(v, (SharedVariable, Constant))]


def is_trainable(v) -> bool:
    """Whether ``v`` can be a parameter: a shared variable with a floating-point dtype."""
    return isinstance(v, SharedVariable) and str(getattr(v.type, "dtype", "")).startswith("float")


def trainable_params(outputs: Iterable[Variable], exclude: Iterable[Variable] = ()) -> list:
    """Floating-point shared variables of ``outputs`` in :func:`roots` order, less ``exclude``."""
    excluded = {id(v) for v in exclude}
    return [v for v in roots(outputs) if is_trainable(v) and id(v) not in excluded]


def find_inputs_and_params(loss, extra=(), exclude=()):
    """Free inputs and trainable shared variables of a graph, in a deterministic order.

    Parameters
    ----------
    loss : Variable
    extra : sequence of Variable
        More outputs whose free inputs count as graph inputs (the monitors).
    exclude : collection of SharedVariable
        Shared variables never treated as parameters (targets of ``updates``).

    Returns
    -------
    inputs : list
        Root variables of ``loss`` and ``extra`` that are neither shared nor
        constant, sorted by name (unnamed ones first, in traversal order).
    params : list
        Floating-point shared variables of ``loss`` in order of first appearance
        in a depth-first walk from the loss that visits each operation's inputs
        left to right (``x @ W + b`` gives ``[W, b]``).
    """
    params = trainable_params([loss], exclude)
    found = free_inputs([loss, *extra])
    inputs = sorted(found, key=lambda v: v.name or "")  # stable: ties keep traversal order
    return inputs, params


# --------------------------------------------------------------------------- checks


def param_label(p, i: int, name: str = "params") -> str:
    """How errors name a parameter: ``'W' (params[0])``, or ``params[0]`` when unnamed."""
    return f"{p.name!r} ({name}[{i}])" if getattr(p, "name", None) else f"{name}[{i}]"


def check_inputs_used(inputs, outputs, owner: str) -> None:
    """Raise if a listed input is not a symbolic input variable or is unused, or a
    free input of ``outputs`` is not listed."""
    for i, x in enumerate(inputs):
        if not isinstance(x, Variable) or isinstance(x, (SharedVariable, Constant)):
            raise TypeError(f"{owner}: inputs[{i}] must be a symbolic input variable, got {x!r}")
    free = free_inputs(outputs)
    listed = {id(x) for x in inputs}
    missing = [str(v) for v in free if id(v) not in listed]
    if missing:
        raise ValueError(f"{owner}: the graph also depends on inputs {missing} not listed in inputs")
    used = {id(v) for v in free}
    unused = [f"inputs[{i}] ({x})" for i, x in enumerate(inputs) if id(x) not in used]
    if unused:
        raise ValueError(f"{owner}: {', '.join(unused)} not used by the graph")


def check_scalar_cost(cost, owner: str = "", name: str = "cost") -> None:
    """Raise unless ``cost`` is a scalar symbolic variable (``pytensor.grad`` would
    fail later with "Cost must be a scalar", naming neither the argument nor the fix)."""
    prefix = f"{owner}: " if owner else ""
    if not isinstance(cost, Variable):
        raise TypeError(f"{prefix}{name} must be a scalar symbolic PyTensor variable, got {type(cost).__name__}")
    ndim = getattr(cost.type, "ndim", None)
    if ndim != 0:
        raise ValueError(
            f"{prefix}{name} must be a scalar (the mean loss over the examples of a batch), got {cost} of "
            f"ndim {ndim}: average the per-example losses, e.g. {name}.mean()"
        )


def check_params(params, name: str = "params") -> list:
    """Return ``params`` as a list of shared float tensor variables, or raise a clear error."""
    if isinstance(params, Variable):
        raise TypeError(f"{name} must be a list of shared variables, got a single variable {params!r}")
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{name} must be a list of shared variables, got {params!r}") from None
    if not params:
        raise ValueError(f"{name} must hold at least one shared variable, got an empty list")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, SharedVariable):
            raise TypeError(
                f"{name}[{i}] must be a shared variable (pytensor.shared), got {type(p).__name__} {p!r}"
            )
        if id(p) in seen:
            raise ValueError(f"{name}[{i}] ({p.name!r}) appears more than once")
        seen.add(id(p))
        if not str(p.dtype).startswith("float"):
            raise TypeError(f"{name}[{i}] ({p.name!r}) must have a float dtype, got {p.dtype}")
    return params


def check_connected(output, params, what: str, *, why: str = "", owner: str = "", name: str = "params") -> None:
    """Raise ``ValueError`` naming every parameter that ``output`` does not depend on.

    Parameters
    ----------
    output : Variable or sequence of Variable
    params : sequence of SharedVariable
    what : str
        How the message names ``output`` (``"the cost"``, ``"s"``).
    why : str, optional
        Appended to the message: why every parameter must reach ``output``.
    owner : str, optional
        Prefix of the message (the class or function raising it).
    name : str
        How the message names the parameter list (``params[i]``).

    Notes
    -----
    ``pytensor.grad`` reports the same problem as a ``DisconnectedInputError``
    that names neither the parameter's position nor the output; call this first.
    """
    outputs = [output] if isinstance(output, Variable) else list(output)
    reach = {id(v) for v in roots(outputs)}
    missing = [param_label(p, i, name) for i, p in enumerate(params) if id(p) not in reach]
    if missing:
        noun = "parameter" if len(missing) == 1 else "parameters"
        verb = "is" if len(missing) == 1 else "are"
        prefix = f"{owner}: " if owner else ""
        raise ValueError(f"{prefix}{noun} {', '.join(missing)} {verb} not connected to {what}{why}")


# --------------------------------------------------------------------------- flat vectors


class FlatPiece(Op):
    """``flat[start:start + size]`` seen as an array of ``shape`` (a view), typed ``static``.

    The pieces of a flat parameter or direction vector (:func:`unflatten`).
    The op has no C code: its Python ``perform`` is a slice and a reshape
    (views, as the C ``Subtensor`` and ``Reshape`` it replaces), and a new
    PyTensor cache compiles no C module for it. Those two ops, the ``Join`` of
    :func:`flatten` and the shape checks around them were about 3 s of gcc in a
    cold start of a small network, for code that only moves pointers.

    The output's type is the parameter's own (``static``: ``None`` where the
    parameter's type leaves an axis unknown, even when its current length is 1),
    so a piece can stand for the parameter anywhere, inside a ``scan`` too (a
    scan checks that each non-sequence has the broadcast pattern its inner graph
    was built with).
    """

    __props__ = ("start", "shape", "static", "total")
    view_map = {0: [0]}

    def __init__(self, start, shape, static, total):
        self.start, self.shape, self.static, self.total = int(start), tuple(shape), tuple(static), int(total)
        self.size = int(np.prod(self.shape, dtype=np.int64))

    def make_node(self, flat):
        flat = pt.as_tensor_variable(flat)
        if flat.type.ndim != 1:
            raise TypeError(f"FlatPiece: the flat vector must be 1-d, got {flat.type}")
        return Apply(self, [flat], [pt.TensorType(flat.type.dtype, shape=self.static)()])

    def perform(self, node, inputs, output_storage):
        (flat,) = inputs
        if flat.shape[0] != self.total:
            name = node.inputs[0].name
            raise ValueError(f"a flat parameter vector{f' ({name})' if name else ''} must have {self.total} values "
                             f"(one per parameter value), got {flat.shape[0]}")
        output_storage[0][0] = flat[self.start : self.start + self.size].reshape(self.shape)

    def infer_shape(self, fgraph, node, input_shapes):
        return [tuple(pt.constant(d, dtype="int64") for d in self.shape)]

    def pullback(self, inputs, outputs, cotangents):
        (flat,) = inputs
        return [pt.set_subtensor(pt.zeros_like(flat)[self.start : self.start + self.size],
                                 pt.flatten(cotangents[0]))]

    def pushforward(self, inputs, outputs, tangents):
        return [tangents[0] if _disconnected(tangents[0]) else self(tangents[0])]


class FlatConcat(Op):
    """The tensors given, raveled and concatenated into one flat vector of ``dtype``
    (:func:`flatten`): one copy, as the ``Join`` it replaces, and no C module to compile."""

    __props__ = ("dtype",)

    def __init__(self, dtype="float64"):
        self.dtype = str(dtype)

    def make_node(self, *terms):
        if not terms:
            raise ValueError("FlatConcat: needs at least one tensor to concatenate, got none")
        terms = [pt.as_tensor_variable(t) for t in terms]
        sizes = [None if None in t.type.shape else int(np.prod(t.type.shape, dtype=np.int64)) for t in terms]
        length = None if None in sizes else sum(sizes)
        return Apply(self, terms, [pt.TensorType(self.dtype, shape=(length,))()])

    def perform(self, node, inputs, output_storage):
        output_storage[0][0] = np.concatenate([np.ravel(t) for t in inputs], dtype=self.dtype)

    def infer_shape(self, fgraph, node, input_shapes):
        total = pt.constant(0, dtype="int64")
        for shape in input_shapes:
            size = pt.constant(1, dtype="int64")
            for d in shape:
                size = size * d
            total = total + size
        return [(total,)]

    def pullback(self, inputs, outputs, cotangents):
        (g,) = cotangents
        pieces, start = [], 0
        for t in inputs:
            size = pt.prod(t.shape) if t.type.ndim else 1
            pieces.append(pt.cast(g[start : start + size].reshape(t.shape, ndim=t.type.ndim), t.dtype))
            start = start + size
        return pieces

    def pushforward(self, inputs, outputs, tangents):
        if all(_disconnected(t) for t in tangents):
            return [tangents[0]]
        return [self(*(pt.zeros_like(x) if _disconnected(t) else t for x, t in zip(inputs, tangents)))]


def _disconnected(tangent):
    from pytensor.gradient import DisconnectedType

    return isinstance(tangent.type, DisconnectedType)


def flatten(terms: Sequence[Variable], dtype: str = "float64") -> Variable:
    """Concatenate per-parameter tensors into one symbolic flat vector of ``dtype`` (:class:`FlatConcat`)."""
    return FlatConcat(dtype)(*terms)


def unflatten(flat: Variable, params: Sequence[SharedVariable]) -> list:
    """Split a symbolic flat vector into tensors shaped and typed like ``params`` (:class:`FlatPiece`).

    Each piece has its parameter's dtype, its current shape at run time, and its
    type's static shape: an axis of length 1 is static (broadcastable) in a piece
    only where it is static in its parameter's type. (``pytensor.shared`` leaves
    every axis unknown, ``shape=(None, None)`` for a ``(1, H)`` input weight, and
    a scan refuses a non-sequence whose broadcast pattern differs from the one
    its inner graph was built with.) A flat vector of the wrong length fails at
    run time with the length it should have.
    """
    shapes = [tuple(int(d) for d in p.get_value(borrow=True).shape) for p in params]
    total = sum(int(np.prod(s, dtype=np.int64)) for s in shapes)
    out, start = [], 0
    for p, shape in zip(params, shapes):
        piece = FlatPiece(start, shape, p.type.shape, total)(flat)
        out.append(piece if piece.dtype == p.dtype else pt.cast(piece, p.dtype))
        start += int(np.prod(shape, dtype=np.int64))
    return out


#: Ops whose output is a view or the shape of their input: recomputed, never cached.
_VIEW_OPS = frozenset({"FlatPiece", "DimShuffle", "Reshape", "Subtensor", "Shape", "Shape_i", "SpecifyShape",
                       "ScalarFromTensor", "TensorFromScalar", "DeepCopyOp", "OutputGuard"})

#: Scalar ops of elementwise arithmetic too cheap to be worth a cached array: a
#: product recomputes them (PyTensor fuses them into the product's own loops).
_CHEAP_SCALAR_OPS = frozenset({"Add", "Sub", "Mul", "Neg", "Second", "Identity", "Cast"})


def _recomputable(var):
    """Whether ``var`` is cheap arithmetic (``s * (1 - s)``, a fill) on at most one computed array.

    Caching that array instead costs no more memory and lets the product
    recompute ``var``.
    """
    return _cheap(var.owner.op) and len(_cheap_leaves(var, 8)) <= 1


def _cheap(op):
    return type(op).__name__ == "Alloc" or (
        type(op).__name__ == "Elemwise" and type(op.scalar_op).__name__ in _CHEAP_SCALAR_OPS)


def _cheap_leaves(var, depth):
    """The computed arrays ``var`` is cheap arithmetic of (``{var}`` itself if it is not).

    Constants, graph inputs and broadcast scalars are not counted.
    """
    if var.owner is None or _constant_view(var) or all(d == 1 for d in (var.type.shape or ())):
        return set()
    op = var.owner.op
    if not depth or not (_cheap(op) or type(op).__name__ in _VIEW_OPS):
        return {var}
    return set().union(*(_cheap_leaves(i, depth - 1) for i in var.owner.inputs))


def _constant_view(var):
    """A constant, or a view (a DimShuffle, ...) of one."""
    while var.owner is not None and type(var.owner.op).__name__ in _VIEW_OPS:
        var = var.owner.inputs[0]
    return var.owner is None and type(var).__name__.endswith("Constant")


def _merged(outputs):
    """``outputs`` (a copy of their graph) with equal computations merged into one.

    The pullbacks and R-ops of a product rebuild the forward values they need
    (each sigmoid's derivative builds its own ``sigmoid(x)``): without merging,
    every copy would be a separate cached array holding the same values.
    """
    from pytensor.graph.basic import clone_get_equiv
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.rewriting.basic import MergeOptimizer
    from pytensor.graph.traversal import graph_inputs

    inputs = list(graph_inputs(outputs))
    equiv = clone_get_equiv(inputs, outputs, copy_inputs=False, copy_orphans=False)
    fg = FunctionGraph(inputs, [equiv[o] for o in outputs], clone=False)
    MergeOptimizer().rewrite(fg)
    return list(fg.outputs)


def split_constant_part(outputs, varying):
    """Cut ``outputs`` where the part that does not depend on ``varying`` ends.

    For a Gauss-Newton product, ``varying`` are the tangent ``v`` (and the damping
    coefficient): everything else in the graph — the forward pass, a scan's
    hidden states, the loss Hessian's factors at ``s`` — is the same for every CG
    iteration of an update. This finds the *frontier*: the computed variables
    that do not depend on ``varying`` but feed a computation that does. Each is
    replaced by a placeholder of the same type, so the product can be compiled
    as a function of the frontier values (computed once per update by a second
    function) instead of recomputing them at every call.

    Parameters
    ----------
    outputs : list of Variable
    varying : list of Variable
        The inputs that change from call to call.

    Returns
    -------
    frontier : list of Variable
        Variables of the original graph to compute once (the forward pass).
    placeholders : list of Variable
        One fresh variable of the same type per frontier variable.
    new_outputs : list of Variable
        ``outputs`` with each frontier variable replaced by its placeholder.
    """
    from pytensor.graph.replace import clone_replace
    from pytensor.graph.traversal import graph_inputs, io_toposort

    outputs = _merged(list(outputs))
    depends = set(varying)
    nodes = io_toposort(list(graph_inputs(outputs)), outputs)
    for node in nodes:
        if any(i in depends for i in node.inputs):
            depends.update(node.outputs)
    frontier, seen = [], set()

    def add(var):
        # A view or shape of the inputs costs nothing to recompute, and caching one
        # can make the forward function return an input itself (which PyTensor
        # refuses): keep the view in the product's graph and cache what it views.
        # Cheap arithmetic on one cached array (1 - h, a fill of ones) is recomputed
        # by the product too, so that the cache holds about what a hand-written
        # product keeps: the layers' outputs.
        if var.owner is None or var in depends or var in seen:
            return
        seen.add(var)
        if type(var.owner.op).__name__ in _VIEW_OPS or _recomputable(var):
            for i in var.owner.inputs:
                add(i)
        else:
            frontier.append(var)

    for node in nodes:
        if any(o in depends for o in node.outputs):
            for i in node.inputs:
                add(i)
    for o in outputs:  # an output that does not depend on varying at all is computed once too
        add(o)
    placeholders = [f.type(name=f"cached_{k}") for k, f in enumerate(frontier)]
    new_outputs = clone_replace(outputs, dict(zip(frontier, placeholders))) if frontier else outputs
    return frontier, placeholders, list(new_outputs)
