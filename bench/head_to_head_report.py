"""Where HF wins, and where it does not: the autoencoder table, the grids and the picture, from the records.

Reads ``bench/results/autoencoders.jsonl`` (``bench/autoencoders.py``) and
writes Markdown:

* the **head-to-head table**: per problem and budget, each method (the
  first-order ones at their tuned setting) with the median over the reported
  seeds of the training error (the optimization result [Mart10]_ reports) and
  of the test error, at the budget; and for HF and Adam→HF on how many seeds
  they end below the best first-order method of the same seed at equal
  seconds;
* the **grids**: every tuning run (seed 0, short budget) with its final
  training error, the chosen setting marked, and the grid's cost in core
  seconds;
* a PNG of training error against seconds (median over seeds).

Errors at equal seconds are read off each run's curve: the last point at or
before that second.

Run::

    python bench/head_to_head_report.py                       # the tables, on standard output
    python bench/head_to_head_report.py --png docs/head_to_head.png --readme README.md \\
        --doc docs/head_to_head.md

``--readme`` replaces the text between the markers
``<!-- head-to-head:start -->`` and ``<!-- head-to-head:end -->`` in that
file with the head-to-head table of the problems where every method has run
on 3 seeds (a line of progress for the others); ``--doc`` does the same in the
doc page with every table and the grids.

References
----------
.. [Mart10] J. Martens, "Deep learning via Hessian-free optimization", ICML 2010.
"""

from __future__ import annotations

import argparse
import math
import statistics

try:  # imported as bench.head_to_head_report (tests, python -m bench.head_to_head_report)
    from bench import autoencoders as ae
    from bench import records
except ImportError:  # run as python bench/head_to_head_report.py: bench/ is the script's folder
    import autoencoders as ae
    import records

START, END = "<!-- head-to-head:start -->", "<!-- head-to-head:end -->"
ABLATIONS = ("<!-- ablations:start -->", "<!-- ablations:end -->")
ABLATION_RESULTS = ae.RESULTS.replace("autoencoders.jsonl", "autoencoder_ablations.jsonl")
# "adam" records ran Kingma & Ba's Adam (kingma_ba=True, β₂ 0.999: hf.first_order.kingma_ba_adam()).
FIRST_ORDER = ("adam", "nag")


def label(r):
    """A method's name with the settings that tell its cells apart."""
    s = r["settings"]
    if r["method"] == "adam":
        return f"Adam (Kingma & Ba), lr {s['lr']:g}"
    if r["method"] == "nag":
        return f"NAG, lr {s['lr']:g}, μ_max {s['mu_max']:g}"
    hf = "HF [Mart10]" if s.get("cg_batch") is None and s.get("grad_batch") is None else (
        f"HF, gradient {s.get('grad_batch') or 'all'}, CG {s.get('cg_batch')}"
        + {"cg": ", ρ on CG batch", "cg-damped": ", ρ on CG batch (damped model)"}.get(
            records.rho_batch_of(s.get("rho_batch"), r.get("git_commit")), ""))
    # [Mart10]'s CG cap (250) and preconditioner are every main cell's; a cell that changes them says so
    hf += "".join(part for cond, part in ((s.get("max_cg", 250) != 250, f", CG cap {s.get('max_cg')}"),
                                          (s.get("precond", True) is False, ", no preconditioner")) if cond)
    if r["method"] == "adam-hf":
        return f"Adam lr {s['lr']:g} for {s['switch']:.0%}, then {hf}"
    if r["method"] == "hf-grow":
        return (f"HF, gradient {s['small_grad_batch']}, CG {s['small_cg_batch']} for {s['switch']:.0%}, "
                f"then {hf[len('HF, '):] if hf.startswith('HF, ') else hf}")
    return hf


def error_at(r, seconds, key="train_error"):
    """The run's error at ``seconds``: its last curve point at or before them. A first-order run's
    last evaluation lands a fraction of a second past its budget (the clock is read between steps),
    so points up to 1 s late count; an HF update that runs past the budget (up to a minute) does not."""
    points = [p for p in r["curve"] if p["seconds"] <= seconds + 1.0 and p.get(key) is not None]
    return points[-1][key] if points else math.nan


def _median(xs):
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return statistics.median(xs) if xs else math.nan


def _fmt(x):
    return "–" if x is None or not math.isfinite(x) else f"{x:.3g}" if x < 100 else f"{x:.0f}"


def reported(rows):
    """The reported cells (seeds other than the tuning seed), grouped by (problem, budget, label)."""
    groups = {}
    for r in rows:
        if r["seed"] == ae.TUNING_SEED:  # the grid and its confirmation runs
            continue
        groups.setdefault((r["problem"], r["budget"], label(r)), {})[r["seed"]] = r
    return groups


def head_to_head(rows):
    """The Markdown table of the reported cells."""
    groups = reported(rows)
    out = []
    for problem, budget in sorted({(p, b) for p, b, _ in groups}):
        cells = {lab: seeds for (p, b, lab), seeds in groups.items() if p == problem and b == budget}
        first = {lab: seeds for lab, seeds in cells.items()
                 if any(r["method"] in FIRST_ORDER for r in seeds.values())}
        out += [f"**{problem.upper()}** ({'-'.join(map(str, ae.PROBLEMS[problem]))} and mirror), "
                f"{budget / 60:.0f} minutes of one core per run:", "",
                "| method | seeds | training error (median) | per seed | test error (median) "
                "| below the best first-order run of the seed |", "|---|---|---|---|---|---|"]
        for lab in sorted(cells, key=lambda k: _median([error_at(r, budget) for r in cells[k].values()])):
            seeds = cells[lab]
            errs = [error_at(seeds[s], budget) for s in sorted(seeds)]
            tests = [error_at(seeds[s], budget, "test_error") for s in sorted(seeds)]
            beat = "–"
            if lab not in first and first:
                wins = n = 0
                for s, r in seeds.items():
                    rivals = [error_at(f[s], budget) for f in first.values() if s in f]
                    if rivals:
                        n += 1
                        wins += error_at(r, budget) < min(rivals)
                beat = f"{wins}/{n}" if n else "–"
            out.append(f"| {lab} | {', '.join(map(str, sorted(seeds)))} | {_fmt(_median(errs))} | "
                       f"{', '.join(_fmt(e) for e in errs)} | {_fmt(_median(tests))} | {beat} |")
        out.append("")
    return "\n".join(out) if out else "No reported cells yet (only the tuning grids have run)."


def readme_section(rows, min_seeds=3):
    """The README's summary: for each problem and budget, the head-to-head table of the methods that have
    run on ``min_seeds`` seeds, once at least one HF method and one first-order method have (no figure
    from fewer seeds), and one line naming the methods still short of seeds."""
    groups = reported(rows)
    keep, out, pending = set(), [], []
    for problem, budget in sorted({(p, b) for p, b, _ in groups}):
        cells = {lab: seeds for (p, b, lab), seeds in groups.items() if (p, b) == (problem, budget)}
        ready = {lab for lab, seeds in cells.items() if len(seeds) >= min_seeds}
        kinds = {any(r["method"] in FIRST_ORDER for r in cells[lab].values()) for lab in ready}
        where = f"{problem.upper()}, {budget / 60:.0f} minutes per run"
        if kinds != {True, False}:
            done = sum(len(seeds) for seeds in cells.values())
            pending.append(f"- {where}: {done} runs recorded so far, too few seeds for a figure (a method is "
                           f"shown once it has {min_seeds}, and HF and a first-order method are both shown).")
            continue
        keep |= {(problem, budget, lab) for lab in ready}
        short = sorted((lab, len(seeds)) for lab, seeds in cells.items() if lab not in ready)
        if short:
            pending.append(f"- {where}, not shown yet (fewer than {min_seeds} seeds): "
                           + "; ".join(f"{lab} ({n})" for lab, n in short) + ".")
    if keep:
        out.append(head_to_head([r for r in rows if (r["problem"], r["budget"], label(r)) in keep]))
    tuning = [r["problem"] for r in rows if r["seed"] == ae.TUNING_SEED and r["budget"] == ae.TUNING_BUDGET]
    if tuning:
        out.append("Learning-rate grid runs recorded (tuning seed, short runs): "
                   + ", ".join(f"{p.upper()} {tuning.count(p)}" for p in sorted(set(tuning))) + ".")
    out += pending
    return "\n".join(out)


def grids(rows):
    """The tuning runs: one table per problem, each method's best setting at 180 s in bold, with the grid's
    cost, and the confirmation of its best settings over the reported budget."""
    out = []
    for problem in sorted({r["problem"] for r in rows}):
        tune = [r for r in rows if r["problem"] == problem and r["seed"] == ae.TUNING_SEED
                and r["budget"] == ae.TUNING_BUDGET]
        if not tune:
            continue
        best = {m: ae.tuned(problem, m, rows=tune) for m in FIRST_ORDER}
        cost = sum(r["seconds"] for r in tune)
        out += [f"**{problem.upper()}**, seed {ae.TUNING_SEED}, {ae.TUNING_BUDGET:.0f} s per run "
                f"({len(tune)} runs, {cost / 3600:.2f} core-hours of training):", "",
                "| method | learning rate | μ_max | training error | test error |", "|---|---|---|---|---|"]
        for r in sorted(tune, key=lambda r: (r["method"], r["settings"].get("mu_max", 0), r["settings"]["lr"])):
            s = r["settings"]
            chosen = best.get(r["method"]) == ae.setting_args(r)
            mark = "**" if chosen else ""
            out.append(f"| {r['method']} | {mark}{s['lr']:g}{mark} | {s.get('mu_max', '–')} | "
                       f"{mark}{_fmt(r['train_error'])}{mark} | {_fmt(r['test_error'])} |")
        out.append("")
        out += confirmations(problem, rows, {m: ae.tuned(problem, m, rows=rows) for m in FIRST_ORDER})
    return "\n".join(out)


def confirmations(problem, rows, best):
    """The grid's best settings run again on the tuning seed for the reported budget, beside their 180-s
    figure (the tuned setting in bold), or the queue that runs them when none has."""
    runs = []
    for method in FIRST_ORDER:
        grid = {tuple(ae.setting_args(r)): r for r in ae.tuning_runs(problem, method, rows)}
        done = {tuple(ae.setting_args(r)): r for r in ae.tuning_runs(problem, method, rows, ae.CONFIRM_BUDGET)}
        runs += [(method, t, grid[tuple(t)], done.get(tuple(t))) for t in ae.to_confirm(problem, method, rows)]
    if not any(c for *_, c in runs):
        return [f"Not confirmed yet: the grid's {ae.CONFIRM_TOP} best settings of each method on seed "
                f"{ae.TUNING_SEED} for {ae.CONFIRM_BUDGET / 60:.0f} minutes (`--queue confirm-{problem}`).", ""]
    out = [f"Confirmation on seed {ae.TUNING_SEED}: each method's {ae.CONFIRM_TOP} best settings at 180 s, run "
           f"for {ae.CONFIRM_BUDGET / 60:.0f} minutes (a method's tuned setting, in bold, is the lower of its "
           "two at the end, once both have run):", "",
           f"| method | learning rate | μ_max | training error at 180 s | at {ae.CONFIRM_BUDGET:.0f} s | "
           "best on the way | test error at the end |", "|---|---|---|---|---|---|---|"]
    complete = {m for m in FIRST_ORDER if all(c is not None for mm, *_, c in runs if mm == m)}
    for method, setting, short, long in runs:
        s = short["settings"]
        mark = "**" if method in complete and best.get(method) == list(setting) else ""
        end = "not run" if long is None else f"{mark}{_fmt(long['train_error'])}{mark}"
        best_seen = "–" if long is None else _fmt(long["best_train_error"])
        test = "–" if long is None else _fmt(long["test_error"])
        out.append(f"| {method} | {mark}{s['lr']:g}{mark} | {s.get('mu_max', '–')} | {_fmt(short['train_error'])} | "
                   f"{end} | {best_seen} | {test} |")
    return out + [""]


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    groups = reported(rows)
    keys = sorted({(p, b) for p, b, _ in groups})
    if not keys:
        return False
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4.2), squeeze=False)
    for ax, (problem, budget) in zip(axes[0], keys):
        for (p, b, lab), seeds in sorted(groups.items()):
            if (p, b) != (problem, budget):
                continue
            grid = np.linspace(0, budget, 200)[1:]
            med = [np.median([error_at(r, t) for r in seeds.values()]) for t in grid]
            ax.plot(grid / 60, med, label=f"{lab} ({len(seeds)} seeds)")
        ax.set_yscale("log")
        ax.set_xlabel("minutes of one core")
        ax.set_ylabel("training squared error per image (median)")
        ax.set_title(f"{problem.upper()} autoencoder, {budget / 60:.0f} minutes per run")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def ablations(rows):
    """Diagnostic runs (one seed, short budget): one line each, with the setting that differs."""
    if not rows:
        return "No diagnostic runs recorded."
    out = ["| problem | seed | seconds | method | initial λ | ρ measured on | CG cap | preconditioner "
           "| training error | test error |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["settings"]
        if r["method"] in FIRST_ORDER:  # a first-order diagnostic: no HF settings
            hf_cols = "– | – | – | –"
        else:
            hf_cols = (f"{s.get('damping', math.nan):g} | {'CG batch' if s.get('rho_batch') == 'cg' else 'gradient batch'}"
                       f" | {s.get('max_cg', '–')} | {'no' if s.get('precond') is False else 'yes'}")
        out.append(f"| {r['problem']} | {r['seed']} | {r['budget']:g} | {label(r)} | {hf_cols} | "
                   f"{r['train_error']:.3g} | {r['test_error']:.3g} |")
    return "\n".join(out)


def replace_between(path, text, markers=(START, END)):
    start, end = markers
    with open(path) as f:
        doc = f.read()
    if start not in doc or end not in doc:
        raise SystemExit(f"{path}: no {start} ... {end} markers to replace")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    with open(path, "w") as f:
        f.write(f"{head}{start}\n{text}\n{end}{tail}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--results", default=ae.RESULTS)
    p.add_argument("--ablations", default=ABLATION_RESULTS, help="diagnostic runs, tabled in --doc")
    p.add_argument("--png", help="draw the curves to this PNG")
    p.add_argument("--readme", help="replace the marked section of this file with the table")
    p.add_argument("--doc", help="replace the marked section of this file with the table and the grids")
    args = p.parse_args(argv)
    rows = records.read_records(args.results)
    table, grid = head_to_head(rows), grids(rows)
    print(table)
    print(grid)
    if args.png:
        print("plot:", args.png if plot(rows, args.png) else "(nothing to draw)")
    if args.readme:
        replace_between(args.readme, readme_section(rows))
    if args.doc:
        replace_between(args.doc, table + "\n\nThe learning-rate grids (tuning seed, short runs):\n\n" + grid)
        replace_between(args.doc, ablations(records.read_records(args.ablations)), ABLATIONS)


if __name__ == "__main__":
    main()
