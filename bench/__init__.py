"""Benchmarks of ``hf``: each module is a script (``python bench/<name>.py`` or ``python -m bench.<name>``).

Being a package lets the scripts and the tests import shared modules
(``bench.rnn_experiment``, ``bench._common``) by name.
"""
