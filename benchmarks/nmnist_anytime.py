"""Anytime-cutoff results of the shipped N-MNIST model on the 100 real test recordings.

Usage::

    python benchmarks/nmnist_anytime.py [--data ../shared/data/nmnist] [--engine stepped] [--epsilon 0.01 0.02 0.05]

Calibrates the ``gap`` policy on the 1000 training recordings for each ε, evaluates on the 100
test recordings with no cutoff and with each calibrated policy (one simulation per sample; the
policies reuse the same traces), prints a markdown table and writes
``benchmarks/results/nmnist_anytime.json`` and the figures under ``docs/figures/``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))

import eventsim as es  # noqa: E402
from eventsim.counting import get_energy_table  # noqa: E402
from eventsim.cutoff import calibrate_gap, make_policy  # noqa: E402
from eventsim.evaluate import aggregate, evaluate, gap_matrix  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "nmnist"))
    parser.add_argument("--model", default=str(ROOT / "models" / "nmnist" / "nmnist_if.npz"))
    parser.add_argument("--engine", default="stepped")
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.01, 0.02, 0.05])
    parser.add_argument("--figures", default=str(ROOT / "docs" / "figures"))
    args = parser.parse_args(argv)
    net = es.load(args.model)
    train = evaluate(net, LocalNMNIST(args.data, "train"), engine=args.engine, progress=True)
    test = evaluate(net, LocalNMNIST(args.data, "test"), engine=args.engine, progress=True)
    dt_us = test.summary["dt_us"]
    gaps, correct, grid = gap_matrix(train.traces, dt_us)
    table = get_energy_table("45nm")
    names = tuple(test.layer_names)
    rows = [("none", None, test)]
    for eps in args.epsilon:
        beta = calibrate_gap(gaps, correct, eps)
        policy = make_policy("gap", calibration={"grid_us": grid, "beta": beta, "epsilon": eps})
        rows.append(("gap", eps, aggregate(test.traces, policy, table, dt_us, args.engine, "all", names)))
    out = []
    print("| policy | ε | accuracy | mean latency ms | synops/sample | energy µJ/sample | synop saving |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, eps, ev in rows:
        s = ev.summary
        out.append({"policy": name, "epsilon": eps, "accuracy": s["accuracy"],
                    "latency_us_mean": s["cutoff"]["t_us_mean"], "synops_per_sample": s["synops_per_sample"],
                    "energy_pj_per_sample": s["energy_pj_per_sample"], "synops_saving": s["cutoff"]["synops_saving"]})
        print(f"| {name} | {'' if eps is None else eps} | {s['accuracy']:.2f} | {s['cutoff']['t_us_mean'] / 1000:.0f} | "
              f"{s['synops_per_sample']:,.0f} | {s['energy_pj_per_sample'] / 1e6:.3f} | {s['cutoff']['synops_saving']:.0%} |")
    tmp = ROOT / "build" / "nmnist_anytime_figs"
    rows[1][2].write(tmp)            # figures of the tightest calibrated policy (smallest ε)
    figs = Path(args.figures)
    figs.mkdir(parents=True, exist_ok=True)
    for f in ("accuracy_vs_time.png", "accuracy_vs_cost.png"):
        shutil.copy(tmp / f, figs / f"nmnist_{f}")
    result = {"engine": args.engine, "dt_us": dt_us, "test_samples": test.summary["samples"],
              "train_samples": train.summary["samples"], "rows": out,
              "curve": test.summary["curve"]}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "nmnist_anytime.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
