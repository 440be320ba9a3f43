"""Train the BNTT claim model (Kim & Panda 2021, "Revisiting batch normalization for training
low-latency deep spiking neural networks from scratch"): an SNN with one BatchNorm per time step,
in the key layout of github.com/Intelligent-Computing-Lab-Yale/BNTT-Batch-Normalization-Through-Time.

Usage::

    python models/claims/train_bntt.py [--data ../shared/data/nmnist] [--epochs 8] [--threads 1]

The network is ``models/seeds/bntt.py:BnttNet`` (two 3×3 convs and ``fc1`` each with a per-step
BatchNorm without shift, LIF λ = ``LEAK``, θ = 1, subtract reset, ``fc2`` accumulated, output the
mean over T); input: Poisson spikes of the normalised event-count image. Trained from scratch with
BNTT's optimiser (SGD, momentum 0.9, weight decay 1e-4; here with a cosine schedule and few epochs)
and fresh Poisson draws per batch. The BatchNorm scales γ get a stronger weight decay (1e-2, see
the model card) so that the short schedule lets them shrink where the loss does not need them.

Writes ``models/claims/checkpoints/bntt_claims_timestep<T>_leak<λ>_bestmodel.pth.tar``
(``{"global_step", "state_dict", "accuracy"}``, as BNTT's ``train.py``), its ``.json`` (settings,
the per-step layer-average γ, and the PyTorch model's accuracy after every step on the 100 test
recordings with the Poisson spikes eventsim's evaluation draws: ``default_rng([0, index])``) and
its model card ``.md``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claimlib  # noqa: E402
from claimlib import CHECKPOINTS, Timer, accuracy_of, batched, nmnist_data, predictions, torch  # noqa: E402

import bntt  # noqa: E402  (models/seeds)
from eventsim.checkpoints import poisson_encode  # noqa: E402

TIMESTEPS = 20
LEAK = 0.95
WIDTHS = (16, 32)
HIDDEN = 64
RESCALE = 2.0
CHECKPOINT = CHECKPOINTS / f"bntt_claims_timestep{TIMESTEPS}_leak{LEAK}_bestmodel.pth.tar"


def build() -> "bntt.BnttNet":
    """The BNTT network of the claim (``TIMESTEPS`` per-step BatchNorms per layer)."""
    return bntt.BnttNet(steps=TIMESTEPS, leak=LEAK, widths=WIDTHS, hidden=HIDDEN)


def load_reference(path: Path = CHECKPOINT, dtype=torch.float64) -> "bntt.BnttNet":
    """The trained model from ``path`` (with ``torch.load``), in eval mode."""
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["state_dict"])
    return model.to(dtype).eval()


def eval_spikes(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Poisson spikes ``(N, T, C, H, W)`` exactly as ``eventsim.evaluate(..., seed=seed)`` draws them
    for sample ``i``: ``poisson_encode(image, T, default_rng([seed, i]), rescale=2)``."""
    return np.stack([poisson_encode(img, TIMESTEPS, seed=np.random.default_rng([seed, i]), rescale=RESCALE)
                     for i, img in enumerate(images)])


def gamma_per_step(state: dict) -> dict[str, list[float]]:
    """Mean BatchNorm scale γ over channels per layer and step from a BNTT state dict
    (``bntt<n>.<t>.weight``, ``bntt_fc.<t>.weight``), and its mean over layers (``"mean"``)."""
    prefixes = sorted({k.split(".")[0] for k in state if k.startswith("bntt")})
    out = {p: [float(np.mean(np.asarray(state[f"{p}.{t}.weight"], dtype=float))) for t in range(TIMESTEPS)]
           for p in prefixes}
    out["mean"] = [float(np.mean([out[p][t] for p in prefixes])) for t in range(TIMESTEPS)]
    return out


def logits_per_step(model: "bntt.BnttNet", spikes: np.ndarray) -> np.ndarray:
    """Running-mean logits ``(N, T, classes)`` of the PyTorch model (float64)."""
    return batched(lambda s: model(s.transpose(0, 1), record=True)[1]["logits"].transpose(0, 1), spikes, batch=25)


def card(info: dict) -> str:
    r = info["pytorch"]
    acc = r["accuracy_per_step"]
    g = info["gamma"]["mean"]
    shown = sorted({1, 2, 4, 6, 8, 10, 12, 14, 16, 18, TIMESTEPS})
    rows = "\n".join(f"| {t} | {acc[t - 1]:.2f} | {g[t - 1]:.3f} |" for t in shown if t <= TIMESTEPS)
    a, b = WIDTHS
    return (claimlib.card_header(CHECKPOINT.name, "BNTT", "Kim & Panda 2021; BNTT's `train.py` layout "
            "(`{\"global_step\", \"state_dict\", \"accuracy\"}`, leak in the file name), "
            f"{info['bytes']:,} bytes")
            + f"- **Network**: `conv1` (2→{a}, 3×3, no bias) + `bntt1` ({TIMESTEPS} BatchNorm2d, eps 1e-4, no shift), "
            f"AvgPool2d(2), `conv2` ({a}→{b}) + `bntt2`, AvgPool2d(2), `fc1` ({b * 64}→{HIDDEN}) + `bntt_fc`, `fc2` "
            f"({HIDDEN}→10) accumulated, output = mean over T; LIF λ = {LEAK}, θ = 1, strict `>`, subtract reset.\n"
            f"- **Input**: Poisson spikes of the normalised event-count image, spike where `{RESCALE:g}·u ≤ x`; T = "
            f"{TIMESTEPS}. Test spikes drawn as eventsim's evaluation does (`default_rng([0, index])`).\n"
            f"- **Training**: `python models/claims/train_bntt.py`: BPTT with the piecewise-linear surrogate, SGD "
            f"(lr {info['lr']}, momentum 0.9, weight decay {info['weight_decay']} as BNTT's `train.py`, but "
            f"{info['gamma_decay']} on the BatchNorm scales γ, cosine), {info['epochs']} epochs, batch "
            f"{info['batch']}, fresh Poisson draws per batch, random shifts of up to ±{info['max_shift']} px, seed "
            f"{info['seed']}, {info['threads']} CPU thread(s), {info['train_seconds']:.0f} s. The stronger decay on γ "
            "stands in for BNTT's long schedule (120 epochs × 390 steps at weight decay 1e-4 against 10 × 32 steps "
            "here): it is what lets γ shrink at the steps the loss does not need; with 1e-4 on γ, γ stayed at "
            "0.97–0.99 at every step after 10 epochs and the exit rule had nothing to read.\n"
            + claimlib.DATA_LINE
            + f"- **Accuracy (PyTorch, float64)**: {r['accuracy']:.2f} at T = {TIMESTEPS}. After step t (argmax of the "
            "running mean; an all-zero output counts as class 0, as `torch.argmax`), with the layer-average "
            "BatchNorm scale γ of step t:\n\n"
            "| t | accuracy | mean γ |\n|---:|---:|---:|\n" + rows + "\n\n"
            "- **Load**: `es.load(path, input_shape=(2, 34, 34))` (leak from the file name); evaluate with "
            f"`steps={TIMESTEPS}` (Poisson encoding, seed 0).\n"
            "- **Checked by** `tests/test_claims.py`: eventsim's stepped engine gives this accuracy on the 100 test "
            "recordings (±1 sample) and the same predictions as PyTorch.\n"
            "- **Results**: `python benchmarks/claims/bntt_early_exit.py`.\n")


def param_groups(model: "bntt.BnttNet", weight_decay: float, gamma_decay: float) -> list[dict]:
    """Two optimiser groups: the BatchNorm scales γ (``bntt*.<t>.weight``) with ``gamma_decay``,
    everything else with ``weight_decay``."""
    gammas = [p for n, p in model.named_parameters() if n.startswith("bntt")]
    others = [p for n, p in model.named_parameters() if not n.startswith("bntt")]
    return [{"params": others, "weight_decay": weight_decay}, {"params": gammas, "weight_decay": gamma_decay}]


def train(data=None, epochs: int = 10, lr: float = 0.1, weight_decay: float = 1e-4, gamma_decay: float | None = 1e-2,
          batch: int = 32, max_shift: int = 2, seed: int = 0, threads: int = 1) -> dict:
    """Train, evaluate in PyTorch, write the checkpoint, its ``.json`` and its model card."""
    claimlib.setup_torch(threads, seed)
    x, y = nmnist_data.images(claimlib.load_split("train", data))
    xt, yt = nmnist_data.images(claimlib.load_split("test", data))
    model = build()
    gen = torch.Generator().manual_seed(seed + 7)

    def loss_of(m, xb, yb):
        u = torch.rand((TIMESTEPS,) + tuple(xb.shape), generator=gen)
        out = m(((u * RESCALE) <= xb.abs()).float() * xb.sign())
        return out, torch.nn.functional.cross_entropy(out, yb)

    timer = Timer()
    gamma_decay = weight_decay if gamma_decay is None else gamma_decay
    log = claimlib.train_loop(model, x, y, loss_of, epochs=epochs, lr=lr, batch=batch, seed=seed, optimizer="sgd",
                              max_shift=max_shift, params=param_groups(model, weight_decay, gamma_decay))
    seconds = timer.s
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    ref = build()
    ref.load_state_dict(model.state_dict())
    ref = ref.double().eval()
    logits = logits_per_step(ref, eval_spikes(xt))
    acc = accuracy_of(predictions(logits[:, -1]), yt)
    torch.save({"global_step": epochs, "state_dict": model.state_dict(), "accuracy": np.float64(acc * 100.0)},
               CHECKPOINT)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    results = {"accuracy": acc, "predictions": predictions(logits[:, -1]),
               "accuracy_per_step": [accuracy_of(predictions(logits[:, k]), yt) for k in range(TIMESTEPS)],
               "predictions_per_step": [predictions(logits[:, k]) for k in range(TIMESTEPS)]}
    info = {"method": "bntt", "timesteps": TIMESTEPS, "leak": LEAK, "widths": list(WIDTHS), "hidden": HIDDEN,
            "poisson_rescale": RESCALE, "epochs": epochs, "lr": lr, "weight_decay": weight_decay, "gamma_decay": gamma_decay, "batch": batch,
            "max_shift": max_shift, "seed": seed, "threads": threads, "train_seconds": round(seconds, 1), "log": log,
            "gamma": gamma_per_step(state), "test_labels": [int(v) for v in yt], "pytorch": results}
    info = claimlib.publish(CHECKPOINT, info, card)
    print(f"test accuracy {acc:.2f}; per step {[round(a, 2) for a in results['accuracy_per_step']]}")
    print(f"mean gamma per step {[round(g, 3) for g in info['gamma']['mean']]}")
    print(f"wrote {CHECKPOINT} ({info['bytes']:,} bytes)")
    return info


def main(argv=None) -> int:
    p = claimlib.arg_parser(__doc__)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--gamma-decay", type=float, default=1e-2,
                   help="weight decay of the BN scales γ (BNTT itself: the same as --weight-decay)")
    a = p.parse_args(argv)
    train(a.data, epochs=a.epochs, lr=a.lr, weight_decay=a.weight_decay, gamma_decay=a.gamma_decay, seed=a.seed,
          threads=a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
