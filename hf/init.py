"""Weight initialization recommended for Hessian-free training.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010, Sec. 5.
.. [MS11] J. Martens, I. Sutskever, "Learning recurrent neural networks with
   Hessian-free optimization", ICML 2011.
"""

from __future__ import annotations

import numpy as np

from . import _checks

__all__ = ["sparse"]


def sparse(rng, n_in, n_out, *, nonzero=15, scale=1.0, spectral_radius=None, dtype="float64"):
    """Sparse initialization: each unit gets ``nonzero`` random incoming weights.

    Parameters
    ----------
    rng : numpy.random.Generator or int
        Source of randomness (an int seeds a new generator).
    n_in, n_out : int
        Shape of the weight matrix ``(n_in, n_out)``; column ``j`` holds unit
        ``j``'s incoming weights.
    nonzero : int
        Non-zero incoming weights per unit (15 in [Mart10]; all of them when
        ``n_in <= nonzero``).
    scale : float
        Standard deviation of the non-zero weights.
    spectral_radius : float, optional
        For a square recurrent matrix: rescale so its largest absolute
        eigenvalue is this value ([MS11] use about 1.1 for tanh units).
    dtype : str
        Data type of the result.

    Returns
    -------
    ndarray of shape ``(n_in, n_out)``

    Examples
    --------
    >>> W = sparse(0, 40, 3, nonzero=15)
    >>> (W != 0).sum(axis=0).tolist()
    [15, 15, 15]
    """
    rng = np.random.default_rng(rng)
    for name, value in (("n_in", n_in), ("n_out", n_out), ("nonzero", nonzero)):
        _checks.positive_int(name, value, "sparse")
    _checks.real("scale", scale, "sparse", low=0.0, low_open=True)
    W = np.zeros((n_in, n_out))
    k = min(int(nonzero), int(n_in))
    for j in range(n_out):
        rows = rng.choice(n_in, size=k, replace=False)
        W[rows, j] = rng.normal(size=k) * scale
    if spectral_radius is not None:
        if n_in != n_out:
            raise ValueError(f"spectral_radius needs a square matrix, got shape ({n_in}, {n_out})")
        if not np.isfinite(spectral_radius) or spectral_radius <= 0:
            raise ValueError(f"spectral_radius must be finite and > 0, got {spectral_radius!r}")
        radius = np.max(np.abs(np.linalg.eigvals(W)))
        if radius > 0:
            W *= spectral_radius / radius
    return W.astype(dtype)
