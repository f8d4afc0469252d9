"""The autoencoder, warm-start and matrix-factorization examples, checked against numpy and scipy.

Each example runs with tiny settings, writes its PNG and returns the parameters
and data its reported numbers were measured on; the tests recompute those
numbers with a plain numpy forward pass of the model the example documents
(logistic hidden units, linear code layer, sigmoid output; squared error per
image and cross-entropy summed over pixels, averaged over images), and compare
the matrix factorization with scipy's L-BFGS-B on the same loss written in numpy.
"""

import pathlib
import sys

import numpy as np
import pytest

from hf.datasets import load_digits

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

LAYERS = [64, 16, 4, 16, 64]
RTOL = 1e-10  # numpy vs the compiled graph: same float64 sums in another order


# --------------------------------------------------------------------------- numpy autoencoder


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _ae_output(params, x, layers=LAYERS):
    """Pre-sigmoid output ``s``: logistic hidden layers, a linear code layer (the middle one)."""
    code = len(layers) // 2
    h = x
    for i in range(len(layers) - 1):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i + 1 != code and i < len(layers) - 2:
            h = _sigmoid(h)
    return h


def ae_error(params, x):
    """Squared reconstruction error per image (the examples' held-out error)."""
    return float(np.mean(np.sum((_sigmoid(_ae_output(params, x)) - x) ** 2, axis=1)))


def ae_cross_entropy(params, x):
    """Cross-entropy summed over pixels, averaged over images (the training cost)."""
    s = _ae_output(params, x)
    return float(np.mean(np.sum(np.logaddexp(0.0, s) - x * s, axis=1)))


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _check_digits_split(train, valid, seed=0):
    images = load_digits(seed=seed)
    np.testing.assert_array_equal(train, images[:1500])
    np.testing.assert_array_equal(valid, images[1500:])


def test_autoencoder_example(tmp_path):
    import autoencoder

    out = tmp_path / "ae.png"
    r = autoencoder.main(["--layers", ",".join(map(str, LAYERS)), "--budget", "2", "--out", str(out)])
    assert out.stat().st_size > 0
    train, valid = r["data"]["train"], r["data"]["valid"]
    _check_digits_split(train, valid)
    names = {f"{k}{i}" for i in range(len(LAYERS) - 1) for k in "Wb"}
    for name in ("hf", "adam"):
        run = r[name]
        assert run["steps"] >= 1 and len(run["curve"]) == run["steps"] + 1
        assert set(run["initial_params"]) == set(run["params"]) == names
        # Both optimizers start from the same initialization...
        for k in names:
            assert _same_bits(run["initial_params"][k], r["hf"]["initial_params"][k])
        # ...and every held-out error they report is a numpy forward pass of the
        # parameters it was measured at: the first at the initial, the last at the
        # final parameters (the loops end with break, which keeps the current ones).
        assert run["initial"] == run["curve"][0][1]
        assert run["initial"] == pytest.approx(ae_error(run["initial_params"], valid), rel=RTOL)
        assert run["final"] == run["curve"][-1][1]
        assert run["final"] == pytest.approx(ae_error(run["params"], valid), rel=RTOL)
        assert run["final"] < run["initial"]
        # Training lowered the training cost too, in numpy.
        assert ae_cross_entropy(run["params"], train) < ae_cross_entropy(run["initial_params"], train)


def test_warm_start_example(tmp_path):
    import h5py
    import warm_start

    out = tmp_path / "ws.png"
    r = warm_start.main(["--layers", ",".join(map(str, LAYERS)), "--adam-epochs", "2", "--hf-updates", "2",
                         "--checkpoint", str(tmp_path / "adam.h5"), "--out", str(out)])
    assert out.stat().st_size > 0
    assert r["checkpoint"] == str(tmp_path / "adam.h5")
    train, valid = r["train"], r["valid"]
    _check_digits_split(train, valid)
    names = sorted(r["initial_params"])
    assert names == sorted(f"{k}{i}" for i in range(len(LAYERS) - 1) for k in "Wb")

    # The held-out errors of both phases are numpy forward passes of their parameters.
    assert r["initial"] == pytest.approx(ae_error(r["initial_params"], valid), rel=RTOL)
    assert r["adam"] == pytest.approx(ae_error(r["adam_params"], valid), rel=RTOL)

    # HF starts bit for bit from the Adam checkpoint's best parameters, read here with
    # plain h5py, which are those the Adam model holds after its run (best restored).
    with h5py.File(r["checkpoint"], "r") as f:
        saved = {k: f[f"loop/best_params/{k}"][()] for k in names}
        best_loss = float(f["loop/best_loss"][()])
    for k in names:
        assert _same_bits(r["loaded_params"][k], saved[k]), k
        assert _same_bits(r["adam_params"][k], saved[k]), k
    assert r["loaded"] == r["adam"]
    # The checkpoint's best validation loss is the numpy cross-entropy of those parameters.
    start_valid = ae_cross_entropy(r["loaded_params"], valid)
    assert best_loss == pytest.approx(start_valid, rel=RTOL)

    # HF's first update starts from the loaded parameters: the training loss it
    # reports (full batch) is their numpy cross-entropy on the training images.
    history = r["hf_history"]
    assert [h["update"] for h in history] == [1, 2]
    assert history[0]["loss"] == pytest.approx(ae_cross_entropy(r["loaded_params"], train), rel=RTOL)

    # After HF, the model holds the parameters with the best validation loss (the
    # loaded ones were validated before the first update): numpy agrees, and so
    # does the reported held-out error.
    end_valid = ae_cross_entropy(r["hf_params"], valid)
    assert end_valid == pytest.approx(min([start_valid] + [h["valid_loss"] for h in history]), rel=RTOL)
    assert end_valid < start_valid  # HF improved on the Adam checkpoint
    assert r["hf"] == pytest.approx(ae_error(r["hf_params"], valid), rel=RTOL)
    assert r["hf"] < r["loaded"]


# --------------------------------------------------------------------------- matrix factorization

MF = dict(rows=40, cols=20, rank=3, l1=1e-3, l2=1e-3)


def _mf_problem(seed=0, rows=40, cols=20, rank=3):
    """The quick start's draws, in its order: u0 (0.1 N(0,1)), v0 (0.1 N(0,1)), then the two factors of y."""
    rng = np.random.default_rng(seed)
    u0 = 0.1 * rng.standard_normal((rows, rank))
    v0 = 0.1 * rng.standard_normal((rank, cols))
    y = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, cols))
    return y, u0, v0


def mf_loss(u, v, y, l1=MF["l1"], l2=MF["l2"]):
    return float(np.mean((y - u @ v) ** 2) + l1 * np.mean(np.abs(u)) + l2 * np.mean(v * v))


def _mf_scipy_optimum(y, u0, v0, l1=MF["l1"], l2=MF["l2"]):
    """L-BFGS-B on the same loss from the same start; the L1 term made smooth by
    splitting ``u = p - m`` with ``p, m >= 0``. Returns the loss at its optimum."""
    from scipy.optimize import minimize

    nu = u0.size

    def f(w):
        p, m, v = w[:nu].reshape(u0.shape), w[nu:2 * nu].reshape(u0.shape), w[2 * nu:].reshape(v0.shape)
        u = p - m
        r = u @ v - y
        value = np.mean(r * r) + l1 * np.mean(p + m) + l2 * np.mean(v * v)
        gu = 2 * r @ v.T / r.size
        gv = 2 * u.T @ r / r.size + 2 * l2 * v / v.size
        return value, np.concatenate([(gu + l1 / nu).ravel(), (l1 / nu - gu).ravel(), gv.ravel()])

    w0 = np.concatenate([np.maximum(u0, 0).ravel(), np.maximum(-u0, 0).ravel(), v0.ravel()])
    bounds = [(0, None)] * (2 * nu) + [(None, None)] * v0.size
    res = minimize(f, w0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options=dict(maxiter=20_000, ftol=1e-15, gtol=1e-12))
    assert res.success, res.message
    return float(res.fun)


def test_matrix_factorization_example(tmp_path):
    import matrix_factorization

    out = tmp_path / "mf.png"
    # The defaults: RMSProp stops on patience after 140 epochs (about a second).
    initial, final, train, a = matrix_factorization.main(verbose=False, out=str(out))
    assert out.stat().st_size > 0

    # The data and the starting point are the quick start's, drawn here independently.
    y, u0, v0 = _mf_problem()
    np.testing.assert_array_equal(a["y"], y)
    np.testing.assert_array_equal(a["u0"], u0)
    np.testing.assert_array_equal(a["v0"], v0)
    u, v = a["u"], a["v"]

    # The reported reconstruction errors, in numpy.
    assert initial == pytest.approx(np.mean((y - u0 @ v0) ** 2), rel=1e-12)
    assert final == pytest.approx(np.mean((y - u @ v) ** 2), rel=1e-12)
    # The factors returned are the best validated ones (validation on the training
    # matrix, every 10 epochs): their numpy loss is the best validation loss.
    assert 0 < train["update"] < 600
    assert train["valid_best_loss"] == pytest.approx(mf_loss(u, v, y), rel=RTOL)

    # Against the known optimum: y has rank 3 exactly, so the reconstruction error
    # can reach 0 (3.03 at the start), and L-BFGS-B from the same start reaches a
    # regularized loss of 0.001555; RMSProp ends within 1e-3 of it (0.00214).
    assert final < 1e-3
    optimum = _mf_scipy_optimum(y, u0, v0)
    assert 0 < optimum < mf_loss(u, v, y) < optimum + 1e-3
