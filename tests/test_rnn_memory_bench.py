"""bench/rnn_memory.py: its forward pass against the experiment's graph (bench/rnn_experiment.py), its changed inputs against the tasks'
definitions, and its retention against cases whose answer is known without running it."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytensor
import pytest
from pytensor.compile.mode import Mode


@pytest.fixture(scope="module")
def bench():
    from bench import rnn_memory

    return rnn_memory


def test_hidden_states_match_the_experiment_graph(bench):
    example = bench.example
    task = example.make_task("temporal_order", 7, 20, 5, bits=2)
    weights = example.initial_weights(task.n_in, 6, task.n_out, 5)
    model = example.RNN(weights, task.output)
    # the graph's pre-activations a, compiled without C code (the python linker compiles in a moment)
    f = pytensor.function(model.inputs, model.a, mode=Mode(linker="py", optimizer="fast_compile"),
                          on_unused_input="ignore")
    a = f(*example.task_arrays(task))
    np.testing.assert_allclose(bench.hidden_states(weights, task.inputs), np.tanh(a), rtol=1e-12, atol=1e-12)


def changed_entries(x, changed):
    """``(step, sequence)`` pairs where the two input arrays differ."""
    return sorted({(int(t), int(i)) for t, i, _ in zip(*np.nonzero(x != changed))})


def test_temporal_order_changes_swap_x_and_y_in_each_window_and_nothing_else(bench):
    task = bench.example.make_task("temporal_order", 40, 50, 2, bits=3)
    x = task.inputs
    symbols = x.argmax(-1)
    X, Y = 4, 5  # ('a', 'b', 'c', 'd', 'X', 'Y', 'B', 'E')
    pert = bench.perturbations("temporal_order", task)
    assert [label for label, _ in pert] == ["symbol 1", "symbol 2", "symbol 3"]
    for (lo, hi), (_, changed) in zip(task.params["windows"], pert):
        entries = changed_entries(x, changed)
        assert sorted(i for _, i in entries) == list(range(40))  # one step of every sequence
        for t, i in entries:
            assert lo <= t < hi and symbols[t, i] in (X, Y)
            assert changed[t, i].argmax() == X + Y - symbols[t, i]
            assert changed[t, i].sum() == 1.0


def test_operand_changes_reflect_the_marked_values(bench):
    task = bench.example.make_task("addition", 30, 20, 4)
    x = task.inputs
    pert = bench.perturbations("addition", task)
    assert [label for label, _ in pert] == ["operand 1", "operand 2"]
    for k, (_, changed) in enumerate(pert):
        for i in range(30):
            marked = np.flatnonzero(x[:, i, 1] == 1)
            assert len(marked) == 2
            t = marked[k]
            assert changed[t, i, 0] == pytest.approx(1.0 - x[t, i, 0])
            rest = np.ones(x.shape[0], bool)
            rest[t] = False
            np.testing.assert_array_equal(changed[rest, i], x[rest, i])
            np.testing.assert_array_equal(changed[t, i, 1], x[t, i, 1])


def test_memorization_changes_the_pattern_to_another_symbol_of_its_alphabet(bench):
    task = bench.example.make_task("memorization", 10, 10, 3, bits=20)
    size, length = task.params["alphabet_size"], task.params["pattern_length"]
    x = task.inputs
    for (label, changed), step in zip(bench.perturbations("memorization", task), (0, length - 1)):
        assert {t for t, _ in changed_entries(x, changed)} == {step}, label
        before, after = x[step].argmax(-1), changed[step].argmax(-1)
        np.testing.assert_array_equal(after, (before + 1) % size)


def test_retention_without_recurrence_is_zero_before_the_scored_step_and_known_at_it(bench):
    example = bench.example
    # Without recurrent weights the scored step's state depends on that step's input alone.
    task = example.make_task("xor", 50, 20, 1)
    weights = example.initial_weights(task.n_in, 8, task.n_out, 1)
    weights["W_rec"][:] = 0.0
    assert [v for _, v in bench.retention(weights, task, "xor")] == [0.0, 0.0]

    # A change at the scored step itself: score step 0 of a random-permutation-like batch whose first
    # symbol is 0 or 1. Every changed state then lies |tanh(W_in[0] + b) - tanh(W_in[1] + b)| away,
    # and the pairs of sequences lie that far apart when their first symbols differ, else 0 apart:
    # the ratio is 1 / (the fraction of pairs that differ), whatever the distance.
    rng = np.random.default_rng(3)
    n, steps, symbols = 64, 5, 6
    first = rng.integers(0, 2, n)
    seq = rng.integers(2, symbols, (steps, n))
    seq[0] = first
    inputs = np.eye(symbols)[seq]
    target_mask = np.zeros((steps, n))
    target_mask[0] = 1.0
    task = SimpleNamespace(inputs=inputs, target_mask=target_mask, params={})
    weights = example.initial_weights(symbols, 8, symbols, 2)
    weights["W_rec"][:] = 0.0
    pairing = np.random.default_rng(0).permutation(n)  # the bench's pairing
    differ = (first != first[pairing]).mean()
    [(label, value)] = bench.retention(weights, task, "random_permutation")
    assert label == "first symbol"
    assert value == pytest.approx(1.0 / differ)


def test_esn_keeps_more_of_temporal_order_than_sparse(bench):
    """The finding the docs report, on a small case: dense input weights of full scale wash the first
    symbol out; the same recurrent matrix with input weights times 0.001 keeps it."""
    sparse = bench.measure("temporal_order_2bit", 30, 1, "sparse", 16, 100)
    esn = bench.measure("temporal_order_2bit", 30, 1, "esn", 16, 100)
    assert esn[0][1] > 100 * sparse[0][1]


def test_retention_does_not_depend_on_a_small_input_scale(bench):
    """With tiny input weights every hidden state is small, tanh is the identity to first order and the
    whole network is linear in the inputs' drive: changing the scale multiplies every state and every
    difference by the same factor, so the ratio retention measures stays put (to O(scale^2))."""
    small = bench.measure("addition", 30, 2, "esn", 16, 100, input_scale=1e-5)
    smaller = bench.measure("addition", 30, 2, "esn", 16, 100, input_scale=1e-6)
    for (label, a), (other, b) in zip(small, smaller):
        assert label == other and a == pytest.approx(b, rel=1e-3)
    # far from that regime the scale matters: at full scale the first operand is washed out
    full = bench.measure("addition", 30, 2, "esn", 16, 100, input_scale=1.0)
    assert full[0][1] < small[0][1] / 10
    with pytest.raises(SystemExit):
        bench.parse_args(["--input-scales", "0"])


def test_unknown_task_is_a_clear_error(bench):
    task = bench.example.make_task("addition", 4, 20, 1)
    with pytest.raises(ValueError, match="no informative inputs known for task 'bogus'"):
        bench.perturbations("bogus", task)
