"""One place where ``hf`` compiles PyTensor functions.

PyTensor 3 picks its numba backend by default when the linker is left on
``auto``; for the small, many-op graphs of curvature products its first call
JIT-compiles for a minute or more, while the C backend compiles in seconds. So
unless the user chose a mode or linker (``PYTENSOR_FLAGS`` or an explicit
``mode=``), ``hf`` compiles with the C virtual machine (``FAST_RUN`` + ``cvm``).

PyTensor 3 writes softmax, log-softmax and a few others as ``SymbolicOp``
nodes (an inner graph with no C code). The C backend leaves them in the graph
and runs each through its own inner function, compiled on first call with the
default, numba, mode: JIT-compiling one ``log_softmax`` was most of the README
quick start's cold start beside C compilation (about 8 s), and every call went
through a Python-level inner function. ``hf``'s mode therefore replaces them by
their inner graphs after PyTensor's stabilizing rewrites (which recognise
``log(softmax(x))`` and build these nodes), so that the C backend compiles and
fuses their arithmetic like any other.

PyTensor passes ``-g`` to the C compiler for every module. Debug information
changes no generated instruction, and nobody steps through ``hf``'s compiled
graphs in a debugger, but it is about 14 % of gcc's time, and gcc's time is
most of a cold start (the README quick start: 20.3 s with it, 17.4 s
without). So when ``hf`` picks the mode, it compiles with ``-g0`` appended to
PyTensor's ``gcc__cxxflags`` for the duration of the compilation, unless those
flags already name a ``-g`` option of the user's.
"""

from __future__ import annotations

import contextlib
import logging

import pytensor
from pytensor.compile.builders import SymbolicOp
from pytensor.compile.mode import Mode
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.tensor.rewriting.ofg import inline_ofg_node

#: After ``specialize`` (2), where PyTensor builds these nodes from ``log(softmax(x))``, and before
#: ``uncanonicalize`` (3) and elementwise fusion (48-49), which should see their arithmetic.
_INLINE_POSITION = 2.5


@node_rewriter([SymbolicOp])
def _inline_symbolic_op(fgraph, node):
    """Replace a ``SymbolicOp`` node (softmax, log-softmax, ...) by its inner graph."""
    if not isinstance(node.op, SymbolicOp):
        return False
    return inline_ofg_node(node)


def default_mode():
    """The mode ``hf`` compiles with when the caller gives none."""
    cfg = pytensor.config
    if cfg.mode == "Mode" and cfg.linker == "auto" and cfg.cxx:
        return _inlining(Mode(linker="cvm", optimizer="fast_run"))
    return None


def _inlining(mode):
    return mode.register((dfs_rewriter(_inline_symbolic_op, name="hf_inline_symbolic_ops"), _INLINE_POSITION))


def check_mode():
    """The mode of the functions ``hf`` runs once on a few examples to check the user's graph: quick to
    compile (Python ops, few rewrites), and with the symbolic ops inlined, so that nothing JIT-compiles."""
    return _inlining(Mode(linker="py", optimizer="fast_compile"))


def function(inputs, outputs, *, mode=None, **kwargs):
    """``pytensor.function`` with ``hf``'s default mode (and C modules compiled without debug
    information) when the caller gives no mode."""
    if mode is None:
        mode = default_mode()
        if mode is not None:
            with no_debug_info():
                return pytensor.function(inputs, outputs, mode=mode, **kwargs)
    return pytensor.function(inputs, outputs, mode=mode, **kwargs)


def no_debug_info():
    """A context in which PyTensor compiles C modules with ``-g0`` after its own ``-g`` (the last ``-g``
    option wins), unless ``gcc__cxxflags`` already holds a ``-g`` option."""
    flags = pytensor.config.gcc__cxxflags
    if any(f.startswith("-g") for f in flags.split()):
        return contextlib.nullcontext()
    return pytensor.config.change_flags(gcc__cxxflags=f"{flags} -g0".strip())


@contextlib.contextmanager
def quiet():
    """Keep PyTensor's compiler chatter (INFO lines per compiled module) out of the
    user's log while ``hf`` compiles, unless the user set PyTensor's log level."""
    logger = logging.getLogger("pytensor")
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)
