"""hf's compile mode: PyTensor's symbolic ops (softmax, log-softmax) are compiled as C arithmetic, not
run through an inner function that PyTensor 3 JIT-compiles with numba on its first call."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.special
from pytensor.compile.builders import OpFromGraph

from hf import _compile


def _ops(f):
    return [node.op for node in f.maker.fgraph.apply_nodes]


def _graphs():
    x, y = pt.matrix("x"), pt.ivector("y")
    rows = pt.arange(y.shape[0])
    direct = -pt.mean(pt.special.log_softmax(3 * x, axis=1)[rows, y])
    composed = -pt.mean(pt.log(pt.special.softmax(3 * x, axis=1))[rows, y])  # PyTensor rewrites it to log_softmax
    return x, y, direct, composed


def _reference(X, Y):
    return -scipy.special.log_softmax(3 * X, axis=1)[np.arange(len(Y)), Y].mean()


@pytest.mark.parametrize("make_mode", [_compile.default_mode, _compile.check_mode], ids=["default", "check"])
def test_softmax_and_log_softmax_are_inlined_and_stable(make_mode):
    mode = make_mode()
    if mode is None:
        pytest.skip("the user chose PyTensor's mode; hf does not change it")
    x, y, direct, composed = _graphs()
    rng = np.random.default_rng(0)
    Y = rng.integers(0, 4, size=6).astype("int32")
    for cost in (direct, composed):
        f = _compile.function([x, y], [cost, pytensor.grad(cost, x)], mode=mode)
        assert not any(isinstance(op, OpFromGraph) for op in _ops(f)), _ops(f)
        # 300: exp overflows unless the max is subtracted. The check mode runs no stabilizing rewrites
        # (fast_compile), so only the log_softmax the user wrote is stable there.
        for scale in (1.0, 300.0) if cost is direct or make_mode is _compile.default_mode else (1.0,):
            X = rng.normal(size=(6, 4)) * scale
            value, grad = f(X, Y)
            assert value == pytest.approx(_reference(X, Y), rel=1e-12)
            # d/dX of the mean cross-entropy of softmax(3X): 3 (softmax(3X) - onehot(Y)) / n
            onehot = np.eye(4)[Y]
            np.testing.assert_allclose(grad, 3 * (scipy.special.softmax(3 * X, axis=1) - onehot) / len(Y),
                                       rtol=1e-10, atol=1e-14)


def test_other_opfromgraph_is_left_to_the_user():
    """A user's own OpFromGraph stays one node (the user chose it); only PyTensor's symbolic ops are inlined."""
    a = pt.vector("a")
    op = OpFromGraph([a], [a * 2 + 1])
    v = pt.vector("v")
    mode = _compile.default_mode()
    if mode is None:
        pytest.skip("the user chose PyTensor's mode")
    f = _compile.function([v], op(v), mode=mode)
    assert any(isinstance(o, OpFromGraph) for o in _ops(f))
    np.testing.assert_array_equal(f(np.arange(3.0)), np.arange(3.0) * 2 + 1)


def test_index_positions_are_read_once_per_compiled_function(monkeypatch):
    """The integer inputs a graph uses as indices are found by walking the compiled graph once: a compiled
    function takes no new attribute (it has __slots__), so the answer is kept on its FunctionMaker."""
    from hf import reduce

    x, y = pt.matrix("x"), pt.ivector("y")
    f = _compile.function([x, y], pt.special.log_softmax(x, axis=1)[pt.arange(y.shape[0]), y].sum())
    walks = []
    real = reduce._used_as_index
    monkeypatch.setattr(reduce, "_used_as_index", lambda outputs: walks.append(1) or real(outputs))
    assert reduce.index_positions(f) == (1,)  # y picks the class
    assert reduce.index_positions(f) == (1,) and len(walks) == 1


def _compile_commands(monkeypatch):
    """The flags of every C module PyTensor compiles from now on (its own ``-g`` comes first)."""
    from pytensor.link.c import cmodule

    seen = []
    original = cmodule.GCC_compiler.compile_str

    def spy(module_name, src_code, location=None, include_dirs=None, lib_dirs=None, libs=None, preargs=None,
            **kw):
        seen.append(["-g"] + list(preargs or []))
        return original(module_name, src_code, location=location, include_dirs=include_dirs, lib_dirs=lib_dirs,
                        libs=libs, preargs=preargs, **kw)

    monkeypatch.setattr(cmodule.GCC_compiler, "compile_str", staticmethod(spy))
    return seen


def _new_graph():
    """A graph whose fused loop no cache holds yet (a constant of its own), so compiling it runs gcc."""
    x = pt.vector("x")
    return x, pt.exp(x) * float(np.random.default_rng().uniform(1, 2)) + 1.0


def _last_g(flags):
    return [f for f in flags if f.startswith("-g")][-1]


@pytest.mark.skipif(_compile.default_mode() is None, reason="the user chose PyTensor's mode; hf does not change it")
def test_hf_compiles_without_debug_information_unless_the_user_asks(monkeypatch):
    """gcc takes the last -g option: hf's functions compile with -g0 after PyTensor's -g, the user's
    gcc__cxxflags stay as they were afterwards, a -g option of the user's is left alone, and so is a
    function compiled with a mode of the user's."""
    seen = _compile_commands(monkeypatch)
    before = pytensor.config.gcc__cxxflags
    x, y = _new_graph()
    f = _compile.function([x], y)
    assert seen and all(_last_g(flags) == "-g0" for flags in seen), seen
    np.testing.assert_allclose(f(np.array([0.0, 1.0])), np.exp([0.0, 1.0]) * (f(np.zeros(1))[0] - 1.0) + 1.0)
    assert pytensor.config.gcc__cxxflags == before
    seen.clear()
    with pytensor.config.change_flags(gcc__cxxflags="-g"):
        x, y = _new_graph()
        _compile.function([x], y)
    assert seen and all(_last_g(flags) == "-g" for flags in seen), seen
    seen.clear()
    x, y = _new_graph()
    _compile.function([x], y, mode=_compile.default_mode())
    assert seen and all(_last_g(flags) == "-g" for flags in seen), seen
