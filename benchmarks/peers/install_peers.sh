#!/usr/bin/env bash
# Install the peer tools that benchmarks/peers/ compares eventsim with, into the active Python
# environment, without ever replacing the CPU build of torch 2.13.0.
#
# Usage (from the repository root, inside the project's virtual environment):
#
#     bash benchmarks/peers/install_peers.sh            # or PYTHON=/path/to/python bash ...
#
# Why --no-deps: the peers declare dependencies that cannot be installed beside torch 2.13.0 CPU
# or that the parts used here never import:
#   * neurobench 2.3.0 requires torchaudio (only its speech pre-processors import it; the metrics,
#     models and hooks used here do not). PyPI's torchaudio pins a different torch.
#   * spikingjelly 2.0.0 requires torchvision, torchaudio, tensorboard, SciencePlots, ... ; its
#     activation_based neuron/functional/layer/op_counter modules import none of them, only loguru.
#     PyPI's torchvision does not import beside torch 2.13.0.
#   * sinabs 3.1.3 requires samna (SynSense chip runtime, only for sinabs.backend.dynapcnn) and
#     nir<=1.0.4; its layers and synops hooks import only pbr, nir and nirtorch, and import fine
#     with nir 1.0.8 (which eventsim's NIR support uses).
# So step 1 installs the pure-Python run-time dependencies the used modules really import, step 2
# the peers themselves with --no-deps. torch==2.13.0 is on both command lines so that pip keeps the
# installed CPU build (it never resolves to a different torch, and never pulls a CUDA build).
set -euo pipefail
PYTHON="${PYTHON:-python}"
PIP=("$PYTHON" -m pip)

have_torch="$("$PYTHON" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)"
if [[ "$have_torch" != 2.13.0* ]]; then
    echo "install_peers: torch 2.13.0 (CPU) must be installed first (found '${have_torch:-none}');" >&2
    echo "  pip install -e '.[test]' installs it" >&2
    exit 2
fi

# 1. run-time dependencies the used modules import: snntorch, tqdm (neurobench), loguru
#    (spikingjelly), pbr, nir, nirtorch, matplotlib (sinabs imports pylab); matplotlib is an eventsim
#    dependency anyway. All pure Python but matplotlib, which has wheels.
"${PIP[@]}" install "torch==2.13.0" "snntorch==1.0.0" "tqdm>=4.63.3,<5" "loguru==0.7.3" "pbr==7.1.3" \
    "nir>=1.0.6" "nirtorch>=2.6" "matplotlib>=3.6"
# 2. the peers, without their declared dependencies
"${PIP[@]}" install --no-deps "torch==2.13.0" "neurobench==2.3.0" "spikingjelly==2.0.0" "sinabs==3.1.3"

# 3. check: torch untouched, and every module the suite uses imports
"$PYTHON" - <<'PY'
import importlib, sys, warnings
import torch
assert torch.__version__.startswith("2.13.0") and "+cu" not in torch.__version__, torch.__version__
warnings.simplefilter("ignore")
mods = ["neurobench.models", "neurobench.metrics.workload", "neurobench.benchmarks",
        "spikingjelly.activation_based.neuron", "spikingjelly.activation_based.functional",
        "spikingjelly.activation_based.layer", "spikingjelly.activation_based.op_counter",
        "sinabs.layers", "sinabs.hooks", "snntorch"]
bad = []
for m in mods:
    try:
        importlib.import_module(m)
    except Exception as exc:  # report every failure, not only the first
        bad.append(f"{m}: {type(exc).__name__}: {exc}")
from importlib.metadata import version
print("torch", torch.__version__, "| " + ", ".join(
    f"{p} {version(p)}" for p in ("neurobench", "spikingjelly", "sinabs", "snntorch")))
if bad:
    sys.exit("install_peers: some modules do not import:\n  " + "\n  ".join(bad))
print("install_peers: all peer modules import")
PY
