"""Where the Python time of an autoencoder update goes: cProfile of one ``step``.

One update of the deep autoencoder (bench/_common.py; gradient batch 4,000 rows,
CG batch 1,000, ``preconditioner=True``, 12 CG iterations, ``cg_tol=0``) after
one unprofiled update, profiled with cProfile; the functions with the most own
time are printed and written to bench/results/profile_update.json. The compiled
functions appear as ``executor.py:__call__`` (PyTensor's function call); their
time is that call's cumulative time (the Python ``perform`` of hf's flat-vector
ops runs inside them); the rest is hf's numpy code.

Run::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/profile_update.py
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402


def main(argv=None):
    m = C.autoencoder(n=4000)
    opt = m.optimizer(preconditioner=True, max_cg_iters=12, cg_tol=0.0)
    batch = m.batch()
    cg_batch = batch.head(1000)
    opt.step(batch, cg_batch)
    prof = cProfile.Profile(time.process_time if C.CLOCK == "cpu" else time.perf_counter)
    prof.enable()
    t = C.now()
    opt.step(batch, cg_batch)
    total = C.now() - t
    prof.disable()
    stats = pstats.Stats(prof)
    rows = []
    for (path, line, func), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append({"function": f"{os.path.relpath(path) if path.startswith('/') else path}:{line}({func})",
                     "calls": nc, "own_s": tt, "cumulative_s": ct})
    rows.sort(key=lambda r: -r["own_s"])
    # A compiled function's time is its call's cumulative time: hf's flat-vector ops (FlatPiece, FlatConcat)
    # have Python ``perform`` methods that run inside the compiled calls, as the C ops they replaced did.
    compiled = sum(r["cumulative_s"] for r in rows if "executor.py" in r["function"] and "__call__" in r["function"])
    print(f"update {total:.2f} s, in compiled calls {compiled:.2f} s, outside {total - compiled:.2f} s "
          f"({100 * (total - compiled) / total:.1f} %)")
    for r in rows[:15]:
        print(f"  {r['own_s']:7.3f} s own {r['cumulative_s']:7.3f} s cum {r['calls']:6d} calls  {r['function']}")
    C.write_result("profile_update", {"update_seconds": total, "compiled_seconds": compiled, "top": rows[:30]})


if __name__ == "__main__":
    main()
