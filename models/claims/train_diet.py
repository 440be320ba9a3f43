"""Train the DIET-SNN claim models (Rathi & Roy, "DIET-SNN: Direct input encoding with leakage and
threshold optimization"): DIET's hybrid pipeline in small.

1. an ANN (ReLU, no biases) of the DIET VGG architecture is trained;
2. it is converted: the SNN starts from the ANN's weights, leak λ = 1 and, per spiking layer,
   the threshold θ_l = p_l / p_{l−1}, ``p_l`` the ``PERCENTILE``-th percentile of layer l's ANN
   pre-activations on the training images (threshold balancing for unit spikes);
3. the SNN is trained with surrogate gradients for ``TIMESTEPS`` steps, learning the weights and
   the leak and threshold of every layer (direct input: the analog image every step).

Usage::

    python models/claims/train_diet.py [--data ../shared/data/nmnist] [--threads 1]

Writes ``models/claims/checkpoints/diet_claims.pth`` (DIET's ``snn.py`` layout, with the
config under ``"cfg"`` and without the optimiser state, to stay small),
``diet_claims_ann.pt`` (the ANN in eventsim's ``"ann"`` layout, the baseline of the energy
comparison), a ``.json`` with the settings and the PyTorch results on the 100 test recordings, and
a model card ``.md`` for each. The PyTorch module is ``models/seeds/diet.py:DietVGG``.
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claimlib  # noqa: E402
from claimlib import CHECKPOINTS, ROOT, Timer, accuracy_of, batched, nmnist_data, predictions, torch  # noqa: E402

import diet  # noqa: E402  (models/seeds)

sys.path.insert(0, str(ROOT / "models" / "convert"))
from ann import save_ann  # noqa: E402  (models/convert)

CHECKPOINT = CHECKPOINTS / "diet_claims.pth"
ANN_CHECKPOINT = CHECKPOINTS / "diet_claims_ann.pt"
CFG = [16, "A", 32, "A"]
HIDDEN = 64
TIMESTEPS = 5
PERCENTILE = 99.7


def build() -> "diet.DietVGG":
    """The DIET VGG of the claim (``CFG``, a 64-unit hidden layer), θ = 1 and λ = 1 before training."""
    return diet.DietVGG(cfg=CFG, hidden=HIDDEN)


def ann_sequential(model: "diet.DietVGG") -> torch.nn.Sequential:
    """The ANN view of ``model``: its own modules (``features``, Flatten, ``classifier``) in one
    ``nn.Sequential``, sharing the weights; ReLU activations, dropout only in training."""
    return torch.nn.Sequential(*model.features, torch.nn.Flatten(), *model.classifier)


def load_reference(path: Path = CHECKPOINT, dtype=torch.float64) -> "diet.DietVGG":
    """The trained SNN from a checkpoint written by :func:`train` (with ``torch.load``)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = build()
    model.load_state_dict(OrderedDict((k.removeprefix("module."), v) for k, v in ckpt["state_dict"].items()))
    return model.to(dtype).eval()


def load_ann_reference(path: Path = ANN_CHECKPOINT, dtype=torch.float64) -> torch.nn.Sequential:
    """The ANN baseline from its ``"ann"`` checkpoint (with ``torch.load``)."""
    seq = ann_sequential(build())
    seq.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
    return seq.to(dtype).eval()


@torch.no_grad()
def percentile_thresholds(model: "diet.DietVGG", images: np.ndarray, q: float) -> dict[str, float]:
    """θ per spiking layer ``t<n>`` for spikes of amplitude 1: ``p_l / p_{l−1}`` with ``p_l`` the
    ``q``-th percentile of layer ``l``'s positive ANN pre-activations (``p_{−1} = 1``: the image),
    the threshold balancing of ANN-SNN conversion."""
    seq = ann_sequential(model).eval()
    n_feat = len(model.features)
    found: dict[int, list] = {}
    x = torch.as_tensor(images, dtype=torch.float32)
    h = x
    for i, m in enumerate(seq):
        h = m(h)
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            index = i if i < n_feat else i - 1          # seq has the extra Flatten after features
            found[index] = h[h > 0].numpy()
    spiking = model.spiking_indices()
    # a spike of amplitude 1 stands for the previous layer's activation scale: divide by it
    scales = [float(np.percentile(found[n], q)) for n in spiking]
    return {f"t{n}": s / (scales[k - 1] if k else 1.0) for k, (n, s) in enumerate(zip(spiking, scales))}


def snn_logits(model: "diet.DietVGG", images: np.ndarray, steps: int = TIMESTEPS) -> np.ndarray:
    """Cumulative output ``(N, steps, classes)`` of the PyTorch SNN (float64)."""
    return batched(lambda x: model(x, timesteps=steps, record=True)[1]["logits"].transpose(0, 1), images, batch=25)


def card(info: dict) -> str:
    r = info["pytorch"]
    thr = ", ".join(f"{v:.3f}" for v in info["thresholds"])
    leak = ", ".join(f"{v:.3f}" for v in info["leak"])
    per_step = " / ".join(f"{a:.2f}" for a in r["snn_accuracy_per_step"])
    return (claimlib.card_header(CHECKPOINT.name, "DIET-SNN", "Rathi & Roy 2020; DIET-SNN's `snn.py` layout "
            "(`{\"state_dict\" (keys prefixed \"module.\"), \"thresholds\", \"leak\", \"timesteps\", \"accuracy\", "
            "\"epoch\", \"activation\", \"cfg\"}`; `\"optimizer\"` is saved empty to keep the file small), "
            f"{info['bytes']:,} bytes")
            + f"- **Network**: VGG config `{CFG}`, 3×3 convs without bias, classifier `Linear({CFG[-2] * 64}, {HIDDEN})`, "
            f"`Linear({HIDDEN}, 10)` (the last accumulates without spiking); per spiking layer a trained threshold and leak "
            f"(`threshold.t<n>`, `leak.l<n>`): θ = [{thr}], λ = [{leak}]. LIF `u ← λu + Wx`, spike `u > θ`, "
            "subtract reset.\n"
            f"- **Input**: the recording's event-count image per polarity divided by its maximum, fed every step (direct "
            f"input); T = {TIMESTEPS}.\n"
            f"- **Training** (`python models/claims/train_diet.py`, seed {info['seed']}, {info['threads']} CPU thread(s), "
            f"{info['train_seconds']:.0f} s in all): (1) the ANN `{ANN_CHECKPOINT.name}` (same modules with ReLU), Adam "
            f"lr {info['ann_lr']}, {info['ann_epochs']} epochs; (2) conversion: θ_l = p_l / p_(l−1) with p_l the "
            f"{PERCENTILE}th percentile of layer l's ANN pre-activations on the training images, λ = 1; (3) SNN training with DIET's piecewise-linear "
            f"surrogate, Adam lr {info['snn_lr']}, {info['snn_epochs']} epochs, weights, thresholds and leaks trained "
            "(λ clamped to [0.5, 1], θ ≥ 0.05). Batch 32, cosine schedule, random shifts of up to "
            f"±{info['max_shift']} px.\n"
            + claimlib.DATA_LINE
            + f"- **Accuracy (PyTorch, float64)**: SNN {r['snn_accuracy']:.2f} at T = {TIMESTEPS} (after steps 1…{TIMESTEPS}: "
            f"{per_step}); the ANN baseline {r['ann_accuracy']:.2f}; the converted SNN before step (3) "
            f"{r['converted_accuracy']:.2f}.\n"
            "- **Load**: `es.load(path, input_shape=(2, 34, 34))` (the config is read from the file); "
            f"`es.simulate(net, image, steps={TIMESTEPS}, input_kind=\"analog\")`.\n"
            "- **Checked by** `tests/test_claims.py`: eventsim's stepped engine gives this accuracy on the 100 test "
            "recordings (±1 sample) and the same predictions as PyTorch.\n"
            "- **Results**: `python benchmarks/claims/diet_energy.py`.\n")


def ann_card(info: dict) -> str:
    r = info["pytorch"]
    return (claimlib.card_header(ANN_CHECKPOINT.name, "ANN baseline of the DIET-SNN claim",
                                 "eventsim's `\"ann\"` layout (`{\"state_dict\", \"architecture\", \"input_shape\"}`, "
                                 f"written by `models/convert/ann.py:save_ann`), {info['ann_bytes']:,} bytes")
            + f"- **Network**: the DIET VGG `{CFG}` with ReLU activations: Conv2d(2→16, 3×3, no bias), ReLU, "
            f"AvgPool2d(2), Conv2d(16→32), ReLU, AvgPool2d(2), Flatten, Linear({CFG[-2] * 64}, {HIDDEN}), ReLU, Dropout, "
            f"Linear({HIDDEN}, 10); the same layer shapes as `{CHECKPOINT.name}`.\n"
            "- **Input**: the normalised event-count image (one forward pass).\n"
            f"- **Training**: step (1) of `python models/claims/train_diet.py`: Adam lr {info['ann_lr']}, "
            f"{info['ann_epochs']} epochs, batch 32, cosine schedule, shifts ±{info['max_shift']} px, seed {info['seed']}.\n"
            + claimlib.DATA_LINE
            + f"- **Accuracy (PyTorch, float64)**: {r['ann_accuracy']:.2f} on the 100 test recordings.\n"
            "- **Use**: the ANN of the DIET energy comparison (its dense MACs are `eventsim.counting.synapse_counts` of "
            "the same architecture); eventsim's NumPy forward pass "
            "(`eventsim.checkpoints.convert.parse_architecture` + `ann_forward`) gives the same accuracy "
            "(`tests/test_claims.py`).\n")


def train(data=None, ann_epochs: int = 20, snn_epochs: int = 12, ann_lr: float = 3e-3, snn_lr: float = 5e-4,
          max_shift: int = 2, seed: int = 0, threads: int = 1) -> dict:
    """Run the three steps, evaluate in PyTorch, write both checkpoints, the ``.json`` and the cards."""
    claimlib.setup_torch(threads, seed)
    x, y = nmnist_data.images(claimlib.load_split("train", data))
    xt, yt = nmnist_data.images(claimlib.load_split("test", data))
    model = build()
    seq = ann_sequential(model)

    def ann_loss(m, xb, yb):
        out = m(xb)
        return out, torch.nn.functional.cross_entropy(out, yb)

    timer = Timer()
    print("step 1: ANN", flush=True)
    ann_log = claimlib.train_loop(seq, x, y, ann_loss, epochs=ann_epochs, lr=ann_lr, seed=seed, max_shift=max_shift)
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    save_ann(seq, ANN_CHECKPOINT)
    thresholds = percentile_thresholds(model, x, PERCENTILE)
    with torch.no_grad():
        for key, value in thresholds.items():
            model.threshold[key].fill_(value)
    model.eval()
    converted = snn_logits(model.double(), xt)[:, -1]
    model.float()
    print(f"step 2: converted SNN, thresholds {thresholds}, test accuracy {accuracy_of(predictions(converted), yt):.2f}")

    def snn_loss(m, xb, yb):
        out = m(xb, timesteps=TIMESTEPS)          # the accumulated output, as DIET's snn.py
        return out, torch.nn.functional.cross_entropy(out, yb)

    def clamp(m):
        with torch.no_grad():
            for p in m.leak.values():
                p.clamp_(0.5, 1.0)
            for p in m.threshold.values():
                p.clamp_(min=0.05)

    print("step 3: SNN training (weights, thresholds, leaks)", flush=True)
    snn_log = claimlib.train_loop(model, x, y, snn_loss, epochs=snn_epochs, lr=snn_lr, seed=seed + 1,
                                  max_shift=max_shift, after_step=clamp)
    seconds = timer.s
    n_list = model.spiking_indices()
    ann_ref = load_ann_reference()
    ann_out = batched(ann_ref, xt)
    state = OrderedDict((f"module.{k}", v) for k, v in model.state_dict().items())
    ref_model = build()
    ref_model.load_state_dict(model.state_dict())
    ref_model = ref_model.double().eval()
    logits = snn_logits(ref_model, xt)
    acc = accuracy_of(predictions(logits[:, -1]), yt)
    torch.save({"accuracy": acc, "epoch": snn_epochs, "state_dict": state, "optimizer": {},
                "thresholds": [model.threshold[f"t{n}"].item() for n in n_list], "timesteps": TIMESTEPS,
                "leak": [model.leak[f"l{n}"].item() for n in n_list], "activation": "Linear", "cfg": CFG}, CHECKPOINT)
    results = {"snn_accuracy": acc, "snn_predictions": predictions(logits[:, -1]),
               "snn_accuracy_per_step": [accuracy_of(predictions(logits[:, k]), yt) for k in range(TIMESTEPS)],
               "ann_accuracy": accuracy_of(predictions(ann_out), yt), "ann_predictions": predictions(ann_out),
               "converted_accuracy": accuracy_of(predictions(converted), yt)}
    info = {"method": "diet", "cfg": CFG, "hidden": HIDDEN, "timesteps": TIMESTEPS, "percentile": PERCENTILE,
            "ann_epochs": ann_epochs, "snn_epochs": snn_epochs, "ann_lr": ann_lr, "snn_lr": snn_lr,
            "max_shift": max_shift, "seed": seed, "threads": threads, "train_seconds": round(seconds, 1),
            "initial_thresholds": [thresholds[f"t{n}"] for n in n_list],
            "thresholds": [model.threshold[f"t{n}"].item() for n in n_list],
            "leak": [model.leak[f"l{n}"].item() for n in n_list],
            "ann_log": ann_log, "snn_log": snn_log, "ann_checkpoint": ANN_CHECKPOINT.name,
            "ann_bytes": claimlib.file_size(ANN_CHECKPOINT), "test_labels": [int(v) for v in yt], "pytorch": results}
    info = claimlib.publish(CHECKPOINT, info, card)
    claimlib.write_card(ANN_CHECKPOINT, ann_card(info))
    print(f"ANN {results['ann_accuracy']:.2f}, converted {results['converted_accuracy']:.2f}, "
          f"DIET-SNN T={TIMESTEPS} {acc:.2f} (per step {results['snn_accuracy_per_step']})")
    print(f"wrote {CHECKPOINT} ({info['bytes']:,} bytes) and {ANN_CHECKPOINT} ({info['ann_bytes']:,} bytes)")
    return info


def main(argv=None) -> int:
    p = claimlib.arg_parser(__doc__)
    p.add_argument("--ann-epochs", type=int, default=20)
    p.add_argument("--snn-epochs", type=int, default=12)
    a = p.parse_args(argv)
    train(a.data, ann_epochs=a.ann_epochs, snn_epochs=a.snn_epochs, seed=a.seed, threads=a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
