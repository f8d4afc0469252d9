"""Backends and precision: PyTensor's C backend against Numba (and JAX), float64 against float32.

For the deep autoencoder and the tanh RNN of bench/_common.py (RNN: 100 units,
T=100, 200 sequences) each child process builds one ``HFOptimizer`` per backend
(hf's default, C through the ``cvm`` linker, ``hf.default_mode()``; Numba,
``mode="NUMBA"``; JAX, ``mode="JAX"``), all in the same process, and reports:

* compile time: the optimizer's construction (graph rewriting, C compilation)
  plus the first call of the gradient and of a cached Gv product (Numba and JAX
  compile at the first call), the first calls' share given separately;
* run time: loss+gradient, the forward cache, one cached Gv product and one
  recomputing Gv product, calls of all backends interleaved, minimum over
  repeats, as ratios to C within the run; the products are checked against C's.

A second child times the C backend in float64 against the same models built in
float32 (parameters, data and graph; hf's CG stays in float64).

JAX runs only when ``--jax-python`` names a Python with jax installed (a separate
virtual environment with ``pip install -e`` of this repository): Numba and JAX
each get ``--timeout`` seconds per child, and a child that runs out reports what
it finished.

Run (one core, one BLAS thread; writes bench/results/backends.json)::

    taskset -c 1 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python bench/backends.py \\
        [--jax-python /tmp/jaxvenv/bin/python]
    python bench/backends.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def emit(**kw):
    print("JSON " + json.dumps(kw, default=str), flush=True)


def models_for(args, dtype="float64"):
    sys.path.insert(0, HERE)
    import _common as C

    if args.quick:
        return [C.autoencoder(n=200, sizes=(64, 48, 32, 8, 32, 48, 64), dtype=dtype), C.rnn(T=20, n=32, nh=16, dtype=dtype)]
    return [C.autoencoder(n=1000, dtype=dtype), C.rnn(T=100, n=200, nh=100, dtype=dtype)]


def build(model, mode_name):
    import pytensor.compile.mode as pm

    import hf._compile as hc

    original = hc.default_mode
    if mode_name != "C":
        mode = pm.get_mode(mode_name)
        hc.default_mode = lambda: mode
    try:
        try:
            return model.optimizer(), None
        except Exception as err:  # noqa: BLE001 - reported
            msg = f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
            return model.optimizer(forward_cache=False), msg
    finally:
        hc.default_mode = original


def child_backends(args):
    sys.path.insert(0, HERE)
    import numpy as np

    import _common as C

    backends = args.backends.split(",")
    if "JAX" in backends:
        import jax

        jax.config.update("jax_enable_x64", True)
    for model in models_for(args):
        batch = model.batch()
        opts, fns, ref = {}, {}, None
        for b in backends:
            t = time.perf_counter()
            try:
                opt, cache_err = build(model, b)
            except Exception as err:  # noqa: BLE001
                emit(kind="compile", model=model.name, backend=b, error=f"{type(err).__name__}: {str(err)[:300]}")
                continue
            construct = time.perf_counter() - t
            v = np.random.default_rng(1).normal(size=opt.n_params)
            t = time.perf_counter()
            try:
                opt.loss_grad(batch)
                if opt.forward_cache:
                    products = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
                    gv = products(v)[0]
                else:
                    products = None
                gv_re = opt.gv(v, batch)
            except Exception as err:  # noqa: BLE001
                emit(kind="compile", model=model.name, backend=b, construct_s=construct,
                     error=f"first call: {type(err).__name__}: {str(err)[:300]}")
                continue
            first = time.perf_counter() - t
            if ref is None:
                ref = gv_re
            emit(kind="compile", model=model.name, backend=b, construct_s=construct, first_calls_s=first,
                 forward_cache_error=cache_err, rel_err_vs_first_backend=C.rel_err(gv_re, ref),
                 rel_err_cached=None if products is None else C.rel_err(gv, ref))
            opts[b] = opt
            fns[f"grad [{b}]"] = (lambda o: lambda: o.loss_grad(batch))(opt)
            fns[f"Gv recompute [{b}]"] = (lambda o, v: lambda: o.gv(v, batch))(opt, v)
            if products is not None:
                fns[f"Gv cached [{b}]"] = (lambda p, v: lambda: p(v))(products, v)
                fns[f"forward [{b}]"] = (lambda o: lambda: o._f_forward(*batch.arrays))(opt)
        best = C.interleaved_min(fns, args.repeats)
        emit(kind="run", model=model.name, seconds=best)


def child_dtypes(args):
    sys.path.insert(0, HERE)
    import numpy as np

    import _common as C

    pairs = list(zip(models_for(args, "float64"), models_for(args, "float32")))
    for m64, m32 in pairs:
        fns, prods = {}, {}
        for dt, m in (("float64", m64), ("float32", m32)):
            opt = m.optimizer()
            batch = m.batch()
            v = np.random.default_rng(1).normal(size=opt.n_params)
            products = opt.reduce.cached(opt._f_forward, opt._f_gv_cached, batch)
            prods[dt] = products(v)[0]
            fns[f"grad [{dt}]"] = (lambda o, b: lambda: o.loss_grad(b))(opt, batch)
            fns[f"Gv cached [{dt}]"] = (lambda p, v: lambda: p(v))(products, v)
            fns[f"forward [{dt}]"] = (lambda o, b: lambda: o._f_forward(*b.arrays))(opt, batch)
        best = C.interleaved_min(fns, args.repeats)
        emit(kind="dtype", model=m64.name, seconds=best, rel_err_float32=C.rel_err(prods["float32"], prods["float64"]))


def run_child(python, extra, timeout, env=None):
    cmd = [python, os.path.abspath(__file__), "--child"] + extra
    t = time.perf_counter()
    events, timed_out = [], False
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, rc, timed_out = "", None, True
    for line in out.splitlines():
        if line.startswith("JSON "):
            events.append(json.loads(line[5:]))
    if rc not in (0, None):
        print(err[-2000:])
    return {"cmd": " ".join(cmd), "events": events, "timed_out": timed_out, "returncode": rc,
            "wall_s": time.perf_counter() - t}


def summarize(events):
    lines = []
    for e in events:
        if e["kind"] == "compile":
            if "error" in e:
                lines.append(f"  {e['model'][:40]:<40} {e['backend']:<6} FAILED {e['error']}")
            else:
                lines.append(f"  {e['model'][:40]:<40} {e['backend']:<6} compile {e['construct_s']:6.1f} s + first calls "
                             f"{e['first_calls_s']:6.1f} s; Gv rel. diff vs C {e['rel_err_vs_first_backend']:.1e}"
                             + (f"; forward cache failed: {e['forward_cache_error']}" if e.get("forward_cache_error") else ""))
        elif e["kind"] in ("run", "dtype"):
            s = e["seconds"]
            base = "C" if e["kind"] == "run" else "float64"
            lines.append(f"  {e['model']}")
            for k, t in s.items():
                name, tag = k.rsplit(" [", 1)
                tag = tag[:-1]
                ref = s.get(f"{name} [{base}]")
                lines.append(f"    {k:<26} {t * 1e3:9.2f} ms" + (f"   / {base} {t / ref:5.2f}" if ref else ""))
            if e["kind"] == "dtype":
                lines.append(f"    float32 Gv vs float64: rel. diff {e['rel_err_float32']:.1e}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=900, help="seconds per child process (default 900)")
    parser.add_argument("--jax-python", default=None, help="a Python with jax and this repository installed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backends", default="C,NUMBA", help=argparse.SUPPRESS)
    parser.add_argument("--dtypes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_dtypes(args) if args.dtypes else child_backends(args)
    common = ["--repeats", str(args.repeats)] + (["--quick"] if args.quick else [])
    results = {}
    runs = [("C vs Numba", sys.executable, ["--backends", "C,NUMBA"]), ("float64 vs float32 (C)", sys.executable, ["--dtypes"])]
    if args.jax_python:
        env = dict(os.environ, XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
        runs.append(("C vs JAX", args.jax_python, ["--backends", "C,JAX"], env))
    for name, python, extra, *env in runs:
        print(f"{name} ...", flush=True)
        res = run_child(python, extra + common, args.timeout, env[0] if env else None)
        results[name] = res
        for line in summarize(res["events"]):
            print(line)
        if res["timed_out"]:
            print(f"  (stopped after {args.timeout} s: the rest did not finish)")
    sys.path.insert(0, HERE)
    import _common as C

    C.write_result("backends_quick" if args.quick else "backends", {"runs": results})


if __name__ == "__main__":
    main()
