"""Train the AOI-SNN claim model (Wu et al. 2023, "Optimising event-driven spiking neural network
with regularisation and cutoff"): a direct-trained LIF network on event-count frames, in the key
layout of github.com/Dengyu-Wu/snncutoff.

Usage::

    python models/claims/train_aoi.py [--data ../shared/data/nmnist] [--epochs 12] [--threads 1]

The network (``models/seeds/aoi.py:build``): a 4×4 stride-4 down-scaling conv and two 3×3 convs,
each with BatchNorm and snncutoff's LIF (leak 0.5 per step, θ = 1, hard reset), average pooling,
a linear classifier whose output is accumulated over the steps; input: event counts in ``T``
equal bins of each recording (``[0, t_last + 1)`` µs). Trained by BPTT with a triangular
surrogate on the mean output over T (no RCS regulariser).

Writes ``models/claims/checkpoints/aoi_claims.pth`` (``torch.save(model.state_dict())``), its
``.json`` (settings, the mean bin width of the training recordings, and the PyTorch model's
accuracy after every step on the 100 test recordings) and its model card ``.md``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claimlib  # noqa: E402
from claimlib import CHECKPOINTS, Timer, accuracy_of, batched, nmnist_data, predictions, torch  # noqa: E402

import aoi  # noqa: E402  (models/seeds)

CHECKPOINT = CHECKPOINTS / "aoi_claims.pth"
TIMESTEPS = 10
WIDTHS = (16, 32, 32)
LEAK = 0.5


def build() -> torch.nn.Sequential:
    """snncutoff's ``Sequential(features, classifier, output)`` with ``TIMESTEPS`` steps."""
    return aoi.build(T=TIMESTEPS, widths=WIDTHS)


def load_reference(path: Path = CHECKPOINT, dtype=torch.float64) -> torch.nn.Sequential:
    """The trained model from ``path`` (with ``torch.load``), in eval mode."""
    model = build()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(dtype).eval()


def logits_per_step(model: torch.nn.Sequential, frames) -> "np.ndarray":  # noqa: F821
    """Accumulated logits ``(N, T, classes)`` of the PyTorch model (float64) on frames ``(N, T, 2, H, W)``."""
    return batched(lambda x: aoi.run(model, x)[0].transpose(0, 1), frames, batch=50)


def card(info: dict) -> str:
    r = info["pytorch"]
    per_step = " / ".join(f"{a:.2f}" for a in r["accuracy_per_step"])
    a, b, c = WIDTHS
    return (claimlib.card_header(CHECKPOINT.name, "AOI-SNN / snncutoff", "Wu et al. 2023; snncutoff's "
            "`torch.save(model.state_dict())` after `add_snn_layers` (keys `0.<i>.fwd.0.module.weight/bias`, "
            f"`0.<i>.fwd.1.*` BatchNorm2d, `1.module.weight/bias`), {info['bytes']:,} bytes")
            + f"- **Network**: conv units `Conv2d(2→{a}, 4×4, stride 4)`, `Conv2d({a}→{b}, 3×3, p1)`, AvgPool2d(2), "
            f"`Conv2d({b}→{c}, 3×3, p1)`, AvgPool2d(2), Flatten, `Linear({c * 4}, 10)`; each conv unit with BatchNorm and "
            f"a LIF layer (leak {LEAK} per step, θ = 1, fires at v > 1, hard reset to 0); output accumulated over steps.\n"
            f"- **Input**: event counts in T = {TIMESTEPS} equal time bins of `[0, t_last + 1)` µs, 2 polarities "
            f"(`eventsim.events.to_frames`); mean bin width on the training recordings {info['mean_bin_us'] / 1000:.2f} ms.\n"
            f"- **Training**: `python models/claims/train_aoi.py`: BPTT, triangular surrogate, cross-entropy on the mean "
            f"output over T, Adam (lr {info['lr']}, cosine), {info['epochs']} epochs, batch {info['batch']}, random shifts "
            f"of up to ±{info['max_shift']} px, seed {info['seed']}, {info['threads']} CPU thread(s), "
            f"{info['train_seconds']:.0f} s. No RCS regulariser.\n"
            + claimlib.DATA_LINE
            + f"- **Accuracy (PyTorch, float64)**: {r['accuracy']:.2f} at T = {TIMESTEPS}; after steps 1…{TIMESTEPS}: "
            f"{per_step}.\n"
            "- **Load**: `es.load(path, input_shape=(2, 34, 34), pool='avg')`; evaluate with `steps=10` (frames encoding). For the "
            "event-driven run on raw events, `benchmarks/claims/aoi_cutoff.py` replaces the per-bin leak 0.5 by the "
            "time constant τ = −Δt / ln 0.5 (Δt the mean bin width above).\n"
            "- **Checked by** `tests/test_claims.py`: eventsim's stepped engine gives this accuracy on the 100 test "
            "recordings (±1 sample) and the same predictions as PyTorch.\n"
            "- **Results**: `python benchmarks/claims/aoi_cutoff.py`.\n")


def train(data=None, epochs: int = 12, lr: float = 3e-3, batch: int = 32, max_shift: int = 2, seed: int = 0,
          threads: int = 1) -> dict:
    """Train, evaluate in PyTorch, write the checkpoint, its ``.json`` and its model card."""
    claimlib.setup_torch(threads, seed)
    train_samples = claimlib.load_split("train", data)
    x, y = nmnist_data.frames(train_samples, TIMESTEPS)
    xt, yt = nmnist_data.frames(claimlib.load_split("test", data), TIMESTEPS)
    model = build()

    def loss_of(m, xb, yb):
        out = m(xb.transpose(0, 1).contiguous()).mean(0)       # (T, B, classes) -> mean over T
        return out, torch.nn.functional.cross_entropy(out, yb)

    timer = Timer()
    log = claimlib.train_loop(model, x.astype("float32"), y, loss_of, epochs=epochs, lr=lr, batch=batch, seed=seed,
                              max_shift=max_shift)
    seconds = timer.s
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), CHECKPOINT)
    logits = logits_per_step(load_reference(), xt)
    results = {"accuracy": accuracy_of(predictions(logits[:, -1]), yt), "predictions": predictions(logits[:, -1]),
               "accuracy_per_step": [accuracy_of(predictions(logits[:, k]), yt) for k in range(TIMESTEPS)]}
    info = {"method": "aoi", "timesteps": TIMESTEPS, "widths": list(WIDTHS), "leak_per_step": LEAK, "epochs": epochs,
            "lr": lr, "batch": batch, "max_shift": max_shift, "seed": seed, "threads": threads,
            "train_seconds": round(seconds, 1), "log": log,
            "mean_duration_us": claimlib.mean_duration_us(train_samples),
            "mean_bin_us": claimlib.mean_duration_us(train_samples) / TIMESTEPS,
            "test_labels": [int(v) for v in yt], "pytorch": results}
    info = claimlib.publish(CHECKPOINT, info, card)
    print(f"test accuracy {results['accuracy']:.2f}; per step {results['accuracy_per_step']}")
    print(f"wrote {CHECKPOINT} ({info['bytes']:,} bytes)")
    return info


def main(argv=None) -> int:
    p = claimlib.arg_parser(__doc__, epochs=12)
    a = p.parse_args(argv)
    train(a.data, epochs=a.epochs, seed=a.seed, threads=a.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
