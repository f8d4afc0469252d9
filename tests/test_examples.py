"""Smoke tests of the example scripts: each runs end to end with tiny settings in seconds."""

from __future__ import annotations

import importlib.util
import math
import pathlib

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    """Import ``examples/<name>.py`` as a module (the examples folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- examples/rnn.py

RNN_TINY = [
    "--hidden", "8", "--budget", "1.5", "--train-size", "300", "--valid-size", "100",
    "--hf-batch", "100", "--cg-batch", "50", "--max-cg", "10", "--adam-batch", "50",
    "--eval-every", "0", "--quiet",
]


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
    """``examples/rnn.py`` with tiny settings; checks that it wrote a PNG and returns its result."""
    pytest.importorskip("matplotlib")
    png = tmp_path / "rnn.png"
    result = load_example("rnn").main([*argv, "--out", str(png), *RNN_TINY])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["png"] == str(png)
    return result


def test_rnn_example_addition(tmp_path):
    result = _run_rnn(tmp_path, "--task", "addition", "--T", "20", "--adam-lrs", "0.01", "0.003")

    assert (result["task"], result["T"], result["hidden"], result["target"]) == ("addition", 20, 8, 0.99)
    _check_run(result["hf"], label="HF (mu=0.03)")
    # HF's first update already fits the mean of the targets: the held-out loss drops.
    assert result["hf"]["loss"] < result["hf"]["curve"]["loss"][0]
    assert [r["label"] for r in result["adam"]] == ["Adam (lr=0.01)", "Adam (lr=0.003)"]
    for run in result["adam"]:
        _check_run(run, label="Adam")
    assert result["adam_best"] in result["adam"]
    # Every optimizer starts from the same weights, so from the same held-out loss.
    first = [result["hf"]["curve"]["loss"][0]] + [r["curve"]["loss"][0] for r in result["adam"]]
    assert max(first) - min(first) <= 1e-12 * max(first)


def test_rnn_example_memorization_without_structural_damping(tmp_path):
    result = _run_rnn(tmp_path, "--task", "memorization", "--T", "5", "--mu", "0", "--no-adam")

    _check_run(result["hf"], label="HF (mu=0)")
    assert result["adam"] == [] and result["adam_best"] is None
    assert result["hf"]["loss"] < result["hf"]["curve"]["loss"][0]


def test_rnn_example_rejects_bad_arguments():
    rnn = load_example("rnn")
    with pytest.raises(SystemExit):
        rnn.main(["--task", "addition", "--T", "10"])  # addition needs T >= 20
    with pytest.raises(SystemExit):
        rnn.main(["--hidden", "0"])
    with pytest.raises(SystemExit):
        rnn.main(["--no-hf", "--no-adam"])
