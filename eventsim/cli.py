"""Command-line interface: ``eventsim evaluate | inspect | convert | calibrate | bench``.

User mistakes (missing files, wrong formats, shape mismatches) print one line and exit with
status 2; no traceback. Set ``EVENTSIM_DEBUG=1`` to see the traceback anyway.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .interrupts import catch_sigint

RECORDING_SUFFIXES = (".bin", ".bs2", ".aedat", ".aedat4", ".dat", ".raw", ".npy", ".h5", ".hdf5")


class UserError(Exception):
    """An error caused by the user's input: printed as one line."""


def _cmd_inspect(args: argparse.Namespace) -> int:
    path = Path(args.target)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.suffix.lower() in RECORDING_SUFFIXES and args.format is None:
        from .events import describe_recording, format_recording
        print(format_recording(describe_recording(path)))
        return 0
    from .evaluate import CHECKPOINT_SUFFIXES, _parse_params
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
        from .checkpoints.nir import nir_summary
        print(nir_summary(path))
        return 0
    else:
        net = load(path, format=args.format, **options)
    print(f"model: {path}")
    print(net.summary())
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import run_cli
    return run_cli(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .evaluate import run_calibrate_cli
    return run_calibrate_cli(args)


def _cmd_convert(args: argparse.Namespace) -> int:
    from .formats import load, save
    net = load(args.source, format=args.src_format)
    save(net, args.dest, format=args.dst_format)
    print(f"wrote {args.dest} ({len(net.layers)} layers)")
    return 0


def _add_eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model file (default: the shipped demo model)")
    p.add_argument("--format", help="model format (eventsim, diet, qcfs, aoi, bntt, ann, nir, ...); detected if omitted")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="importer option, JSON value, e.g. input_shape=[2,34,34] or cfg='[8,\"A\",16,\"A\"]' (repeatable)")
    p.add_argument("--data", help="recordings: a folder, an HDF5 cache, a single file, or a tonic dataset name with --root (default: the shipped demo set)")
    p.add_argument("--root", help="root folder of a tonic dataset given by name in --data")
    p.add_argument("--split", default="test", help="dataset split (default: test)")
    p.add_argument("--engine", default="stepped", choices=["stepped", "async"], help="simulation engine (default: stepped)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventsim",
        description="Run trained spiking networks on event-camera recordings with exact spike, synop and energy counts.")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"eventsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("evaluate", help="evaluate a model on recordings; anytime accuracy/synops/energy curves")
    _add_eval_args(p)
    p.add_argument("--cutoff", default="none", help="cutoff policy: none, time, synops, gap, confidence, fixed-exit, first-spike")
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
                   ".npy, or an HDF5 event cache .h5)")
    p.add_argument("--format", help="model format, if it cannot be detected")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="importer option, JSON value, e.g. input_shape=[2,34,34] (repeatable)")
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
