"""PNG figures of an evaluation (matplotlib, headless, written atomically)."""
from __future__ import annotations

from pathlib import Path

from ._io import atomic_path


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def write_figures(ev, out: Path) -> list[Path]:
    """accuracy_vs_time.png, accuracy_vs_cost.png, spikes_per_layer.png; returns their paths."""
    plt = _plt()
    s = ev.summary
    curve = s["curve"]
    t_ms = [p["t_us"] / 1000 for p in curve]
    acc = [p["accuracy"] if p["accuracy"] is not None else float("nan") for p in curve]
    cut = s["cutoff"]
    title = f"{s['engine']} engine, {s['samples']} samples, cutoff {cut['policy']}"
    written = []

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t_ms, acc, marker=".", label="accuracy of the readout at t")
    if s["accuracy"] is not None:
        ax.plot([cut["t_us_mean"] / 1000], [s["accuracy"]], "r*", ms=12,
                label=f"cutoff '{cut['policy']}': acc {s['accuracy']:.3f}, mean t {cut['t_us_mean'] / 1000:.1f} ms")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    written.append(_save(fig, out / "accuracy_vs_time.png"))
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, key, label, point in (
            (axes[0], "synops_per_sample", "synops per sample", s["synops_per_sample"]),
            (axes[1], "energy_pj_per_sample", f"energy per sample (pJ, {s['energy_table']['name']})",
             s["energy_pj_per_sample"])):
        ax.plot([p[key] for p in curve], acc, marker=".")
        if s["accuracy"] is not None:
            ax.plot([point], [s["accuracy"]], "r*", ms=12, label=f"cutoff '{cut['policy']}'")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1.02)
    fig.suptitle(title)
    written.append(_save(fig, out / "accuracy_vs_cost.png"))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, values in s["spikes_per_layer_over_time"].items():
        ax.plot(t_ms, values, label=name)
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("spikes per sample per step")
    ax.set_title("spikes per layer over time")
    ax.grid(alpha=0.3)
    if s["spikes_per_layer_over_time"]:
        ax.legend(fontsize=8)
    written.append(_save(fig, out / "spikes_per_layer.png"))
    plt.close(fig)
    return written
