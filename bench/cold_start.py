"""Seconds from a fresh process to the end of the README quick start's first update.

Takes the first ``python`` block of README.md (the quick start) and runs it in a
new process twice: with a new, empty PyTensor compile cache (cold: PyTensor
compiles its C code) and again with that cache (warm). Each run stops at the
block's first ``print``, which comes after the first update; the figures are the
wall-clock seconds to the end of ``HFOptimizer(...)`` and to that first print,
counted from the start of the process (imports included), and the compile
seconds of each function the optimizer compiled (``opt.compile_seconds``).

Beside them, the floor any PyTensor user pays for the same network: a third
process, with its own new cache, builds the quick start's graph and compiles
and calls a plain ``pytensor.function`` of its loss and gradient and one of its
loss alone (what first-order training of the graph needs), timed the same way;
a fourth does the same in ``hf``'s mode (PyTensor's C backend, symbolic ops
inlined), where PyTensor's default mode is numba's JIT.

Each kind runs ``--repeat`` times (3), interleaved; the figures are each kind's median
run, and every run's time is kept beside it.

Target (issue "performance"): cold ≤ 20 s, warm ≤ 3 s, on one core. Run::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 python bench/cold_start.py

Writes bench/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import _common as C  # noqa: E402  (bench/ is the script's folder)

ROOT = os.path.dirname(C.HERE)
TARGETS = {"cold": 20.0, "warm": 3.0}

# The child's start, timed from the interpreter's start: the quick start (read from stdin) up to its
# ``opt = ...`` line, run; that line in ``line``, what follows it in ``rest``.
PROLOGUE = r'''
import json, sys, time, types
t_start = time.perf_counter()
code = sys.stdin.read()
head, sep, tail = code.partition("\nopt = ")
ns = {}
exec(compile(head, "quickstart", "exec"), ns)
line, _, rest = tail.partition("\n")
'''

# Runs the quick start to the end of its first update.
DRIVER = PROLOGUE + r'''
exec(compile("opt = " + line, "quickstart", "exec"), ns)
t_opt = time.perf_counter()

class First(Exception):
    pass

def first_print(*args, **kw):
    raise First

ns["print"] = first_print
try:
    exec(compile(rest, "quickstart", "exec"), ns)
except First:
    pass
t_first = time.perf_counter()
print(json.dumps({"to_optimizer_s": t_opt - t_start, "to_first_update_s": t_first - t_start,
                  "compile_seconds": ns["opt"].compile_seconds}))
'''

# The same graph, compiled as plain PyTensor functions (loss and gradient, loss) instead of an HFOptimizer,
# in PyTensor's default mode, or in hf's (argument "hf").
PLAIN = PROLOGUE + r'''
def plain(cost, s, params, inputs, **kw):
    import pytensor
    from hf import _compile
    mode = _compile.default_mode() if sys.argv[1:] == ["hf"] else None
    data = [ns[n] for n in ("X", "Y")]
    t = time.perf_counter()
    pytensor.function(inputs, [cost, *pytensor.grad(cost, params)], mode=mode)(*data)
    t_grad = time.perf_counter()
    pytensor.function(inputs, cost, mode=mode)(*data)
    return {"loss_grad": t_grad - t, "loss": time.perf_counter() - t_grad}

ns["hf"] = types.SimpleNamespace(HFOptimizer=plain)
exec(compile("opt = " + line, "quickstart", "exec"), ns)
print(json.dumps({"to_compiled_s": time.perf_counter() - t_start, "compile_seconds": ns["opt"]}))
'''


def quick_start(readme):
    blocks = re.findall(r"```python\n(.*?)```", open(readme).read(), re.S)
    if not blocks:
        raise SystemExit(f"no python block in {readme}")
    return blocks[0]


def run(code, compiledir, driver=DRIVER, *args):
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={compiledir}", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1")
    import time

    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", driver, *args], input=code, text=True, capture_output=True, env=env,
                         cwd=ROOT)
    wall = time.perf_counter() - t
    if out.returncode:
        raise SystemExit(out.stderr)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["process_s"] = wall
    return res


def _median_run(runs, key):
    """The run whose ``key`` is the median (3 runs: the middle one), with every run's ``key`` beside it."""
    ordered = sorted(runs, key=lambda r: r[key])
    return dict(ordered[(len(ordered) - 1) // 2], **{f"{key}_runs": [r[key] for r in runs]})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--readme", default=os.path.join(ROOT, "README.md"))
    p.add_argument("--repeat", type=int, default=3, help="rounds (each: HF cold and warm, plain, plain C); "
                   "the figures are each kind's median run")
    args = p.parse_args(argv)
    if args.repeat < 1:
        raise SystemExit(f"--repeat must be at least 1, got {args.repeat}")
    code = quick_start(args.readme)
    runs = {"cold": [], "warm": [], "plain": [], "plain_c": []}
    for _ in range(args.repeat):  # the kinds interleaved, so that a change of load touches all of them
        with tempfile.TemporaryDirectory(prefix="hf-cold-") as d:
            runs["cold"].append(run(code, d))
            runs["warm"].append(run(code, d))
        with tempfile.TemporaryDirectory(prefix="hf-cold-plain-") as d:
            runs["plain"].append(run(code, d, PLAIN))
        with tempfile.TemporaryDirectory(prefix="hf-cold-plain-c-") as d:
            runs["plain_c"].append(run(code, d, PLAIN, "hf"))
    cold, warm = (_median_run(runs[k], "to_first_update_s") for k in ("cold", "warm"))
    plain, plain_c = (_median_run(runs[k], "to_compiled_s") for k in ("plain", "plain_c"))
    for name, r in (("cold", cold), ("warm", warm)):
        funcs = ", ".join(f"{k} {v:.1f} s" for k, v in r["compile_seconds"].items())
        each = ", ".join(f"{t:.1f}" for t in r["to_first_update_s_runs"])
        print(f"{name} (median of {each} s): HFOptimizer() done at {r['to_optimizer_s']:.1f} s, first update done "
              f"at {r['to_first_update_s']:.1f} s (target <= {TARGETS[name]} s); compiled: {funcs}")
    for name, r in (("PyTensor's default mode", plain), ("hf's C mode", plain_c)):
        each = ", ".join(f"{t:.1f}" for t in r["to_compiled_s_runs"])
        print(f"plain pytensor.function, same graph, new cache, {name}: loss+gradient and loss compiled and "
              f"called at {r['to_compiled_s']:.1f} s (median of {each}); HF's cold start is "
              f"{cold['to_first_update_s'] / r['to_compiled_s']:.2f}x that")
    targets = {k: {"value": r["to_first_update_s"], "target": TARGETS[k], "met": r["to_first_update_s"] <= TARGETS[k]}
               for k, r in (("cold", cold), ("warm", warm))}
    C.write_result("cold_start", {"repeat": args.repeat, "cold": cold, "warm": warm, "plain": plain,
                                   "plain_c": plain_c,
                                   "cold_over_plain": cold["to_first_update_s"] / plain["to_compiled_s"],
                                   "cold_over_plain_c": cold["to_first_update_s"] / plain_c["to_compiled_s"],
                                   "targets": targets})


if __name__ == "__main__":
    main()
