"""What every benchmark record carries: JSON-safe values, the code's commit, the machine, a safe append.

Used by the scripts that append one JSON line per finished run to a file in
``bench/results/`` (``pathological.py``, ``autoencoders.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


#: The commits at which ``rho_batch='cg'`` measured ρ against the damped model value CG had computed with
#: the gradient batch's g ([Mart10]'s code), before it used the CG batch's own gradient and the undamped
#: model. Records made at them are labelled ``rho_batch=cg-damped``.
DAMPED_CG_RHO_COMMITS = frozenset({
    "08eab17bb67d6e7f5f646a2497ee7a177c0e2a7c",  # pathological.jsonl
    "479f828723ea8967e98d6e693a615397cd1ce853",  # autoencoders.jsonl, autoencoder_ablations.jsonl
    "d31a497e21e4602093d3a8985403d316d74d8042",
})


def rho_batch_of(value, commit):
    """A record's ``rho_batch`` setting, ``'cg-damped'`` for ``'cg'`` at a commit of the old definition."""
    return "cg-damped" if value == "cg" and commit in DAMPED_CG_RHO_COMMITS else value


def finite(x):
    """JSON-safe: non-finite floats become None (recursively)."""
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):  # numpy scalars
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def git_state():
    """``(commit, modified)`` of the checkout: HEAD and the modified tracked files other than
    ``bench/results/`` (a list; None, None without git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return commit, [path for path in changed if not path.startswith("bench/results/")]


def machine():
    import numpy
    import pytensor

    try:
        affinity = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    blas = None
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_info

        blas = [{k: d.get(k) for k in ("internal_api", "num_threads", "version")}
                for d in threadpool_info() if d.get("user_api") == "blas"]
    return {
        "hostname": platform.node(), "platform": platform.platform(), "processor": platform.processor(),
        "python": platform.python_version(), "numpy": numpy.__version__, "pytensor": pytensor.__version__,
        "cpu_count": os.cpu_count(), "affinity": affinity, "loadavg": load,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                               "PYTENSOR_FLAGS")},
        "blas_libraries": blas,
    }


def append_record(path, record):
    """Append ``record`` as one line: one ``write`` in append mode under ``flock``, then ``fsync``."""
    line = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:  # not POSIX: O_APPEND and a single write still keep lines whole on local disks
            fcntl = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"append_record: wrote {written} of {len(line)} bytes to {path}")
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    return line


def read_records(path):
    """The records of a JSON-lines file, in order ([] when it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_queue(script, cells, is_done):
    """Run ``python script *cell`` for each cell (a list of arguments) that ``is_done(cell)`` says has no
    record yet, one after another, each in its own process; asked again before each cell, so cells that
    another process finished meanwhile are skipped. A cell that fails is reported and the queue goes on
    (it stays missing, and the next run of the queue tries it again). Returns the cells that failed."""
    import sys

    failed = []
    for cell in cells:
        if is_done(cell):
            continue
        print("cell:", " ".join(cell), flush=True)
        if subprocess.run([sys.executable, os.path.abspath(script), *cell]).returncode != 0:
            print("cell failed:", " ".join(cell), flush=True)
            failed.append(cell)
    return failed
