"""Link PyTensor's C backend to a real BLAS: the OpenBLAS of the ``scipy-openblas32`` wheel.

PyTensor 3.0 looks for a BLAS library only in the compiler's system directories.
Where it finds none ("PyTensor could not link to a BLAS installation") its C
matrix-product ops fall back to calling numpy through Python, which costs about
a fifth of an HF update on small and recurrent models. ``hf`` depends on the
``scipy-openblas32`` wheel (OpenBLAS with 32-bit integers, the ABI PyTensor's C
code uses) and points PyTensor's ``blas__ldflags`` at it. The wheel prefixes its
symbols (``scipy_dgemm_``), so the flags map the plain names PyTensor calls onto
them with ``-D`` macros.

Nothing is changed when the user chose ``blas__ldflags`` (in ``PYTENSOR_FLAGS``
or ``.pytensorrc``), or when the wheel's library is absent: PyTensor then keeps
its own search and, failing that, its numpy fallback. OpenBLAS's thread count is
left to the user (``OPENBLAS_NUM_THREADS``, or ``threadpoolctl`` after the first
compile).
"""

from __future__ import annotations

import importlib.util
import os
import sys

__all__ = ["blas_ldflags", "configure"]

#: Every BLAS routine PyTensor 3.0's C code calls.
_ROUTINES = ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot", "sger", "dger", "saxpy", "daxpy")


def blas_ldflags():
    """The ``blas__ldflags`` for the ``scipy-openblas32`` wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("scipy_openblas32")  # finds the package without loading the library
    if spec is None or not spec.submodule_search_locations:
        return None
    libdir = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    if not os.path.isfile(os.path.join(libdir, "libscipy_openblas.so")):
        return None
    renames = " ".join(f"-D{r}_=scipy_{r}_" for r in _ROUTINES)
    return f"-L{libdir} -lscipy_openblas {renames}"


def _user_chose():
    if "blas__ldflags" in os.environ.get("PYTENSOR_FLAGS", ""):
        return True
    rc = os.environ.get("PYTENSORRC", os.path.expanduser("~/.pytensorrc"))
    for path in rc.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as f:
                if "ldflags" in f.read():
                    return True
        except OSError:
            continue
    return False


def configure():
    """Point PyTensor at the wheel's OpenBLAS unless the user chose a BLAS; returns the flags set or None."""
    if _user_chose():
        return None
    flags = blas_ldflags()
    if flags is None:
        return None
    if "pytensor" in sys.modules:  # imported before hf: set it before the first compile
        import pytensor

        pytensor.config.blas__ldflags = flags
    else:
        current = os.environ.get("PYTENSOR_FLAGS", "")
        os.environ["PYTENSOR_FLAGS"] = f"{current},blas__ldflags={flags}" if current else f"blas__ldflags={flags}"
    return flags
