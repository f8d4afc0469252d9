"""hf.options: each HFOptimizer option declared once, and everything derived from it.

The references are independent of the declarations: the signature HFOptimizer had
before the options were declared (written out below), the keys its checkpoints
record, the text of docs/api.md as committed, and hand-picked bad values with the
exception each must raise.
"""

import dataclasses
import inspect
import math
import pathlib
import pydoc
import re
import subprocess
import sys

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
import hf.cg._cg
from hf import options
from hf.update import DampingState, UpdateConfig, hf_update

ROOT = pathlib.Path(__file__).resolve().parents[1]

#: HFOptimizer's keywords after ``monitors`` and their defaults, as its signature
#: spelled them out before hf/options.py existed.
SIGNATURE_BEFORE = [
    ("damping", 1.0), ("min_damping", 1e-6), ("max_damping", 1e6), ("max_cg_iters", 250), ("cg_tol", 5e-4),
    ("cg_decay", 0.95), ("shrink_warm_start", False), ("cold_restart", False), ("cg_fraction", 0.25),
    ("preconditioner", False), ("preconditioner_examples", 100), ("line_search", True),
    ("structural_damping", None), ("chunk_size", None), ("forward_cache", True), ("cache_bytes", None),
    ("rho_batch", "gradient"), ("backtracking", "martens"), ("jv", "pullback"), ("comm", None),
]


def keywords(signature):
    return [(p.name, p.default) for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]


def test_signature_is_the_declarations_and_unchanged():
    sig = inspect.signature(hf.HFOptimizer)
    assert list(sig.parameters)[:5] == ["cost", "s", "params", "inputs", "monitors"]
    assert keywords(sig) == SIGNATURE_BEFORE
    assert keywords(sig) == [(o.name, o.default) for o in options.ALL]


def test_help_shows_every_keyword_with_its_default():
    text = pydoc.render_doc(hf.HFOptimizer, renderer=pydoc.plaintext)
    flat = re.sub(r"\s+", "", text)
    for name, default in SIGNATURE_BEFORE:
        assert f"{name}={default!r}" in flat, name


def test_docstring_lists_every_option_in_order_with_its_default():
    doc = hf.HFOptimizer.__doc__
    assert "{options}" not in doc
    section = doc[doc.index("Other Parameters\n"):doc.index("\nNotes\n")]
    entries = re.findall(r"^(\w+) : (.+)$", section, flags=re.M)
    assert [name for name, _ in entries] == [name for name, _ in SIGNATURE_BEFORE]
    for (name, head), (_, default) in zip(entries, SIGNATURE_BEFORE):
        assert f"default {default!r}" in head, name
    # Parameters and Notes are still there, and the numpydoc layout is intact.
    assert doc.startswith("Hessian-free (truncated Newton) optimization")
    assert "\nParameters\n----------\ncost : scalar TensorVariable\n" in doc
    assert "\nMetrics\n-------\n" in doc


def table_rows(text):
    """(option, default) from the rows of the options table in docs/api.md, parsed on their own."""
    block = text[text.index(options.TABLE_BEGIN):text.index(options.TABLE_END)]
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", block, flags=re.M)
    return [(name, eval(default)) for name, default in rows]  # noqa: S307 (literals written by us)


def test_api_table_agrees_with_the_signature():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert table_rows(text) == SIGNATURE_BEFORE
    # and it is what the declarations generate, word for word
    assert options.replace_table(text) == text


def test_options_table_script_checks_and_rewrites(tmp_path):
    script = [sys.executable, str(ROOT / "docs" / "options_table.py")]
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    stale = tmp_path / "api.md"
    stale.write_text(api.replace("| `cg_decay` | `0.95` |", "| `cg_decay` | `0.9` |"), encoding="utf-8")
    assert subprocess.run(script + ["--check", str(stale)], capture_output=True).returncode == 1
    subprocess.run(script + [str(stale)], check=True, capture_output=True)
    assert subprocess.run(script + ["--check", str(stale)], capture_output=True).returncode == 0
    assert stale.read_text(encoding="utf-8") == api


def test_update_config_fields_are_declared_options():
    for f in dataclasses.fields(UpdateConfig):
        assert f.name in options.BY_NAME, f.name
        assert f.default == options.BY_NAME[f.name].default, f.name
    defaults = dict(SIGNATURE_BEFORE)
    config = UpdateConfig()
    for f in dataclasses.fields(UpdateConfig):
        if f.name != "structural_weight":
            assert getattr(config, f.name) == defaults[f.name], f.name
    assert config.structural_weight == 0.0


# Bad values, each with the exception it must raise (by hand, not from the declarations).
BAD = [
    ("damping", -1.0, ValueError), ("damping", "1", TypeError), ("damping", math.nan, ValueError),
    ("damping", 2e6, ValueError), ("damping", True, TypeError),
    ("min_damping", 0.0, ValueError), ("min_damping", None, TypeError),
    ("max_damping", 1e-7, ValueError), ("max_damping", math.inf, ValueError),
    ("max_cg_iters", 0, ValueError), ("max_cg_iters", 2.5, TypeError), ("max_cg_iters", True, TypeError),
    ("cg_tol", -1e-3, ValueError), ("cg_tol", math.nan, ValueError),
    ("cg_decay", 1.5, ValueError), ("cg_decay", None, TypeError),
    ("shrink_warm_start", 1, TypeError), ("cold_restart", "no", TypeError),
    ("cg_fraction", 0.0, ValueError), ("cg_fraction", 1.5, ValueError),
    ("preconditioner", "yes", TypeError), ("preconditioner_examples", 0, ValueError),
    ("line_search", "yes", TypeError), ("structural_damping", 0.03, TypeError),
    ("chunk_size", 0, ValueError), ("chunk_size", 2.0, TypeError), ("forward_cache", None, TypeError),
    ("cache_bytes", 0, ValueError), ("rho_batch", "both", ValueError), ("backtracking", "best", ValueError),
    ("jv", "rop", ValueError), ("jv", None, ValueError),
]


@pytest.fixture(scope="module")
def model():
    x, y = pt.matrix("x"), pt.vector("y")
    w = pytensor.shared(np.zeros(3), name="w")
    s = x @ w
    return ((s - y) ** 2).mean(), s, [w], [x, y]


@pytest.mark.parametrize("name, value, error", BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
def test_bad_value_is_refused_naming_option_and_value(model, name, value, error):
    cost, s, params, inputs = model
    with pytest.raises(error) as raised:
        hf.HFOptimizer(cost, s, params, inputs, **{name: value})
    message = str(raised.value)
    assert message.startswith("HFOptimizer: ") and name in message
    assert (repr(value) in message) or (type(value).__name__ in message), message
    if name in {f.name for f in dataclasses.fields(UpdateConfig)}:  # the same check, the same words
        with pytest.raises(error) as again:
            UpdateConfig(**{name: value})
        assert str(again.value) == message


def test_min_damping_above_max_and_damping_outside_them():
    with pytest.raises(ValueError, match=r"max_damping must be finite and in \[min_damping, inf\) = \[2, inf\), "
                                         r"got 1\.0"):
        options.check({"min_damping": 2.0, "max_damping": 1.0})
    with pytest.raises(ValueError, match=r"HFOptimizer: damping must be finite and in \[min_damping, max_damping\] "
                                         r"= \[0\.1, 10\], got 20\.0"):
        options.check({"damping": 20.0, "min_damping": 0.1, "max_damping": 10.0})
    # the order given does not matter: the bounds are checked first
    assert options.check({"damping": 10.0, "max_damping": 10.0, "min_damping": 10.0}) == {
        "damping": 10.0, "max_damping": 10.0, "min_damping": 10.0}
    with pytest.raises(ValueError, match="damping"):
        options.check({"damping": 1.0, "max_damping": 0.5})  # min_damping: its default, 1e-6


def test_edges_are_accepted_and_values_converted():
    got = options.check({"cg_decay": 1, "cg_tol": 0, "cg_fraction": 1.0, "max_cg_iters": np.int64(7),
                         "shrink_warm_start": np.bool_(True), "chunk_size": None, "comm": object})
    assert got == {"cg_decay": 1.0, "cg_tol": 0.0, "cg_fraction": 1.0, "max_cg_iters": 7,
                   "shrink_warm_start": True, "chunk_size": None, "comm": object}
    assert type(got["max_cg_iters"]) is int and type(got["cg_decay"]) is float
    with pytest.raises(KeyError):
        options.check({"dampnig": 1.0})


def test_checkpoint_records_the_same_options(model):
    cost, s, params, inputs = model
    opt = hf.HFOptimizer(cost, s, params, inputs, max_cg_iters=7, chunk_size=4)
    recorded = opt._options()
    assert list(recorded) == [
        "damping", "min_damping", "max_damping", "max_cg_iters", "cg_tol", "cg_decay", "shrink_warm_start",
        "cold_restart", "cg_fraction", "preconditioner", "preconditioner_examples", "line_search",
        "structural_damping_weight", "chunk_size", "forward_cache", "cache_bytes", "rho_batch", "backtracking",
        "jv"]
    assert recorded["max_cg_iters"] == 7 and recorded["chunk_size"] == 4
    assert recorded["structural_damping_weight"] == 0.0


def test_an_update_does_not_check_cg_settings_again(monkeypatch):
    """hf_update hands CG its checked config: with CG's checks replaced by ones that fail,
    an update still runs and gives the same result; the public hf.cg.cg still checks."""
    rng = np.random.default_rng(0)
    A = rng.normal(size=(6, 6))
    G = A @ A.T + 0.1 * np.eye(6)
    g = rng.normal(size=6)
    f = lambda x: float(g @ x + 0.5 * x @ G @ x)  # noqa: E731
    config = UpdateConfig(max_cg_iters=20, cg_tol=1e-6)
    state = DampingState(0.5, rng.normal(size=6))

    def run():
        return hf_update(lambda: (f(np.zeros(6)), g), lambda v, c: G @ v, f, state, config)

    expected = run()

    class Refuse:
        def __getattr__(self, name):
            raise AssertionError(f"CG checked a setting ({name}) during an update")

    def refuse_callable(name, *args, **kwargs):
        raise AssertionError(f"CG checked a setting ({name}) during an update")

    monkeypatch.setattr(hf.cg._cg, "_checks", Refuse())
    monkeypatch.setattr(hf.cg._cg, "_check_callable", refuse_callable)
    got = run()
    np.testing.assert_array_equal(got.step, expected.step)
    assert got.metrics == expected.metrics
    with pytest.raises(AssertionError, match="CG checked"):
        hf.cg.cg(lambda v: G @ v, g)


def test_public_cg_still_checks_its_settings():
    with pytest.raises(ValueError, match="max_iters must be a positive integer, got 0"):
        hf.cg.cg(lambda v: v, np.ones(2), max_iters=0)
    with pytest.raises(TypeError, match="shrink_x0 must be True or False, got 1"):
        hf.cg.cg(lambda v: v, np.ones(2), shrink_x0=1)
    with pytest.raises(TypeError, match="psolve must be callable"):
        hf.cg.cg(lambda v: v, np.ones(2), psolve=3)


def test_options_module_imports_no_pytensor():
    # hf/__init__ imports PyTensor, so load the module file alone, as the numpy layers are.
    code = ("import importlib.util, sys, types; pkg = types.ModuleType('hf'); pkg.__path__ = ['hf']; "
            "sys.modules['hf'] = pkg; spec = importlib.util.spec_from_file_location('hf.options', 'hf/options.py'); "
            "m = importlib.util.module_from_spec(spec); sys.modules['hf.options'] = m; spec.loader.exec_module(m); "
            "print(any(k.startswith('pytensor') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
