"""Tests for hf.dataset: batching, shuffling, lazy HDF5 reads, resume, sequences, errors."""
import pickle
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from hf import checkpoint
from hf.dataset import (ArrayDataset, CallableDataset, Dataset, RaggedArray, SequenceDataset,
                        as_dataset, batch_size_of, split_batch)


def _data(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = np.arange(n)
    return x, y


def _pass(ds):
    return [ds.next_batch() for _ in range(ds.n_batches)]


class RecordingArray:
    """Array proxy that records the number of rows of every read."""

    def __init__(self, array, axis=0):
        self.array, self.axis, self.reads = array, axis, []

    shape = property(lambda self: self.array.shape)
    dtype = property(lambda self: self.array.dtype)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows = key[self.axis] if len(key) > self.axis else slice(None)
        if isinstance(rows, slice):
            self.reads.append(len(range(*rows.indices(self.shape[self.axis]))))
        else:
            self.reads.append(len(np.atleast_1d(rows)))
        return self.array[key]


# --------------------------------------------------------------------------- Dataset

def test_each_pass_covers_every_example_once_in_contiguous_batches():
    x, y = _data(100)
    ds = Dataset([x, y], name="train", batch_size=32, rng=1)
    assert (ds.n_examples, ds.n_batches, ds.iteration_size) == (100, 4, 4)
    assert ds.batch_axes == [0, 0]
    for _ in range(3):
        batches = list(ds.iterate())
        assert len(batches) == 4
        for bx, by in batches:
            np.testing.assert_array_equal(bx, x[by])
            assert np.all(np.diff(by) == 1)  # contiguous
            assert by[0] % 32 == 0
        assert sorted(len(b[1]) for b in batches) == [4, 32, 32, 32]
        np.testing.assert_array_equal(np.sort(np.concatenate([b[1] for b in batches])),
                                      np.arange(100))


def test_reshuffled_on_wrap_and_cursor_persists():
    x, y = _data(320)
    ds = Dataset([x, y], batch_size=32, rng=5, iteration_size=3)
    starts = [b[1][0] // 32 for _ in range(10) for b in ds.iterate()]  # 30 batches = 3 passes
    passes = [starts[i:i + 10] for i in (0, 10, 20)]
    for p in passes:
        assert sorted(p) == list(range(10))
    assert passes[0] != passes[1] and passes[1] != passes[2]
    assert ds.epoch == 2


def test_order_determined_by_seed_not_global_state():
    x, y = _data(200)
    np.random.seed(0)
    a = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=42))]
    np.random.seed(1)
    np.random.random(100)
    b = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=42))]
    c = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=np.random.default_rng(42)))]
    d = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=43))]
    assert a == b == c
    assert a != d
    state = np.random.get_state()
    Dataset([x, y], batch_size=10).next_batch()
    assert np.random.get_state()[1].tobytes() == state[1].tobytes()


def test_axis_1():
    x = np.arange(2 * 50 * 3, dtype=np.float64).reshape(2, 50, 3)
    y = np.tile(np.arange(50), (4, 1))
    ds = Dataset([x, y], batch_size=16, axis=1, rng=0)
    assert ds.n_examples == 50 and ds.batch_axes == [1, 1]
    seen = []
    for bx, by in _pass(ds):
        assert by.shape[0] == 4
        np.testing.assert_array_equal(bx, x[:, by[0]])
        seen += by[0].tolist()
    assert sorted(seen) == list(range(50))
    # a negative axis counts from the end of each array
    ds = Dataset([x.transpose(0, 2, 1), np.arange(50)], batch_size=16, axis=-1, rng=0)
    assert ds.batch_axes == [2, 0]
    bx, by = ds.next_batch()
    np.testing.assert_array_equal(bx, x[:, by].transpose(0, 2, 1))


def test_hdf5_input_matches_numpy_and_is_read_in_batches(tmp_path):
    x, y = _data(1000)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["x"], f["y"] = x, y
    with h5py.File(tmp_path / "d.h5", "r") as f:
        px, py = RecordingArray(f["x"]), RecordingArray(f["y"])
        lazy = Dataset([px, py], batch_size=64, rng=3)
        eager = Dataset([x, y], batch_size=64, rng=3)
        for _ in range(2):
            for (a, b), (c, d) in zip(lazy.iterate(), eager.iterate()):
                np.testing.assert_array_equal(a, c)
                np.testing.assert_array_equal(b, d)
                assert isinstance(a, np.ndarray)
        np.testing.assert_array_equal(lazy.take(10)[0], x[:10])
        assert px.reads and max(px.reads + py.reads) <= 64
        # a plain h5py.Dataset works too
        plain = Dataset([f["x"], f["y"]], batch_size=64, rng=3)
        np.testing.assert_array_equal(plain.next_batch()[0],
                                      Dataset([x, y], batch_size=64, rng=3).next_batch()[0])


def test_callable_input():
    rng = np.random.default_rng(0)
    calls = []

    def batch():
        calls.append(1)
        return [rng.standard_normal((8, 2)), np.zeros(8, dtype=np.int64)]

    ds = Dataset(batch, name="gen")
    # downhill's default pass: 100 calls for a callable without a length.
    assert ds.n_examples is None and ds.n_batches is None and ds.iteration_size == 100
    assert ds.batch_axes is None
    assert len(list(ds.iterate())) == 100 and len(calls) == 100
    assert ds.batch_axes == [0, 0]

    class Sized:  # a callable with a length: that many calls per pass
        def __call__(self):
            return batch()

        def __len__(self):
            return 3

    assert Dataset(Sized()).iteration_size == 3
    ds = Dataset(batch, iteration_size=3)
    batches = list(ds.iterate())
    assert len(batches) == 3 and batches[0][0].shape == (8, 2)
    assert [a.shape for a in ds.take(5)] == [(5, 2), (5,)]
    ds.check_inputs([_var(2, "float64", "x"), _var(1, "int64", "y")])
    ds.check_inputs([_var(2, "float64", "x"), _var(1, "int32", "y")])  # checked on next batch
    with pytest.raises(TypeError, match=r"input 1 \('y'\) expects dtype int32, got .*int64"):
        ds.next_batch()
    with pytest.raises(TypeError, match="list or tuple of arrays, got ndarray"):
        Dataset(lambda: np.zeros(3)).next_batch()


def test_take_is_natural_order_and_does_not_move_cursor():
    x, y = _data(100)
    ds = Dataset([x, y], batch_size=32, rng=0)
    ref = Dataset([x, y], batch_size=32, rng=0)
    np.testing.assert_array_equal(ds.take(40)[1], np.arange(40))
    np.testing.assert_array_equal(ds.take()[0], x)
    for (a, _), (b, _) in zip(_pass(ds), _pass(ref)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="n=101"):
        ds.take(101)


@pytest.mark.parametrize("through_file", [False, True])
def test_state_dict_exact_resume(tmp_path, through_file):
    x, y = _data(100)
    ds = Dataset([x, y], name="train", batch_size=16, rng=7, iteration_size=5)
    for _ in range(2):  # 10 batches: mid second pass
        list(ds.iterate())
    state = ds.state_dict()
    if through_file:
        checkpoint.save(tmp_path / "s.h5", {"datasets": {"train": state}})
        state = checkpoint.load(tmp_path / "s.h5")["datasets"]["train"]
    expected = [b for _ in range(4) for b in ds.iterate()]
    resumed = Dataset([x, y], name="train", batch_size=16, rng=123, iteration_size=5)
    resumed.load_state_dict(state)
    got = [b for _ in range(4) for b in resumed.iterate()]
    assert len(got) == len(expected) == 20
    for a, b in zip(expected, got):
        for u, v in zip(a, b):
            assert u.tobytes() == v.tobytes()
    assert resumed.epoch == ds.epoch


def test_load_state_dict_rejects_other_data():
    x, y = _data(100)
    state = Dataset([x, y], batch_size=16, rng=0).state_dict()
    with pytest.raises(ValueError, match="n_examples=100.*n_examples=99"):
        Dataset([x[:99], y[:99]], batch_size=16).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size=16.*batch_size=8"):
        Dataset([x, y], batch_size=8).load_state_dict(state)
    bad = dict(state, cursor=99)
    with pytest.raises(ValueError, match="cursor=99"):
        Dataset([x, y], batch_size=16).load_state_dict(bad)


def test_constructor_errors():
    x, y = _data(100)
    with pytest.raises(ValueError, match=r"input 0 has 100 examples, input 1 has 99"):
        Dataset([x, y[:99]], name="d")
    with pytest.raises(ValueError, match=r"'d' is empty.*0 examples"):
        Dataset([x[:0]], name="d")
    with pytest.raises(ValueError, match="empty list"):
        Dataset([])
    with pytest.raises(ValueError, match=r"Dataset 'd': batch_size must be a positive integer, got 0"):
        SequenceDataset([RaggedArray.from_list([np.zeros((2, 1))])], name="d", batch_size=0)
    with pytest.raises(TypeError,
                       match=r"batch_size must be a positive integer, got 2\.5 \(float\)"):
        Dataset([x], batch_size=2.5)
    with pytest.raises(TypeError, match=r"batch_size.*True"):
        Dataset([x], batch_size=True)
    with pytest.raises(ValueError, match=r"iteration_size must be a positive integer, got -1"):
        Dataset([x], iteration_size=-1)
    with pytest.raises(TypeError, match=r"iteration_size.*'3'"):
        Dataset([x], iteration_size="3")
    with pytest.raises(ValueError, match=r"axis 1 is out of range for input 1 with 1 dim"):
        Dataset([x, y], axis=1)
    with pytest.raises(ValueError, match=r"axis -3 is out of range for input 0 with 2 dim"):
        Dataset([x], axis=-3)
    with pytest.raises(TypeError, match="axis must be an int"):
        Dataset([x], axis=0.0)
    with pytest.raises(TypeError, match=r"input 1 has type list"):
        Dataset([x, [1, 2, 3]])
    with pytest.raises(TypeError, match=r"an array, a list or tuple of arrays or a callable, got int"):
        Dataset(3)
    with pytest.raises(TypeError, match=r"Dataset 'd': rng must be None, an int seed"):
        Dataset([x], name="d", rng="0")
    with pytest.raises(ValueError, match="rng seed must be non-negative, got -1"):
        Dataset([x], rng=-1)


def test_nan_batch_reported_with_batch_index():
    x, y = _data(128)
    x[100, 1] = np.nan
    ds = Dataset([y, x], name="train", batch_size=32, rng=0)
    with pytest.raises(ValueError, match=r"'train': batch 3 \(examples 96:128\) of input 1 "
                                         r"contains NaN or Inf \(first at example 100\)"):
        for _ in range(ds.n_batches):
            ds.next_batch()
    x[100, 1] = np.inf
    with pytest.raises(ValueError, match=r"examples 0:128"):
        Dataset([x], name="train").take()
    with pytest.raises(ValueError, match=r"'gen': batch 0 .* input 0 contains NaN"):
        Dataset(lambda: [np.array([np.nan])], name="gen").next_batch()


def _var(ndim, dtype, name):
    return SimpleNamespace(ndim=ndim, dtype=dtype, name=name)


def test_check_inputs():
    x = np.zeros((10, 3), dtype=np.float32)
    y = np.zeros(10, dtype=np.int64)
    ds = Dataset([x, y], name="train")
    ds.check_inputs([_var(2, "float32", "x"), _var(1, "int64", "y")])
    with pytest.raises(ValueError, match=r"gives 2 arrays per batch but the graph has 1 inputs"):
        ds.check_inputs([_var(2, "float32", "x")])
    with pytest.raises(ValueError, match=r"input 1 \('y'\) expects ndim 2, got data with ndim 1"):
        ds.check_inputs([_var(2, "float32", "x"), _var(2, "int64", "y")])
    with pytest.raises(TypeError, match=r"input 0 \('x'\) expects dtype float64, got data of "
                                        r"dtype float32"):
        ds.check_inputs([_var(2, "float64", "x"), _var(1, "int64", "y")])


def test_as_dataset():
    x, y = _data(10)
    ds = Dataset([x])
    assert as_dataset(ds, "train") is ds
    assert as_dataset(None, "valid") is None
    made = as_dataset([x, y], "train", batch_size=4, rng=0)
    assert isinstance(made, Dataset) and made.name == "train" and made.batch_size == 4
    assert as_dataset(lambda: [x], "gen").n_examples is None
    seqs = as_dataset((RaggedArray.from_list([np.ones((2, 1)), np.ones((3, 1))]),), "s")
    assert isinstance(seqs, SequenceDataset)
    with pytest.raises(TypeError, match="bogus"):
        as_dataset([x], "train", bogus=1)


def test_dataset_builds_array_or_callable_dataset_and_keeps_its_public_kind():
    x, y = _data(10)
    arrays = Dataset([x, y], name="a", batch_size=4, rng=0)
    function = Dataset(lambda: [x], name="f")
    assert type(arrays) is ArrayDataset and type(function) is CallableDataset
    assert all(isinstance(d, Dataset) for d in (arrays, function, ArrayDataset([x])))
    assert repr(arrays) == "Dataset(name='a', n_examples=10, batch_size=4, n_batches=3)"
    assert repr(function).startswith("Dataset(name='f', callable=<function")
    # checkpoints keep the kind 'Dataset' and the keys they always had
    keys = {"kind", "batch_size", "n_examples", "cursor", "epoch", "batches_drawn", "order",
            "rng"}
    for d in (arrays, function):
        state = d.state_dict()
        assert state["kind"] == "Dataset" and set(state) == keys
    assert function.state_dict()["order"] is None
    with pytest.raises(ValueError, match="state is from a 'SequenceDataset', not a 'Dataset'"):
        arrays.load_state_dict(dict(arrays.state_dict(), kind="SequenceDataset"))
    # copies and pickles rebuild the same subclass
    clone = pickle.loads(pickle.dumps(arrays))
    assert type(clone) is ArrayDataset
    np.testing.assert_array_equal(clone.next_batch()[1], arrays.next_batch()[1])


def test_rng_accepts_a_legacy_random_state():
    x, y = _data(100)
    a = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=np.random.RandomState(4)))]
    b = [b[1][0] for b in _pass(Dataset([x, y], batch_size=10, rng=np.random.RandomState(4)))]
    assert a == b and sorted(a) == list(range(0, 100, 10))


# --------------------------------------------------------------------------- pandas, sparse

def test_pandas_inputs_are_read_through_to_numpy():
    pd = pytest.importorskip("pandas")
    x, y = _data(50)
    frame = pd.DataFrame(x, columns=["a", "b", "c"], index=np.arange(50)[::-1])
    series = pd.Series(y, index=np.arange(100, 150))
    ds = Dataset([frame, series], batch_size=8, rng=2)
    ref = Dataset([x, y], batch_size=8, rng=2)
    for (a, b), (c, d) in zip(ds.iterate(), ref.iterate()):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    ds.check_inputs([_var(2, "float64", "x"), _var(1, "int64", "y")])
    np.testing.assert_array_equal(Dataset(lambda: [frame]).take(3)[0], x[:3])
    alone = Dataset(frame, batch_size=50)  # one DataFrame alone: a dataset of one input
    np.testing.assert_array_equal(alone.take()[0], x)
    xs, _, z, _ = _sequences(n=10)
    seq = SequenceDataset([xs, pd.DataFrame(z)], batch_size=4, rng=0)
    np.testing.assert_array_equal(seq.take(3)[1], z[:3])


@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_matrix", "csr_array", "csc_array"])
def test_sparse_inputs_give_sparse_batches_of_their_format(fmt):
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((60, 7)) * (rng.random((60, 7)) < 0.3)
    x = getattr(sparse, fmt)(dense)
    y = np.arange(60)
    ds = Dataset([x, y], batch_size=16, rng=1)
    seen = []
    for bx, by in ds.iterate():
        assert type(bx) is type(x) and bx.format == x.format
        np.testing.assert_array_equal(bx.toarray(), dense[by])
        seen += by.tolist()
    assert sorted(seen) == list(range(60))
    assert type(ds.take(5)[0]) is type(x)
    ds.check_inputs([_var(2, "float64", "x"), _var(1, "int64", "y")])
    chunks = list(split_batch(ds.take(), ds.batch_axes, 25))
    assert [n for _, n in chunks] == [25, 25, 10] and type(chunks[0][0][0]) is type(x)


def test_sparse_columns_nan_and_formats():
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.zeros((5, 40))
    dense[2, 33] = np.nan
    x = sparse.csc_matrix(dense)
    with pytest.raises(ValueError, match=r"examples 0:40\) of input 0 contains NaN or Inf "
                                         r"\(first at example 33\)"):
        Dataset([x], axis=1, batch_size=40, rng=0).next_batch()
    ok = sparse.csc_matrix(np.eye(5, 40))
    bx, = Dataset([ok], axis=1, batch_size=8, rng=0).take(8)
    assert bx.format == "csc" and bx.shape == (5, 8)
    np.testing.assert_array_equal(bx.toarray(), np.eye(5, 40)[:, :8])
    with pytest.raises(TypeError, match=r"input 0 is a scipy.sparse 'coo' matrix.*tocsr"):
        Dataset([sparse.coo_matrix(np.eye(4))])
    gen = Dataset(lambda: [sparse.csr_matrix(np.eye(3)), np.zeros(3)], name="gen")
    assert gen.next_batch()[0].format == "csr" and gen.batch_axes == [0, 0]
    xs, _, _, _ = _sequences(n=10)
    static = sparse.csr_matrix(np.arange(30.0).reshape(10, 3))
    seq = SequenceDataset([xs, static], batch_size=4, rng=0)
    batch = seq.take(4)
    assert batch[1].format == "csr"
    np.testing.assert_array_equal(batch[1].toarray(), np.arange(12.0).reshape(4, 3))


# --------------------------------------------------------------------------- sequences

def _sequences(n=37, seed=0, features=2):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 30, size=n)
    xs = [rng.standard_normal((t, features)) for t in lengths]
    ys = [rng.integers(0, 5, size=t) for t in lengths]
    z = rng.standard_normal((n, 4))
    return xs, ys, z, lengths


def _reference_batch(xs, ys, z, indices):
    """Hand-built padded time-major batch."""
    steps = max(len(xs[i]) for i in indices)
    px = np.zeros((steps, len(indices), xs[0].shape[1]))
    py = np.zeros((steps, len(indices)), dtype=ys[0].dtype)
    mask = np.zeros((steps, len(indices)))
    for j, i in enumerate(indices):
        for t in range(len(xs[i])):
            px[t, j] = xs[i][t]
            py[t, j] = ys[i][t]
            mask[t, j] = 1.0
    return [px, py, z[list(indices)], mask]


def _seq_ids(batch, z):
    """Recover sequence indices from the static input (rows of z are distinct)."""
    return [int(np.flatnonzero((z == row).all(axis=1))[0]) for row in batch[2]]


def test_ragged_array_basics():
    xs, _, _, lengths = _sequences()
    r = RaggedArray.from_list(xs)
    assert len(r) == len(xs) and r.feature_shape == (2,) and r.dtype == np.float64
    np.testing.assert_array_equal(r.lengths, lengths)
    for a, b in zip(r, xs):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(r[-1], xs[-1])
    with pytest.raises(IndexError):
        r[len(xs)]
    with pytest.raises(ValueError, match="lengths sum to 5 but data has 4 rows"):
        RaggedArray(np.zeros((4, 2)), [2, 3])
    with pytest.raises(ValueError, match="feature shape"):
        RaggedArray.from_list([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="empty list"):
        RaggedArray.from_list([])


def test_sequence_batches_match_reference():
    xs, ys, z, lengths = _sequences()
    ds = SequenceDataset([xs, RaggedArray.from_list(ys), z], name="seq", batch_size=8, rng=0)
    assert ds.batch_axes == [1, 1, 0, 1] and ds.mask_index == 3
    assert ds.n_examples == 37 and ds.n_batches == 5
    assert ds.mask_dtype == np.float64
    for _ in range(2):
        seen = []
        for batch in ds.iterate():
            ids = _seq_ids(batch, z)
            seen += ids
            ref = _reference_batch(xs, ys, z, ids)
            assert batch[0].shape == (max(lengths[ids]), len(ids), 2)  # time-major
            for got, want in zip(batch, ref):
                np.testing.assert_array_equal(got, want)
            assert batch[1].dtype == ys[0].dtype and batch[3].dtype == np.float64
        assert sorted(seen) == list(range(37))
    take = ds.take(5)
    for got, want in zip(take, _reference_batch(xs, ys, z, range(5))):
        np.testing.assert_array_equal(got, want)


def test_mask_dtype():
    xs = [np.ones((2, 1), dtype=np.float32), np.ones((3, 1), dtype=np.float32)]
    assert SequenceDataset([xs]).next_batch()[-1].dtype == np.float32
    ints = [np.ones(2, dtype=np.int32), np.ones(3, dtype=np.int32)]
    assert SequenceDataset([ints]).mask_dtype == np.float64
    assert SequenceDataset([ints], mask_dtype="float32").next_batch()[-1].dtype == np.float32


def test_bucketing_reduces_padding_and_covers_all():
    xs, ys, z, lengths = _sequences(n=200, seed=1)

    def padding(ds):
        total, seen = 0, []
        for batch in ds.iterate():
            total += batch[-1].size - batch[-1].sum()
            seen += _seq_ids(batch, z)
        assert sorted(seen) == list(range(200))
        return total

    plain = SequenceDataset([xs, ys, z], batch_size=16, rng=0)
    bucketed = SequenceDataset([xs, ys, z], batch_size=16, rng=0, bucket=True)
    assert padding(bucketed) < 0.25 * padding(plain)
    first = [tuple(b[2][0]) for b in bucketed.iterate()]
    second = [tuple(b[2][0]) for b in bucketed.iterate()]
    assert sorted(first) == sorted(second) and first != second  # same groups, new order


@pytest.mark.parametrize("bucket", [False, True])
def test_sequence_state_dict_exact_resume(tmp_path, bucket):
    xs, ys, z, _ = _sequences(n=50)
    ds = SequenceDataset([xs, ys, z], batch_size=8, rng=3, bucket=bucket, iteration_size=4)
    list(ds.iterate())
    list(ds.iterate())  # 8 batches: into the second pass of 7
    checkpoint.save(tmp_path / "s.h5", {"seq": ds.state_dict()})
    expected = [b for _ in range(5) for b in ds.iterate()]
    resumed = SequenceDataset([xs, ys, z], batch_size=8, rng=99, bucket=bucket, iteration_size=4)
    resumed.load_state_dict(checkpoint.load(tmp_path / "s.h5")["seq"])
    got = [b for _ in range(5) for b in resumed.iterate()]
    for a, b in zip(expected, got):
        for u, v in zip(a, b):
            assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
    with pytest.raises(ValueError, match="bucket"):
        SequenceDataset([xs, ys, z], batch_size=8, bucket=not bucket).load_state_dict(
            ds.state_dict())


def test_ragged_hdf5_round_trip_is_lazy(tmp_path):
    xs, ys, z, lengths = _sequences(n=30)
    with h5py.File(tmp_path / "seq.h5", "w") as f:
        RaggedArray.from_list(xs).to_hdf5(f, "inputs")
        f["targets"] = z
    with h5py.File(tmp_path / "seq.h5", "r") as f:
        assert set(f["inputs"].keys()) == {"data", "lengths"}
        r = RaggedArray.from_hdf5(f, "inputs")
        assert isinstance(r.data, h5py.Dataset)
        np.testing.assert_array_equal(r.lengths, lengths)
        for a, b in zip(r, xs):
            np.testing.assert_array_equal(a, b)
        proxy = RecordingArray(r.data)
        lazy = SequenceDataset([RaggedArray(proxy, r.lengths), f["targets"]], batch_size=4, rng=0)
        eager = SequenceDataset([xs, z], batch_size=4, rng=0)
        for a, b in zip(lazy.iterate(), eager.iterate()):
            for u, v in zip(a, b):
                np.testing.assert_array_equal(u, v)
        assert max(proxy.reads) == max(lengths)  # one sequence per read
        # copying an HDF5-backed RaggedArray to another file works too
        with h5py.File(tmp_path / "copy.h5", "w") as g:
            r.to_hdf5(g, "a/b")
            np.testing.assert_array_equal(RaggedArray.from_hdf5(g, "a/b")[3], xs[3])


def test_sequence_errors():
    xs, ys, z, _ = _sequences(n=10)
    with pytest.raises(ValueError, match="input 0 has 10, input 1 has 9"):
        SequenceDataset([xs, z[:9]])
    bad = [y.copy() for y in ys]
    bad[4] = bad[4][:-1] if len(bad[4]) > 1 else np.zeros(2, dtype=bad[4].dtype)
    with pytest.raises(ValueError, match=r"sequence 4 has length \d+ in input 0 and \d+ in "
                                         r"input 1"):
        SequenceDataset([xs, bad])
    with pytest.raises(ValueError, match=r"input 1 was given as a list.*numpy array"):
        SequenceDataset([xs, list(z)])
    with pytest.raises(ValueError, match="no ragged input"):
        SequenceDataset([z])
    with pytest.raises(ValueError, match="empty list"):
        SequenceDataset([])
    with pytest.raises(ValueError, match="sequence 1 has length 0"):
        SequenceDataset([[np.ones(2), np.ones(0)]])
    with pytest.raises(TypeError, match="input 1 is a list whose items are not all arrays"):
        SequenceDataset([xs, list(range(10))])
    with pytest.raises(TypeError,
                       match=r"SequenceDataset 'dataset\d+': bucket must be True or False, got 'yes'"):
        SequenceDataset([xs], bucket="yes")
    with pytest.raises(ValueError, match="batch_size"):
        SequenceDataset([xs], batch_size=-2)
    nan = [x.copy() for x in xs]
    nan[6][0, 1] = np.nan
    ds = SequenceDataset([nan, z], name="seq", batch_size=10, rng=0)
    with pytest.raises(ValueError, match=r"'seq': batch 0 of pass 0 of input 0 contains NaN or "
                                         r"Inf in sequence 6"):
        ds.next_batch()


def test_sequence_check_inputs():
    xs, ys, z, _ = _sequences(n=10)
    ds = SequenceDataset([xs, ys, z], name="seq")
    ds.check_inputs([_var(3, "float64", "x"), _var(2, "int64", "y"), _var(2, "float64", "z"),
                     _var(2, "float64", "mask")])
    with pytest.raises(ValueError, match="gives 4 arrays per batch but the graph has 3"):
        ds.check_inputs([_var(3, "float64", "x"), _var(2, "int64", "y"),
                         _var(2, "float64", "z")])
    with pytest.raises(TypeError, match=r"input 3 \('mask'\) expects dtype float32"):
        ds.check_inputs([_var(3, "float64", "x"), _var(2, "int64", "y"), _var(2, "float64", "z"),
                         _var(2, "float32", "mask")])


# --------------------------------------------------------------------------- split_batch

def test_split_batch_reassembles():
    x = np.arange(2 * 23 * 3.0).reshape(2, 23, 3)
    y = np.arange(23)
    batch = [x, y]
    assert batch_size_of(batch, [1, 0]) == 23
    chunks = list(split_batch(batch, [1, 0], 5))
    assert [n for _, n in chunks] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([c[0] for c, _ in chunks], axis=1), x)
    np.testing.assert_array_equal(np.concatenate([c[1] for c, _ in chunks]), y)
    whole = list(split_batch(batch, [1, 0], None))
    assert len(whole) == 1 and whole[0][1] == 23
    assert [n for _, n in split_batch([y], 0, 100)] == [23]
    with pytest.raises(ValueError, match="array 0 has 23 examples.*array 1 has 2"):
        batch_size_of([y, x], 0)
    with pytest.raises(ValueError,
                       match="split_batch: chunk_size must be a positive integer, got 0"):
        next(split_batch(batch, [1, 0], 0))


def test_split_sequence_batch_trims_each_chunk():
    xs, ys, z, lengths = _sequences(n=40, seed=2)
    ds = SequenceDataset([xs, ys, z], batch_size=40, bucket=True, rng=0)
    batch = ds.take()
    mask = batch[ds.mask_index]
    total = 0
    for chunk, n in split_batch(batch, ds.batch_axes, 7, mask_index=ds.mask_index):
        cmask = chunk[ds.mask_index]
        steps = int(cmask.sum(axis=0).max())
        assert cmask.shape == (steps, n)  # trimmed to the chunk's longest sequence
        assert chunk[0].shape == (steps, n, 2) and chunk[1].shape == (steps, n)
        assert chunk[2].shape == (n, 4)
        sl = slice(total, total + n)
        np.testing.assert_array_equal(chunk[0], batch[0][:steps, sl])
        np.testing.assert_array_equal(chunk[2], batch[2][sl])
        assert not batch[0][steps:, sl].any() and not mask[steps:, sl].any()  # only padding cut
        total += n
    assert total == batch_size_of(batch, ds.batch_axes) == 40
    # sorted by length (bucket=True): later chunks are longer, the first ones are trimmed
    steps = [c[ds.mask_index].shape[0] for c, _ in split_batch(ds.next_batch(), ds.batch_axes, 7,
                                                              mask_index=ds.mask_index)]
    assert min(steps) < mask.shape[0]
    with pytest.raises(ValueError, match="mask .* must be time-major"):
        next(split_batch(batch, ds.batch_axes, 7, mask_index=2))


# --------------------------------------------------------------------------- the package's seams

def test_subclasses_register_with_the_base_and_the_base_imports_none_of_them():
    import inspect

    import hf.data._base as base

    assert "import" not in inspect.getsource(Dataset.__new__)
    assert [c.__name__ for c in Dataset._builders] == ["ArrayDataset", "CallableDataset"]
    assert not any(name in inspect.getsource(base) for name in ("_array_dataset", "_callable_dataset"))

    class Mine(ArrayDataset):  # a subclass that defines no _builds_from is not a builder
        pass

    assert Mine not in Dataset._builders and type(Dataset([np.zeros((3, 1))])) is ArrayDataset


def test_read_gives_the_batch_at_a_position_and_advance_moves_the_cursor():
    x, y = _data(10)
    ds, twin = (Dataset([x, y], batch_size=4, rng=3) for _ in range(2))
    for _ in range(2 * ds.n_batches + 1):  # across passes: the order is reshuffled on each wrap
        position = ds.advance()
        rows = ds.examples(position)
        got, want = ds.read(position), twin.next_batch()
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[1], y[rows.start:rows.stop])
        part = ds.read(position, part=slice(1, None, 2))  # a strided share of the batch
        np.testing.assert_array_equal(part[0], x[rows.start + 1:rows.stop:2])
    assert ds.state_dict()["cursor"] == twin.state_dict()["cursor"]
    with pytest.raises(ValueError, match=r"batch position 3 is not in range\(3\)"):
        ds.read(3)
    with pytest.raises(ValueError, match="part must be a slice with a positive step"):
        ds.read(0, part=slice(None, None, -1))


def test_read_of_a_sequence_dataset_pads_a_part_to_its_own_longest():
    seqs = [np.ones((t, 1)) for t in (1, 5, 2, 3)]
    ds = SequenceDataset([seqs], batch_size=4, rng=0)
    position = ds.advance()
    order = ds.examples(position)
    part = ds.read(position, part=slice(0, None, 2))
    lengths = [len(seqs[i]) for i in order[0::2]]
    assert part[0].shape == (max(lengths), 2, 1) and part[-1].sum() == sum(lengths)


def test_draw_and_batches_give_hf_batches_with_the_dataset_axes_mask_and_name():
    import hf

    x, y = _data(10)
    ds, twin = Dataset([x, y], name="train", batch_size=4, rng=0), Dataset([x, y], batch_size=4, rng=0)
    batch = ds.draw()
    assert isinstance(batch, hf.Batch) and batch.axes == (0, 0) and batch.source == "dataset 'train'"
    np.testing.assert_array_equal(batch.arrays[0], twin.next_batch()[0])
    assert [b.size for b in ds.batches()] == [len(b[0]) for b in twin.iterate()]
    seq = SequenceDataset([[np.ones((2, 1)), np.ones((3, 1))]], batch_size=2, rng=0).draw()
    assert seq.mask_index == 1 and seq.axes == (1, 1)


def test_as_dataset_is_the_one_rule_of_both_optimizers_and_names_the_argument():
    from hf.data import BatchList

    x, y = _data(10)
    inputs = [SimpleNamespace(name="x", ndim=2, dtype=x.dtype), SimpleNamespace(name="y", ndim=1, dtype=y.dtype)]
    downhill = as_dataset([x, y], "train", inputs=inputs)  # a list: mini-batches of 32 (downhill)
    full = as_dataset([x, y], "train", inputs=inputs, full_batch=True)  # HF: one full batch
    assert (downhill.batch_size, full.batch_size, full.n_batches) == (32, 10, 1)
    batches = as_dataset([[x, y], [x[:3], y[:3]]], "train", inputs=inputs, batch_lists=True)
    assert isinstance(batches, BatchList) and [b.size for b in batches.batches()] == [10, 3]
    assert as_dataset(batches, "train", batch_lists=True) is batches
    assert isinstance(as_dataset(x, "valid"), Dataset)  # one array: a one-input dataset
    with pytest.raises(TypeError, match=r"HFOptimizer: train must be a list of arrays .* got a single array"):
        as_dataset(x, "train", full_batch=True, owner="HFOptimizer")
    with pytest.raises(TypeError, match=r"cg must be an hf.Dataset, a list of arrays .* got dict"):
        as_dataset({"x": x}, "cg", full_batch=True)
    with pytest.raises(ValueError, match="train must hold one array per graph input, got an empty list"):
        as_dataset([], "train", full_batch=True)
    with pytest.raises(ValueError, match=r"SGD: valid is a list of arrays but the graph has no inputs; give valid=None"):
        as_dataset([x, y], "valid", inputs=[], owner="SGD")
    with pytest.raises(ValueError, match=r"train is None but the graph has inputs \('x', 'y'\); give train data"):
        as_dataset(None, "train", inputs=inputs, required=True)
    assert as_dataset(None, "valid", inputs=inputs) is None
    with pytest.raises(ValueError, match=r"batch 1 holds 1 arrays, the graph has 2 inputs"):
        as_dataset([[x, y], [x]], "train", inputs=inputs, batch_lists=True)
