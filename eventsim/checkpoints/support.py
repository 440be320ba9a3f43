"""What the checkpoint importers read: the "what imports" table and the options an importer may ask
for, each row backed by a named test. ``docs/importing.md`` holds both between markers;
regenerate them with::

    python -m eventsim.checkpoints.support --write docs/importing.md

(``tests/test_import_table.py`` checks that the page is up to date and that every named test exists.)
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from .._io import atomic_path

__all__ = ["IMPORTS", "OPTIONS", "imports_table", "options_table", "write"]

#: (method / format, architecture, public code, pooling, dataset input, what you pass, test)
IMPORTS = [
    ("QCFS (`qcfs`)", "VGG (`vgg16`, BatchNorm)", "putshua/ANN_SNN_QCFS `.thresh`", "avg: ask `pool=`",
     "N-MNIST count image every step", "`pool=\"avg\"`, `input_shape=`",
     "tests/test_seed_qcfs.py::test_qcfs_spikes_and_logits_match_pytorch"),
    ("QCFS (`qcfs`)", "VGG without BN (`vgg16_wobn`)", "putshua/ANN_SNN_QCFS", "max: ask `pool=`",
     "analog image every step", "`pool=\"max\"`",
     "tests/test_seed_resnet_qcfs.py::test_vgg_wobn_max_pooling_is_asked_and_matches"),
    ("QCFS (`qcfs`)", "VGG, old code", "putshua/SNN_conversion_QCFS `.up`", "avg (the old code swaps max for avg)",
     "analog image every step", "`input_shape=`", "tests/test_seed_qcfs.py::test_qcfs_old_code_names_the_clip_up"),
    ("QCFS (`qcfs`)", "ResNet-20 (CIFAR), full width", "putshua/ANN_SNN_QCFS", "global avg",
     "CIFAR-shaped image every step", "`input_shape=(3, 32, 32)`",
     "tests/test_seed_resnet_qcfs.py::test_resnet20_full_width_new_code"),
    ("QCFS (`qcfs`)", "ResNet-18, old code", "putshua/SNN_conversion_QCFS", "global avg",
     "CIFAR-shaped image every step", "`input_shape=`",
     "tests/test_seed_resnet_qcfs.py::test_resnet18_old_code_layout"),
    ("QCFS (`qcfs`)", "ResNet-34", "putshua/ANN_SNN_QCFS", "global avg", "CIFAR-shaped image every step",
     "`input_shape=`", "tests/test_seed_resnet_qcfs.py::test_resnet34_reduced"),
    ("DIET-SNN (`diet`)", "VGG (`vgg_spiking.py`)", "nitin-rathi/DIET-SNN", "avg (the only pool its SNN runs)",
     "N-MNIST count image every step", "`cfg=` when widths match no public config",
     "tests/test_seed_diet.py::test_diet_spikes_and_logits_match_pytorch"),
    ("DIET-SNN (`diet`)", "ResNet-12/20/34 (`resnet_spiking.py`)", "nitin-rathi/DIET-SNN", "avg after the stem",
     "CIFAR-shaped image every step", "`input_shape=`", "tests/test_seed_resnet_diet.py::test_resnet20_reduced"),
    ("DIET-SNN (`diet`)", "ResNet, thresholds only in the checkpoint's lists", "nitin-rathi/DIET-SNN",
     "avg after the stem", "CIFAR-shaped image every step", "`input_shape=`",
     "tests/test_seed_resnet_diet.py::test_resnet12_and_thresholds_list"),
    ("AOI / snncutoff (`aoi`)", "DVS VGG (`VGGANN`-style conv units)", "Dengyu-Wu/snncutoff", "ask `pool=`",
     "N-MNIST event frames (2 polarities)", "`pool=`, `input_shape=(2, 128, 128)` (CIFAR10-DVS)",
     "tests/test_seed_aoi.py::test_aoi_spikes_and_logits_match_pytorch"),
    ("AOI / snncutoff (`aoi`)", "CIFAR VGG16 (`0.0.module.weight` … `5.7.module.bias`)", "Dengyu-Wu/snncutoff",
     "ask `pool=` (VGG avg, VGG_nobias max)", "CIFAR-shaped image every step", "`pool=`, `input_shape=`",
     "tests/test_seed_resnet_snncutoff.py::test_vgg16_reduced"),
    ("AOI / snncutoff (`aoi`)", "CIFAR ResNet-18", "Dengyu-Wu/snncutoff", "global avg",
     "CIFAR-shaped image every step", "`input_shape=`", "tests/test_seed_resnet_snncutoff.py::test_resnet18_reduced"),
    ("AOI / snncutoff (`aoi`)", "CIFAR ResNet-34", "Dengyu-Wu/snncutoff", "global avg",
     "CIFAR-shaped image every step", "`input_shape=`", "tests/test_seed_resnet_snncutoff.py::test_resnet34_reduced"),
    ("BNTT (`bntt`)", "VGG9 / VGG11", "Intelligent-Computing-Lab-Yale/BNTT-…", "avg (`pool_after=` positions)",
     "Poisson spikes of N-MNIST images", "`leak=` unless in the file name",
     "tests/test_seed_bntt.py::test_bntt_spikes_and_logits_match_pytorch"),
    ("BNTT (`bntt`)", "VGG on normalised images", "Intelligent-Computing-Lab-Yale/BNTT-…", "avg",
     "signed Poisson spikes as analog frames", "`input_kind=\"auto\"` or `\"analog\"`",
     "tests/test_bntt_signed_input.py::test_signed_spikes_match_pytorch"),
    ("ANN conversion (`ann`)", "ReLU/clip CNN + architecture list", "eventsim's `save_ann`", "as listed",
     "analog image every step", "`calibration=` for plain ReLU",
     "tests/test_convert.py::test_numpy_ann_forward_equals_pytorch"),
    ("any of the above", "as `.safetensors`", "safetensors' NumPy API, no torch", "as above (or `pool` in its "
     "metadata)", "as above", "as above", "tests/test_safetensors.py::test_every_resnet_layout"),
    ("ONNX conversion (`onnx`)", "any ReLU/ReLU6/Clip CNN from `torch.onnx.export`, VGG or ResNet",
     "your own `nn.Module`", "avg; max refused unless `max_pool=\"spike\"`", "analog image every step",
     "`calibration=` for plain ReLU, `input_shape=` for a dynamic input",
     "tests/test_onnx.py::test_snn_agrees_with_ann_at_large_T"),
    ("refused, named", "torchvision-style ResNet (`downsample`), LSTM, attention", "—", "—", "—",
     "error names the feature and module", "tests/test_import_unsupported.py::test_detection_names_the_feature"),
    ("refused, named", "Bottleneck ResNet-50+, ImageNet 7×7 stem", "QCFS, snncutoff", "—", "—",
     "error names the block", "tests/test_seed_resnet_qcfs.py::test_resnet_needs_input_shape_and_names_bottlenecks"),
]

#: (option, importers, when it is asked for, test)
OPTIONS = [
    ("`input_shape=(C, H, W)`", "all", "the keys fit several sizes (VGGs: the error lists them) and always for "
     "ResNets (global average pooling fits any size)", "tests/test_seed_resnet_qcfs.py::"
     "test_resnet_needs_input_shape_and_names_bottlenecks"),
    ("`pool=\"avg\"` / `\"max\"`", "qcfs (VGG, new code), aoi (VGGs with pools)", "the keys do not say; not "
     "asked when the checkpoint records `\"pool\"` (dict entry or safetensors metadata)",
     "tests/test_seed_resnet_snncutoff.py::test_vgg16_reduced"),
    ("`cfg=`", "diet (VGG)", "the convolution widths match no (or several) public VGG configs",
     "tests/test_seed_diet.py::test_diet_config_named_or_missing"),
    ("`leak=`", "bntt", "the leak is neither given nor in the file name (`_leak<λ>`)",
     "tests/test_seed_bntt.py::test_bntt_leak_and_structure_errors"),
    ("`pool_after=`", "bntt", "neither VGG9 nor VGG11 and the `fc1` width fits no pooling",
     "tests/test_seed_bntt.py::test_bntt_leak_and_structure_errors"),
    ("`conv_geometry=`", "aoi", "an even kernel other than 4×4/8×8 (stride and padding not stored)",
     "tests/test_seed_aoi.py::test_aoi_errors_name_what_is_missing"),
    ("`calibration=`", "ann", "plain ReLUs (no clip value to give the threshold)",
     "tests/test_convert.py::test_architecture_errors_name_the_problem"),
    ("`architecture=`", "ann", "the state dict carries no eventsim architecture list",
     "tests/test_convert.py::test_architecture_errors_name_the_problem"),
    ("`max_pool=\"spike\"`", "onnx", "the model max-pools: refused by default, naming the node; with the option a "
     "window spikes when any of its inputs spikes (rate ≥ the largest input's)",
     "tests/test_onnx.py::test_max_pool_is_refused_by_name_or_converted_by_the_spike_rule"),
    ("`format=`", "pt", "the keys match several layouts",
     "tests/test_checkpoint_reader.py::test_ambiguous_layout_asks_for_format"),
]

START, END = "<!-- imports-table:start -->", "<!-- imports-table:end -->"
OSTART, OEND = "<!-- import-options:start -->", "<!-- import-options:end -->"


def _table(header: list[str], rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        *cells, test = row
        lines.append("| " + " | ".join(cells) + f" | `{test}` |")
    return "\n".join(lines)


def imports_table() -> str:
    return _table(["method (format)", "architecture", "public code / layout", "pooling", "dataset input",
                   "you pass", "test"], IMPORTS)


def options_table() -> str:
    return _table(["option", "importers", "asked when", "test"], OPTIONS)


def _replace(text: str, start: str, end: str, body: str) -> str:
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"markers {start} … {end} not found")
    return pattern.sub(lambda _: f"{start}\n{body}\n{end}", text)


def render(text: str) -> str:
    """``text`` with both tables replaced between their markers."""
    return _replace(_replace(text, START, END, imports_table()), OSTART, OEND, options_table())


def write(path: str | Path) -> bool:
    """Rewrite the tables in ``path``; True when the file changed."""
    path = Path(path)
    old = path.read_text(encoding="utf-8")
    new = render(old)
    if new != old:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(new, encoding="utf-8")
    return new != old


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="PAGE", help="rewrite the tables between the markers of PAGE")
    args = parser.parse_args(argv)
    if args.write:
        print(f"{args.write}: {'updated' if write(args.write) else 'up to date'}")
    else:
        print(imports_table() + "\n\n" + options_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
