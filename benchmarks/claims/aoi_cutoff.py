"""AOI-SNN anytime cutoff (Wu et al. 2023) on real N-MNIST: accuracy vs time of a direct-trained
LIF network on event-count frames, the calibrated ``gap`` policy's latency and synop saving at
≤ 1 point accuracy drop, and the same network run event by event on the raw µs events.

Usage::

    python benchmarks/claims/aoi_cutoff.py [--data ../shared/data/nmnist] [--retrain]
                                           [--async-train N] [--workers W] [--skip-async]

1. **Frames, stepped engine** (the original setting): the shipped checkpoint
   (``models/claims/checkpoints/aoi_claims.pth``, T = 10 bins per recording) on the 100 test and
   the 1000 training recordings, one simulation each; the readout after each bin gives the curve.
2. **Choosing ε on the training split**: for each candidate ε, 5-fold cross-validation on the
   training traces (calibrate ``calibrate_gap`` on 4/5, apply on the held-out 1/5) gives every
   training recording's change at the cutoff (lost, kept or gained versus running to the end); the
   largest ε whose one-sided 95% upper confidence bound on the mean accuracy drop (mean + 1.645
   standard errors of those paired per-recording changes) is ≤ 1 point is chosen — a margin for
   the estimate's own noise, since the ε whose point estimate just clears 1 point is as likely
   as not to exceed it. The thresholds β are then calibrated on all 1000 training traces and
   applied to the test traces. β is per bin (row), because each recording's bins have their own
   width. The test set plays no part in the choice.
3. **Raw events, async engine** (what frames cannot do): a copy of the network whose LIF layers
   have the time constant τ = −Δt / ln 0.5, Δt the mean bin width of the training recordings (the
   per-bin leak 0.5 mapped to continuous time); biases become constant currents b/Δt. Each
   recording's events arrive one at a time (``simultaneous="none"``) and the readout is
   snapshot every 5 ms; the ``gap`` policy is calibrated in the same way on async traces of the
   first ``--async-train`` training recordings (default all 1000) and applied on the 100 test
   recordings. Async traces are cached under ``build/claims-cache`` (keyed by the checkpoint, the
   engine's source and the settings).
4. Towards continuous time on the stepped engine: the same network on k·T finer bins with the
   same leak and bias per unit time (λ = 0.5^(1/k) per bin, biases ÷ k), k = 1, 2, 4, 8, 16 —
   the series whose limit the async run is.
5. A check that the async engine in ``simultaneous="batch"`` mode reproduces the stepped engine's
   logits on the frames of the first test recordings.

Prints the tables, writes ``benchmarks/results/claims_aoi.json`` and ``docs/figures/claims_aoi.png``.
"""
from __future__ import annotations

import hashlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims_common as cc  # noqa: E402

import eventsim as es  # noqa: E402
from eventsim.counting import get_energy_table  # noqa: E402
from eventsim.cutoff import calibrate_gap, make_policy, top_gap  # noqa: E402
from eventsim.encodings import encode  # noqa: E402
from eventsim.evaluate import aggregate, evaluate  # noqa: E402
from eventsim.samples import SampleTrace  # noqa: E402
from eventsim.events import LocalNMNIST  # noqa: E402

NAME = "aoi"
CHECKPOINT = cc.CHECKPOINTS / "aoi_claims.pth"
EPSILONS = (0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
MAX_DROP = 0.01
FOLDS = 5
Z_UPPER = 1.645                  # one-sided 95% upper confidence bound on the cross-validated drop
GRID_STEP_US = 5_000.0
GRID_END_US = 340_000.0          # every N-MNIST recording here ends before 340 ms
BATCH_CHECK_SAMPLES = 5
REFINE = (1, 2, 4, 8, 16)
TABLE = get_energy_table("45nm")


# ----------------------------------------------------------------------------- cutoff helpers


def gaps_correct(traces: list[SampleTrace]) -> tuple[np.ndarray, np.ndarray]:
    """``(gaps, correct)`` (N, K) of equal-length traces: top-1 − top-2 of the cumulative readout,
    and whether its argmax is the label."""
    logits = np.stack([t.logits for t in traces])
    labels = np.array([t.label for t in traces])
    return top_gap(logits), np.argmax(logits, axis=2) == labels[:, None]


def cutoff_rows(gaps: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Row of each sample where the gap first exceeds β (the last row if never)."""
    fire = gaps > beta[None, :]
    return np.where(fire.any(axis=1), np.argmax(fire, axis=1), gaps.shape[1] - 1)


def cv_changes(gaps: np.ndarray, correct: np.ndarray, eps: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:data:`FOLDS`-fold cross-validation of ``calibrate_gap`` at ``eps``: for every sample, held out
    once, ``correct at the end − correct at its cutoff`` (1 lost, 0 same, −1 gained) and its cutoff row."""
    n = len(gaps)
    folds = np.array_split(np.random.default_rng(seed).permutation(n), FOLDS)
    change, rows = np.zeros(n), np.zeros(n)
    for held in folds:
        fit = np.setdiff1d(np.arange(n), held)
        k = cutoff_rows(gaps[held], calibrate_gap(gaps[fit], correct[fit], eps))
        change[held] = correct[held, -1].astype(float) - correct[held, k].astype(float)
        rows[held] = k
    return change, rows


def choose_epsilon(gaps: np.ndarray, correct: np.ndarray, seed: int = 0) -> tuple[float, list[dict]]:
    """Largest ε of :data:`EPSILONS` whose cross-validated accuracy drop on the training traces has a
    one-sided 95% upper bound ≤ :data:`MAX_DROP` (the smallest ε if none has); also returns the
    per-ε estimates (drop, its standard error and upper bound, recordings lost and gained, mean
    cutoff row)."""
    table, chosen = [], None
    for eps in EPSILONS:
        change, rows = cv_changes(gaps, correct, eps, seed)
        drop = float(change.mean())
        se = float(change.std(ddof=1) / np.sqrt(len(change))) if len(change) > 1 else 0.0
        upper = drop + Z_UPPER * se
        table.append({"epsilon": eps, "cv_accuracy_drop": drop, "cv_drop_se": se, "cv_drop_upper95": upper,
                      "cv_lost": int((change > 0).sum()), "cv_gained": int((change < 0).sum()),
                      "cv_mean_cutoff_row": float(rows.mean())})
        if upper <= MAX_DROP + 1e-12:
            chosen = eps
    return (chosen if chosen is not None else EPSILONS[0]), table


def apply_policy(traces: list[SampleTrace], beta: np.ndarray, grid_us: np.ndarray | None, engine: str,
                 names: tuple) -> dict:
    """Summary of ``aggregate`` with the gap policy: per-row β (``grid_us=None``) or on a time grid."""
    if grid_us is None:
        policy = make_policy("gap", beta=beta)
    else:
        policy = make_policy("gap", calibration={"grid_us": grid_us, "beta": beta})
    return aggregate(traces, policy, TABLE, GRID_STEP_US, engine, "all", names).summary


def summarise(s: dict, end: dict) -> dict:
    """The numbers of one table row from an ``aggregate`` summary (and the no-cutoff one)."""
    return {"accuracy": s["accuracy"], "accuracy_at_end": end["accuracy"],
            "accuracy_drop": end["accuracy"] - s["accuracy"], "latency_ms_mean": s["cutoff"]["t_us_mean"] / 1000,
            "latency_ms_at_end": end["cutoff"]["t_us_mean"] / 1000, "synops_per_sample": s["synops_per_sample"],
            "synops_per_sample_at_end": end["synops_per_sample"], "synops_saving": s["cutoff"]["synops_saving"],
            "energy_pj_per_sample": s["energy_pj_per_sample"], "spikes_per_sample": s["spikes_per_sample"]}


def cutoff_study(train: list[SampleTrace], test: list[SampleTrace], grid_us: np.ndarray | None, engine: str,
                 names: tuple) -> dict:
    """ε chosen on ``train`` by cross-validation, β calibrated on all of ``train``, applied to ``test``;
    plus the whole ε sweep on ``test``."""
    g_tr, c_tr = gaps_correct(train)
    eps, cv = choose_epsilon(g_tr, c_tr)
    end = aggregate(test, make_policy("none"), TABLE, GRID_STEP_US, engine, "all", names).summary
    sweep = []
    for e in EPSILONS:
        beta = calibrate_gap(g_tr, c_tr, e)
        sweep.append({"epsilon": e, **summarise(apply_policy(test, beta, grid_us, engine, names), end)})
    beta = calibrate_gap(g_tr, c_tr, eps)
    chosen = summarise(apply_policy(test, beta, grid_us, engine, names), end)
    curve = end["curve"]
    return {"epsilon": eps, "cross_validation": cv, "beta": beta, "chosen": chosen, "sweep_on_test": sweep,
            "train_samples": len(train), "train_accuracy_at_end": float(c_tr[:, -1].mean()),
            "curve": {"t_ms": [c["t_us"] / 1000 for c in curve], "accuracy": [c["accuracy"] for c in curve],
                      "synops_per_sample": [c["synops_per_sample"] for c in curve]}}


# ----------------------------------------------------------------------------- async run


def async_network(net: es.Network, tau_s: float) -> es.Network:
    """``net`` with every ``LIF(leak=λ)`` replaced by ``LIF(tau_s=τ)`` and raw-event input."""
    layers = [replace(layer, leak=None, tau_s=tau_s) if isinstance(layer, es.LIF) else layer for layer in net.layers]
    return es.Network(net.input_shape, layers, metadata={**net.metadata, "input_encoding": "events",
                                                        "tau_s": tau_s})


def _engine_digest() -> str:
    h = hashlib.sha1()
    src = Path(es.__file__).resolve().parent
    for path in sorted([src / "engines" / "asynchronous.py", *src.glob("kernels/async_*.py"),
                        src / "kernels" / "neuron.py", src / "kernels" / "layers.py"]):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def _async_one(args) -> tuple:
    net, events, dt_us, grid, t_stop = args
    t0 = time.perf_counter()
    res = es.simulate(net, events, engine="async", dt_us=dt_us, snapshot_times_us=grid, t_stop_us=t_stop)
    return (np.asarray(res.logits, float), res.cumulative("synops"), res.cumulative("macs"),
            res.cumulative("spikes"), np.asarray(res.spikes_per_row, np.int64), time.perf_counter() - t0)


def async_traces(net: es.Network, dataset, n: int, dt_us: float, workers: int, label: str) -> tuple[list, float]:
    """Async traces of the first ``n`` recordings of ``dataset`` on the 5 ms grid (cached)."""
    grid = GRID_STEP_US * np.arange(1, int(round(GRID_END_US / GRID_STEP_US)) + 1)
    # the engine runs whole steps of dt_us: end on the first step boundary at or after the grid's end
    t_stop = float(np.ceil(GRID_END_US / dt_us - 1e-9) * dt_us)
    key = hashlib.sha1(CHECKPOINT.read_bytes() + repr((dt_us, net.metadata["tau_s"], GRID_STEP_US, GRID_END_US,
                                                        t_stop, label, n, _engine_digest())).encode()).hexdigest()[:16]
    cache = cc.ROOT / "build" / "claims-cache" / f"aoi_async_{label}_{key}.npz"
    samples = [dataset[i] for i in range(n)]
    if any(int(ev["t"][-1]) >= GRID_END_US for ev, _ in samples):
        raise SystemExit(f"a recording lasts beyond the {GRID_END_US / 1000:.0f} ms grid; raise GRID_END_US")
    if cache.is_file():
        data = np.load(cache)
        parts = [tuple(data[f"{k}_{i}"] for k in ("logits", "synops", "macs", "spikes", "rows")) + (float(data["secs"][i]),)
                 for i in range(n)]
    else:
        jobs = [(net, ev, dt_us, grid, t_stop) for ev, _ in samples]
        t0 = time.perf_counter()
        parts = []
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                for i, part in enumerate(pool.map(_async_one, jobs)):
                    parts.append(part)
                    _progress(label, i + 1, n, t0)
        else:
            for i, job in enumerate(jobs):
                parts.append(_async_one(job))
                _progress(label, i + 1, n, t0)
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"{k}_{i}": p[j] for i, p in enumerate(parts)
                  for j, k in enumerate(("logits", "synops", "macs", "spikes", "rows"))}
        np.savez_compressed(cache, secs=np.array([p[5] for p in parts]), **arrays)
    traces = []
    for i, ((ev, lab), p) in enumerate(zip(samples, parts)):
        traces.append(SampleTrace(index=i, label=int(lab), times_us=grid.astype(float), logits=p[0], synops=p[1],
                                  macs=p[2], spikes=p[3], spikes_per_layer=p[4], n_events=len(ev),
                                  duration_us=int(ev["t"][-1] - ev["t"][0])))
    return traces, float(np.mean([p[5] for p in parts]))


def _progress(label: str, done: int, total: int, t0: float) -> None:
    if done == total or done % 10 == 0:
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"async {label}: {done}/{total} ({1 / rate:.1f} s/sample)", file=sys.stderr, flush=True)


def batch_check(net: es.Network, test, steps: int, stepped_traces: list[SampleTrace]) -> dict:
    """Async ``simultaneous="batch"`` on the frames equals the stepped engine (logits and spikes)."""
    max_diff, same_spikes = 0.0, 0
    for i in range(BATCH_CHECK_SAMPLES):
        enc = encode(net, test[i][0], i, steps, 1000.0, 0)
        res = es.simulate(net, enc.inputs, engine="async", dt_us=enc.dt_us, steps=enc.steps,
                          simultaneous="batch", input_kind="events")
        ref = stepped_traces[i]
        max_diff = max(max_diff, float(np.max(np.abs(np.asarray(res.logits) - ref.logits))))
        same_spikes += int(np.array_equal(res.cumulative("spikes"), ref.spikes))
    return {"samples": BATCH_CHECK_SAMPLES, "max_abs_logit_diff": max_diff, "same_spike_counts": same_spikes}


def refined_network(net: es.Network, k: int) -> es.Network:
    """``net`` for bins k times finer: leak λ^(1/k) per bin and biases ÷ k (the same per unit time)."""
    layers = []
    for layer in net.layers:
        if isinstance(layer, es.LIF):
            layer = replace(layer, leak=np.asarray(layer.leak, float) ** (1.0 / k))
        elif isinstance(layer, (es.Conv2d, es.Linear)) and layer.bias is not None:
            layer = replace(layer, bias=layer.bias / k)
        layers.append(layer)
    return es.Network(net.input_shape, layers, metadata=net.metadata)


def refinement_series(net: es.Network, test, steps: int) -> list[dict]:
    """Accuracy and cost of the stepped network on ``k·steps`` bins, k in :data:`REFINE`."""
    out = []
    for k in REFINE:
        s = evaluate(refined_network(net, k), test, steps=k * steps).summary
        out.append({"k": k, "bins": k * steps, "leak_per_bin": 0.5 ** (1.0 / k), "accuracy": s["accuracy"],
                    "spikes_per_sample": s["spikes_per_sample"], "synops_per_sample": s["synops_per_sample"]})
    return out


# ----------------------------------------------------------------------------- main


def run(data: str, async_train: int, workers: int, skip_async: bool, async_test: int = 100) -> dict:
    info = cc.sidecar(CHECKPOINT)
    steps = int(info["timesteps"])
    net = es.load(CHECKPOINT, input_shape=cc.INPUT_SHAPE, pool="avg")
    names = tuple(layer.name for layer in net.layers)
    train_set, test_set = LocalNMNIST(data, "train"), LocalNMNIST(data, "test")
    ev_test = evaluate(net, test_set, steps=steps, progress=True)
    ev_train = evaluate(net, train_set, steps=steps, progress=True)
    out = {"timesteps": steps, "test_samples": len(test_set), "train_samples": len(train_set),
           "max_accuracy_drop": MAX_DROP, "epsilons": list(EPSILONS), "folds": FOLDS,
           "stepped": cutoff_study(ev_train.traces, ev_test.traces, None, "stepped", names)}
    out["stepped"]["predictions_at_end"] = [r["prediction_final"] for r in ev_test.records]
    out["stepped"]["mean_bin_ms_test"] = float(np.mean([t.times_us[0] for t in ev_test.traces]) / 1000)
    out["refinement"] = refinement_series(net, test_set, steps)
    if skip_async:
        return out
    out["batch_check"] = batch_check(net, test_set, steps, ev_test.traces)
    dt_us = float(info["mean_bin_us"])
    tau_s = -dt_us * 1e-6 / np.log(0.5)
    anet = async_network(net, tau_s)
    n_train = min(async_train, len(train_set))
    a_test, secs_test = async_traces(anet, test_set, min(async_test, len(test_set)), dt_us, workers, "test")
    a_train, secs_train = async_traces(anet, train_set, n_train, dt_us, workers, "train")
    grid = a_test[0].times_us
    study = cutoff_study(a_train, a_test, grid, "async", names)
    study["chosen_spikes_at_end"] = float(np.mean([t.spikes[-1] for t in a_test]))
    study.update({"dt_us": dt_us, "tau_ms": tau_s * 1e3, "grid_step_ms": GRID_STEP_US / 1000,
                  "grid_end_ms": GRID_END_US / 1000, "seconds_per_sample": (secs_test + secs_train) / 2,
                  "predictions_at_end": [int(np.argmax(t.logits[-1])) if np.any(t.logits[-1]) else -1 for t in a_test]})
    out["async"] = study
    return out


def tables(res: dict) -> str:
    head = ["engine, input", "accuracy at end", "ε (chosen on train)", "accuracy at cutoff", "drop",
            "mean latency ms", "latency at end ms", "synops/sample at cutoff", "synops/sample at end", "synop saving"]
    rows = []
    labels = {"stepped": f"stepped, {res['timesteps']} event-count frames",
              "async": "async, raw µs events (τ from the bin width)"}
    for key in ("stepped", "async"):
        if key not in res:
            continue
        r, c = res[key], res[key]["chosen"]
        rows.append([labels[key], f"{c['accuracy_at_end']:.2f}", f"{r['epsilon']:g}", f"{c['accuracy']:.2f}",
                     f"{c['accuracy_drop']:.2f}", f"{c['latency_ms_mean']:.0f}", f"{c['latency_ms_at_end']:.0f}",
                     cc.fmt_int(c["synops_per_sample"]), cc.fmt_int(c["synops_per_sample_at_end"]),
                     f"{c['synops_saving']:.0%}"])
    text = cc.markdown_table(head, rows, "lrrrrrrrrr")
    sweep_head = ["ε"] + [f"{k}: acc / ms / saving" for k in ("stepped", "async") if k in res]
    sweep_rows = []
    for i, eps in enumerate(EPSILONS):
        row = [f"{eps:g}"]
        for key in ("stepped", "async"):
            if key in res:
                s = res[key]["sweep_on_test"][i]
                cv = res[key]["cross_validation"][i]
                row.append(f"{s['accuracy']:.2f} / {s['latency_ms_mean']:.0f} / {s['synops_saving']:.0%} "
                           f"(cv {cv['cv_accuracy_drop']:+.3f} ≤ {cv['cv_drop_upper95']:.3f})")
        sweep_rows.append(row)
    text += "\n\nε sweep on the test recordings (β calibrated on the training traces; cv = the 5-fold estimate of " \
            "the drop on the training split ≤ its 95% upper bound, which chooses ε):\n\n" \
            + cc.markdown_table(sweep_head, sweep_rows)
    ref = res["refinement"]
    ref_rows = [[r["bins"], f"{r['leak_per_bin']:.3f}", f"{r['accuracy']:.2f}", cc.fmt_int(r["spikes_per_sample"]),
                 cc.fmt_int(r["synops_per_sample"])] for r in ref]
    if "async" in res:
        a = res["async"]
        ref_rows.append(["continuous (async, raw events)", f"τ = {a['tau_ms']:.1f} ms", f"{a['chosen']['accuracy_at_end']:.2f}",
                         cc.fmt_int(a["chosen_spikes_at_end"]), cc.fmt_int(a["chosen"]["synops_per_sample_at_end"])])
    text += ("\n\nThe same weights on finer bins (stepped engine, leak and bias per unit time kept):\n\n"
             + cc.markdown_table(["bins per recording", "leak per bin", "accuracy", "spikes/sample", "synops/sample"],
                                 ref_rows, "lrrrr"))
    if "async" in res:
        a, b = res["async"], res["batch_check"]
        text += (f"\n\nAsync: τ = {a['tau_ms']:.1f} ms from the mean bin width Δt = {a['dt_us'] / 1000:.2f} ms "
                 f"(τ = −Δt/ln 0.5), readout snapshots every {a['grid_step_ms']:g} ms up to {a['grid_end_ms']:g} ms, "
                 f"calibrated on {a['train_samples']} training recordings; {a['seconds_per_sample']:.1f} s per "
                 f"recording. Batch-mode check: async `simultaneous=\"batch\"` on the frames of {b['samples']} test "
                 f"recordings, max |Δlogit| {b['max_abs_logit_diff']:.2g} vs the stepped engine, identical spike "
                 f"counts in {b['same_spike_counts']}/{b['samples']}.")
    return text


def figure(res: dict):
    import matplotlib.pyplot as plt
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
    styles = {"stepped": ("o-", f"stepped, {res['timesteps']} frames"), "async": ("-", "async, raw events")}
    for key, (style, label) in styles.items():
        if key not in res:
            continue
        r = res[key]
        c = r["curve"]
        line, = ax.plot(c["t_ms"], c["accuracy"], style, ms=4, label=label)
        ch = r["chosen"]
        ax.plot([ch["latency_ms_mean"]], [ch["accuracy"]], "*", ms=14, color=line.get_color(),
                label=f"gap cutoff ε={r['epsilon']:g}: {ch['accuracy']:.2f} at {ch['latency_ms_mean']:.0f} ms")
        ax2.plot(np.array(c["synops_per_sample"]) / 1e6, c["accuracy"], style, ms=4, color=line.get_color(), label=label)
        ax2.plot([ch["synops_per_sample"] / 1e6], [ch["accuracy"]], "*", ms=14, color=line.get_color(),
                 label=f"gap cutoff: saves {ch['synops_saving']:.0%}")
    ax.set(xlabel="time since recording start, ms", ylabel="accuracy (100 test recordings)", ylim=(0, 1),
           title="AOI-SNN on N-MNIST: accuracy vs time")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    ax2.set(xlabel="synops per sample (millions, cumulative)", ylabel="accuracy", ylim=(0, 1),
            title="accuracy vs exact synops")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(alpha=0.3)
    ref = res["refinement"]
    ax3.plot([r["bins"] for r in ref], [r["accuracy"] for r in ref], "o-", label="stepped, finer bins")
    if "async" in res:
        ax3.axhline(res["async"]["chosen"]["accuracy_at_end"], color="C1", ls="--", label="async, raw events")
    ax3.set(xscale="log", xlabel="bins per recording (trained with 10)", ylabel="accuracy at the end", ylim=(0, 1),
            title="same weights, finer time resolution")
    ax3.set_xticks([r["bins"] for r in ref], labels=[str(r["bins"]) for r in ref])
    ax3.legend(loc="lower left", fontsize=8)
    ax3.grid(alpha=0.3)
    return fig


def main(argv=None) -> int:
    p = cc.parser(__doc__.splitlines()[0])
    p.add_argument("--async-train", type=int, default=1000, help="training recordings for the async calibration")
    p.add_argument("--workers", type=int, default=1, help="processes for the async simulations")
    p.add_argument("--async-test", type=int, default=100, help="test recordings for the async run (a smoke run)")
    p.add_argument("--skip-async", action="store_true", help="frames/stepped part only")
    args = p.parse_args(argv)
    if args.retrain:
        cc.retrain(NAME, args.data, args.threads)
    res = run(args.data, args.async_train, args.workers, args.skip_async, args.async_test)
    res["checkpoint"] = str(CHECKPOINT.relative_to(cc.ROOT))
    res["command"] = "python benchmarks/claims/aoi_cutoff.py" + (
        f" --async-train {args.async_train}" if args.async_train != 1000 else "")
    print(tables(res))
    if not args.no_write:
        print("wrote", cc.write_json(NAME, res), cc.save_figure(figure(res), NAME))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
