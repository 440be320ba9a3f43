"""Render the comparison results as JSON and as ``REPORT.md`` (README-ready section first)."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

__all__ = ["machine_info", "repro_rows", "render", "write"]

_PEER_LABEL = {"NeuroBench": "NeuroBench", "SpikingJelly": "SpikingJelly", "sinabs": "sinabs"}
_SIM_LABEL = {"NeuroBench": "snnTorch (NeuroBench's model)", "SpikingJelly": "SpikingJelly", "sinabs": "sinabs"}
_NOTE = {"NeuroBench": "a", "SpikingJelly": "b", "sinabs": "c"}


def machine_info(statuses: dict) -> dict:
    """Machine, library versions and the peers' status (version, or why skipped)."""
    from importlib.metadata import version

    import numpy
    import torch

    import eventsim
    return {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "system": platform.system(),
        "processor": _cpu_name(), "cpu_count": os.cpu_count(), "threads": 1,
        "python": platform.python_version(), "numpy": numpy.__version__, "numba": version("numba"),
        "torch": torch.__version__, "eventsim": eventsim.__version__,
        "peers": {name: {"available": st.available, "version": st.version, "reason": st.reason}
                  for name, st in statuses.items()},
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def repro_rows(peers: dict) -> list[dict]:
    """Counts of every minimal reproducing case (:mod:`peerkit.repro`) by every available tool."""
    from .repro import count_all, repro_cases
    return [count_all(case, peers) for case in repro_cases()]


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 or x == int(x) else f"{x:,.1f}"


def _peer_cell(row: dict, peer: str) -> str:
    """Per-recording mean of a peer's total synops; '=' when every layer equals eventsim on every recording."""
    p = row["peers"].get(peer)
    if p is None:
        return "skipped"
    n = row["samples"]
    if all(v == n for v in p["synops_equal"].values()):
        return "= ✓"
    explained = all(v == n for v in p["explained"].values())
    return f"{_fmt(sum(p['synops_per_layer'].values()) / n)} {_NOTE[peer]}" + ("" if explained else " (unexplained!)")


def _tally(results: dict, peer: str, key: str) -> tuple[int, int]:
    """(layer·recording pairs where ``key`` holds, all pairs) for ``peer`` over every row."""
    ok = total = 0
    for row in results["rows"]:
        q = row["peers"].get(peer)
        if q is not None:
            ok += sum(q[key].values())
            total += row["samples"] * len(q[key])
    return ok, total


def _claim(results: dict, peer: str, key: str, text: str) -> str:
    ok, total = _tally(results, peer, key)
    if peer not in results["rows"][0]["peers"]:
        return f"({peer} was skipped.)"
    verdict = "on every layer of every recording" if ok == total else "on only some layers and recordings"
    return f"{text} {verdict} ({ok:,} of {total:,} layer-recordings)."


def _summary_table(results: dict) -> list[str]:
    peers = [p for p in _PEER_LABEL if results["info"]["peers"][p]["available"]]
    lines = ["| network | input | accuracy | spikes / rec. | spikes and predictions | synops / rec. `all`: eventsim "
             "| sinabs | SpikingJelly | `nonzero`: eventsim | NeuroBench |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for row in results["rows"]:
        n = row["samples"]
        ours = row["eventsim"]
        agree = []
        for p in peers:
            q = row["peers"][p]
            agree.append(q["rasters_equal"] == n and q["prediction_agree"] == n)
        spikes_cell = ("equal in all peers ✓" if agree and all(agree) else
                       ", ".join(f"{p}: rasters {row['peers'][p]['rasters_equal']}/{n}, predictions "
                                 f"{row['peers'][p]['prediction_agree']}/{n}" for p in peers) or "no peer")
        cells = [row["case"], row["mode"], f"{ours['accuracy']:.2f}", _fmt(sum(ours["spikes_per_layer"].values()) / n),
                 spikes_cell, _fmt(sum(ours["synops_all"].values()) / n),
                 _peer_cell(row, "sinabs"), _peer_cell(row, "SpikingJelly"),
                 _fmt(sum(ours["synops_nonzero"].values()) / n), _peer_cell(row, "NeuroBench")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _speed_table(results: dict, dtype: str = "float32") -> list[str]:
    peers = [p for p in _PEER_LABEL if results["info"]["peers"][p]["available"]]
    head = ["network", "eventsim stepped", "eventsim async (batch)"] + [_SIM_LABEL[p] for p in peers]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for case, t in results["timings"].items():
        base = t["eventsim_stepped"]
        cells = [case, f"{base * 1e3:.1f}", f"{t['eventsim_async'] * 1e3:.1f} ({t['eventsim_async'] / base:.2f}×)"]
        cells += [f"{t[f'{p}_{dtype}'] * 1e3:.1f} ({t[f'{p}_{dtype}'] / base:.2f}×)" for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _speed_summary(results: dict, dtype: str = "float32") -> str:
    """One sentence: the range of peer/eventsim time ratios per peer, and the async engine's."""
    peers = [p for p in _PEER_LABEL if results["info"]["peers"][p]["available"]]
    t = results["timings"].values()
    parts = []
    for p in peers:
        r = [x[f"{p}_{dtype}"] / x["eventsim_stepped"] for x in t]
        parts.append(f"{_SIM_LABEL[p]} {min(r):.1f}–{max(r):.1f}×")
    a = [x["eventsim_async"] / x["eventsim_stepped"] for x in t]
    vs = []
    for p in peers:
        r = [x[f"{p}_{dtype}"] / x["eventsim_async"] for x in t]
        vs.append(f"{_SIM_LABEL[p]} {min(r):.2f}–{max(r):.2f}×")
    return ("Per recording, eventsim's stepped engine is faster than each peer's CPU simulation by "
            + ", ".join(parts) + f". eventsim's async engine in batch mode (spike for spike the same) takes "
            f"{min(a):.2f}–{max(a):.2f}× the time of its stepped engine on the same 10 ms steps; per recording, "
            "peer time / async batch-mode time (> 1: the async engine is faster) is " + ", ".join(vs) + ".")


def _detail_tables(results: dict) -> list[str]:
    peers = [p for p in _PEER_LABEL if results["info"]["peers"][p]["available"]]
    out = []
    for row in results["rows"]:
        n = row["samples"]
        ours = row["eventsim"]
        out += ["", f"#### {row['case']} — {row['mode']} input ({row['layers']}; {row['zero_fraction']:.0%} zero weights)", "",
                "Totals over the recordings; `k/N`: recordings on which the peer's count equals eventsim's "
                "(same convention) / equals the peer's rule applied to its own spikes.", ""]
        head = ["layer", "eventsim spikes", "eventsim `all`", "eventsim `nonzero`"]
        for p in peers:
            head += [f"{p} ({row['peers'][p]['convention']})", "= eventsim / rule"]
        out += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for name, v in ours["spikes_per_layer"].items():
            cells = [name, f"{v:,}", "", ""]
            for p in peers:
                q = row["peers"][p]
                cells += [f"{q['spikes_per_layer'][name]:,}", f"rasters {q['rasters_equal']}/{n}"]
            out.append("| " + " | ".join(cells) + " |")
        for name in ours["synops_all"]:
            cells = [name, "", f"{ours['synops_all'][name]:,}", f"{ours['synops_nonzero'][name]:,}"]
            for p in peers:
                q = row["peers"][p]
                cells += [f"{q['synops_per_layer'][name]:,}", f"{q['synops_equal'][name]}/{n} / {q['explained'][name]}/{n}"]
            out.append("| " + " | ".join(cells) + " |")
        nb = row["peers"].get("NeuroBench")
        if nb:
            e = nb["extra"]
            out += ["", f"NeuroBench: Effective_ACs {e['effective_acs'] / n:,.0f} + Effective_MACs "
                    f"{e['effective_macs'] / n:,.0f} per recording (its synop total = eventsim `nonzero` on "
                    f"{e['total_equal']}/{n}; = its per-layer sum on {e['total_equals_layer_sum']}/{n}); Dense "
                    f"{e['dense'] / n:,.0f}; ActivationSparsity {e['activation_sparsity_sum'] / n:.4f}, equal to "
                    f"1 − spikes/(neurons·T) from eventsim's spikes on {e['activation_sparsity_equal']}/{n}."]
    return out


def _repro_table(results: dict) -> list[str]:
    peers = [p for p in _PEER_LABEL if results["info"]["peers"][p]["available"]]
    head = ["case", "input", "layer", "eventsim `all`", "eventsim `nonzero`", "eventsim `nonzero`, input ≤ 1/bin"] + peers
    lines = ["| " + " | ".join(head) + " |", "|---|---|---|" + "---:|" * (len(head) - 3)]
    for r in results["repro"]:
        cells = [r["case"], r["input"], r["layer"], str(r["eventsim_all"]), str(r["eventsim_nonzero"]),
                 str(r["eventsim_nonzero_binarised"])] + [str(r[p]) for p in peers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _targets_section(results: dict) -> list[str]:
    """Issue #19's targets and the resolution sweep (:mod:`peerkit.targets`), if they were measured."""
    targets = results.get("targets") or {}
    if not targets:
        return []
    from .targets import TARGETS, precision_ratios, verdicts
    first = next(iter(targets.values()))
    n, fine, rounds = first["samples"], first["fine_samples"], first.get("rounds", 2)
    head = ["network", "async, continuous (ms)"] + [f"{short} (≥ {m:g}×)" for _, _, m, short in TARGETS]
    lines = [
        "## The asynchronous engine in continuous time (issue #19's targets)",
        "",
        f"Per recording, mean over {n} recordings, one thread, this one process, best of {rounds} interleaved rounds. "
        "`async`: `es.simulate(net, events, engine=\"async\")` on the raw events, continuous time, exact timing; "
        "warmed up until the automatic choice runs the compiled fast path, and every timed call checked to have run "
        "it (`res.info[\"path\"] == \"fast\"`). The others on the events binned beforehand (outside the timed "
        "region); peers in float32 without counters. Cells: other tool's time / async time (batch: stepped time / "
        "batch-mode time on the same 10 ms steps), then PASS or MISS. `conv` is the shipped "
        "`models/nmnist/nmnist_if.npz`.",
        "",
        "| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for case, t in targets.items():
        cells = [case, f"{t['async'] * 1e3:.2f}"]
        for v in verdicts(t):
            cells.append("skipped" if v["ratio"] is None else f"{v['ratio']:.2f}× {v['verdict']}")
        lines.append("| " + " | ".join(cells) + " |")
    if any(precision_ratios(t) for t in targets.values()):
        peers = [p for p, _ in precision_ratios(first)]
        lines += ["", "At the peers' precision (information; the targets above are judged on eventsim's default, "
                  "float64): the same `async` calls with `dtype=\"float32\"`, timed in the same rounds. Cells: the "
                  "peer's time at 10 ms bins / this time.", "",
                  "| network | async float32 (ms) | " + " | ".join(f"vs {p} 10 ms" for p in peers) + " |",
                  "|---|---:|" + "---:|" * len(peers)]
        for case, t in targets.items():
            lines.append(f"| {case} | {t['async_f32'] * 1e3:.2f} | "
                         + " | ".join(f"{r:.2f}×" for _, r in precision_ratios(t)) + " |")
    lines += [
        "",
        "### Resolution sweep",
        "",
        f"Per-recording time (ms) of the stepped engine, sinabs and SpikingJelly at 10 ms, 1 ms and 0.1 ms bins "
        f"(34, 340, 3,400 steps), and in parentheses that time / the asynchronous engine's in continuous time "
        f"(exact timing, no bins). 10 ms and 1 ms: {n} recordings; 0.1 ms: the first {fine} (against the async "
        "engine on the same ones).",
        "",
        "| network | async, continuous | tool | 10 ms | 1 ms | 0.1 ms |", "|---|---:|---|---:|---:|---:|"]
    from .targets import sweep_rows
    for case, t in targets.items():
        for tool, async_ms, cells in sweep_rows(t):
            lines.append(f"| {case} | {async_ms} | {tool} | " + " | ".join(cells) + " |")
    return lines + [""]


def render(results: dict) -> str:
    """REPORT.md: the README section, then details, reproducing cases, installation notes."""
    info = results["info"]
    peers = info["peers"]
    avail = {p: s for p, s in peers.items() if s["available"]}
    skipped = {p: s for p, s in peers.items() if not s["available"]}
    versions = ", ".join(f"{p} {s['version']}" for p, s in avail.items())
    machine = (f"{info['processor']} ({info['machine']}, {info['cpu_count']} cores shared with other work), one thread per "
               f"tool; Python {info['python']}, torch {info['torch']}, NumPy {info['numpy']}, Numba {info['numba']}, "
               f"eventsim {info['eventsim']}; {versions}; {info['date']}")
    n, nt = results["samples"], results["time_samples"]
    md = [
        "<!-- generated by python benchmarks/peers/run_peers.py; do not edit by hand -->",
        "# eventsim vs NeuroBench, SpikingJelly and sinabs",
        "",
        "## eventsim vs peers",
        "",
        f"`python benchmarks/peers/run_peers.py` runs {len(results['timings'])} networks with the same weights on the same {n} real N-MNIST "
        "test recordings (34 steps of 10 ms) in eventsim's stepped engine and in SpikingJelly (`activation_based`, "
        "multi-step), sinabs (`IAFSqueeze`) and snnTorch wrapped in NeuroBench (`SNNTorchModel`), and compares, per "
        "recording and per layer and exactly, the spike rasters, the predictions and each tool's own synop count "
        "with eventsim's count under the same convention: `all` (every existing synapse; sinabs, SpikingJelly) or "
        "`nonzero` (non-zero weights only; NeuroBench's `SynapticOperations`). Peers: "
        "`bash benchmarks/peers/install_peers.sh`"
        + (("; skipped here: " + ", ".join(f"{p} ({s['reason']})" for p, s in skipped.items()) + ".") if skipped else "."),
        "",
        f"Machine: {machine}."
        + (f" The exact comparisons (tables of counts) are those of the run of {results['comparisons_date']} "
           "(`--keep-comparisons`: the stepped engine and the peers they compare are unchanged since); the "
           "timings are of this run." if results.get("comparisons_date") else ""),
        "",
        "Input `counts`: events per pixel and 10 ms bin (up to 5; the shipped model's input). `binary`: at most one. "
        "Spike and synop cells are means per recording; \"= ✓\" means the peer's count equals eventsim's on every "
        "layer of every recording.",
        "",
        *_summary_table(results),
        "",
        "a. NeuroBench binarises every layer input per step: a pixel with k > 1 events in one bin costs one "
        "operation per synapse (eventsim delivers k events: k operations), and after average or sum pooling a window "
        "holding several spikes costs one (eventsim: one per spike). NeuroBench books such non-binary calls as "
        "`Effective_MACs`; the figure is `Effective_ACs + Effective_MACs`. "
        + _claim(results, "NeuroBench", "explained", "This rule, applied to NeuroBench's own spikes, reproduces its count"),
        "",
        "b. SpikingJelly's `SynOpCounter` counts a convolution or matmul only when its input tensor is binary: the "
        "first layer under `counts` input (the whole T-step sequence is one call) and every layer after average or "
        "sum pooling count 0. "
        + _claim(results, "SpikingJelly", "explained", "This rule, applied to SpikingJelly's own spikes, reproduces its count"),
        "",
        "c. sinabs counts `Σ input × fan-out` and rescales a layer after `AvgPool2d` by the pooling area: eventsim's "
        "`all` convention, event multiplicity included. "
        + _claim(results, "sinabs", "synops_equal", "sinabs equals eventsim `all`"),
        "",
        "So eventsim `all` = sinabs on every network and input, = SpikingJelly wherever SpikingJelly counts "
        "(binary layer inputs); eventsim `nonzero` = NeuroBench wherever a layer's input is binary (binary input, no "
        "average/sum pooling). The remaining differences are the peers' conventions, each reproduced by a "
        "minimal case in `benchmarks/peers/REPORT.md` (`python benchmarks/peers/repro_counts.py`).",
        "",
        f"Wall time per recording (ms, mean over {nt} recordings, best of 3 interleaved rounds, `counts` input, one "
        "thread, inputs prepared beforehand; peers in float32, their default, without counters; eventsim in float64 "
        "with its counting, which is always on; in parentheses: time / eventsim stepped, > 1 means eventsim is faster):",
        "",
        *_speed_table(results, "float32"),
        "",
        _speed_summary(results, "float32"),
        "",
        *_targets_section(results),
        "## Details",
        "",
        "### Wall time with the peers in float64 (the precision of the exact comparisons above)",
        "",
        *_speed_table(results, "float64"),
        "",
        "### Per layer",
        *_detail_tables(results),
        "",
        "### Minimal reproducing cases",
        "",
        "`python benchmarks/peers/repro_counts.py` (cases in `benchmarks/peers/peerkit/repro.py`; asserted in "
        "`tests/test_peers.py`): one weighted layer's count, one step of input.",
        "",
        *_repro_table(results),
        "",
        "- `multi_event`: eventsim delivers both events (2 × 8 synapses = 16, `all`; 2 × 6 = 12, `nonzero`); "
        "sinabs multiplies the input value 2 by the fan-out (16); NeuroBench binarises the input (6 = eventsim "
        "`nonzero` on the input clipped to one event); SpikingJelly sees a non-binary input and counts 0.",
        "- `avgpool_merge`, `sumpool_merge`: two spikes reach the linear layer through one pooling window; "
        "eventsim and sinabs count 2 (each spike is delivered; sinabs undoes the averaging by the pooling area), "
        "NeuroBench 1 (one non-zero pooled value), SpikingJelly 0 (0.5 or 2 is not binary).",
        "- `maxpool_merge`: a spike max-pool passes one event per window and step; every tool counts 1.",
        "- `padding_zeros`: a corner pixel of a 3×3 input reaches 4 of the 9 taps of a padded 3×3 kernel; padding "
        "never counts in any tool (8 = 4 × 2 outputs); the 2 reachable zero weights count under `all` (eventsim, "
        "sinabs, SpikingJelly) and not under `nonzero` (eventsim, NeuroBench).",
        "- `binary_weights`, `binary_weights_1` (a SpikingJelly quirk, not exercised by the trained networks): "
        "`SynOpCounter` tests both operands for being binary, so with 0/1 weights a non-binary input counts "
        "`nnz(w) × output positions` (15 × 9 = 135) and a binary input counts only non-zero weights (6, not 8).",
        "",
        "### Peer installation (what works, what does not)",
        "",
        "`bash benchmarks/peers/install_peers.sh` installs, next to torch 2.13.0+cpu (never replaced): "
        "`snntorch==1.0.0 tqdm loguru==0.7.3 pbr==7.1.3 nir>=1.0.6 nirtorch>=2.6 matplotlib` (what the used modules "
        "import), then "
        "`pip install --no-deps neurobench==2.3.0 spikingjelly==2.0.0 sinabs==3.1.3`, and checks every module "
        "the suite imports.",
        "",
        "- neurobench 2.3.0 declares `torchaudio`; only its speech pre-processors import it, and "
        "`neurobench.models`, `.metrics` and `.benchmarks` import without it. It is left out: PyPI's torchaudio "
        "2.11.0 cannot load its C++ library (`_torchaudio.abi3.so`) beside torch 2.13.0.",
        "- spikingjelly 2.0.0 declares torchvision, torchaudio, tensorboard, SciencePlots, ...; "
        "`activation_based.{neuron,functional,layer,op_counter}` import only `loguru` besides torch. torchvision is "
        "left out: 0.29.1 requires torch >= 2.14 and its import fails beside 2.13.0 "
        "(`operator torchvision::nms does not exist`).",
        "- sinabs 3.1.3 declares `samna` (SynSense's chip runtime, used only by `sinabs.backend.dynapcnn`) and "
        "`nir<=1.0.4`; `sinabs.layers`/`sinabs.hooks` import with `pbr`, `nir` 1.0.8 and `nirtorch` 2.6.",
        "- NeuroBench's `Benchmark.run` turns a failing metric into a silent 0.0; the suite calls the metrics "
        "itself (same order: hooks, model, metrics, reset) so that a failure surfaces. "
        "`snntorch.utils.reset` (called by `SNNTorchModel`) resets only Leaky modules that are direct "
        "children of the net; the adapter's net is flat and has its own `reset()`.",
        "- sinabs and snnTorch emit float32 spikes from a float64 model; the adapters cast them back (0/1 are exact).",
        "",
        "### How the networks were made",
        "",
        "`conv` is the shipped `models/nmnist/nmnist_if.npz`; `conv_pruned` sets its 60 % smallest-magnitude weights "
        "per layer to 0. `pool_avg`, `pool_max`, `pool_sum` and `mlp` were trained by "
        "`python benchmarks/peers/train_peer_nets.py` on the 1000 training recordings with half of every weight tensor "
        "masked to 0 (weights in `benchmarks/peers/weights.npz`, accuracies in `weights.json`). All neurons: IF, θ = 1, "
        "subtract reset; eventsim runs `v > θ` against snnTorch and `v >= θ` against SpikingJelly and sinabs, "
        "the peers' own comparisons.",
        "",
    ]
    return "\n".join(md)


def docs_page(report_md: str) -> str:
    """``docs/peers.md``: the README-ready part of the report (up to its details) as a page."""
    body = report_md.split("## eventsim vs peers", 1)[1].split("\n## Details", 1)[0].strip("\n")
    return ("<!-- generated by python benchmarks/peers/run_peers.py; do not edit by hand -->\n"
            "# eventsim vs peers\n" + body + "\n\nFull report, minimal reproducing cases and float64 timings: "
            "`benchmarks/peers/REPORT.md`.\n")


def write(results: dict, json_path: Path, report_path: Path, docs_path: Path | None = None) -> None:
    """Write ``results`` to ``json_path``, the rendered report to ``report_path`` and, if given, its
    README-ready part to ``docs_path`` (each atomically)."""
    md = render(results)
    outputs = [(json_path, json.dumps(results, indent=1) + "\n"), (report_path, md)]
    if docs_path is not None:
        outputs.append((docs_path, docs_page(md)))
    for path, text in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
