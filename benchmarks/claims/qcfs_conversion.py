"""QCFS / optimal ANN-SNN conversion (Bu et al., ICLR 2022) on real N-MNIST: accuracy vs number
of steps T = 1…64 of the converted IF network with initial membrane v₀ = θ/2 against v₀ = 0.

Usage::

    python benchmarks/claims/qcfs_conversion.py [--data ../shared/data/nmnist] [--retrain]

The claim: with the quantisation-clip-floor-shift activation in training and v₀ = θ/2 at
inference, the converted SNN's expected conversion error is zero, so the low-latency loss of
conversion mostly disappears. Here: the shipped QCFS checkpoint (``models/claims/checkpoints/
qcfs_claims.pth``) is imported twice (``v_init=0.5`` and ``v_init=0.0``) and run by the stepped
engine for 64 steps on each of the 100 test recordings, once per setting; the readout after every
step gives the whole accuracy-vs-T curve. The ANN's accuracy is computed here in NumPy from the
same imported weights (QCFS activation ``λ·clip(floor(x·L/λ + ½)/L, 0, 1)``).

Prints the table, writes ``benchmarks/results/claims_qcfs.json`` and
``docs/figures/claims_qcfs.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims_common as cc  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.evaluate import evaluate  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402

NAME = "qcfs"
CHECKPOINT = cc.CHECKPOINTS / "qcfs_claims.pth"
REPORT_T = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
LOW_T = 16          # "low latency": T ≤ 16 for the summary of the conversion loss


def qcfs_activation(levels: int):
    """The QCFS activation ``λ·clip(floor(h·L/λ + ½)/L, 0, 1)`` with λ the IF population's θ."""
    def act(h, layer):
        lam = float(np.asarray(layer.threshold).reshape(-1)[0])
        return lam * np.clip(np.floor(h * levels / lam + 0.5) / levels, 0.0, 1.0)
    return act


def unevenness(images: np.ndarray, levels: int, steps: int) -> dict[str, float]:
    """Per IF layer, the fraction of neurons whose spike count after ``steps`` (= L) steps with
    v₀ = θ/2 differs from the ANN's quantised level (``floor(h·L/λ + ½)`` clipped to 0…L)."""
    net = es.load(CHECKPOINT, input_shape=cc.INPUT_SHAPE, pool="avg", v_init=0.5)
    expected: dict[str, list] = {}

    def record(h, layer):
        lam = float(np.asarray(layer.threshold).reshape(-1)[0])
        level = np.clip(np.floor(h * levels / lam + 0.5), 0, levels)
        expected.setdefault(layer.name, []).append(level)
        return lam * level / levels

    cc.numpy_forward(net, images, record)
    off = {name: [] for name in expected}
    for i, x in enumerate(images):
        res = es.simulate(net, x, steps=steps, input_kind="analog", record="spikes")
        for name in off:
            off[name].append(res.rasters[name].sum(axis=0) != expected[name][0][i])
    return {name: float(np.mean(v)) for name, v in off.items()}


def run(data: str, t_max: int, levels: int) -> dict:
    """Simulate both settings on the test split; return curves, ANN accuracy and the summary."""
    test = LocalNMNIST(data, "test")
    out: dict = {"t_max": t_max, "levels": levels, "samples": len(test), "curves": {}}
    for v_init in (0.5, 0.0):
        net = es.load(CHECKPOINT, input_shape=cc.INPUT_SHAPE, pool="avg", v_init=v_init)
        ev = evaluate(net, test, steps=t_max, dt_us=1000.0, progress=True)
        curve = ev.summary["curve"]
        out["curves"][f"{v_init:g}"] = {
            "accuracy": [c["accuracy"] for c in curve],
            "synops_per_sample": [c["synops_per_sample"] for c in curve],
            "energy_pj_per_sample": [c["energy_pj_per_sample"] for c in curve],
            "spikes_per_sample_at_end": ev.summary["spikes_per_sample"],
            "predictions_at_end": [r["prediction"] for r in ev.records]}
    images, labels = cc.count_images(test)
    ann = cc.numpy_forward(es.load(CHECKPOINT, input_shape=cc.INPUT_SHAPE, pool="avg"), images, qcfs_activation(levels))
    out["ann_accuracy"] = float(np.mean(np.argmax(ann, axis=1) == labels))
    out["fraction_off_level_at_T_eq_L"] = unevenness(images, levels, levels)
    half = np.array(out["curves"]["0.5"]["accuracy"])
    zero = np.array(out["curves"]["0"]["accuracy"])
    loss_half = np.clip(out["ann_accuracy"] - half[:LOW_T], 0, None).mean()
    loss_zero = np.clip(out["ann_accuracy"] - zero[:LOW_T], 0, None).mean()
    out["summary"] = {
        "mean_loss_T1_16_v_half": float(loss_half), "mean_loss_T1_16_v_zero": float(loss_zero),
        "fraction_of_loss_removed": float(1 - loss_half / loss_zero) if loss_zero > 0 else None,
        "first_T_within_2pts_of_ann": {k: _first_within(np.array(c["accuracy"]), out["ann_accuracy"], 0.02)
                                       for k, c in out["curves"].items()}}
    return out


def _first_within(acc: np.ndarray, target: float, tol: float) -> int | None:
    hits = np.flatnonzero(acc >= target - tol - 1e-12)
    return int(hits[0]) + 1 if hits.size else None


def table(res: dict) -> str:
    half, zero = res["curves"]["0.5"], res["curves"]["0"]
    rows = []
    for t in REPORT_T:
        if t <= res["t_max"]:
            k = t - 1
            rows.append([t, f"{half['accuracy'][k]:.2f}", f"{zero['accuracy'][k]:.2f}",
                         f"{res['ann_accuracy'] - half['accuracy'][k]:.2f}",
                         f"{res['ann_accuracy'] - zero['accuracy'][k]:.2f}",
                         cc.fmt_int(half["synops_per_sample"][k]), cc.fmt_int(zero["synops_per_sample"][k])])
    head = ["T", "accuracy v₀ = θ/2", "accuracy v₀ = 0", "loss v₀ = θ/2", "loss v₀ = 0",
            "synops/sample v₀ = θ/2", "synops/sample v₀ = 0"]
    s = res["summary"]
    first = s["first_T_within_2pts_of_ann"]
    ann = res["ann_accuracy"]
    removed = []
    for t in (4, 8, 16, 32):
        lh, lz = ann - half["accuracy"][t - 1], ann - zero["accuracy"][t - 1]
        removed.append(f"T = {t}: {lh:.2f} vs {lz:.2f}" + (f" ({1 - lh / lz:.0%} removed)" if lz > 0 else ""))
    return (cc.markdown_table(head, rows, "r" * len(head)) + "\n\n"
            f"QCFS ANN (L = {res['levels']}, NumPy forward pass of the same weights): accuracy "
            f"{res['ann_accuracy']:.2f}. Loss = ANN accuracy − SNN accuracy. Mean loss over T = 1…{LOW_T}: "
            f"{s['mean_loss_T1_16_v_half']:.3f} with v₀ = θ/2, {s['mean_loss_T1_16_v_zero']:.3f} with v₀ = 0 "
            f"(θ/2 removes {s['fraction_of_loss_removed']:.0%} of it); loss with θ/2 vs v₀ = 0 at "
            + "; ".join(removed) + f". First T within 2 points of the ANN: {first['0.5']} (θ/2), "
            f"{first['0'] if first['0'] is not None else 'none up to ' + str(res['t_max'])} (v₀ = 0). "
            f"At T = L = {res['levels']} with θ/2, spike counts that differ from the ANN's quantised level: "
            + ", ".join(f"{name} {frac:.0%}" for name, frac in res["fraction_off_level_at_T_eq_L"].items())
            + " of the neurons (test recordings).")


def figure(res: dict):
    import matplotlib.pyplot as plt
    t = np.arange(1, res["t_max"] + 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label, style in (("0.5", "v₀ = θ/2", "-"), ("0", "v₀ = 0", "--")):
        ax.plot(t, res["curves"][key]["accuracy"], style, label=f"SNN, {label}")
        ax2.plot(t, np.array(res["curves"][key]["synops_per_sample"]) / 1e6, style, label=label)
    ax.axhline(res["ann_accuracy"], color="k", lw=0.8, ls=":", label=f"QCFS ANN ({res['ann_accuracy']:.2f})")
    ax.set(xscale="log", xlabel="steps T", ylabel="accuracy (100 test recordings)", ylim=(0, 1),
           title="QCFS conversion on N-MNIST: accuracy vs T")
    ax.set_xticks([1, 2, 4, 8, 16, 32, 64], labels=["1", "2", "4", "8", "16", "32", "64"])
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    ax2.set(xlabel="steps T", ylabel="synops per sample (millions)", title="cost (exact synops, all synapses)")
    ax2.legend()
    ax2.grid(alpha=0.3)
    return fig


def main(argv=None) -> int:
    args = cc.parser(__doc__.splitlines()[0]).parse_args(argv)
    if args.retrain:
        cc.retrain(NAME, args.data, args.threads)
    info = cc.sidecar(CHECKPOINT)
    res = run(args.data, int(info["t_max"]), int(info["levels"]))
    res["checkpoint"] = str(CHECKPOINT.relative_to(cc.ROOT))
    res["command"] = "python benchmarks/claims/qcfs_conversion.py"
    print(table(res))
    if not args.no_write:
        print("wrote", cc.write_json(NAME, res), cc.save_figure(figure(res), NAME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
