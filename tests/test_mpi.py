"""Data-parallel HF over MPI (hf.mpi).

The first tests check sharding and the reductions in this process, without MPI.
The others run ``mpiexec -n 2`` on ``tests/mpi_train.py`` (loopback, the mpiexec
of the ``mpich`` wheel that ``pip install .[mpi]`` puts next to the venv's
python) and are skipped, with the reason, when mpi4py or mpiexec is missing.

Tolerances of "P ranks = 1 process": after 8 updates the parameters agree to
``rtol=1e-10, atol=1e-12`` for the MLP (2 and 3 ranks) and ``rtol=1e-8,
atol=1e-9`` for the scan RNN with structural damping (2 ranks) (measured: 4e-15,
3e-15 and 2e-11); every discrete choice
(CG iterations, backtracking iterate, acceptance) is identical. Two ranks add in
another order than one process; the RNN's CG amplifies that rounding more (one
process with another ``chunk_size`` differs from itself by as much).
"""

import importlib.util
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import scipy.sparse as sp

import hf
from hf import mpi

from .subprocesses import finish, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "mpi_train.py"


# ---------------------------------------------------------------------- sharding, in this process
def whole_and_shards(make, size):
    """The same dataset built size + 1 times: the whole one and one shard per rank."""
    return make(), [mpi.shard(make(), rank=r, size=size) for r in range(size)]


@pytest.mark.parametrize("size", [2, 3])
def test_shard_deals_every_batch_of_an_array_dataset_round_robin(size):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(23, 4))
    Y = np.arange(23)
    S = sp.random(23, 5, density=0.3, format="csr", random_state=1)

    def make():
        return hf.Dataset([X, Y, S], name="train", batch_size=7, rng=5)  # batches 7, 7, 7, 2... 2 < 3

    if size == 3:
        X, Y, S = X[:21], Y[:21], S[:21]  # batches of 7: every rank gets some
    whole, shards = whole_and_shards(make, size)
    assert isinstance(shards[0], hf.Dataset)
    assert shards[0].name == "train" and shards[0].n_batches == whole.n_batches
    for _ in range(3 * whole.n_batches + 1):  # several passes, reshuffled at each wrap
        full = whole.next_batch()
        parts = [s.next_batch() for s in shards]
        for r, part in enumerate(parts):
            np.testing.assert_array_equal(part[0], full[0][r::size])
            np.testing.assert_array_equal(part[1], full[1][r::size])
            assert sp.isspmatrix_csr(part[2]) or sp.issparse(part[2])
            np.testing.assert_array_equal(part[2].toarray(), full[2].toarray()[r::size])
        assert sum(len(p[1]) for p in parts) == len(full[1])
    for s in shards:
        state = s.state_dict()
        ref = whole.state_dict()
        np.testing.assert_array_equal(state["order"], ref["order"])
        assert (state["cursor"], state["epoch"], state["rng"]) == (ref["cursor"], ref["epoch"], ref["rng"])


def test_shard_of_a_sequence_dataset_holds_its_sequences_padded_to_their_own_longest():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 9, size=17)
    xs = [rng.normal(size=(t, 2)) for t in lengths]
    ys = [rng.normal(size=(t, 1)) for t in lengths]
    static = rng.normal(size=(17, 3))

    for bucket in (False, True):
        def make():
            return hf.SequenceDataset([xs, ys, static], batch_size=6, rng=2, bucket=bucket)

        whole, shards = whole_and_shards(make, 2)
        for _ in range(7):
            full = whole.next_batch()
            parts = [s.next_batch() for s in shards]
            for r, part in enumerate(parts):
                mask = full[3][:, r::2]
                steps = int(mask.sum(axis=0).max())
                assert part[3].shape == (steps, mask.shape[1])  # trimmed to this rank's longest
                np.testing.assert_array_equal(part[3], mask[:steps])
                np.testing.assert_array_equal(part[0], full[0][:steps, r::2])
                np.testing.assert_array_equal(part[1], full[1][:steps, r::2])
                np.testing.assert_array_equal(part[2], full[2][r::2])
            assert shards[0].mask_index == whole.mask_index == 3


def test_shard_of_a_callable_a_full_batch_and_take():
    calls = []

    def batches():
        calls.append(1)
        k = len(calls)
        return [np.arange(5.0) + 10 * k, np.arange(5) + k]

    part = mpi.shard(hf.Dataset(batches, name="f", iteration_size=2), rank=1, size=2)
    b = part.next_batch()
    np.testing.assert_array_equal(b[0], [11.0, 13.0])
    np.testing.assert_array_equal(b[1], [2, 4])

    X, Y = np.arange(10.0).reshape(5, 2), np.arange(5)
    a0, b0 = mpi.shard([X, Y], rank=0, size=2)
    a1, b1 = mpi.shard([X, Y], rank=1, size=2)
    np.testing.assert_array_equal(np.concatenate([a0, a1]), X[[0, 2, 4, 1, 3]])
    np.testing.assert_array_equal(b1, [1, 3])

    ds = mpi.shard(hf.Dataset([X, Y], batch_size=2, rng=0), rank=0, size=2)
    np.testing.assert_array_equal(ds.take(3)[1], [0, 2])


def test_shard_refuses_batches_smaller_than_the_number_of_ranks_and_double_sharding():
    ds = mpi.shard(hf.Dataset([np.arange(5.0)], name="tiny", batch_size=2, rng=0), rank=0, size=3)
    with pytest.raises(ValueError, match=r"of Dataset 'tiny' has [12] examples, fewer than the 3 ranks"):
        ds.next_batch()
    with pytest.raises(TypeError, match="already sharded"):
        mpi.shard(ds, rank=0, size=3)
    with pytest.raises(ValueError, match="rank 3 is not in range"):
        mpi.shard(hf.Dataset([np.arange(5.0)]), rank=3, size=3)
    with pytest.raises(TypeError, match="comm=..., or rank= and size="):
        mpi.shard(hf.Dataset([np.arange(5.0)]))


def test_local_count_splits_the_first_n_examples_like_the_round_robin_deal():
    for n in range(1, 30):
        for size in (1, 2, 3, 4):
            counts = [mpi.local_count(n, r, size) for r in range(size)]
            assert sum(counts) == n and max(counts) - min(counts) <= 1
            assert counts == [len(range(r, n, size)) for r in range(size)]


# ---------------------------------------------------------------------- reductions, in this process
class OneRank:
    """A communicator of one rank (Allreduce leaves the buffer as it is)."""

    def __init__(self, gathered=None):
        self.gathered = gathered
        self.buffers = []

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Allreduce(self, sendbuf, recvbuf, op=None):
        assert recvbuf.dtype == np.float64 and recvbuf.flags.c_contiguous
        self.buffers.append(recvbuf.size)

    def allgather(self, value):
        return [value] + list(self.gathered or [])


@pytest.fixture
def fake_mpi(monkeypatch):
    monkeypatch.setattr(mpi, "_mpi", lambda: types.SimpleNamespace(IN_PLACE=object(), SUM=object()))
    monkeypatch.setattr(mpi, "abort_on_error", lambda comm: None)


def test_distributed_mean_packs_each_quantity_into_one_buffer_and_equals_example_mean(fake_mpi):
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    W = pytensor.shared(rng.normal(size=(3, 2)), name="W")
    x, y = pt.matrix("x"), pt.matrix("y")
    s = x @ W
    cost = 0.5 * pt.mean(pt.sum((s - y) ** 2, axis=1))
    data = (rng.normal(size=(11, 3)), rng.normal(size=(11, 2)))
    batch = hf.Batch(data, (0, 0))
    comm = OneRank()
    plain = hf.HFOptimizer(cost, s, [W], [x, y], monitors={"m": pt.mean(s)}, chunk_size=4, preconditioner=True)
    dist = hf.HFOptimizer(cost, s, [W], [x, y], monitors={"m": pt.mean(s)}, chunk_size=4, preconditioner=True,
                          comm=comm)
    assert isinstance(dist.reduce, mpi.DistributedMean)
    assert comm.buffers == []
    f0, m0, g0 = plain.loss_grad(batch)
    f1, m1, g1 = dist.loss_grad(batch)
    assert comm.buffers == [1 + 1 + 6 + 1]  # loss, monitor, gradient and the count: one collective
    assert (f0, m0) == (f1, m1)
    np.testing.assert_array_equal(g0, g1)
    v = rng.normal(size=6)
    np.testing.assert_array_equal(plain.gv(v, batch), dist.gv(v, batch))
    np.testing.assert_array_equal(plain.mean_square_gradients(batch, 5), dist.mean_square_gradients(batch, 5))
    assert dist.loss_at(plain._theta() + v, batch) == plain.loss_at(plain._theta() + v, batch)
    # Gv; the one-pass per-example squares checked once against the loop (two reductions), then
    # taken (one); the loss at θ + v
    assert comm.buffers[1:] == [7, 7, 7, 7, 3]
    assert dist.reduce.allreduce_calls == 6 and dist.reduce.allreduce_values == 9 + 7 + 7 + 7 + 7 + 3
    np.testing.assert_array_equal(plain.mean_square_gradients(batch, 5), dist.mean_square_gradients(batch, 5))
    assert comm.buffers[6:] == [7]  # checked once: later calls take one reduction
    assert dist.reduce.head(batch, 0.25).size == math.ceil(0.25 * 11)
    ds = hf.Dataset(list(data), batch_size=11)
    assert plain.evaluate(ds) == dist.evaluate(ds)


def test_check_same_names_the_ranks_that_differ():
    a = [np.arange(3.0), np.ones((2, 2), dtype=np.float32)]
    mpi.check_same(OneRank(), a, "x")
    same = (mpi._digest(a), 0.0)
    other = (mpi._digest([np.arange(3.0) + 1e-300, a[1]]), 0.0)
    with pytest.raises(RuntimeError, match=r"the parameters after update 10 differ between ranks: rank\(s\) \[2\]"):
        mpi.check_same(OneRank([same, other]), a, "the parameters after update 10")


def test_the_reducer_answers_what_the_loop_asks_one_process_and_several(fake_mpi, monkeypatch):
    from hf.reduce import ExampleMean, reducer_for

    one = reducer_for(None, chunk_size=4)
    batch = hf.Batch((np.zeros((11, 2)),), (0,))
    assert type(one) is ExampleMean and one.is_writer and one.consistency_check_every is None
    assert one.head(batch, 0.25).size == 3 and one.shard(batch) is batch
    one.check_same([np.zeros(2)], "x")  # no other process: nothing to compare
    one.check_after_update(10, lambda: pytest.fail("one process never reads the parameters to check them"))

    class Rank1(OneRank):
        def Get_rank(self):
            return 1

        def Get_size(self):
            return 2

    a = [np.arange(3.0)]
    other = (mpi._digest([np.arange(3.0) + 1]), 0.0)
    several = reducer_for(Rank1([other]), chunk_size=4)
    assert isinstance(several, mpi.DistributedMean) and not several.is_writer
    several.check_after_update(9, lambda: pytest.fail("checked only every consistency_check_every (10) updates"))
    with pytest.raises(RuntimeError, match=r"the parameters after update 10 differ between ranks"):
        several.check_after_update(10, lambda: a)
    monkeypatch.setattr(mpi, "shard", lambda data, comm: ("shard", data, comm))
    assert several.shard("data") == ("shard", "data", several.comm)


def test_one_process_never_imports_mpi4py():
    code = ("import sys, numpy as np, pytensor, pytensor.tensor as pt, hf\n"
            "W = pytensor.shared(np.zeros((2, 2))); x = pt.matrix('x'); s = x @ W\n"
            "opt = hf.HFOptimizer(0.5 * pt.mean(pt.sum(s ** 2, axis=1)), s, [W], [x])\n"
            "assert 'mpi4py' not in sys.modules and 'hf.mpi' not in sys.modules, sorted(sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300, env=_env())


# ---------------------------------------------------------------------- under mpiexec
def _env():
    env = dict(os.environ)
    env.setdefault("PYTENSOR_FLAGS", f"base_compiledir={ROOT / '.pytensor'}")
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _mpiexec():
    """The mpiexec next to this python (the mpich wheel's), else the one on PATH, or None."""
    here = pathlib.Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


@pytest.fixture(scope="module")
def mpiexec():
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]', as `make test` does)")
    exe = _mpiexec()
    if exe is None:
        pytest.skip("no mpiexec (pip install -e '.[mpi]' installs the mpich wheel, which provides it)")
    probe = subprocess.run(
        [exe, "-n", "2", sys.executable, "-c", "from mpi4py import MPI; print(MPI.COMM_WORLD.Get_size())"],
        capture_output=True, text=True, timeout=120, env=_env(),
    )
    # Each rank prints "2"; their lines may interleave ("22\n\n").
    if probe.returncode != 0 or "".join(probe.stdout.split()) != "22":
        pytest.fail(f"{exe} -n 2 does not start two ranks of mpi4py's MPI library (a different MPI than mpi4py "
                    f"uses?): rc {probe.returncode}, stdout {probe.stdout!r}, stderr {probe.stderr[-2000:]!r}")
    return exe


def run(args, n=None, mpiexec=None, timeout=240, runner=()):
    cmd = [sys.executable, *runner, str(SCRIPT), *map(str, args)]
    if n is not None:
        cmd = [mpiexec, "-n", str(n), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env())


def start(args, n, mpiexec, runner=()):
    cmd = [mpiexec, "-n", str(n), sys.executable, *runner, str(SCRIPT), *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())


def result(path):
    z = np.load(path)
    params = [z[f"arr_{i}"] for i in range(len([k for k in z.files if k.startswith("arr_")]))]
    return params, json.loads(str(z["history"])), z


def check_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


@pytest.mark.parametrize("model, ranks, rtol, atol, n, flags", [
    ("mlp", 2, 1e-10, 1e-12, 8, ()), ("mlp", 3, 1e-10, 1e-12, 8, ()), ("rnn", 2, 1e-8, 1e-9, 8, ()),
    ("mlp", 2, 1e-10, 1e-12, 12, ("--cold-restart", "--shrink-warm-start"))],
    ids=["mlp-2", "mlp-3", "rnn-2", "mlp-2-restart-shrink"])
def test_ranks_on_shards_match_one_process_on_the_whole_data(mpiexec, tmp_path, model, ranks, rtol, atol, n, flags):
    """MLP: unequal shards (batches of 61 and 6, validation of 101), chunks, preconditioner;
    on 3 ranks the CG batch of the batch of 6 (2 examples) leaves one rank without any.
    RNN: scan over variable-length sequences with a mask and structural damping.
    The shrunk warm start and the cold restart decide on reduced losses and model values,
    so every rank takes the decision one process takes (the restart acts at update 9)."""
    check_ok(run([tmp_path / "one.npz", "--model", model, "--updates", n, "--serial", *flags]))
    check_ok(run([tmp_path / "two.npz", "--model", model, "--updates", n, *flags], n=ranks, mpiexec=mpiexec))
    p1, h1, z1 = result(tmp_path / "one.npz")
    p2, h2, z2 = result(tmp_path / "two.npz")
    assert int(z1["ranks"]) == 1 and int(z2["ranks"]) == ranks
    assert not bool(z1["mpi4py_imported"])  # one process never imports mpi4py
    assert int(z2["updates"]) == n and int(z2["allreduce_calls"]) > 10 * n
    for a, b in zip(p2, p1):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    if "--cold-restart" in flags:  # the case tests a restart only if one happens
        assert sum(r["cold_restart"] for r in h1) >= 1
    if "--shrink-warm-start" in flags:
        assert len({round(r["cg_start"], 6) for r in h1}) > 3  # the shrink factor varies
    for r1, r2 in zip(h1, h2, strict=True):
        for key in ("cg_iters", "cg_status", "backtrack", "accepted", "cold_restart"):
            assert r1[key] == r2[key], (key, r1, r2)
        for key in ("loss", "new_loss", "damping", "valid_loss", "cg_start"):
            assert r2[key] == pytest.approx(r1[key], rel=1e3 * rtol, abs=1e3 * atol), key


def test_a_killed_rank_ends_the_job_and_the_checkpoint_resumes_bit_exactly(mpiexec, tmp_path):
    """Rank 1 SIGKILLs itself after update 3 while rank 0 may be inside a (slowed) checkpoint
    write: mpiexec ends the job within seconds; the checkpoint left is whole; resuming with
    2 ranks gives the uninterrupted run's parameters bit for bit, with 1 process to rounding."""
    n = 7
    check_ok(run([tmp_path / "ref.npz", "--updates", n, "--checkpoint", tmp_path / "ref.h5"], n=2,
                 mpiexec=mpiexec))
    expected, ref_history, _ = result(tmp_path / "ref.npz")

    ck = tmp_path / "run.h5"
    proc = start([tmp_path / "run.npz", "--updates", n, "--checkpoint", ck, "--die-at", 3, "--die-rank", 1,
                  "--slow-save"], 2, mpiexec)
    seen, out = wait_for(proc, "rank 1 update 3")
    assert seen is not None, out
    rc, rest, _ = finish(proc)
    ended = time.monotonic() - seen
    assert rc != 0, out + rest
    assert ended < 20, f"the job took {ended:.1f} s to end after rank 1 died"
    assert not (tmp_path / "run.npz").exists()
    state = hf.checkpoint.load(ck)  # whole: the write is atomic and rank 0 writes alone
    assert state["loop"]["updates"] in (2, 3)
    one_rank = tmp_path / "one.h5"
    shutil.copy(ck, one_rank)

    check_ok(run([tmp_path / "run.npz", "--updates", n, "--checkpoint", ck], n=2, mpiexec=mpiexec))
    got, history, z = result(tmp_path / "run.npz")
    assert int(z["updates"]) == n
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    def timeless(rows):
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert timeless(history) == timeless(ref_history)  # every metric of every update, bit for bit

    # Another number of ranks continues the same run (the dataset's state is the whole dataset's).
    check_ok(run([tmp_path / "one.npz", "--updates", n, "--checkpoint", one_rank, "--serial"]))
    got, history, _ = result(tmp_path / "one.npz")
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert [r["backtrack"] for r in history] == [r["backtrack"] for r in ref_history]


def test_an_uncaught_exception_on_one_rank_aborts_the_job_with_its_traceback(mpiexec, tmp_path):
    proc = start([tmp_path / "out.npz", "--updates", 50, "--die-at", 2, "--die-how", "raise"], 2, mpiexec)
    seen, out = wait_for(proc, "rank 1 update 2")
    assert seen is not None, out
    rc, rest, _ = finish(proc)
    out += rest
    assert rc != 0, out
    assert time.monotonic() - seen < 20
    assert "hf.mpi: rank 1 of 2: uncaught RuntimeError; aborting the MPI job" in out, out
    assert "rank 1 fails on purpose after update 2" in out


def test_sys_exit_on_one_rank_aborts_the_job_under_the_mpi4py_runner(mpiexec, tmp_path):
    proc = start([tmp_path / "out.npz", "--updates", 50, "--die-at", 2, "--die-how", "exit"], 2, mpiexec,
                 runner=("-m", "mpi4py"))
    seen, out = wait_for(proc, "rank 1 update 2")
    assert seen is not None, out
    rc, rest, _ = finish(proc)
    assert rc != 0, out + rest
    assert time.monotonic() - seen < 20


def test_ctrl_c_aborts_every_rank_and_the_checkpoint_resumes(mpiexec, tmp_path):
    ck = tmp_path / "run.h5"
    proc = start([tmp_path / "out.npz", "--updates", 10000, "--checkpoint", ck], 2, mpiexec)
    seen, out = wait_for(proc, "rank 0 update 3")
    assert seen is not None, out
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does to mpiexec, which forwards it to the ranks
    rc, rest, seconds = finish(proc)
    assert rc != 0 and seconds < 20, out + rest
    assert "interrupted (Ctrl-C); aborting the MPI job" in rest, rest
    updates = hf.checkpoint.load(ck)["loop"]["updates"]
    assert updates >= 2
    check_ok(run([tmp_path / "out.npz", "--updates", updates + 2, "--checkpoint", ck], n=2, mpiexec=mpiexec))
    assert int(np.load(tmp_path / "out.npz")["updates"]) == updates + 2


def test_ranks_that_drift_apart_are_caught_by_the_consistency_check(mpiexec, tmp_path):
    proc = run([tmp_path / "out.npz", "--updates", 6, "--perturb-rank", 1, "--check-every", 2], n=2,
               mpiexec=mpiexec)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "the parameters after update 4 differ between ranks: rank(s) [1] hold values different" in out, out


def test_a_dataset_without_a_seed_is_drawn_the_same_way_on_every_rank(mpiexec, tmp_path):
    """shard() gives every rank rank 0's batch order; checked after every update."""
    proc = run([tmp_path / "out.npz", "--updates", 3, "--unseeded", "--check-every", 1], n=2, mpiexec=mpiexec)
    check_ok(proc)
