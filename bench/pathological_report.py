"""The pathological-problems table and plot, from the cells ``bench/pathological.py`` appended.

Reads the JSON-lines results file (default ``bench/results/pathological.jsonl``)
and prints one Markdown table row per (task, T, optimizer, budget, settings):

* **solved**: seeds solved / seeds run (held-out success ≥ the target, 99%);
* **median time to solve**: the median training seconds of the solved seeds
  (compilation and held-out evaluations not counted), with the median
  number of updates (HF) or epochs (Adam, NAG);
* **best success of the failures**: the highest held-out success any
  unsolved seed reached;
* **s per update**: the median over the seeds of training seconds per HF
  update (per epoch for Adam and NAG), the measured cost to extrapolate a
  budget from.

A second table gives, per task and optimizer, the longest T solved on at
least 2 seeds and at least 2/3 of the seeds run (cells with plain settings
only; for Adam and NAG the best learning rate at each T), and the longest T
tried with its count.

A seed stopped by hand before it solved or spent its budget (``stop``
``interrupted``: ``bench/pathological.py`` got SIGTERM) counts as *not
solved*, in the solved fraction and in the longest-T table alike, and the
budget column says how many seeds of the cell were stopped early: a seed
given up on is a failure, not a missing result. (A seed that solved before
the signal is a full result.)

Adam cells are told apart by their bias correction: ``adam_bias``
``kingma-ba`` (Kingma & Ba's Algorithm 1, ``bench/rnn_experiment.py``'s
default) or ``downhill`` (downhill's terms, what every Adam cell recorded
before the setting existed ran); the latter are the family "Adam
(downhill's bias terms)".

When a seed of a cell was run more than once, its latest record (by date,
then by position in the file) counts; the others are reported as superseded.
Cells that differ in a setting (``-- --cg-decay 0`` ...) are kept apart and
labelled with that setting. Blank lines are skipped; lines that are not
valid JSON records are skipped with a warning, so an empty or partly written
file gives an empty or partial table, not an error.

Run::

    python bench/pathological_report.py                          # the table, on standard output
    python bench/pathological_report.py --png docs/pathological.png
    python bench/pathological_report.py --update docs/pathological.md   # between the two marker lines
    python bench/pathological_report.py --readme README.md   # HF against tuned Adam, README's section

``--update FILE`` replaces the lines between ``<!-- pathological:begin -->``
and ``<!-- pathological:end -->`` in FILE with the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys

try:  # imported as bench.pathological_report (tests)
    from bench import records, rnn_queue
except ImportError:  # run as python bench/pathological_report.py: bench/ is the script's folder
    import records
    import rnn_queue

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results", "pathological.jsonl")
SCHEMA = 1
BEGIN, END = "<!-- pathological:begin -->", "<!-- pathological:end -->"

TASK_ORDER = ("addition", "multiplication", "xor", "temporal_order_2bit", "temporal_order_3bit",
              "random_permutation", "memorization_5bit", "memorization_20bit")
TASK_LABELS = {
    "temporal_order_2bit": "temporal order (2-bit)",
    "temporal_order_3bit": "temporal order (3-bit)",
    "random_permutation": "random permutation",
    "memorization_5bit": "memorization (5-bit)",
    "memorization_20bit": "memorization (20-bit)",
}
# "adam": Kingma & Ba's Adam (kingma_ba=True); "adam-downhill": cells that ran downhill's bias terms
OPTIMIZER_ORDER = ("hf", "hf-mu0", "adam", "adam-downhill", "nag")
#: Settings that do not change what is measured: they neither split cells nor label them.
NOT_COMPARED = ("eval_every", "hf_updates")
#: Settings recorded only since a later commit, with the value every earlier cell ran with: a record
#: at that value is the same cell as an earlier record without the setting.
ADDED_LATER = {"rho_batch": "gradient", "shrink_warm_start": False, "cold_restart": False, "fresh_data": False,
               "adam_bias": "downhill"}
#: Example defaults that changed, per optimizer: setting -> (before, since). A record's ``variant``
#: is relative to the defaults of the commit that ran it; the table labels every cell relative to
#: today's, so a cell that was plain before the change is labelled with the old values, and one that
#: ran today's defaults as flags before they were defaults counts as plain.
CHANGED_DEFAULTS = {
    "hf": {"max_cg": (100, 300), "shrink_warm_start": (False, True), "init": ("sparse", "esn")},
    "hf-mu0": {"max_cg": (100, 300), "shrink_warm_start": (False, True), "init": ("sparse", "esn")},
    "adam": {"init": ("sparse", "esn")},
}
HEADER = ("task", "T", "optimizer", "budget", "solved", "median time to solve", "best success of the failures",
          "s per update")
#: Optimizer families of the longest-T table, with their column titles.
FAMILIES = (("hf", "HF μ=0.03"), ("hf-mu0", "HF μ=0"), ("adam", "Adam"),
            ("adam-downhill", "Adam (downhill's bias terms)"), ("nag", "NAG"))


# --------------------------------------------------------------------------- reading


def load(path):
    """``(records, problems)``: the valid records of a JSON-lines file (its line number added as
    ``_line``), and a message per line that was skipped. A missing file has no records."""
    records, problems = [], []
    if not os.path.exists(path):
        return records, [f"{path}: no such file (no results yet)"]
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{path}:{number}: not JSON ({e.msg}); skipped")
                continue
            missing = _missing(record)
            if missing:
                problems.append(f"{path}:{number}: not a results record (missing {missing}); skipped")
                continue
            if record["schema"] > SCHEMA:
                problems.append(f"{path}:{number}: schema {record['schema']} is newer than this script's {SCHEMA}; skipped")
                continue
            record["_line"] = number
            records.append(record)
    return records, problems


def _missing(record):
    if not isinstance(record, dict):
        return "everything"
    for key in ("schema", "task", "T", "optimizer", "seed", "budget", "settings", "outcome"):
        if key not in record:
            return key
    for key in ("solved", "best_success"):
        if key not in record["outcome"]:
            return f"outcome.{key}"
    return None


# --------------------------------------------------------------------------- labels


def task_label(record):
    return TASK_LABELS.get(record["task"], record["task"])


def family_of(record):
    """The optimizer family: ``record['optimizer']``, except ``'adam-downhill'`` for Adam with downhill's bias terms."""
    if record["optimizer"] == "adam" and record["settings"].get("adam_bias", ADDED_LATER["adam_bias"]) == "downhill":
        return "adam-downhill"
    return record["optimizer"]


def optimizer_label(record):
    opt, s = family_of(record), record["settings"]
    if opt in ("hf", "hf-mu0"):
        return f"HF μ={s.get('mu', 0.03 if opt == 'hf' else 0):g}"
    name = {"adam": "Adam", "adam-downhill": "Adam (downhill's bias terms)", "nag": "NAG"}.get(opt, opt)
    return f"{name} lr={record['lr']:g}" if record.get("lr") is not None else name


def stopped_early(record):
    """Whether the seed was stopped by hand before it solved or spent its budget: it counts as not solved."""
    return record["outcome"].get("stop") == "interrupted" and not record["outcome"]["solved"]


def budget_label(record):
    b = record["budget"]
    text = f"{b['seconds']:g} s"
    if b.get("max_updates"):
        text += f", ≤ {b['max_updates']} updates"
    return text


def _value(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def variant_of(record):
    """The settings that set ``record`` apart from a plain cell of today's defaults (a dict)."""
    variant = dict(record.get("variant") or {})
    variant.pop("adam_bias", None)  # the optimizer's label carries it
    if "rho_batch" in variant:
        variant["rho_batch"] = records.rho_batch_of(variant["rho_batch"],
                                                    (record.get("reproduce") or {}).get("git_commit"))
    settings = record["settings"]
    for k, (before, since) in CHANGED_DEFAULTS.get(record["optimizer"], {}).items():
        if k not in settings and k not in ADDED_LATER:
            continue  # not a setting this record knows of
        value = settings.get(k, ADDED_LATER.get(k))
        if value == since:
            variant.pop(k, None)
        else:
            variant[k] = value
    return variant


def _compared(settings):
    return tuple(sorted((k, json.dumps(v)) for k, v in settings.items()
                        if k not in NOT_COMPARED and not (k in ADDED_LATER and v == ADDED_LATER[k])))


# --------------------------------------------------------------------------- the table


def cells(records):
    """One dict per cell, in table order.

    Keys: ``task``, ``T``, ``optimizer``, ``budget`` (labels), ``variant``
    (the settings that set the cell apart, as text), ``seeds`` (sorted),
    ``solved`` and ``n`` (counts; a seed stopped early is counted, as not
    solved), ``stopped`` (how many seeds were stopped early), ``median_time`` and ``median_updates``
    (None when no seed solved), ``update_unit``, ``best_failure`` (None when
    no seed failed), ``superseded`` (older records of the same seeds, not
    counted).
    """
    groups = {}
    for r in records:
        key = (r["task"], r["T"], optimizer_label(r), budget_label(r), _compared(r["settings"]))
        groups.setdefault(key, []).append(r)
    rows = []
    for key, rs in groups.items():
        latest = {}
        for r in rs:
            stamp = ((r.get("reproduce") or {}).get("date") or "", r["_line"])
            if r["seed"] not in latest or stamp >= latest[r["seed"]][0]:
                latest[r["seed"]] = (stamp, r)
        runs = [r for _, r in latest.values()]
        solved = [r for r in runs if r["outcome"]["solved"]]
        failed = [r for r in runs if not r["outcome"]["solved"]]
        label = {}
        for r in runs:
            label.update(variant_of(r))
        times = [r["outcome"].get("time_to_solve") for r in solved]
        rates = [r["outcome"]["train_seconds"] / r["outcome"]["updates"] for r in runs
                 if r["outcome"].get("train_seconds") and r["outcome"].get("updates")]
        updates = [r["outcome"].get("updates_to_solve") for r in solved]
        first = rs[0]
        rows.append({
            "task": key[0], "task_label": task_label(first), "T": key[1], "optimizer": key[2], "budget": key[3],
            "optimizer_key": family_of(first), "lr": first.get("lr"),
            "variant": label, "settings": key[4],
            "seeds": sorted(latest), "n": len(runs), "solved": len(solved),
            "median_time": statistics.median(times) if times and None not in times else None,
            "median_updates": statistics.median(updates) if updates and None not in updates else None,
            "update_unit": first["outcome"].get("update_unit", "updates"),
            "seconds_per_update": statistics.median(rates) if rates else None,
            "best_failure": max(r["outcome"]["best_success"] or 0.0 for r in failed) if failed else None,
            "superseded": len(rs) - len(runs),
            "stopped": sum(stopped_early(r) for r in runs),
        })

    # A cell is labelled with its settings that differ from a plain cell's (``variant``); where two
    # cells of one (task, T, optimizer, budget) get the same label (the defaults changed between
    # commits), the settings that tell them apart are added.
    by_family = {}
    for row in rows:
        by_family.setdefault((row["task"], row["T"], row["optimizer"], row["budget"]), []).append(row)
    for siblings in by_family.values():
        by_label = {}
        for row in siblings:
            by_label.setdefault(json.dumps(row["variant"], sort_keys=True), []).append(row)
        for same in by_label.values():
            if len(same) < 2:
                continue
            for row in same:
                for k, v in row["settings"]:
                    if len({dict(other["settings"]).get(k) for other in same}) > 1:
                        row["variant"][k] = json.loads(v)
    for row in rows:
        row["variant"] = ", ".join(f"{k}={_value(v)}" for k, v in sorted(row["variant"].items()))
        del row["settings"]

    def order(row):
        task = TASK_ORDER.index(row["task"]) if row["task"] in TASK_ORDER else len(TASK_ORDER)
        opt = (OPTIMIZER_ORDER.index(row["optimizer_key"]) if row["optimizer_key"] in OPTIMIZER_ORDER
               else len(OPTIMIZER_ORDER))
        return (task, row["task"], row["T"], opt, row["optimizer"], row["lr"] or 0.0, row["variant"], row["budget"])

    return sorted(rows, key=order)


def markdown(rows):
    """The Markdown table of :func:`cells`' rows (the header alone when there are none)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        optimizer = r["optimizer"] + (f" ({r['variant']})" if r["variant"] else "")
        if r["median_time"] is not None:
            unit = r["update_unit"]
            median = f"{r['median_time']:.0f} s ({r['median_updates']:g} {unit})"
        else:
            median = "–"
        best = f"{100 * r['best_failure']:.1f}%" if r["best_failure"] is not None else "–"
        rate = r["seconds_per_update"]
        rate = "–" if rate is None else f"{rate:.2g}" if rate < 10 else f"{rate:.0f}"
        budget = r["budget"] + (f"; {r['stopped']} stopped early" if r["stopped"] else "")
        cells_ = (r["task_label"], str(r["T"]), optimizer, budget, f"{r['solved']}/{r['n']}", median, best,
                  rate)
        lines.append("| " + " | ".join(cells_) + " |")
    return "\n".join(lines) + "\n"


def _robust(row, at_least, fraction):
    """Whether a cell solved at least ``at_least`` seeds and at least ``fraction`` of those it ran."""
    return row["solved"] >= at_least and row["solved"] >= fraction * row["n"]


def longest(rows, *, at_least=2, fraction=2 / 3, variant=""):
    """The longest T each optimizer family solved robustly, per task.

    A cell counts as solved robustly when at least ``at_least`` of its seeds
    and at least ``fraction`` of them were solved. Only plain cells count
    (no ``-- FLAG`` variant), or with ``variant`` the cells of that label
    (e.g. :data:`EARLIER`); for Adam and NAG the best learning rate of each
    T. Returns ``{task: {family: (T, solved, n) or None}}`` and, per task and
    family, the longest T tried as ``{task: {family: (T, solved, n)}}``.
    """
    best, tried = {}, {}
    for r in rows:
        best.setdefault(r["task"], {})  # a task with no plain cell still gets its line
        tried.setdefault(r["task"], {})
        if r["variant"] != variant:
            continue
        family = r["optimizer_key"]
        mine_best = best.setdefault(r["task"], {})
        mine_tried = tried.setdefault(r["task"], {})
        mine_best.setdefault(family, None)
        if _robust(r, at_least, fraction) and (mine_best[family] is None or (r["T"], r["solved"] / r["n"]) > (
                mine_best[family][0], mine_best[family][1] / mine_best[family][2])):
            mine_best[family] = (r["T"], r["solved"], r["n"])
        old = mine_tried.get(family)
        if old is None or (r["T"], r["solved"] / r["n"]) > (old[0], old[1] / old[2]):
            mine_tried[family] = (r["T"], r["solved"], r["n"])
    return best, tried


def _any_rank(t, solved, n, variant):
    return (t, variant == "", solved / n, -len(variant))


def longest_any(rows, *, family="hf", at_least=2, fraction=2 / 3):
    """The longest T ``family`` solved robustly with any one setting, per task.

    The same rule as :func:`longest` (``at_least`` seeds and ``fraction`` of
    them), over every cell of the family whatever its variant: the settings a
    user would have to choose for that task. Ties in T go to the plain cell
    (where the defaults are robust there is nothing to choose), then to the
    larger fraction, then to the shorter label. Returns
    ``{task: (T, solved, n, variant) or None}``.
    """
    best = {}
    for r in rows:
        best.setdefault(r["task"], None)
        if r["optimizer_key"] != family:
            continue
        if not _robust(r, at_least, fraction):
            continue
        mine = (r["T"], r["solved"], r["n"], r["variant"])
        if best[r["task"]] is None or _any_rank(*mine) > _any_rank(*best[r["task"]]):
            best[r["task"]] = mine
    return best


def _any_text(b):
    if b is None:
        return "–"
    return f"**{b[0]}** ({b[1]}/{b[2]}, {b[3] or 'defaults'})"


#: The label of the cells that ran from [MS11]'s sparse start, otherwise the defaults: the longest-T
#: table shows them beside the plain cells (the ESN-style start).
EARLIER = "init=sparse"
LONGEST_INTRO = ("The longest T solved on at least 2 seeds and at least 2/3 of the seeds run, per optimizer "
                 f"(plain settings; after ·, the same from [MS11]'s sparse start, {EARLIER}; "
                 "Adam and NAG: their best learning rate), and the longest T tried; the last column is the "
                 "longest T HF μ=0.03 solved by that rule with any one setting, and the setting:")


def _longest_text(b, t):
    if t is None:
        return "not run"
    if b is None:
        return f"– (T={t[0]}: {t[1]}/{t[2]})"
    if t[0] > b[0]:
        return f"**{b[0]}** ({b[1]}/{b[2]}); T={t[0]}: {t[1]}/{t[2]}"
    return f"**{b[0]}** ({b[1]}/{b[2]})"


def longest_markdown(rows):
    """Markdown: per task, the longest T solved on ≥ 2 seeds and ≥ 2/3 of them, per optimizer family."""
    best, tried = longest(rows)
    earlier_best, earlier_tried = longest(rows, variant=EARLIER)
    any_best = longest_any(rows)
    titles = [title for _, title in FAMILIES] + ["HF μ=0.03, any one setting"]
    lines = ["| task | " + " | ".join(titles) + " |", "|---|" + "---|" * len(titles)]
    for task in sorted(best, key=lambda t: (TASK_ORDER.index(t) if t in TASK_ORDER else len(TASK_ORDER), t)):
        texts = []
        for family, _ in FAMILIES:
            text = _longest_text(best[task].get(family), tried[task].get(family))
            t = earlier_tried[task].get(family)
            if t is not None:
                text += f" · {EARLIER}: " + _longest_text(earlier_best[task].get(family), t)
            texts.append(text)
        texts.append(_any_text(any_best.get(task)))
        label = TASK_LABELS.get(task, task)
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the plot


def plot(rows, path):
    """One panel per task: fraction of seeds solved against T, one line per optimizer (and variant)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = []
    for r in rows:
        if r["task"] not in tasks:
            tasks.append(r["task"])
    if not tasks:
        fig, ax = plt.subplots(figsize=(5, 2))
        ax.text(0.5, 0.5, "no results yet", ha="center", va="center")
        ax.set_axis_off()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path
    cols = min(4, len(tasks))
    nrows = math.ceil(len(tasks) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.4 * nrows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        mine = [r for r in rows if r["task"] == task]
        lines = {}
        for r in mine:
            name = r["optimizer"] + (f" ({r['variant']})" if r["variant"] else "") + f", {r['budget']}"
            lines.setdefault(name, []).append(r)
        for name, rs in lines.items():
            rs = sorted(rs, key=lambda r: r["T"])
            Ts = [r["T"] for r in rs]
            ax.plot(Ts, [r["solved"] / r["n"] for r in rs], marker="o", label=name,
                    lw=2 if name.startswith("HF") else 1.2)
            for r in rs:
                ax.annotate(f"{r['solved']}/{r['n']}", (r["T"], r["solved"] / r["n"]), fontsize=7,
                            textcoords="offset points", xytext=(3, 3))
        ax.set_xticks(sorted({r["T"] for r in mine}))
        ax.set_title(mine[0]["task_label"])
        ax.set_xlabel("T")
        ax.set_ylabel("seeds solved")
        ax.set_ylim(-0.05, 1.1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_axis_off()
    fig.suptitle("tanh RNN on the pathological problems: seeds solved (held-out success ≥ 99%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- main


def update_file(path, table):
    """Replace the lines between the BEGIN and END markers of ``path`` with ``table``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text or text.index(BEGIN) > text.index(END):
        raise SystemExit(f"{path}: no {BEGIN} ... {END} lines to replace")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + BEGIN + "\n" + table + END + tail)


README_BEGIN, README_END = "<!-- rnn-head-to-head:start -->", "<!-- rnn-head-to-head:end -->"


def readme_section(records, rows, min_seeds=3):
    """The README's RNN half of "Where HF wins": on each problem of ``bench/rnn_queue.py``, the HF cell
    of 30 minutes at today's defaults (no setting changed) with at least ``min_seeds`` seeds beside Kingma & Ba's Adam at its tuned learning rate
    (the tuning seed's best, ``rnn_queue.best_lr``) on the reported seeds, once that Adam has
    ``min_seeds`` of them; a line per problem says what is still missing."""
    budget = f"{rnn_queue.BUDGET:g} s"
    table, pending = [], []
    for task, T in rnn_queue.PROBLEMS:
        lr = rnn_queue.best_lr(records, task, T)
        tuned = [r for r in records if rnn_queue.is_fair_adam(r) and r["task"] == task and r["T"] == T
                 and r["seed"] == rnn_queue.TUNING_SEED and r["budget"]["seconds"] == rnn_queue.TUNING_BUDGET]
        adam = [row for row in rows if row["task"] == task and row["T"] == T and row["optimizer_key"] == "adam"
                and row["budget"] == budget and not row["variant"] and lr is not None
                and row["lr"] is not None and math.isclose(row["lr"], lr)
                and set(row["seeds"]) <= set(rnn_queue.SEEDS)]
        # HF as a user gets it: today's defaults (no setting changed), the "almost no tweaking" claim;
        # the cells of other settings are in docs/pathological.md
        hf = [row for row in rows if row["task"] == task and row["T"] == T and row["optimizer_key"] == "hf"
              and row["budget"] == budget and row["n"] >= min_seeds and not row["variant"]]
        name = f"{TASK_LABELS.get(task, task)}, T = {T}"
        if adam and adam[0]["n"] >= min_seeds and hf:
            table += [(name, row) for row in hf + adam[:1]]
            continue
        grid = f"Adam's grid {len(tuned)}/{len(rnn_queue.LRS)} runs on seed {rnn_queue.TUNING_SEED}"
        if lr is not None:
            best = [r for r in tuned if math.isclose(r["lr"], lr)][0]["outcome"]
            grid += (f", best lr {lr:g} (" + (f"solved in {best['time_to_solve']:.0f} s" if best["solved"]
                                               else f"not solved, {100 * (best['best_success'] or 0):.1f}%") + ")")
        seeds = adam[0]["n"] if adam else 0
        pending.append(f"- {name}: {grid}; {seeds} of its {len(rnn_queue.SEEDS)} 30-minute seeds run"
                       + ("" if hf else f"; no HF cell of 30 minutes at its defaults with {min_seeds} seeds"))
    out = []
    if table:
        out += ["| problem | method | solved | median time to solve | best success of the failures |",
                "|---|---|---|---|---|"]
        for name, r in table:
            method = r["optimizer"] + (f" ({r['variant']})" if r["variant"] else "")
            median = "–" if r["median_time"] is None else f"{r['median_time']:.0f} s"
            best = "–" if r["best_failure"] is None else f"{100 * r['best_failure']:.1f}%"
            out.append(f"| {name} | {method} | {r['solved']}/{r['n']} | {median} | {best} |")
        out.append("")
    if pending:
        out += ["Not shown yet (Kingma & Ba's Adam, tuned on a grid, against HF, 30 minutes per seed):"] + pending
    return "\n".join(out) + "\n"


def update_readme(path, text):
    """Replace the lines between :data:`README_BEGIN` and :data:`README_END` of ``path`` with ``text``."""
    with open(path, encoding="utf-8") as f:
        whole = f.read()
    if README_BEGIN not in whole or README_END not in whole:
        raise SystemExit(f"{path}: no {README_BEGIN} ... {README_END} lines to replace")
    head, rest = whole.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + README_BEGIN + "\n" + text + README_END + tail)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=RESULTS, help="JSON-lines file (default bench/results/pathological.jsonl)")
    p.add_argument("--png", default=None, help="also draw the plot to this PNG")
    p.add_argument("--update", default=None, metavar="FILE", help="write the table between the marker lines of FILE")
    p.add_argument("--readme", default=None, metavar="FILE",
                   help="write the RNN head-to-head (HF against tuned Adam) into FILE's marked section")
    args = p.parse_args(argv)
    records, problems = load(args.results)
    for message in problems:
        print(message, file=sys.stderr)
    rows = cells(records)
    table = markdown(rows) + "\n" + LONGEST_INTRO + "\n\n" + longest_markdown(rows)
    print(table, end="")
    superseded = sum(r["superseded"] for r in rows)
    print(f"\n{len(records)} records, {len(rows)} cells"
          + (f"; {superseded} superseded by a later run of the same seed" if superseded else "")
          + (f"; {len(problems)} lines skipped" if problems and records else ""))
    if args.png:
        plot(rows, args.png)
        print(f"plot: {args.png}")
    if args.update:
        update_file(args.update, table)
        print(f"table written to {args.update}")
    if args.readme:
        update_readme(args.readme, readme_section(records, rows))
        print(f"head-to-head written to {args.readme}")
    return rows


if __name__ == "__main__":
    main()
