"""bench/cg_start.py's summary, against counts worked out by hand from made-up rows."""
from __future__ import annotations

import importlib.util
import math
import pathlib

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"


def load():
    spec = importlib.util.spec_from_file_location("bench_cg_start", BENCH / "cg_start.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(update, damping, rho, phi, warm, cold):
    """``warm``/``cold``: CG-batch loss changes of the kept iterates; ``phi`` None: no warm start."""
    return {"update": update, "damping": damping, "rho": rho,
            "x0": None if phi is None else {"phi": phi, "loss_change": 0.0, "norm": 1.0},
            "warm_kept": [(5 * (i + 1), c, 1.0) for i, c in enumerate(warm)],
            "cold_kept": [(5 * (i + 1), c, 1.0) for i, c in enumerate(cold)]}


def test_summary_counts_the_updates_a_warm_start_spoiled():
    bench = load()
    rows = [
        row(1, 0.1, 1.0, None, [-1.0], [-1.0]),                  # first update: no warm start, not counted
        row(2, 0.2, -math.inf, 50.0, [2.0, 0.5], [-0.1, 0.3]),   # uphill start, cold run helps
        row(3, 0.4, 0.9, -1.0, [0.1, -0.2], [-0.3]),             # a warm iterate lowers the loss
        row(4, 0.8, -math.inf, 10.0, [0.3], [0.2, 0.1]),         # everything raises it
        row(5, 1.6, -math.inf, 30.0, [1.0, 2.0], [-0.5]),        # uphill start, cold run helps
    ]
    s = bench.summary(rows)
    assert s.pop("median_damping") == pytest.approx(0.6)  # the median of 0.2, 0.4, 0.8, 1.6
    assert s == {
        "analysed": 5, "with_warm_start": 4, "phi_x0_positive": 3,
        "every_warm_iterate_raises_cg_loss": 3, "of_those_a_cold_iterate_lowers_it": 2,
        "every_cold_iterate_raises_cg_loss": 1, "rho_minus_inf": 3,
        "median_phi_x0_when_positive": 30.0,
    }
    assert bench.summary(rows[:1]) == {"analysed": 1, "with_warm_start": 0}
