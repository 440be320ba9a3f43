"""DIET-SNN (Rathi & Roy 2020) on real N-MNIST: with trained leak and threshold, an SNN fed the
analog input directly reaches the accuracy of the ANN of the same architecture in a few steps, at
a fraction of its energy.

Usage::

    python benchmarks/claims/diet_energy.py [--data ../shared/data/nmnist] [--retrain]

The shipped DIET-SNN (``models/claims/checkpoints/diet_claims.pth``, T = 5) runs in eventsim's
stepped engine on the 100 test recordings; spikes, synops (every existing synapse) and the first
layer's dense MACs (it receives the analog image every step) are counted exactly. The baseline
is the ReLU ANN of the same architecture that the SNN was converted from before its own training
(``diet_claims_ann.pt``): its accuracy is computed here with eventsim's NumPy forward pass, its
cost is one dense pass, ``Σ synapse_counts`` MACs. Energy uses the 45 nm table (E_AC 0.9 pJ per
synop, E_MAC 4.6 pJ per MAC; Horowitz, ISSCC 2014), as the DIET-SNN paper does.

Prints the table, writes ``benchmarks/results/claims_diet.json`` and ``docs/figures/claims_diet.png``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims_common as cc  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.checkpoints import ann_forward, read_checkpoint, split_state_dict  # noqa: E402
from eventsim.checkpoints.convert import parse_architecture  # noqa: E402
from eventsim.counting import get_energy_table, synapse_counts  # noqa: E402
from eventsim.encodings import encode  # noqa: E402
from eventsim.evaluate import evaluate  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402

NAME = "diet"
CHECKPOINT = cc.CHECKPOINTS / "diet_claims.pth"
ANN_CHECKPOINT = cc.CHECKPOINTS / "diet_claims_ann.pt"
TABLE = "45nm"


def ann_accuracy(images: np.ndarray, labels: np.ndarray) -> tuple[float, list[tuple]]:
    """Accuracy of the ANN baseline (eventsim's NumPy forward pass) and its weighted layer shapes."""
    state, extras = split_state_dict(read_checkpoint(ANN_CHECKPOINT), str(ANN_CHECKPOINT))
    stages = parse_architecture(state, extras["architecture"], ANN_CHECKPOINT.name)
    logits = ann_forward(stages, images)[-1]
    shapes = [tuple(s.weight.shape) for s in stages if s.kind in ("conv", "linear")]
    return float(np.mean(np.argmax(logits, axis=1) == labels)), shapes


def run(data: str) -> dict:
    """Evaluate the DIET-SNN and the ANN on the test split; return the comparison."""
    test = LocalNMNIST(data, "test")
    net = es.load(CHECKPOINT, input_shape=cc.INPUT_SHAPE)
    steps = int(net.metadata["timesteps"])
    ev = evaluate(net, test, steps=steps, dt_us=1000.0, energy_table=TABLE, progress=True)
    s = ev.summary
    # per-layer counts of the same runs (evaluate keeps totals only)
    layer_synops: dict[str, float] = {}
    layer_macs: dict[str, float] = {}
    for i in range(len(test)):
        enc = encode(net, test[i][0], i, steps, 1000.0, 0)
        res = es.simulate(net, enc.inputs, steps=enc.steps, dt_us=enc.dt_us, input_kind=enc.input_kind)
        for name, v in res.synops_per_layer.items():
            layer_synops[name] = layer_synops.get(name, 0.0) + v / len(test)
        for name, v in res.macs_per_layer.items():
            layer_macs[name] = layer_macs.get(name, 0.0) + v / len(test)
    images, labels = cc.count_images(test)
    ann_acc, ann_shapes = ann_accuracy(images, labels)
    snn_shapes = [tuple(layer.weight.shape) for layer in net.layers if layer.synaptic]
    if ann_shapes != snn_shapes:
        raise SystemExit(f"the ANN's layers {ann_shapes} differ from the SNN's {snn_shapes}")
    dense = synapse_counts(net)
    table = get_energy_table(TABLE)
    ann_macs = float(sum(dense.values()))
    ann_energy = table.energy_pj(0, ann_macs)
    snn_energy = s["energy_pj_per_sample"]
    return {
        "timesteps": steps, "samples": s["samples"], "energy_table": s["energy_table"],
        "synop_convention": s["synop_convention"],
        "snn": {"accuracy": s["accuracy"], "spikes_per_sample": s["spikes_per_sample"],
                "synops_per_sample": s["synops_per_sample"], "macs_per_sample": s["macs_per_sample"],
                "energy_pj_per_sample": snn_energy,
                "energy_pj_ac": table.energy_pj(s["synops_per_sample"], 0),
                "energy_pj_mac": table.energy_pj(0, s["macs_per_sample"]),
                "accuracy_per_step": [c["accuracy"] for c in s["curve"]],
                "synops_per_layer": layer_synops, "macs_per_layer": layer_macs,
                "spikes_per_layer_over_time": s["spikes_per_layer_over_time"],
                "thresholds": [float(np.asarray(lay.threshold).reshape(-1)[0]) for lay in net.layers
                               if isinstance(lay, es.LIF)],
                "leaks": [float(np.asarray(lay.leak).reshape(-1)[0]) for lay in net.layers if isinstance(lay, es.LIF)],
                "predictions": [r["prediction"] for r in ev.records]},
        "ann": {"accuracy": ann_acc, "macs_per_sample": ann_macs, "macs_per_layer": dense,
                "energy_pj_per_sample": ann_energy},
        "energy_ratio_ann_over_snn": ann_energy / snn_energy,
        "synop_ratio_ann_macs_over_snn_ops": ann_macs / (s["synops_per_sample"] + s["macs_per_sample"]),
    }


def table(res: dict) -> str:
    snn, ann = res["snn"], res["ann"]
    head = ["model", "steps", "accuracy", "spikes/sample", "synops/sample", "MACs/sample",
            "energy µJ/sample (45 nm)", "ANN energy ÷ this"]
    rows = [["ANN (ReLU, same architecture)", "1 pass", f"{ann['accuracy']:.2f}", "–", "–",
             cc.fmt_int(ann["macs_per_sample"]), f"{ann['energy_pj_per_sample'] / 1e6:.3f}", "1.0×"],
            ["DIET-SNN (trained λ, θ)", res["timesteps"], f"{snn['accuracy']:.2f}", cc.fmt_int(snn["spikes_per_sample"]),
             cc.fmt_int(snn["synops_per_sample"]), cc.fmt_int(snn["macs_per_sample"]),
             f"{snn['energy_pj_per_sample'] / 1e6:.3f}", f"{res['energy_ratio_ann_over_snn']:.1f}×"]]
    layers = list(ann["macs_per_layer"])
    e = res["energy_table"]
    lrows = []
    for name in layers:
        a_pj = ann["macs_per_layer"][name] * e["e_mac_pj"]
        s_pj = snn["synops_per_layer"].get(name, 0) * e["e_ac_pj"] + snn["macs_per_layer"].get(name, 0) * e["e_mac_pj"]
        lrows.append([name, cc.fmt_int(ann["macs_per_layer"][name]), cc.fmt_int(snn["synops_per_layer"].get(name, 0)),
                      cc.fmt_int(snn["macs_per_layer"].get(name, 0)), f"{a_pj / 1e6:.3f}", f"{s_pj / 1e6:.3f}",
                      f"{a_pj / s_pj:.1f}×" if s_pj else "–"])
    rest_ann = sum(ann["macs_per_layer"][n] for n in layers[1:]) * e["e_mac_pj"]
    rest_snn = sum(snn["synops_per_layer"].get(n, 0) for n in layers[1:]) * e["e_ac_pj"]
    acc = " / ".join(f"{a:.2f}" for a in snn["accuracy_per_step"])
    return (cc.markdown_table(head, rows, "lrrrrrrr") + "\n\n"
            + cc.markdown_table(["layer", "ANN MACs", "SNN synops/sample", "SNN MACs/sample", "ANN µJ", "SNN µJ",
                                 "ANN ÷ SNN"], lrows) + "\n\n"
            f"Beyond the first layer the SNN spends {rest_snn / 1e6:.3f} µJ where the ANN spends {rest_ann / 1e6:.3f} µJ "
            f"({rest_ann / rest_snn:.1f}× less); the first layer, fed the analog image at every step, costs "
            f"{res['timesteps']}× its ANN MACs. "
            f"SNN accuracy after steps 1…{res['timesteps']}: {acc}. Trained thresholds θ = "
            f"[{', '.join(f'{v:.2f}' for v in snn['thresholds'])}], leaks λ = "
            f"[{', '.join(f'{v:.3f}' for v in snn['leaks'])}]. Energy = synops·0.9 pJ + MACs·4.6 pJ; the SNN's MACs are "
            f"its first conv fed the analog image at every step ({snn['energy_pj_mac'] / 1e6:.3f} µJ of its "
            f"{snn['energy_pj_per_sample'] / 1e6:.3f} µJ).")


def figure(res: dict):
    import matplotlib.pyplot as plt
    snn, ann = res["snn"], res["ann"]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    t = np.arange(1, res["timesteps"] + 1)
    ax.plot(t, snn["accuracy_per_step"], "o-", label="DIET-SNN (readout after step t)")
    ax.axhline(ann["accuracy"], color="k", ls=":", lw=0.8, label=f"ANN, same architecture ({ann['accuracy']:.2f})")
    ax.set(xlabel="step t", ylabel="accuracy (100 test recordings)", ylim=(0, 1), xticks=t,
           title="DIET-SNN on N-MNIST: accuracy vs step")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    names = ["ANN", f"DIET-SNN, T={res['timesteps']}"]
    mac = [ann["energy_pj_per_sample"] / 1e6, snn["energy_pj_mac"] / 1e6]
    ac = [0.0, snn["energy_pj_ac"] / 1e6]
    ax2.bar(names, mac, label="MACs (4.6 pJ)")
    ax2.bar(names, ac, bottom=mac, label="synops (0.9 pJ)")
    ax2.set(ylabel="energy per sample, µJ (45 nm)",
            title=f"energy: ANN ÷ SNN = {res['energy_ratio_ann_over_snn']:.1f}×")
    ax2.legend()
    return fig


def main(argv=None) -> int:
    args = cc.parser(__doc__.splitlines()[0]).parse_args(argv)
    if args.retrain:
        cc.retrain(NAME, args.data, args.threads)
    info = cc.sidecar(CHECKPOINT)
    res = run(args.data)
    res["training_record"] = {k: info[k] for k in ("initial_thresholds", "thresholds", "leak", "ann_epochs",
                                                    "snn_epochs", "percentile")}
    res["training_record"]["converted_accuracy_pytorch"] = info["pytorch"]["converted_accuracy"]
    res["checkpoint"] = str(CHECKPOINT.relative_to(cc.ROOT))
    res["ann_checkpoint"] = str(ANN_CHECKPOINT.relative_to(cc.ROOT))
    res["command"] = "python benchmarks/claims/diet_energy.py"
    print(table(res))
    tr = res["training_record"]
    print(f"\nTraining record ({CHECKPOINT.name}.json, PyTorch): thresholds after conversion "
          f"{', '.join(f'{v:.2f}' for v in tr['initial_thresholds'])}, after SNN training "
          f"{', '.join(f'{v:.2f}' for v in tr['thresholds'])}; converted SNN before its training: accuracy "
          f"{tr['converted_accuracy_pytorch']:.2f} at T = {res['timesteps']}.")
    if not args.no_write:
        print("wrote", cc.write_json(NAME, res), cc.save_figure(figure(res), NAME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
