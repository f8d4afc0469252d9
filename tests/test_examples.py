"""The RNN experiment (``bench/rnn_experiment.py``) and the short example (``examples/rnn.py``), end to end
with tiny settings, checked against a numpy RNN.

Every held-out loss and success rate the experiment reports is recomputed with a
plain numpy forward pass of the tanh RNN its docstring defines, at the weights
the number was measured at, on the held-out sequences it returns, with the
success criterion of [MS11] written out here.
"""

from __future__ import annotations

import importlib.util
import sys
import math
import pathlib

import numpy as np
import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    """Import ``examples/<name>.py`` as a module (the examples folder is not a package), with
    ``examples/`` on ``sys.path`` as when it runs as a script (its ``_plot`` helper)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_experiment():
    """``bench/rnn_experiment.py``, imported as the package module the benchmarks import."""
    from bench import rnn_experiment

    return rnn_experiment


# --------------------------------------------------------------------------- bench/rnn_experiment.py

RNN_TINY = [
    "--hidden", "8", "--budget", "1.5", "--train-size", "300", "--valid-size", "100",
    "--hf-batch", "100", "--cg-batch", "50", "--max-cg", "10", "--adam-batch", "50",
    "--eval-every", "0", "--quiet",
]


# --------------------------------------------------------------------------- numpy reference


def numpy_rnn(weights, task):
    """Outputs ``s`` (T, n, n_out) of ``h_t = tanh(x_t W_in + h_{t-1} W_rec + b)``, ``s_t = h_t W_out + c``."""
    x = np.asarray(task.inputs, dtype=np.float64)
    h = np.zeros((x.shape[1], weights["b"].shape[0]))
    s = np.empty((x.shape[0], x.shape[1], weights["c"].shape[0]))
    for t in range(x.shape[0]):
        h = np.tanh(x[t] @ weights["W_in"] + h @ weights["W_rec"] + weights["b"])
        s[t] = h @ weights["W_out"] + weights["c"]
    return s


def numpy_loss_success(weights, task):
    """Held-out ``(loss, success)``: the loss summed over the scored steps, averaged over sequences.

    Addition: ``0.5 (s - y)^2`` at each sequence's last step, solved when ``|s - y| <= 0.04``.
    Memorization: softmax cross-entropy on the recall steps, solved when every recalled
    symbol is the argmax.
    """
    s = numpy_rnn(weights, task)
    n = task.n_sequences
    if task.name == "addition":
        end = s[task.lengths - 1, np.arange(n)]
        loss = 0.5 * np.sum((end - task.targets) ** 2) / n
        success = np.mean(np.all(np.abs(end - task.targets) <= 0.04, axis=1))
    elif task.name == "xor":
        # Logistic output with binary cross-entropy at the last step; solved when p is on the target's side of 0.5.
        end = s[task.lengths - 1, np.arange(n)]
        p = 1.0 / (1.0 + np.exp(-end))
        loss = -np.sum(task.targets * np.log(p) + (1 - task.targets) * np.log(1 - p)) / n
        success = np.mean(np.all((p > 0.5) == (task.targets > 0.5), axis=1))
    else:
        assert task.name == "memorization" and task.per_step
        log_p = s - s.max(axis=-1, keepdims=True)
        log_p -= np.log(np.sum(np.exp(log_p), axis=-1, keepdims=True))
        steps, seqs = np.nonzero(task.target_mask)
        loss = -np.sum(log_p[steps, seqs, task.targets[steps, seqs]]) / n
        right = (np.argmax(s, axis=-1) == task.targets) | (task.score_mask == 0)
        success = np.mean(np.all(right, axis=0))
    return float(loss), float(success)


def _check_against_numpy(result, runs):
    """Each run's first and last held-out (loss, success) equal the numpy RNN's at its weights."""
    valid = result["valid"]
    start = numpy_loss_success(result["weights"], valid)
    for run in runs:
        curve = run["curve"]
        assert curve["loss"][0] == pytest.approx(start[0], rel=1e-10), run["label"]
        assert curve["success"][0] == start[1], run["label"]
        loss, success = numpy_loss_success(run["weights"], valid)
        assert run["loss"] == pytest.approx(loss, rel=1e-10), run["label"]
        assert run["success"] == success, run["label"]
    return start


def _check_initial_weights(weights, n_in, hidden, n_out):
    """The initialization of the docstring (either kind): biases 0, ``W_rec`` at spectral radius 1.1."""
    shapes = {"W_in": (n_in, hidden), "W_rec": (hidden, hidden), "b": (hidden,), "W_out": (hidden, n_out),
              "c": (n_out,)}
    assert {k: np.shape(v) for k, v in weights.items()} == shapes
    assert not np.any(weights["b"]) and not np.any(weights["c"])
    assert np.max(np.abs(np.linalg.eigvals(weights["W_rec"]))) == pytest.approx(1.1, rel=1e-10)


def _check_run(run, *, label):
    assert run["label"].startswith(label)
    assert run["updates"] >= 1
    curve = run["curve"]
    assert len(curve["seconds"]) == len(curve["loss"]) == len(curve["success"]) >= 2
    assert curve["seconds"][0] == 0.0 and curve["seconds"] == sorted(curve["seconds"])
    assert all(math.isfinite(x) for x in curve["loss"])
    assert all(0.0 <= s <= 1.0 for s in curve["success"])
    assert run["loss"] == curve["loss"][-1] and run["success"] == curve["success"][-1]
    assert run["best_success"] == max(curve["success"])
    assert run["compile_seconds"] >= 0
    assert run["solved_at"] is None or run["solved_at"] <= run["seconds"]


def _run_rnn(tmp_path, *argv):
    """``bench/rnn_experiment.py`` with tiny settings; checks that it wrote a PNG and returns its result."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "rnn.png"
    result = load_experiment().main([*argv, "--out", str(png), *RNN_TINY])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["png"] == str(png)
    return result


def test_rnn_experiment_addition(tmp_path):
    result = _run_rnn(tmp_path, "--task", "addition", "--T", "20", "--adam-lrs", "0.01", "0.003")

    assert (result["task"], result["T"], result["hidden"], result["target"]) == ("addition", 20, 8, 0.99)
    valid = result["valid"]
    assert (valid.name, valid.T, valid.n_sequences) == ("addition", 20, 100)
    _check_initial_weights(result["weights"], n_in=2, hidden=8, n_out=1)
    # the default initialization is ESN-style: dense input weights of scale 0.001
    assert np.all(result["weights"]["W_in"] != 0) and 1e-5 < np.std(result["weights"]["W_in"]) < 1e-2
    _check_run(result["hf"], label="HF (mu=0.03)")
    # HF's first update already fits the mean of the targets: the held-out loss drops.
    assert result["hf"]["loss"] < result["hf"]["curve"]["loss"][0]
    assert [r["label"] for r in result["adam"]] == ["Adam (lr=0.01)", "Adam (lr=0.003)"]
    for run in result["adam"]:
        _check_run(run, label="Adam")
    assert result["adam_best"] in result["adam"]
    # Every optimizer starts from the same weights, so from the same held-out loss,
    # that of the numpy RNN at the initial weights; the final losses and success
    # rates are the numpy RNN's at each run's final weights.
    _check_against_numpy(result, [result["hf"], *result["adam"]])


def test_rnn_experiment_memorization_without_structural_damping_from_the_sparse_initialization(tmp_path):
    result = _run_rnn(tmp_path, "--task", "memorization", "--T", "5", "--mu", "0", "--no-adam", "--init", "sparse")

    valid = result["valid"]
    assert (valid.name, valid.T, valid.n_sequences, valid.n_out) == ("memorization", 5, 100, 3)
    _check_initial_weights(result["weights"], n_in=4, hidden=8, n_out=3)
    # sparse [MS11]: N(0, 1) input weights, all 4 of them per unit (fewer inputs than 15)
    assert np.all(result["weights"]["W_in"] != 0) and 0.3 < np.std(result["weights"]["W_in"]) < 3.0
    _check_run(result["hf"], label="HF (mu=0)")
    assert result["adam"] == [] and result["adam_best"] is None
    _check_against_numpy(result, [result["hf"]])
    assert result["hf"]["loss"] < result["hf"]["curve"]["loss"][0]


def test_rnn_experiment_xor_with_adam_and_nag_from_the_esn_initialization(tmp_path):
    result = _run_rnn(tmp_path, "--task", "xor", "--T", "20", "--no-hf", "--adam-lrs", "0.01", "--nag-lrs", "1e-4",
                      "--init", "esn")

    valid = result["valid"]
    assert (valid.name, valid.output, valid.n_sequences) == ("xor", "logistic", 100)
    w = result["weights"]
    _check_initial_weights(w, n_in=2, hidden=8, n_out=1)
    # ESN-style: dense input weights of scale 0.001 (N(0, 1) draws times 0.001).
    assert np.all(w["W_in"] != 0) and 1e-5 < np.std(w["W_in"]) < 1e-2
    assert result["hf"] is None and result["first_order_seconds"] == 1.5
    [adam], [nag] = result["adam"], result["nag"]
    _check_run(adam, label="Adam (lr=0.01)")
    _check_run(nag, label="NAG (lr=0.0001, mu=0.995)")
    assert result["adam_best"] is adam and result["nag_best"] is nag
    for run in (adam, nag):
        assert run["stop"] in ("budget", "solved") and run["steps"] >= 1
        assert run["train_seconds"] >= (1.5 if run["stop"] == "budget" else 0)
    _check_against_numpy(result, [adam, nag])


def test_rnn_experiment_default_budget_hf_updates_then_the_same_seconds_for_adam(tmp_path):
    """Without --budget HF runs --hf-updates updates and Adam gets the training seconds HF used."""
    tiny = [a for a in RNN_TINY]
    del tiny[tiny.index("--budget"):tiny.index("--budget") + 2]
    pytest.importorskip("matplotlib")
    png = tmp_path / "rnn.png"
    result = load_experiment().main(["--task", "addition", "--T", "20", "--hf-updates", "3", "--adam-lrs", "0.01",
                                       "--out", str(png), *tiny])
    hf_run, [adam] = result["hf"], result["adam"]
    _check_run(hf_run, label="HF")
    assert hf_run["stop"] == "max_updates" and hf_run["updates"] == 3 and len(hf_run["trace"]) == 3
    assert hf_run["curve"]["updates"][-1] == 3
    assert result["first_order_seconds"] == hf_run["train_seconds"] > 0
    # Adam stops at that many training seconds (checked after each mini-batch step).
    assert adam["stop"] == "budget" and adam["train_seconds"] >= hf_run["train_seconds"]
    assert adam["train_seconds"] < hf_run["train_seconds"] + 0.5
    _check_against_numpy(result, [hf_run, adam])


def test_rnn_experiment_fresh_data_is_the_generator_with_its_documented_seed():
    from hf import datasets

    rnn = load_experiment()
    stream = rnn.FreshSequences("temporal_order", 20, 4, bits=3).stream()
    rng = np.random.default_rng([4, rnn.FRESH_STREAM])
    first = None
    for n in (3, 5):  # successive draws continue one generator
        got = stream(n)
        ref = datasets.make_task("temporal_order", n, 20, bits=3, rng=rng)
        for g, r in zip(got, (ref.inputs, ref.dense_targets(), ref.target_mask, ref.mask)):
            assert np.array_equal(g, r)
        first = got if first is None else first
    # a new stream starts over; its draws are not those of the fixed training set (seed 4)
    again = rnn.FreshSequences("temporal_order", 20, 4, bits=3).stream()(3)
    assert all(np.array_equal(a, b) for a, b in zip(again, first))
    assert not np.array_equal(again[0], datasets.make_task("temporal_order", 3, 20, bits=3, seed=4).inputs)


#: RNN_TINY for --fresh-data: no training set, and the run bounded by --hf-updates instead of seconds.
RNN_TINY_FRESH = list(RNN_TINY)
for _flag in ("--budget", "--train-size"):
    del RNN_TINY_FRESH[RNN_TINY_FRESH.index(_flag):RNN_TINY_FRESH.index(_flag) + 2]


def _count_task_draws(rnn, monkeypatch):
    """Patch the example's ``make_task`` to log sizes: ``(draws, made)``, the sequences drawn from a
    fresh stream (``rng`` given) and the tasks made from a seed, in call order."""
    draws, made = [], []
    make_task = rnn.make_task

    def counting(name, n, T, seed, dtype="float64", bits=None, rng=None):
        (made if rng is None else draws).append(n)
        return make_task(name, n, T, seed, dtype, bits, rng=rng)

    monkeypatch.setattr(rnn, "make_task", counting)
    return draws, made


def test_rnn_experiment_fresh_data_draws_a_new_batch_for_every_update_and_mini_batch(tmp_path, monkeypatch):
    """--fresh-data: HF draws --hf-batch new sequences per update (the CG batch is their head), Adam
    --adam-batch per step, FRESH_EPOCH per epoch; nothing else is drawn, and no training set is made."""
    pytest.importorskip("matplotlib")
    rnn = load_experiment()
    monkeypatch.setattr(rnn, "FRESH_EPOCH", 120)
    draws, made = _count_task_draws(rnn, monkeypatch)
    result = rnn.main(["--task", "addition", "--T", "20", "--fresh-data", "--hf-updates", "3", "--adam-lrs", "0.01",
                       "--out", str(tmp_path / "rnn.png"), *RNN_TINY_FRESH])
    hf_run, [adam] = result["hf"], result["adam"]
    assert hf_run["updates"] == 3 and result["args"]["train_size"] is None
    assert draws[:3] == [100, 100, 100]  # --hf-batch, one batch per update
    adam_draws = draws[3:]
    assert len(adam_draws) == adam["steps"] >= 1
    assert adam_draws == ([50, 50, 20] * len(adam_draws))[: len(adam_draws)]  # epochs of 120, batches of 50
    assert made == [1, 100]  # the shapes probe and the held-out set
    _check_against_numpy(result, [hf_run, adam])


def test_rnn_experiment_fresh_data_with_cg_cycle_draws_a_separate_cg_batch_every_update(tmp_path, monkeypatch):
    """--fresh-data --cg-source cycle: every HF update draws --hf-batch sequences for the gradient and
    --cg-batch more for the curvature products, from the one stream of the run."""
    pytest.importorskip("matplotlib")
    rnn = load_experiment()
    draws, _made = _count_task_draws(rnn, monkeypatch)
    result = rnn.main(["--task", "addition", "--T", "20", "--fresh-data", "--cg-source", "cycle", "--hf-updates", "2",
                       "--no-adam", "--out", str(tmp_path / "rnn.png"), *RNN_TINY_FRESH])
    hf_run = result["hf"]
    assert hf_run["updates"] == 2
    assert draws == [100, 50, 100, 50]  # per update: the gradient batch, then its own CG batch
    _check_against_numpy(result, [hf_run])


def test_rnn_experiment_rejects_bad_arguments():
    rnn = load_experiment()
    with pytest.raises(SystemExit):
        rnn.main(["--task", "addition", "--T", "10"])  # addition needs T >= 20
    with pytest.raises(SystemExit):
        rnn.main(["--hidden", "0"])
    with pytest.raises(SystemExit):
        rnn.main(["--no-hf", "--no-adam"])
    with pytest.raises(SystemExit):
        rnn.main(["--no-hf", "--adam-lrs", "1e-3"])  # without HF, Adam needs --budget
    with pytest.raises(SystemExit):
        rnn.main(["--task", "xor", "--bits", "3"])  # xor has no variants
    with pytest.raises(SystemExit):
        rnn.main(["--fresh-data", "--train-size", "100"])  # fresh data has no training set


def _record_adam_options(monkeypatch):
    """Patch ``hf.first_order.build`` so that every optimizer it builds logs its ``get_updates`` keywords."""
    import hf.first_order

    calls, build = [], hf.first_order.build

    def recording(algo, *args, **kwargs):
        opt = build(algo, *args, **kwargs)
        get_updates = opt.get_updates

        def logged(**hyper):
            calls.append((algo, hyper))
            return get_updates(**hyper)

        opt.get_updates = logged
        return opt

    monkeypatch.setattr(hf.first_order, "build", recording)
    return calls


def test_rnn_experiment_runs_kingma_and_bas_adam_unless_told_otherwise(tmp_path, monkeypatch):
    calls = _record_adam_options(monkeypatch)
    tiny = [*RNN_TINY, "--task", "addition", "--T", "20", "--no-hf", "--adam-lrs", "0.01", "--budget", "0.3",
            "--no-plot"]
    result = load_experiment().main(tiny)
    assert calls[-1][0] == "adam" and calls[-1][1]["kingma_ba"] is True
    assert result["adam"][0]["label"] == "Adam (lr=0.01)"
    result = load_experiment().main([*tiny, "--adam-bias", "downhill"])  # the bias terms of the earlier cells
    assert calls[-1][1]["kingma_ba"] is False
    assert result["adam"][0]["label"] == "Adam, downhill's bias terms (lr=0.01)"


# --------------------------------------------------------------------------- examples/rnn.py


def test_rnn_example_trains_hf_then_kingma_and_bas_adam_for_as_long(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    calls = _record_adam_options(monkeypatch)
    png = tmp_path / "rnn.png"
    curves = load_example("rnn").main(["--T", "20", "--hidden", "6", "--train-size", "200", "--hf-updates", "3",
                                       "--hf-batch", "100", "--out", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    hf_seconds, hf_success = curves["HF"]
    adam_seconds, adam_success = curves["Adam"]
    assert 2 <= len(hf_seconds) <= 4 and hf_seconds == sorted(hf_seconds)  # at most 3 updates, fewer if solved
    assert hf_success[0] == adam_success[0]  # the same initial weights
    assert adam_seconds[-1] >= hf_seconds[-1] > 0  # Adam gets HF's training seconds
    assert all(0.0 <= s <= 1.0 for s in hf_success + adam_success)
    assert [algo for algo, _ in calls] == ["adam"] and calls[0][1]["kingma_ba"] is True


def test_every_example_that_runs_adam_runs_kingma_and_bas():
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        if '"adam"' in text:
            assert "kingma_ba_adam()" in text, path.name  # Kingma & Ba's Adam: bias terms, β₂ 0.999, ε 1e-8
