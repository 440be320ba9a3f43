"""Train the QCFS claim model: an ANN with quantisation-clip-floor-shift activations (Bu et al.,
ICLR 2022) for conversion to an IF network, in the key layout of github.com/putshua/ANN_SNN_QCFS.

Usage::

    python models/claims/train_qcfs.py [--data ../shared/data/nmnist] [--epochs 40] [--threads 1]

Writes ``models/claims/checkpoints/qcfs_claims.pth`` (``torch.save(model.state_dict())``), its
``.json`` (settings and the PyTorch model's results on the 100 test recordings: the ANN's
accuracy, and the converted SNN's accuracy after every step T = 1…64 for v₀ = θ/2 and v₀ = 0) and
its model card ``.md``. The PyTorch module is ``models/seeds/qcfs.py:QcfsVGG`` (SNN mode: IF with
``m ≥ θ`` and subtract reset, the analog count image fed every step).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claimlib  # noqa: E402
from claimlib import CHECKPOINTS, Timer, accuracy_of, batched, nmnist_data, predictions, torch  # noqa: E402

import qcfs  # noqa: E402  (models/seeds)

CHECKPOINT = CHECKPOINTS / "qcfs_claims.pth"
WIDTHS = (16, 32)
HIDDEN = 64
LEVELS = 4                      # L, the quantisation steps of the QCFS activation
T_MAX = 64
REPORT_T = (1, 2, 4, 8, 16, 32, 64)


def build(levels: int = LEVELS) -> "qcfs.QcfsVGG":
    """The QCFS VGG of the claim: two conv blocks (16, 32 channels), a 64-unit hidden layer."""
    model = qcfs.QcfsVGG(widths=WIDTHS, hidden=HIDDEN)
    for m in model.modules():
        if isinstance(m, qcfs.QCFS):
            m.levels = levels
    return model


def load_reference(path: Path = CHECKPOINT, dtype=torch.float64) -> "qcfs.QcfsVGG":
    """The trained model from ``path`` (with ``torch.load``), in eval mode."""
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(dtype).eval()


def snn_logits(model: "qcfs.QcfsVGG", images: np.ndarray, steps: int, v_init: float) -> np.ndarray:
    """Cumulative SNN logits ``(N, steps, classes)`` of the PyTorch IF conversion (float64)."""
    return batched(lambda x: model.simulate(x, steps, v_init)[0].transpose(0, 1), images, batch=25)


def evaluate(model: "qcfs.QcfsVGG", images: np.ndarray, labels: np.ndarray) -> dict:
    """ANN accuracy and SNN accuracy per step for v₀ = θ/2 and v₀ = 0 (PyTorch, float64)."""
    ann = batched(model, images)
    out = {"ann_accuracy": accuracy_of(predictions(ann), labels), "ann_predictions": predictions(ann), "snn": {}}
    for v_init in (0.5, 0.0):
        logits = snn_logits(model, images, T_MAX, v_init)
        per_step = [accuracy_of(predictions(logits[:, k]), labels) for k in range(T_MAX)]
        out["snn"][f"v_init_{v_init:g}"] = {
            "accuracy_per_step": per_step,
            "predictions": {str(t): predictions(logits[:, t - 1]) for t in REPORT_T}}
    return out


def card(info: dict) -> str:
    r = info["pytorch"]
    half, zero = r["snn"]["v_init_0.5"]["accuracy_per_step"], r["snn"]["v_init_0"]["accuracy_per_step"]
    rows = "\n".join(f"| {t} | {half[t - 1]:.2f} | {zero[t - 1]:.2f} |" for t in REPORT_T)
    return (claimlib.card_header(CHECKPOINT.name, "QCFS / optimal ANN-SNN conversion", "Bu et al., ICLR 2022; "
            "`torch.save(model.state_dict())` in the layout of github.com/putshua/ANN_SNN_QCFS "
            f"(`layer<k>.<i>.thresh`), {info['bytes']:,} bytes")
            + f"- **Network**: `layer1 = [Conv2d(2→{WIDTHS[0]}, 3×3, p1), BatchNorm2d, QCFS, Dropout, AvgPool2d(2)]`, "
            f"`layer2` the same with {WIDTHS[1]} channels, `classifier = [Flatten, Linear({WIDTHS[1] * 64}, {HIDDEN}), "
            f"QCFS, Dropout, Linear({HIDDEN}, 10)]`; QCFS `λ·clip(floor(x·L/λ + ½)/L, 0, 1)` with L = {LEVELS} and a "
            "trained clip λ per layer (`thresh`).\n"
            "- **Input**: the recording's event-count image per polarity divided by its maximum "
            "(`nmnist_data.count_image`), fed every step in the SNN.\n"
            f"- **Training**: `python models/claims/train_qcfs.py`: the ANN with QCFS activations, Adam "
            f"(lr {info['lr']}, cosine), {info['epochs']} epochs, batch {info['batch']}, random shifts of up to "
            f"±{info['max_shift']} px, seed {info['seed']}, {info['threads']} CPU thread(s), {info['train_seconds']:.0f} s.\n"
            + claimlib.DATA_LINE
            + f"- **Accuracy (PyTorch, float64)**: ANN {r['ann_accuracy']:.2f}; converted SNN "
            "(IF, θ = λ, fires at `v ≥ θ`, subtract reset, spikes of amplitude θ, output summed over steps):\n\n"
            "| T | v₀ = θ/2 | v₀ = 0 |\n|---:|---:|---:|\n" + rows + "\n\n"
            "- **Load**: `es.load(path, input_shape=(2, 34, 34), pool='avg')` (v₀ = θ/2), `v_init=0.0` for the empty start; "
            "`metadata[\"input_encoding\"] == \"analog\"`.\n"
            "- **Checked by** `tests/test_claims.py`: eventsim's stepped engine gives these accuracies on the "
            "100 test recordings (±1 sample) and the same predictions as PyTorch.\n"
            "- **Results**: `python benchmarks/claims/qcfs_conversion.py` (see `benchmarks/claims/README_SECTION.md`).\n")


def train(data=None, epochs: int = 40, lr: float = 3e-3, batch: int = 32, max_shift: int = 2, seed: int = 0,
          threads: int = 1) -> dict:
    """Train, evaluate in PyTorch, write the checkpoint, its ``.json`` and its model card."""
    claimlib.setup_torch(threads, seed)
    x, y = nmnist_data.images(claimlib.load_split("train", data))
    xt, yt = nmnist_data.images(claimlib.load_split("test", data))
    model = build()

    def loss_of(m, xb, yb):
        out = m(xb)
        return out, torch.nn.functional.cross_entropy(out, yb)

    timer = Timer()
    log = claimlib.train_loop(model, x, y, loss_of, epochs=epochs, lr=lr, batch=batch, seed=seed, max_shift=max_shift)
    seconds = timer.s
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), CHECKPOINT)
    ref = load_reference()
    results = evaluate(ref, xt, yt)
    info = {"method": "qcfs", "epochs": epochs, "lr": lr, "batch": batch, "max_shift": max_shift, "seed": seed,
            "threads": threads, "levels": LEVELS, "widths": list(WIDTHS), "hidden": HIDDEN, "t_max": T_MAX,
            "train_seconds": round(seconds, 1), "log": log, "test_labels": [int(v) for v in yt],
            "pytorch": results}
    info = claimlib.publish(CHECKPOINT, info, card)
    half = results["snn"]["v_init_0.5"]["accuracy_per_step"]
    zero = results["snn"]["v_init_0"]["accuracy_per_step"]
    print(f"ANN {results['ann_accuracy']:.2f}; SNN v0=θ/2 T=4/16/64: {half[3]:.2f}/{half[15]:.2f}/{half[63]:.2f}; "
          f"v0=0: {zero[3]:.2f}/{zero[15]:.2f}/{zero[63]:.2f}")
    print(f"wrote {CHECKPOINT} ({info['bytes']:,} bytes)")
    return info


def main(argv=None) -> int:
    p = claimlib.arg_parser(__doc__, epochs=40)
    a = p.parse_args(argv)
    train(a.data, epochs=a.epochs, seed=a.seed, threads=a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
