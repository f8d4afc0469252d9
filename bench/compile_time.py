"""Compilation: time per compiled function, cold and warm cache, and no recompilation.

Runs two child processes on one fresh temporary ``base_compiledir``:

* cold: the cache is empty (PyTensor also builds its own helper modules);
* warm: the same directory again, every C module already there.

Each child builds an ``HFOptimizer`` and compiles every function it has
(``opt.compile(all of them)``; ``HFOptimizer`` otherwise compiles each at its
first call; ``forward_cache=True``: six functions) for the deep autoencoder, the tanh RNN and the RNN with structural
damping, and records the time of each ``pytensor.function`` hf makes
(``hf._compile.function`` wrapped) and the number of C modules compiled (new
``.so`` files in the cache). The warm child then checks that nothing is
recompiled (no hf function made, no C module built, no ``FunctionMaker``
created):

* across updates (``step``) and across ``iterate`` calls (two calls of two
  updates, validation included);
* for a second optimizer on the same graph (it compiles its own six functions,
  the graph rewrites again, but no C module is built): its construction time
  against the first's.

Run (one core; writes bench/results/compile_time.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/compile_time.py
    python bench/compile_time.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def count_modules():
    from pytensor import config

    n = 0
    for _, _, files in os.walk(config.compiledir):
        n += sum(f.endswith(".so") for f in files)
    return n


def child(args):
    sys.path.insert(0, HERE)
    import pytensor.compile.maker as maker

    import _common as C
    import hf
    import hf._compile as hc

    log = []
    original = hc.function

    def timed_function(inputs, outputs, **kwargs):
        t = time.perf_counter()
        f = original(inputs, outputs, **kwargs)
        log.append((kwargs.get("name"), time.perf_counter() - t))
        return f

    hc.function = timed_function
    makers = [0]
    init = maker.FunctionMaker.__init__

    def counting_init(self, *a, **k):
        makers[0] += 1
        init(self, *a, **k)

    maker.FunctionMaker.__init__ = counting_init

    if args.quick:
        models = [C.autoencoder(n=64, sizes=(64, 48, 32, 8, 32, 48, 64)), C.rnn(T=10, n=16, nh=16),
                  C.rnn(T=10, n=16, nh=16, structural=True)]
    else:
        models = [C.autoencoder(n=64), C.rnn(T=20, n=64), C.rnn(T=20, n=64, structural=True)]
    out = {"phase": args.child, "models": []}
    opts = []
    for m in models:
        before_so, before_log = count_modules(), len(log)
        t = time.perf_counter()
        opt = m.optimizer()
        opt.compile(sorted(opt._graphs))  # all of them now (HFOptimizer compiles lazily)
        total = time.perf_counter() - t
        opts.append(opt)
        out["models"].append({"model": m.name, "construct_s": total,
                              "functions": dict(log[before_log:]), "c_modules_built": count_modules() - before_so})
        print(f"  {args.child:<4} {m.name:<60} {total:6.1f} s  {count_modules() - before_so:3d} C modules", flush=True)

    if args.child == "warm":
        m, opt = models[2], opts[2]  # the RNN with structural damping
        checks = {}
        batch = m.batch()

        def snapshot():
            return count_modules(), len(log), makers[0]

        s0 = snapshot()
        for _ in range(3):
            opt.step(batch, batch.head(16))
        s1 = snapshot()
        checks["3 step() calls"] = {"c_modules": s1[0] - s0[0], "hf_functions": s1[1] - s0[1], "function_makers": s1[2] - s0[2]}
        data = hf.Dataset(list(m.data), batch_size=32, axis=1, rng=0)  # time-major: examples on axis 1
        for k in range(2):
            for _ in opt.iterate(data, data, max_updates=2):
                pass
        s2 = snapshot()
        checks["2 iterate() calls of 2 updates"] = {"c_modules": s2[0] - s1[0], "hf_functions": s2[1] - s1[1],
                                                    "function_makers": s2[2] - s1[2]}
        t = time.perf_counter()
        second = m.optimizer()
        second.compile(sorted(second._graphs))
        t_second = time.perf_counter() - t
        s3 = snapshot()
        checks["second optimizer, same graph"] = {"c_modules": s3[0] - s2[0], "hf_functions": s3[1] - s2[1],
                                                  "function_makers": s3[2] - s2[2], "construct_s": t_second,
                                                  "first_construct_s_warm": out["models"][2]["construct_s"]}
        second.step(batch, batch.head(16))
        s4 = snapshot()
        checks["second optimizer's first step"] = {"c_modules": s4[0] - s3[0], "hf_functions": s4[1] - s3[1],
                                                   "function_makers": s4[2] - s3[2]}
        out["checks"] = checks
        for k, v in checks.items():
            print(f"  {k:<34} {v}")
    print("JSON " + json.dumps(out))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per child (default 900)")
    parser.add_argument("--child", choices=["cold", "warm"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    tmp = tempfile.mkdtemp(prefix="hf_compile_bench_")
    results = {}
    try:
        for phase in ("cold", "warm"):
            env = dict(os.environ)
            flags = [f for f in env.get("PYTENSOR_FLAGS", "").split(",") if f and not f.startswith("base_compiledir")]
            env["PYTENSOR_FLAGS"] = ",".join(flags + [f"base_compiledir={tmp}"])
            cmd = [sys.executable, os.path.abspath(__file__), "--child", phase] + (["--quick"] if args.quick else [])
            t = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
            wall = time.perf_counter() - t
            for line in proc.stdout.splitlines():
                if not line.startswith("JSON "):
                    print(line)
            if proc.returncode != 0:
                print(proc.stderr[-3000:])
                raise SystemExit(f"{phase} child failed")
            res = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("JSON ")][-1][5:])
            res["process_wall_s"] = wall
            results[phase] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{'function':<16}" + "".join(f"{m['model'][:24]:>26}" for m in results["cold"]["models"]))
    names = list(results["cold"]["models"][0]["functions"])
    for name in names:
        cells = "".join(f"{mc['functions'].get(name, float('nan')):11.1f} / {mw['functions'].get(name, float('nan')):6.1f} s   "
                        for mc, mw in zip(results["cold"]["models"], results["warm"]["models"]))
        print(f"{name:<16}{cells}")
    print("(cold / warm)")
    recompiles = any(v["c_modules"] or (k != "second optimizer, same graph" and (v["hf_functions"] or v["function_makers"]))
                     for k, v in results["warm"]["checks"].items())
    print(f"recompilation seen: {'YES' if recompiles else 'no'}")
    sys.path.insert(0, HERE)
    import _common as C

    C.write_result("compile_time_quick" if args.quick else "compile_time", {**results, "recompiles": recompiles})


if __name__ == "__main__":
    main()
