"""BNTT (Kim & Panda 2021) on real N-MNIST: accuracy vs time step of an SNN with one BatchNorm per
step, and the early exit chosen from the BatchNorm scales alone (the paper's rule: stop at the
first step whose layer-average γ falls below a threshold), with its exact synop saving.

Usage::

    python benchmarks/claims/bntt_early_exit.py [--data ../shared/data/nmnist] [--retrain]

The shipped checkpoint (``models/claims/checkpoints/bntt_claims_timestep<T>_leak<λ>_bestmodel.pth.tar``)
runs in eventsim's stepped engine on the 100 test recordings (Poisson input, seed 0), one
simulation each; the readout after every step gives the accuracy-vs-step curve. The exit rule
needs γ itself, not the folded gain γ/√(σ²+ε) that the imported network's ``step_gain`` carries:
the BNTT importer records the per-step layer-average γ in ``network.metadata["bn_gamma_mean"]``,
which ``make_policy("fixed-exit", threshold=..., network=net)`` reads. (The per-layer γ of the
figure are read from the checkpoint with :func:`eventsim.checkpoints.read_state_dict`.) The exit
step depends on the network only, never on the input.

Prints the table, writes ``benchmarks/results/claims_bntt.json`` and ``docs/figures/claims_bntt.png``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims_common as cc  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.checkpoints import read_state_dict  # noqa: E402
from eventsim.counting import get_energy_table  # noqa: E402
from eventsim.cutoff import bn_gain_per_step, make_policy  # noqa: E402
from eventsim.evaluate import aggregate, evaluate  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402

NAME = "bntt"
PATTERN = "bntt_claims_timestep*_leak*_bestmodel.pth.tar"
#: thresholds on the layer-average γ, relative to its largest value over the steps
RELATIVE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
MAX_DROP = 0.01
TABLE = get_energy_table("45nm")


def gamma_per_step(path: Path) -> dict[str, np.ndarray]:
    """Mean γ over channels per BNTT layer and step (``bntt<n>.<t>.weight``), and their mean over
    layers (``"mean"``), from the checkpoint's state dict."""
    state = read_state_dict(path)
    pat = re.compile(r"(bntt[a-z_]*\d*)\.(\d+)\.weight")
    layers: dict[str, dict[int, float]] = {}
    for key, value in state.items():
        m = pat.fullmatch(key)
        if m:
            layers.setdefault(m.group(1), {})[int(m.group(2))] = float(np.mean(value, dtype=np.float64))
    out = {name: np.array([steps[t] for t in sorted(steps)]) for name, steps in sorted(layers.items())}
    out["mean"] = np.mean([v for v in out.values()], axis=0)
    return out


def run(data: str) -> dict:
    ckpt = cc.checkpoint_path(PATTERN)
    net = es.load(ckpt, input_shape=cc.INPUT_SHAPE)
    steps = int(net.metadata["timesteps"])
    test = LocalNMNIST(data, "test")
    ev = evaluate(net, test, steps=steps, dt_us=1000.0, seed=0, progress=True)
    ev_train = evaluate(net, LocalNMNIST(data, "train"), steps=steps, dt_us=1000.0, seed=0, progress=True)
    names = tuple(layer.name for layer in net.layers)
    end = ev.summary
    gammas = gamma_per_step(ckpt)
    gamma = bn_gain_per_step(net)            # metadata["bn_gamma_mean"]: what fixed-exit reads
    if not np.allclose(gamma, gammas["mean"], rtol=1e-9):
        raise SystemExit(f"the importer's bn_gamma_mean {gamma} differs from the checkpoint's γ {gammas['mean']}")
    folded = np.mean([np.abs(layer.step_gain).mean(axis=1) for layer in net.layers
                      if getattr(layer, "step_gain", None) is not None], axis=0)   # γ/√(σ²+ε), not used
    rows = []
    for rel in RELATIVE_THRESHOLDS:
        threshold = rel * float(gamma.max())
        policy = make_policy("fixed-exit", threshold=threshold, network=net)
        agg = aggregate(ev.traces, policy, TABLE, 1000.0, "stepped", "all", names)
        s = agg.summary
        row = agg.records[0]["cutoff_row"]          # the same for every sample: a property of the network
        train = aggregate(ev_train.traces, policy, TABLE, 1000.0, "stepped", "all", names).summary
        rows.append({"relative_threshold": rel, "threshold": threshold, "exit_row": row, "steps_run": row + 1,
                     "accuracy": s["accuracy"], "synops_per_sample": s["synops_per_sample"],
                     "synops_saving": s["cutoff"]["synops_saving"], "energy_pj_per_sample": s["energy_pj_per_sample"],
                     "train_accuracy": train["accuracy"], "train_accuracy_drop": train["accuracy_at_end"] - train["accuracy"]})
    # the threshold: the earliest exit whose accuracy on the training split is within MAX_DROP of the end
    ok = [r for r in rows if r["train_accuracy_drop"] <= MAX_DROP + 1e-12]
    chosen = min(ok, key=lambda r: r["steps_run"]) if ok else None
    curve = end["curve"]
    return {"checkpoint": str(ckpt.relative_to(cc.ROOT)), "timesteps": steps, "leak": net.metadata["leak"],
            "samples": end["samples"], "accuracy_at_end": end["accuracy_at_end"],
            "synops_per_sample_at_end": end["synops_per_sample_at_end"],
            "accuracy_per_step": [c["accuracy"] for c in curve],
            "synops_per_sample_per_step": [c["synops_per_sample"] for c in curve],
            "gamma_mean_per_step": gamma, "gamma_per_layer": {k: v for k, v in gammas.items() if k != "mean"},
            "folded_gain_mean_per_step": folded, "exits": rows, "chosen": chosen, "max_train_drop": MAX_DROP,
            "train_samples": ev_train.summary["samples"], "train_accuracy_at_end": ev_train.summary["accuracy_at_end"],
            "best_accuracy_step": int(np.argmax([c["accuracy"] for c in curve])) + 1,
            "predictions_at_end": [r["prediction_final"] for r in ev.records]}


def table(res: dict) -> str:
    head = ["threshold on mean γ", "exit after step", "train: drop", "accuracy at exit", "accuracy at end",
            "synops/sample at exit", "synops/sample at end", "synop saving"]
    rows = [[f"{'**' if r is res['chosen'] else ''}{r['threshold']:.3f} ({r['relative_threshold']:.0%} of max)"
             f"{'**' if r is res['chosen'] else ''}", f"{r['steps_run']} of {res['timesteps']}",
             f"{r['train_accuracy_drop']:+.3f}", f"{r['accuracy']:.2f}", f"{res['accuracy_at_end']:.2f}",
             cc.fmt_int(r["synops_per_sample"]), cc.fmt_int(res["synops_per_sample_at_end"]), f"{r['synops_saving']:.0%}"]
            for r in res["exits"]]
    acc = res["accuracy_per_step"]
    g = res["gamma_mean_per_step"]
    shown = sorted({1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, res["timesteps"]})
    curve = cc.markdown_table(["step", "accuracy after the step", "layer-average γ", "synops/sample so far"],
                              [[t, f"{acc[t - 1]:.2f}", f"{g[t - 1]:.3f}",
                                cc.fmt_int(res["synops_per_sample_per_step"][t - 1])]
                               for t in shown if t <= res["timesteps"]], "rrrr")
    return (cc.markdown_table(head, rows, "lrrrrrrr") + "\n\n" + curve + "\n\n"
            f"γ: mean over channels of `bntt<n>.<t>.weight`, averaged over the {len(res['gamma_per_layer'])} BNTT "
            f"layers; range over steps {min(g):.3f}–{max(g):.3f}. Bold: the chosen threshold, the earliest exit whose "
            f"accuracy on the {res['train_samples']} training recordings is within {res['max_train_drop']:.0%} of running "
            f"all {res['timesteps']} steps (train accuracy at the end {res['train_accuracy_at_end']:.3f}). Best test "
            f"accuracy first reached after step {res['best_accuracy_step']}.")


def figure(res: dict):
    import matplotlib.pyplot as plt
    t = np.arange(1, res["timesteps"] + 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10.5, 3.8))
    ax.plot(t, res["accuracy_per_step"], "o-", ms=4, label="accuracy after step t")
    ax.plot([r["steps_run"] for r in res["exits"]], [r["accuracy"] for r in res["exits"]], "*", ms=9, color="0.5",
            label="γ-rule exits (thresholds in the table)")
    ch = res["chosen"]
    if ch is not None:
        ax.plot([ch["steps_run"]], [ch["accuracy"]], "*", ms=16, color="C3",
                label=f"chosen exit: step {ch['steps_run']}, saves {ch['synops_saving']:.0%} synops")
    ax.set(xlabel="time step t", ylabel="accuracy (100 test recordings)", ylim=(0, 1), xticks=t[::2],
           title="BNTT on N-MNIST: accuracy vs step")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    for name, values in res["gamma_per_layer"].items():
        ax2.plot(t, values, lw=0.8, label=f"{name} γ")
    ax2.plot(t, res["gamma_mean_per_step"], "k-", lw=2, label="layer-average γ")
    if ch is not None:
        ax2.axhline(ch["threshold"], color="C3", ls="--", lw=1, label=f"exit threshold {ch['threshold']:.3f}")
    ax2.set(xlabel="time step t", ylabel="mean BatchNorm scale γ", xticks=t[::2], title="BNTT scales per step")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    return fig


def main(argv=None) -> int:
    args = cc.parser(__doc__.splitlines()[0]).parse_args(argv)
    if args.retrain:
        cc.retrain(NAME, args.data, args.threads)
    res = run(args.data)
    res["command"] = "python benchmarks/claims/bntt_early_exit.py"
    print(table(res))
    if not args.no_write:
        print("wrote", cc.write_json(NAME, res), cc.save_figure(figure(res), NAME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
