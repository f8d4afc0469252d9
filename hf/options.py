"""The options of :class:`hf.HFOptimizer`, each declared once: name, default, allowed values, meaning.

Everything else about an option comes from its declaration here:

- :class:`hf.HFOptimizer`'s keyword defaults (``damping=DAMPING.default``, ...);
- their checks (:func:`check`), for the optimizer and for
  :class:`hf.update.UpdateConfig`, whose fields are the options :func:`hf.update.hf_update` reads;
- the "Other Parameters" section of :class:`hf.HFOptimizer`'s docstring (:func:`fill_docstring`);
- the options table of ``docs/api.md`` (:func:`markdown_table`; ``python docs/options_table.py``
  rewrites it, and ``tests/test_options.py`` fails when it and the declarations disagree).

Like :mod:`hf.cg` and :mod:`hf.damping`, this module never imports PyTensor.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import re
import textwrap
from typing import Optional, Union

from . import _checks

__all__ = [
    "Option", "ALL", "BY_NAME", "check", "fill_docstring", "markdown_table", "replace_table",
    "DAMPING", "MIN_DAMPING", "MAX_DAMPING", "MAX_CG_ITERS", "CG_TOL", "CG_DECAY", "SHRINK_WARM_START",
    "COLD_RESTART", "CG_FRACTION", "PRECONDITIONER", "PRECONDITIONER_EXAMPLES", "LINE_SEARCH",
    "STRUCTURAL_DAMPING", "CHUNK_SIZE", "FORWARD_CACHE", "CACHE_BYTES", "RHO_BATCH", "BACKTRACKING", "JV",
    "COMM", "STRUCTURAL_WEIGHT",
]

OWNER = "HFOptimizer"

Bound = Union[float, str]  # a number, or the name of the option whose value bounds this one


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of :class:`hf.HFOptimizer`.

    Attributes
    ----------
    name, default : str, object
        The keyword and its default.
    doc : str
        Its meaning in one sentence: the docs table's entry and the first line of
        the docstring's.
    kind : {'real', 'int', 'bool', 'choice', 'class', 'any'}
        What a value must be: a finite real in the interval ``low`` to ``high``;
        an int ``>= 1``; True or False; one of ``choices``; an
        instance of the class ``cls`` (``'module:Name'``, imported when first
        checked); anything (``type_doc`` says what).
    low, high : float or str
        The interval of a real; a str names the option whose value is the bound,
        checked before this one.
    low_open, high_open : bool
        Whether an end of the interval is excluded.
    allow_none : bool
        None is allowed too.
    details : str
        More for the docstring's entry (not the table's).
    """

    name: str
    default: object
    doc: str
    kind: str
    low: Bound = -math.inf
    high: Bound = math.inf
    low_open: bool = False
    high_open: bool = False
    allow_none: bool = False
    choices: tuple = ()
    cls: str = ""
    type_doc: str = ""
    details: str = ""

    # ------------------------------------------------------------------ checking
    def bounds_on(self) -> tuple:
        """The names of the options whose values bound this one."""
        return tuple(b for b in (self.low, self.high) if isinstance(b, str))

    def check(self, value, owner: Optional[str] = OWNER, values: Optional[dict] = None):
        """``value`` checked (and converted: a float, an int, a bool).

        ``values`` holds the checked values of the options named as bounds (their
        defaults when left out). Raises TypeError for a value of the wrong type, ValueError for one out of
        range; the message names ``owner``, the option and the value.
        """
        if value is None and self.allow_none:
            return None
        prefix = f"{owner}: " if owner else ""
        if self.kind == "real":
            low, high = ((values or {}).get(b, BY_NAME[b].default) if isinstance(b, str) else b
                         for b in (self.low, self.high))
            try:
                return _checks.real(self.name, value, owner, low=low, high=high, low_open=self.low_open,
                                    high_open=self.high_open)
            except ValueError:
                if not self.bounds_on():
                    raise
                raise ValueError(f"{prefix}{self.name} must be finite and in {self.interval()} = "
                                 f"{_interval(low, high, self.low_open, self.high_open)}, got {value!r}") from None
        if self.kind == "int":
            return _checks.positive_int(self.name, value, owner, allow_none=self.allow_none)
        if self.kind == "bool":
            return _checks.boolean(self.name, value, owner)
        if self.kind == "choice":
            if not (isinstance(value, str) and value in self.choices):
                raise ValueError(f"{prefix}{self.name} must be {_alternatives(self.choices)}, got {value!r}")
            return value
        if self.kind == "class":
            module, _, name = self.cls.partition(":")
            cls = getattr(importlib.import_module(module), name)
            if not isinstance(value, cls):
                raise TypeError(f"{prefix}{self.name} must be a {self.type()}, got {type(value).__name__}")
            return value
        return value  # kind 'any'

    # ------------------------------------------------------------------ documentation
    def type(self) -> str:
        """The type, as docs write it: ``float``, ``{'gradient', 'cg'}``, ``int or None``."""
        kind = {"real": "float", "int": "int", "bool": "bool"}.get(self.kind)
        if self.kind == "choice":
            kind = "{" + ", ".join(repr(c) for c in self.choices) + "}"
        elif self.kind == "class":
            kind = "hf." + self.cls.partition(":")[2]
        elif self.kind == "any":
            kind = self.type_doc
        return kind + (" or None" if self.allow_none else "")

    def interval(self) -> str:
        """The allowed values of a number (``'(0, 1]'``, ``'>= 1'``); empty for other kinds."""
        if self.kind == "real":
            return _interval(self.low, self.high, self.low_open, self.high_open)
        if self.kind == "int":
            return ">= 1"
        return ""

    def describe(self) -> str:
        """The numpydoc entry: ``name : type, default ...`` and the meaning, indented by 4."""
        head = f"{self.name} : {self.type()}, default {self.default!r}"
        if self.interval():
            head += f", {'in ' if self.kind == 'real' else ''}{self.interval()}"
        body = self.doc + (" " + self.details if self.details else "")
        return head + "\n" + textwrap.fill(body, 79, initial_indent="    ", subsequent_indent="    ",
                                           break_on_hyphens=False)

    def row(self) -> str:
        """The docs table's row: option, default, allowed values, meaning."""
        allowed = self.interval() or ("True or False" if self.kind == "bool" else self.type())
        if self.kind == "int" and self.allow_none:
            allowed += " or None"
        return f"| `{self.name}` | `{self.default!r}` | {_md(allowed)} | {_md(self.doc)} |"


def _interval(low, high, low_open, high_open) -> str:
    def end(b):
        return b if isinstance(b, str) else f"{b:g}"

    left = "(" if low_open or low == -math.inf else "["
    right = ")" if high_open or high == math.inf else "]"
    return f"{left}{end(low)}, {end(high)}{right}"


def _alternatives(choices) -> str:
    names = [repr(c) for c in choices]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _md(text: str) -> str:
    """rST inline code (````x````) as Markdown code and ``docs/page.md`` as a link from ``docs/``, for the table."""
    return re.sub(r"\bdocs/([\w-]+\.md)\b", r"[\1](\1)", text.replace("``", "`"))


# ---------------------------------------------------------------------- the declarations
DAMPING = Option(
    "damping", 1.0,
    "Initial Tikhonov damping λ. After every update Levenberg-Marquardt adapts it (ρ < 1/4: λ·3/2; "
    "ρ > 3/4: λ·2/3) within ``[min_damping, max_damping]``.",
    "real", low="min_damping", high="max_damping")
MIN_DAMPING = Option(
    "min_damping", 1e-6, "The smallest λ (positive: a zero λ could never grow again).",
    "real", low=0.0, low_open=True)
MAX_DAMPING = Option(
    "max_damping", 1e6, "The largest λ.", "real", low="min_damping")
MAX_CG_ITERS = Option(
    "max_cg_iters", 250, "CG iteration cap per update [Mart10].", "int")
CG_TOL = Option(
    "cg_tol", 5e-4, "ε of Martens' relative-progress stopping rule for CG (0: off).", "real", low=0.0)
CG_DECAY = Option(
    "cg_decay", 0.95,
    "CG warm start: the next CG starts from ``cg_decay`` times this update's final CG iterate "
    "(0: from zero).",
    "real", low=0.0, high=1.0)
SHRINK_WARM_START = Option(
    "shrink_warm_start", False,
    "Shrink that warm start, before CG, to the minimizer of this update's damped quadratic model along "
    "it, clipped to ``[0, cg_decay]`` times the previous iterate (no extra product); ``examples/rnn.py`` "
    "and ``bench/rnn_experiment.py`` turn it on (why: docs/pathological.md).",
    "bool",
    details="A start carried over from the previous update can lie far uphill in the new model, e.g. on "
            "an RNN whose curvature changed sharply along the last step; CG may then not get back from it "
            "within its iterations, and every iterate it keeps may raise the loss. It helped the tanh RNNs "
            "of ``examples/rnn.py`` and hurt the digits autoencoder, whose warm starts help CG although "
            "uphill along themselves.")
COLD_RESTART = Option(
    "cold_restart", False,
    "When CG started from a warm start and no iterate it keeps lowers the loss on the CG batch, run CG "
    "again from zero on the same damped system and go on with the run whose backtracked iterate has the "
    "lower CG-batch loss.",
    "bool",
    details="Such an update would otherwise be rejected or nearly so and raise λ; the second run costs "
            "CG iterations only on those updates, plus one CG-batch loss per warm-started update.")
CG_FRACTION = Option(
    "cg_fraction", 0.25,
    "Without ``cg=`` data, the CG (curvature) batch is the first ``ceil(cg_fraction · n)`` examples of "
    "each gradient batch.",
    "real", low=0.0, low_open=True, high=1.0,
    details="With full-batch data that is always the same examples: shuffle the data once, or pass "
            "``cg=`` data, if their order is not random.")
PRECONDITIONER = Option(
    "preconditioner", False,
    "Martens' diagonal preconditioner (diag(1/N Σ ∇f_i²) + λ)^0.75 from per-example gradients "
    "([Mart10] reports that it does not help RNNs).",
    "bool")
PRECONDITIONER_EXAMPLES = Option(
    "preconditioner_examples", 100,
    "Examples of the CG batch used for the preconditioner's per-example squared gradients.", "int")
LINE_SEARCH = Option(
    "line_search", True,
    "Armijo backtracking line search on the gradient batch (c = 1e-2, rate × 0.8, at most 60 tries); "
    "False: the full step when it lowers the loss, else none.",
    "bool")
STRUCTURAL_DAMPING = Option(
    "structural_damping", None,
    "Adds λ·μ·J_aᵀ D J_a to the damped curvature [MS11], μ its ``weight``.",
    "class", cls="hf.curvature:StructuralDamping", allow_none=True)
CHUNK_SIZE = Option(
    "chunk_size", None,
    "Evaluate batches in chunks of at most this many examples: bounds the memory of the loss, the "
    "gradient and each product's working set (the forward cache is bounded by ``cache_bytes``).",
    "int", allow_none=True)
FORWARD_CACHE = Option(
    "forward_cache", True,
    "Compute the part of the Gauss-Newton product that does not depend on the vector (the forward pass, "
    "a scan's hidden states, the loss Hessian's factors) once per update on the CG batch, per chunk, "
    "and reuse it in every CG product.",
    "bool",
    details="False recomputes it in every product, holding no cache in memory; "
            ":attr:`forward_cache_bytes` tells the cache's size.")
CACHE_BYTES = Option(
    "cache_bytes", None,
    "Bound the forward cache to this many bytes: chunks of the CG batch are cached in order while they "
    "fit, and the others' forward pass is recomputed in every product (the same products; None: no bound).",
    "int", allow_none=True,
    details="With ``chunk_size`` this bounds the memory of a CG batch of any size.")
RHO_BATCH = Option(
    "rho_batch", "gradient",
    "Where ρ is measured, with the undamped model: on the gradient batch (one more Gauss-Newton product "
    "there when the CG batch is another), or ``'cg'``: on the CG batch, its loss change against "
    "``g_cᵀp + ½pᵀGp`` with the CG batch's own gradient ``g_c`` (one CG-batch gradient) and ``pᵀGp`` from "
    "CG's own model value (no product). With one batch for both the two are the same and cost nothing "
    "beyond CG.",
    "choice", choices=("gradient", "cg"))
BACKTRACKING = Option(
    "backtracking", "martens",
    "How the CG iterate is chosen among the kept ones: step back from the last while the previous one "
    "lowers the CG-batch loss ([Mart10]), or ``'global'``: the lowest of them all (theano-hf's "
    "``global_backtracking``; one loss per kept iterate).",
    "choice", choices=("martens", "global"))
JV = Option(
    "jv", "pullback",
    "How the Gauss-Newton product's Jv is built: from two reverse-mode products (every op has them), "
    "``'op'``: from the ops' own forward-mode rules (``Dot``, ``Elemwise``, ``Scan``; not 2-D ``@``, a "
    "``Matmul`` in PyTensor 3), or ``'auto'``: ``'op'`` where the graph allows it.",
    "choice", choices=("pullback", "op", "auto"))
COMM = Option(
    "comm", None,
    "Data-parallel HF over MPI (``hf.mpi``, docs/mpi.md): each process holds a shard of the data and "
    "all take identical steps; None: one process, and ``mpi4py`` is never imported.",
    "any", type_doc="mpi4py communicator", allow_none=True,
    details="Every mean over examples adds the shards' sums with one ``Allreduce``.")

#: The keywords of :class:`hf.HFOptimizer` after ``monitors``, in the order of its signature.
ALL = (
    DAMPING, MIN_DAMPING, MAX_DAMPING, MAX_CG_ITERS, CG_TOL, CG_DECAY, SHRINK_WARM_START, COLD_RESTART,
    CG_FRACTION, PRECONDITIONER, PRECONDITIONER_EXAMPLES, LINE_SEARCH, STRUCTURAL_DAMPING, CHUNK_SIZE,
    FORWARD_CACHE, CACHE_BYTES, RHO_BATCH, BACKTRACKING, JV, COMM,
)

#: Not a keyword: μ of structural damping, ``structural_damping.weight``, as
#: :class:`hf.update.UpdateConfig` holds it.
STRUCTURAL_WEIGHT = Option(
    "structural_weight", 0.0, "μ of structural damping (the ``weight`` of ``structural_damping``).",
    "real", low=0.0)

#: Every declaration by name.
BY_NAME = {o.name: o for o in ALL + (STRUCTURAL_WEIGHT,)}


def check(values: dict, owner: Optional[str] = OWNER) -> dict:
    """``values`` (option name -> value) checked, in a new dict of the same order.

    An option whose bound names another (``damping`` within ``[min_damping,
    max_damping]``) is checked after that one, against its checked value (against
    its default when it is not among ``values``). Raises TypeError or ValueError naming the
    option and the value (:meth:`Option.check`), KeyError for an undeclared name.
    """
    checked = {}
    waiting = [BY_NAME[name] for name in values]
    for _ in range(len(waiting) + 1):  # each pass checks at least one option, or ends
        later = []
        for o in waiting:
            if all(b in checked for b in o.bounds_on() if b in values):
                checked[o.name] = o.check(values[o.name], owner, checked)
            else:
                later.append(o)
        if not later:
            break
        waiting = later
    return {name: checked[name] for name in values}


def fill_docstring(doc: Optional[str], placeholder: str = "{options}") -> Optional[str]:
    """``doc`` (cleaned by :func:`inspect.cleandoc`) with ``placeholder`` replaced by every option's entry."""
    if doc is None:  # python -OO
        return None
    return inspect.cleandoc(doc).replace(placeholder, "\n".join(o.describe() for o in ALL))


TABLE_BEGIN = "<!-- options table: generated from hf/options.py by `python docs/options_table.py` -->"
TABLE_END = "<!-- end of the options table -->"


def markdown_table() -> str:
    """The options table of ``docs/api.md``, between its markers."""
    lines = [TABLE_BEGIN, "| option | default | allowed | meaning |", "|---|---|---|---|"]
    lines += [o.row() for o in ALL]
    return "\n".join(lines + [TABLE_END])


def replace_table(text: str) -> str:
    """``text`` with the block between the table's markers replaced by :func:`markdown_table`."""
    start, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"no options table between {TABLE_BEGIN!r} and {TABLE_END!r}")
    return text[:start] + markdown_table() + text[end + len(TABLE_END):]
