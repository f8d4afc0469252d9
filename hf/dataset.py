"""The public face of :mod:`hf.data` under its older name (``hf.dataset.Dataset``, as downhill
users and code written before the package import it); it holds no logic of its own."""
from .data import *  # noqa: F401,F403
from .data import __all__  # noqa: F401
