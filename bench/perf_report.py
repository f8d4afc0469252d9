"""The performance table of the README, generated from the committed results.

Reads the JSON files the performance benchmarks write into bench/results/ and
prints one row per target: what is measured, the figure, the target, met or
not, and the record it comes from. With ``--readme README.md`` the table
replaces the text between ``<!-- performance:start -->`` and
``<!-- performance:end -->``; a missing file is a row saying so, never a
figure typed by hand. Run::

    python bench/perf_report.py --readme README.md
"""

from __future__ import annotations

import argparse
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
START, END = "<!-- performance:start -->", "<!-- performance:end -->"


def load(name):
    path = os.path.join(RESULTS, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def row(what, value, target, met, record, fmt="{:.2f}×"):
    shown = "not measured" if value is None else fmt.format(value)
    verdict = "–" if met is None else ("met" if met else "**missed**")
    return f"| {what} | {shown} | {target} | {verdict} | [{record}](bench/results/{record}) |"


def rows():
    out = []
    gv = load("gv_cost")
    for key, label in (("autoencoder", "autoencoder"), ("RNN + structural damping", "RNN + structural damping")):
        s = (gv or {}).get("summary", {}).get(key)
        out.append(row(f"cached Gauss-Newton product / gradient, {label}", s and s["Gv_cached_over_grad"],
                       f"≤ {s['target']}×" if s else "", s and s["met"], "gv_cost.json"))
    ng = load("numpy_gv")
    if ng:
        r = ng["paired_ratios"]["hf Gv cached (pullback) / numpy Gv"]
        out.append(row("Gv / a hand-written numpy Gv (autoencoder)", r, "≤ 1.2×", r <= 1.2, "numpy_gv.json"))
        c = ng["cache_bytes_hf"] / ng["cache_bytes_numpy"]
        out.append(row("forward cache / what the hand-written product keeps", c, "≤ 1.5×", c <= 1.5, "numpy_gv.json"))
    uc = load("update_cost")
    for kind in ("MLP", "RNN"):
        r = next((r for r in (uc or {}).get("results", []) if r["kind"] == kind), None)
        label = "MLP 784-500-500-10" if kind == "MLP" else "RNN T = 100 + structural damping"
        if r is None:
            values = {"loss_grad": None, "per_cg_iter": None, "non_cg_gv": None}
        else:  # the updates with ρ on the gradient batch, the optimizer's default
            u = r["updates"]["gradient"]
            values = {"loss_grad": r["loss_grad_ratio"], "per_cg_iter": u["per_cg_iter_over_grad"],
                      "non_cg_gv": u["non_cg_in_gv"]}
        targets = {"loss_grad": 1.05, "per_cg_iter": 1.3 if kind == "MLP" else 1.5, "non_cg_gv": 3.0}
        for key, what in (("loss_grad", "hf loss+grad / a plain compiled function"),
                          ("per_cg_iter", "seconds per CG iteration of an update / a gradient"),
                          ("non_cg_gv", "an update beside CG, in Gv products (equal batches)")):
            v, t = values[key], targets[key]
            fmt = "{:.2f}" if key == "non_cg_gv" else "{:.2f}×"
            tgt = f"≤ {t}" + ("" if key == "non_cg_gv" else "×")
            out.append(row(f"{what}, {label}", v, tgt, None if v is None else v <= t, "update_cost.json", fmt))
    tr = load("torch_reference")
    if tr:
        t = tr["target"]
        out.append(row(f"hf loss+grad / PyTorch's (CPU, float64, one thread), MLP 784-500-500-10", t["value"],
                       f"≤ {t['target']}×", t["met"], "torch_reference.json"))
    us = load("update_split")
    if us:
        for res in us["results"]:
            if "autoencoder" in res["model"] and res["preconditioner"]:
                pre = res["share"]["preconditioner (whole build)"]
                py = res["share"]["Python outside compiled functions"]
                out.append(row("autoencoder update: preconditioner share", 100 * pre, "≤ 5 %", pre <= 0.05,
                               "update_split.json", "{:.1f} %"))
                out.append(row("autoencoder update: Python outside compiled calls", 100 * py, "≤ 3 %", py <= 0.03,
                               "update_split.json", "{:.1f} %"))
    cs = load("cold_start")
    for k, label in (("cold", "new PyTensor cache"), ("warm", "warm cache")):
        t = (cs or {}).get("targets", {}).get(k)
        out.append(row(f"README quick start to its first update, {label}", t and t["value"],
                       f"≤ {t['target']:.0f} s" if t else "", t and t["met"], "cold_start.json", "{:.1f} s"))
    for key, mode in (("cold_over_plain", "PyTensor's default (numba) mode"), ("cold_over_plain_c", "hf's C mode")):
        if cs and key in cs:
            out.append(row(f"the same, new cache / a plain `pytensor.function` of its loss and gradient, {mode}",
                           cs[key], "", None, "cold_start.json"))
    return out


def table():
    head = ["| what (one core, one BLAS thread) | measured | target | | record |", "|---|---|---|---|---|"]
    return "\n".join(head + rows())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--readme", help="replace the table between the performance markers of this file")
    args = p.parse_args(argv)
    text = table()
    print(text)
    if args.readme:
        with open(args.readme) as f:
            doc = f.read()
        if START not in doc or END not in doc:
            raise SystemExit(f"{args.readme}: no {START} ... {END} markers")
        doc = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: f"{START}\n{text}\n{END}", doc, flags=re.S)
        with open(args.readme, "w") as f:
            f.write(doc)


if __name__ == "__main__":
    main()
