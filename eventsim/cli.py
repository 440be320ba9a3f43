"""Command-line interface: ``eventsim evaluate | inspect | convert | calibrate | bench``.

User mistakes (missing files, wrong formats, shape mismatches) print one line and exit with
status 2; no traceback. Set ``EVENTSIM_DEBUG=1`` to see the traceback anyway.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .cutoff import make_policy
from .errors import UserError
from .evaluate import DEMO_CALIBRATION_PATH, DEMO_MODEL_PATH, evaluate, gap_matrix
from .interrupts import catch_sigint
from .network import Network
from .report import summary_table
from .samples import DEFAULT_DT_US

RECORDING_SUFFIXES = (".bin", ".bs2", ".aedat", ".aedat4", ".dat", ".raw", ".npy", ".h5", ".hdf5")


def _cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.target)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() in RECORDING_SUFFIXES and args.format is None:
        from .events import describe_recording, format_recording
        from .events.transforms import transforms_from_args
        print(format_recording(describe_recording(path, transform=transforms_from_args(args))))
        return 0
    from .formats import load
    options = _parse_params(args.model_option, "--model-option")
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        from .checkpoints import describe_checkpoint
        print(describe_checkpoint(path))
        try:
            net = load(path, format=args.format, **options)
        except ValueError as exc:
            print(f"\nnot imported as a network: {exc}")
            return 0
        print()
    elif path.suffix.lower() == ".nir" and args.format in (None, "nir"):
        from .nir import nir_summary
        print(nir_summary(path))
        return 0
    else:
        net = load(path, format=args.format, **options)
    print(f"model: {path}")
    print(net.summary())
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    return run_cli(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    return run_calibrate_cli(args)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .formats import load, save
    net = load(args.source, format=args.src_format)
    save(net, args.dest, format=args.dst_format)
    print(f"wrote {args.dest} ({len(net.layers)} layers)")
    return 0


# ----------------------------------------------------------------------------- evaluate and calibrate


def _parse_params(items: list[str], flag: str = "--cutoff-param") -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{flag} {item!r}: expected KEY=VALUE, e.g. t_us=50000 or input_shape=[2,34,34]")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


CHECKPOINT_SUFFIXES = (".pt", ".pth", ".tar", ".ckpt", ".safetensors")


def _load_model(args, dataset: Any = None) -> Network:
    """The model of ``--model`` (default: the demo model). PyTorch checkpoints rarely record their
    input size: unless ``--model-option input_shape=...`` says otherwise, the recordings' sensor
    size (2 polarity channels) is used."""
    from .formats import load
    if args.model is None:
        return load(DEMO_MODEL_PATH)
    options = _parse_params(getattr(args, "model_option", []) or [], "--model-option")
    size = getattr(dataset, "sensor_size", None)    # after --crop/--downsample/... (eventsim.events.transforms)
    is_checkpoint = any(str(args.model).lower().endswith(s) for s in CHECKPOINT_SUFFIXES)
    if is_checkpoint and size is not None and "input_shape" not in options:
        options["input_shape"] = (getattr(dataset, "channels", 2), int(size[1]), int(size[0]))
        try:
            return load(args.model, format=args.format, **options)
        except ValueError as exc:
            raise ValueError(f"{exc} (input shape {options['input_shape']} taken from the recordings' "
                             f"{size[0]}×{size[1]} sensor: if the model was trained at another size, fit the "
                             "recordings with --downsample/--crop/--roi or pass --model-option input_shape=[C,H,W])") from None
    return load(args.model, format=args.format, **options)


def _demo_defaults(args) -> None:
    """Fill the settings the user left out. Without ``--model`` (the demo model) the main job shows
    what eventsim is for: the asynchronous engine, stopped by the demo model's calibrated ``gap``
    cutoff (:data:`DEMO_CALIBRATION_PATH`) on its 10 ms grid. Otherwise: the stepped engine, no cutoff."""
    demo = args.model is None
    if args.engine is None:
        args.engine = "async" if demo else "stepped"
    if getattr(args, "cutoff", "none") is not None:
        return
    if demo and args.engine == "async" and not args.calibration and not args.cutoff_param:
        from .cutoff import load_calibration
        grid = load_calibration(DEMO_CALIBRATION_PATH)["grid_us"]
        args.cutoff, args.calibration = "gap", str(DEMO_CALIBRATION_PATH)
        if args.dt_us is None and args.steps is None:
            args.dt_us, args.steps = float(grid[0]), len(grid)
    else:
        args.cutoff = "none"


def run_cli(args) -> int:
    from .cutoff import load_calibration
    from .sources import open_source
    _demo_defaults(args)
    params = _parse_params(args.cutoff_param)
    if args.calibration:
        params["calibration"] = load_calibration(args.calibration)
    dataset = _fitted(args, open_source(args.data, args.split, args.root))
    network = _load_model(args, dataset)
    if args.cutoff == "fixed-exit":
        params.setdefault("network", network)
    policy = make_policy(args.cutoff, **params)           # bad policy or parameters fail before any work
    store = _store(args, network, len(dataset))
    try:
        ev = _evaluate_cli(args, network, dataset, policy, store)
    except KeyboardInterrupt:
        raise UserError(f"interrupted: finished samples are kept in {store.folder}; run the same command "
                        "with --resume to continue") from None
    if getattr(dataset, "transforms", None) is not None:
        ev.summary["transforms"] = {"steps": dataset.transforms, "sensor_size_in": dataset.sensor_size_in,
                                    "sensor_size": dataset.sensor_size}
    written = ev.write(args.out, figures=not args.no_figures)
    store.clear()
    print(summary_table(ev))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _fitted(args, dataset: Any) -> Any:
    """``dataset`` fitted by --transform/--roi/--crop/--downsample/--merge-polarity."""
    from .events.fitting import fit_source
    from .events.transforms import transforms_from_args
    return fit_source(dataset, transforms_from_args(args))


def _store(args, network: Network, n_samples: int):
    from . import __version__
    from .tracestore import TraceStore, network_fingerprint
    fingerprint = {"eventsim": __version__, "network": network_fingerprint(network), "data": args.data,
                   "split": args.split, "root": args.root, "samples": n_samples, "engine": args.engine,
                   "dt_us": args.dt_us, "steps": args.steps, "synop_convention": args.synop_convention,
                   "seed": args.seed, "limit": args.limit, "decode": getattr(args, "decode", "auto"),
                   "transforms": _fitted_spec(args)}
    return TraceStore(Path(args.out) / ".partial", fingerprint, resume=getattr(args, "resume", False))


def _fitted_spec(args) -> list:
    from .events.transforms import transforms_from_args
    return transforms_from_args(args).describe()


def _evaluate_cli(args, network, dataset, policy, store):
    return evaluate(network, dataset, engine=args.engine, dt_us=args.dt_us, steps=args.steps, cutoff=policy, energy_table=args.energy_table, synop_convention=args.synop_convention,
                  limit=args.limit, progress=not args.no_progress, workers=args.workers, scheduler=args.scheduler,
                  seed=args.seed, store=store, window_us=getattr(args, "window_us", None),
                  decode=getattr(args, "decode", "auto"))


def run_calibrate_cli(args) -> int:
    from .cutoff import calibration_index, gap_table, save_calibration
    from .sources import open_source
    _demo_defaults(args)
    if args.policy != "gap":
        raise ValueError(f"calibrate: only the 'gap' policy has a table to fit (got {args.policy!r})")
    dataset = _fitted(args, open_source(args.data, args.split, args.root))
    network = _load_model(args, dataset)
    dt_us = float(args.dt_us or network.metadata.get("dt_us") or DEFAULT_DT_US)
    ev = evaluate(network, dataset, engine=args.engine, dt_us=dt_us, steps=args.steps,
                  synop_convention=args.synop_convention, limit=args.limit, progress=not args.no_progress,
                  workers=args.workers, scheduler=args.scheduler, seed=args.seed,
                  window_us=getattr(args, "window_us", None), decode=getattr(args, "decode", "auto"))
    traces, n = ev.traces, len(ev.traces)
    gaps, correct, grid = gap_matrix(traces, dt_us)
    # frames: rows are each recording's own bins, so β is per row, not per (mean) grid time
    table = gap_table(gaps, correct, grid, args.epsilon, index=calibration_index(network))
    beta = table["beta"]
    save_calibration(args.output, {**table, "samples": n, "engine": args.engine,
                                   "model": str(args.model or "demo")})
    finite = np.isfinite(beta)
    print(f"calibrated gap thresholds for confidence {1 - args.epsilon:.3f} on {n} samples: "
          f"{int(finite.sum())}/{len(beta)} grid times can stop; wrote {args.output}")
    return 0


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model file (default: the shipped demo model)")
    p.add_argument("--format", help="model format (eventsim, diet, qcfs, aoi, bntt, ann, nir, ...); detected if omitted")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="importer option, JSON value, e.g. input_shape=[2,34,34] or cfg='[8,\"A\",16,\"A\"]' (repeatable)")
    p.add_argument("--data", help="recordings: a folder, an HDF5 cache, a single file, or a tonic dataset name with --root (default: the shipped demo set)")
    p.add_argument("--root", help="root folder of a tonic dataset given by name in --data")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--engine", choices=["stepped", "async"],
                   help="simulation engine (default: async for the demo model, else stepped)")
    p.add_argument("--steps", type=int, help="number of steps (default: cover the recording)")
    p.add_argument("--dt-us", type=float, help="step length in µs (default: from the model, else 1000)")
    p.add_argument("--energy-table", default="45nm", help="energy table (default: 45nm)")
    p.add_argument("--synop-convention", default="all", choices=["all", "nonzero"],
                   help="count every existing synapse (all) or only non-zero weights (nonzero, NeuroBench)")
    p.add_argument("--limit", type=int, help="evaluate at most this many samples")
    p.add_argument("--seed", type=int, default=0, help="seed for any randomness (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--workers", type=int, help="run samples on a local Dask cluster of N worker processes")
    p.add_argument("--scheduler", help="run samples on an existing Dask cluster (scheduler address)")
    p.add_argument("--decode", default="auto", choices=["auto", "readout", "counts", "first-spike", "membrane"],
                   help="how outputs become predictions: the Readout, or for a network that ends in spikes its "
                        "output spike counts (auto's choice), first output spike, or last membrane (default: auto)")
    p.add_argument("--window-us", type=float,
                   help="on Dask, split recordings longer than this into chained time windows, state carried "
                        "across (default: 2000000; 0: never split); results are identical")
    _add_fit_args(p)


def _add_fit_args(p: argparse.ArgumentParser) -> None:
    """Transforms fitting recordings to the model's input (eventsim.events.transforms)."""
    p.add_argument("--transform", metavar="SPEC",
                   help="transforms in order, e.g. 'roi=640x480+320+120;downsample=5;merge-polarity' "
                        "(steps: roi=WxH+X+Y, crop=WxH, downsample=F or WxH, merge-polarity)")
    p.add_argument("--roi", metavar="WxH+X+Y", help="keep the region WxH at (X, Y), shifted to (0, 0)")
    p.add_argument("--crop", metavar="WxH", help="keep the centred WxH window")
    p.add_argument("--downsample", metavar="F|WxH",
                   help="spatial downsampling by an integer factor F (x // F) or to WxH (x * W // width); "
                        "every event is kept")
    p.add_argument("--merge-polarity", action="store_true", help="merge ON and OFF events into one channel")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventsim",
        description="Run trained spiking networks on event-camera recordings with exact spike, synop and energy counts.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"eventsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("evaluate", help="evaluate a model on recordings; anytime accuracy/synops/energy curves")
    _add_eval_args(p)
    p.add_argument("--cutoff", help="cutoff policy: none, time, synops, gap, confidence, fixed-exit, first-spike "
                   "(default: for the "
                   "demo model on the async engine gap with its shipped calibration on a 10 ms grid, else none)")
    p.add_argument("--cutoff-param", action="append", default=[], metavar="KEY=VALUE",
                   help="cutoff policy parameter, e.g. t_us=50000, budget=1e6, beta=2, epsilon=0.05 (repeatable)")
    p.add_argument("--calibration", help="calibration table from `eventsim calibrate` (for --cutoff gap)")
    p.add_argument("--out", default="eventsim-out", help="output folder (default: eventsim-out)")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the samples kept in OUT/.partial")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("calibrate", help="fit a cutoff policy's table (e.g. gap thresholds) on a training split")
    _add_eval_args(p)
    p.add_argument("--policy", default="gap", help="policy to calibrate (default: gap)")
    p.add_argument("--epsilon", type=float, default=0.05, help="target error rate: confidence 1-ε (default: 0.05)")
    p.add_argument("--output", "-o", required=True, help="where to write the calibration JSON")
    p.set_defaults(func=_cmd_calibrate, split="train")

    p = sub.add_parser("inspect", help="describe a model file or a recording")
    p.add_argument("target", help="model file (.npz, .pt, .nir) or recording (.bin/.bs2, .aedat, .aedat4, .dat, "
                   ".raw, .npy, or an HDF5 event cache .h5)")
    p.add_argument("--format", help="model format, if it cannot be detected")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="importer option, JSON value, e.g. input_shape=[2,34,34] (repeatable)")
    _add_fit_args(p)
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("convert", help="convert a model between formats (e.g. a checkpoint to .npz or .nir)")
    p.add_argument("source")
    p.add_argument("dest")
    p.add_argument("--src-format", help="format of SOURCE (detected if omitted)")
    p.add_argument("--dst-format", help="format of DEST (from its extension if omitted)")
    p.set_defaults(func=_cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        with catch_sigint():            # a Ctrl-C swallowed by a finaliser is not lost (eventsim.interrupts)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("eventsim: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if os.environ.get("EVENTSIM_DEBUG"):
            raise
        print(f"eventsim: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
