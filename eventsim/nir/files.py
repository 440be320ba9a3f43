r"""NIR interchange: read and write ``.nir`` files (the Neuromorphic Intermediate Representation).

NIR is how snnTorch, Norse, sinabs, SpikingJelly, Lava and Rockpool exchange spiking networks.
``eventsim.load("model.nir")`` and ``eventsim.save(net, "model.nir")`` go through this module and
the ``nir`` package (``pip install 'eventsim[nir]'``), which is imported only when needed.
Full details and examples: ``docs/nir.md``.

Mapping
-------
============================ ==================================================================
NIR node                      eventsim
============================ ==================================================================
Input / Output               ``Network.input_shape`` / the last layer
Affine (W, b) / Linear (W)   ``Linear(W, b)`` / ``Linear(W)``
Conv2d                       ``Conv2d`` (dilation 1; ``padding='same'`` for odd kernels)
Conv1d                       ``Conv2d`` over ``(C, 1, L)`` (the input becomes ``(C, 1, L)``)
SumPool2d / AvgPool2d        ``SumPool2d`` / ``AvgPool2d``
Flatten                      ``Flatten`` (only to 1-D)
IF (r, v_threshold, v_reset) ``IF``
LIF (τ, r, v_leak, ...)      ``LIF(tau_s=τ)`` (convention ``exact``, one τ per layer) or
                             ``LIF(leak=λ)``
I (r), last before Output    ``Readout`` (the gain r·k is folded into the layer before)
Scale                        folded into the weighted layer before or after it, or a neuron's
                             ``spike_amplitude``
Delay                        ``delay_us`` of the weighted layer before it
a node with several inputs   ``Add(source=...)`` for each extra input (NIR sums its inputs)
a node not reading the node  ``Branch(source=...)`` first (both paths of a merge may hold
before it in the order       layers; see :mod:`eventsim.graph`)
LI, CubaLIF, CubaLI,         refused with the IR addition they would need (a leaky readout,
Threshold, subgraphs         a synaptic current, a stateless threshold, recurrence)
============================ ==================================================================

Neurons
-------
NIR's LIF is ``τ·dv/dt = (v_leak − v) + R·I``, spike when ``v > v_threshold``, then
``v ← v_reset``; IF is ``dv/dt = R·I``. eventsim integrates ``u ← λ·u + I_step`` per step.
A *convention* (:mod:`~eventsim.nir.conventions`) fixes ``λ`` and the gains
``k`` (per unit-weight spike) and ``c`` (per unit constant current and step) for a step ``Δt``:

* ``"exact"`` (default): ``λ = e^{−Δt/τ}``, ``k = 1/τ``, ``c = 1 − λ`` (IF: ``k = 1``,
  ``c = Δt``). Spikes are unit Dirac impulses; a layer-wide τ becomes ``LIF(tau_s=τ)``, which the
  asynchronous engine runs in continuous time with no discretisation at all.
* ``"euler"`` / ``"snntorch"``: ``λ = 1 − Δt/τ``, ``k = c = Δt/τ`` (IF: ``Δt``), as snnTorch,
  Lava and SpikingJelly step the ODE; ``"snntorch"`` defaults ``Δt`` to the 100 µs its exporter
  assumes, so ``r = τ/Δt`` gives ``λ = β`` and unit gain.
* ``"sinabs"``: τ counts steps, ``λ = e^{−1/τ}``, ``k = c = 1`` (sinabs writes ``r = 1``), and the
  neurons as sinabs's ``from_nir`` builds them: ``multi_spike`` (⌊v/θ⌋ spikes per step, ``>=``),
  subtract reset, IF floor ``v_min = −θ`` (see ``docs/exporters.md``).

The eventsim membrane is ``u = v/(R·k)``, so ``threshold = v_threshold/(R·k)`` and a bias ``b``
(a current in NIR) becomes ``b·c/k`` per step. ``v_leak`` must be 0 and ``v_reset`` 0. An all-zero
bias is no current. Under ``"exact"`` without ``dt_us`` a non-zero bias stays a current (per
second, in membrane units): the network is marked ``metadata["bias_is_current"]`` and runs on the
asynchronous engine in continuous time.

Reset: NIR < 1.0.6 reset by subtraction (``v ← v − v_threshold``); NIR 1.0.6 added ``v_reset``
and resets to it. ``reset="auto"`` honours the file's version: a neuron without ``v_reset`` in a
file older than 1.0.6 subtracts. snnTorch and sinabs export subtractive neurons with
``v_reset = 0``; load their files with ``reset="subtract"`` for such models.

Examples
--------
>>> import os, tempfile, numpy as np, eventsim as es
>>> net = es.Network((2,), [es.Linear(np.eye(2)), es.LIF(tau_s=0.01, reset="zero")])
>>> path = os.path.join(tempfile.mkdtemp(), "net.nir")
>>> es.save(net, path)                                 # NIR LIF: tau = r = 0.01 s, v_reset = 0
>>> es.load(path) == net
True
>>> es.load(path, use_metadata=False).layers[1].tau_s  # what NIR alone says, under "exact"
0.01

A file from snnTorch's ``export_to_nir``: ``es.load(path, convention="snntorch")``.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path, check_global_heaps
from ..formats import ModelFormat, register_format
from ..network import Network
from .conventions import CONVENTIONS, Convention, register_convention
from .exporter import NIRExportWarning, to_nir_graph
from .importer import from_nir_graph
from .meta import GRAPH_KEY, decode_json, require_nir

__all__ = ["load_nir", "save_nir", "from_nir_graph", "to_nir_graph", "nir_summary", "convert",
           "NIRExportWarning", "CONVENTIONS", "Convention", "register_convention"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
RESET_VERSION = (1, 0, 6)


def load_nir(path: str | os.PathLike, *, convention: str | Convention | None = None,
             dt_us: float | None = None, reset: str = "auto", input_shape=None,
             use_metadata: bool = True) -> Network:
    """Read a ``.nir`` file as an eventsim :class:`~eventsim.network.Network`.

    Parameters
    ----------
    path : the ``.nir`` (HDF5) file.
    convention : ``"exact"`` (default; or the one eventsim recorded when it wrote the file),
        ``"euler"``, ``"snntorch"``, ``"sinabs"`` or a registered one. See the module docstring.
    dt_us : step length in µs for the conventions that need one.
    reset : ``"auto"``, ``"zero"`` (``"v_reset"``) or ``"subtract"``.
    input_shape : override the Input node's shape (e.g. when it was not recorded).
    use_metadata : restore exact eventsim values kept in eventsim-written files.

    Raises
    ------
    ValueError naming the node and field for malformed or unsupported files;
    ImportError naming the ``eventsim[nir]`` extra when ``nir`` is not installed.
    """
    graph, version, missing = _read_graph(Path(path))
    try:
        return from_nir_graph(graph, convention=convention, dt_us=dt_us, reset=reset,
                              input_shape=input_shape, use_metadata=use_metadata,
                              legacy_reset=_version_tuple(version) < RESET_VERSION,
                              missing_reset=missing)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def save_nir(network: Network, path: str | os.PathLike, *, convention: str | Convention = "exact",
             dt_us: float | None = None, strict: bool = False) -> None:
    """Write ``network`` to ``path`` as NIR (atomically). See :func:`to_nir_graph` for the options;
    the convention and ``dt_us`` are recorded so that :func:`load_nir` reads the file back exactly."""
    nir = require_nir()
    graph = to_nir_graph(network, convention=convention, dt_us=dt_us, strict=strict)
    with atomic_path(path) as tmp:
        nir.write(str(tmp), graph)


def convert(src: str | os.PathLike, dst: str | os.PathLike, src_format: str | None = None,
            dst_format: str | None = None, load_options: dict | None = None,
            save_options: dict | None = None) -> Network:
    """Load ``src`` (any registered format) and save it as ``dst`` (format from its extension, e.g.
    ``.nir`` or ``.npz``); returns the network. Options are passed to the loader and the saver."""
    from ..formats import load, save
    net = load(src, format=src_format, **(load_options or {}))
    save(net, dst, format=dst_format, **(save_options or {}))
    return net


# ----------------------------------------------------------------------------- reading


def _version_tuple(version: str | None) -> tuple[int, ...]:
    parts = []
    for piece in (version or "0").split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or (0,)


#: Reading a ``.nir`` file of ``n`` bytes may load at most ``MAX_BYTES_PER_FILE_BYTE * n +
#: MEMORY_SLACK_BYTES`` bytes of datasets (HDF5 compression or unallocated chunks let a tiny file
#: declare terabytes); groups may nest :data:`MAX_DEPTH` deep and hold :data:`MAX_ENTRIES` entries.
MAX_BYTES_PER_FILE_BYTE = 32
MEMORY_SLACK_BYTES = 64 << 20
MAX_DEPTH = 32
MAX_ENTRIES = 100_000


class _H5Reader:
    """Reads the groups and datasets of one HDF5 file as nested dicts, within bounds.

    Only hard links inside the file are followed (soft, external and user-defined links, virtual
    datasets and datasets stored in external files are refused), a group may be reached by one
    path only (hard-link cycles and DAGs that multiply paths are refused), datasets must hold
    numbers or strings, and the bytes they declare are charged against the memory limit before
    reading.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.limit = MAX_BYTES_PER_FILE_BYTE * path.stat().st_size + MEMORY_SLACK_BYTES
        self.used = 0
        self.entries = 0
        self.groups: set = set()

    def _fail(self, where: str, what: str) -> ValueError:
        return ValueError(f"{self.path}: {where!r}: {what}")

    def group(self, group, depth: int = 0) -> dict:
        import h5py
        if depth > MAX_DEPTH:
            raise self._fail(group.name, f"groups nest more than {MAX_DEPTH} deep")
        if group.id in self.groups:
            raise self._fail(group.name, "this group is reachable by more than one path (hard links); refused")
        self.groups.add(group.id)
        out = {}
        for key in group:
            self.entries += 1
            if self.entries > MAX_ENTRIES:
                raise ValueError(f"{self.path}: more than {MAX_ENTRIES} groups and datasets; not a NIR file")
            link = group.get(key, getlink=True)
            where = f"{group.name.rstrip('/')}/{key}"
            if not isinstance(link, h5py.HardLink):
                raise self._fail(where, f"is a {type(link).__name__}; links to other objects or files are refused")
            item = group[key]
            out[key] = self.group(item, depth + 1) if isinstance(item, h5py.Group) else self.dataset(item)
        return out

    def dataset(self, ds) -> Any:
        import h5py
        where = ds.name
        if not isinstance(ds, h5py.Dataset):
            raise self._fail(where, f"is a {type(ds).__name__}, expected a group or a dataset")
        try:
            if ds.is_virtual or ds.external:
                raise self._fail(where, "is stored in other files (virtual or external dataset); refused")
            dt = ds.dtype        # h5py decodes the stored type here: a damaged one raises
            shape = ds.shape
        except (OSError, RuntimeError, KeyError, TypeError) as exc:
            raise self._fail(where, f"has an unreadable type or layout ({exc}); the file is corrupt") from None
        if not (dt.kind in "biufSU" or h5py.check_string_dtype(dt) is not None):
            raise self._fail(where, f"has dtype {dt}; NIR datasets hold numbers or strings")
        if shape is None:
            return None
        nbytes = int(np.prod(shape, dtype=object)) * dt.itemsize
        if self.used + nbytes > self.limit:
            raise self._fail(where, f"declares shape {shape} of {dt} ({nbytes:,} bytes), over the limit of "
                                    f"{self.limit:,} bytes for this {self.path.stat().st_size:,}-byte file; "
                                    "refused as a compression bomb")
        self.used += nbytes
        try:
            value = ds[()]
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise self._fail(where, f"cannot be read ({exc}); the file is corrupt") from None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _read_root(f, path: Path) -> tuple[Any, dict]:
    """``(version, root node dict)`` of an open NIR file."""
    if "node" not in f:
        raise ValueError(f"{path}: HDF5 file without a 'node' group: not a NIR file")
    reader = _H5Reader(path)
    version = reader.dataset(f["version"]) if "version" in f else None
    node = f["node"]
    import h5py
    if not isinstance(node, h5py.Group):
        raise ValueError(f"{path}: 'node' is not a group: not a NIR file")
    root = reader.group(node, 1)
    if isinstance(version, np.ndarray) and version.size == 1:
        version = version.reshape(-1)[0]
    version = version.decode("utf-8", "replace") if isinstance(version, (bytes, np.bytes_)) else version
    return (None if version is None else str(version)), root


def _open(path: Path):
    import h5py
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a readable HDF5 file, so not a NIR file ({exc})") from None
    try:
        check_global_heaps(path, f.id.get_create_plist().get_sizes()[1])
    except ValueError:
        f.close()
        raise
    return f


def _required(cls) -> set[str]:
    skip = {"input_type", "output_type", "metadata", "input_shape"}
    names = {f.name for f in dataclasses.fields(cls) if f.init and f.name not in skip
             and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    return names | ({"shape"} if cls.__name__ in ("Input", "Output") else set())


def _read_graph(path: Path):
    """``(nir.NIRGraph, version, names of neuron nodes without v_reset)``, with errors that name
    the node and the field."""
    nir = require_nir()
    with _open(path) as f:
        try:
            version, root = _read_root(f, path)
        except (OSError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{path}: corrupt NIR file ({exc})") from None
    if root.get("type") != "NIRGraph" or not isinstance(root.get("nodes"), dict) or "edges" not in root:
        raise ValueError(f"{path}: the top node is not a NIRGraph with 'nodes' and 'edges'")
    nodes, missing = {}, set()
    for name, data in root["nodes"].items():
        kind = data.get("type") if isinstance(data, dict) else None
        cls = getattr(nir, kind, None) if isinstance(kind, str) else None
        if not (isinstance(cls, type) and issubclass(cls, nir.NIRNode)) or kind == "NIRNode":
            raise ValueError(f"{path}: node {name!r} has unknown NIR node type {kind!r}")
        absent = sorted(_required(cls) - set(data))
        if absent:
            raise ValueError(f"{path}: node {name!r} ({kind}): missing field {absent[0]!r}")
        if kind in ("IF", "LIF", "CubaLIF") and "v_reset" not in data:
            missing.add(name)
        if kind in ("Conv1d", "Conv2d"):
            data.setdefault("input_shape", None)
        try:
            nodes[name] = nir.dict2NIRNode(data)
        except (AssertionError, TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in data.items()
                               if isinstance(v, np.ndarray) and k != "metadata")
            raise ValueError(f"{path}: node {name!r} ({kind}): {exc or type(exc).__name__} "
                             f"(fields: {shapes})") from None
    edges = np.asarray(root["edges"], dtype=object)
    if edges.size == 0:
        edges = edges.reshape(0, 2)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"{path}: 'edges' has shape {edges.shape}, expected (n, 2) node names")
    pairs = [tuple(e.decode() if isinstance(e, bytes) else str(e) for e in row) for row in edges]
    meta = root.get("metadata") if isinstance(root.get("metadata"), dict) else {}
    graph = nir.NIRGraph(nodes=nodes, edges=pairs, metadata=meta, type_check=False)
    return graph, version, frozenset(missing)


def _detect(path: Path, head: bytes) -> bool:
    if not head.startswith(HDF5_MAGIC):
        return False
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return "node" in f and "version" in f
    except (OSError, ValueError, RuntimeError, KeyError):   # a damaged file is not claimed
        return False


# ----------------------------------------------------------------------------- inspect


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_describe(v)}" for k, v in value.items()) + "}"
    arr = np.asarray(value)
    if arr.dtype.kind in "SUO" or arr.ndim == 0:
        return str(value.decode() if isinstance(value, bytes) else value)
    if arr.size and np.all(arr == arr.flat[0]) and arr.size > 1:
        return f"{arr.flat[0]:g} ×{arr.shape}"
    if arr.size <= 4:
        return str(arr.tolist())
    return f"array{arr.shape}"


def nir_summary(path: str | os.PathLike) -> str:
    """A human-readable description of a ``.nir`` file for ``eventsim inspect``: version, nodes with
    their parameters, edges, and how (or why not) it maps onto an eventsim network."""
    path = Path(path)
    with _open(path) as f:
        try:
            version, root = _read_root(f, path)
        except (OSError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{path}: corrupt NIR file ({exc})") from None
    version = "unknown" if version is None else version
    nodes = root.get("nodes") or {}
    lines = [f"NIR file {path.name} (NIR version {version}), {len(nodes)} nodes"]
    meta = root.get("metadata") or {}
    if GRAPH_KEY in meta:
        try:
            info = decode_json(meta[GRAPH_KEY], "graph")
            lines.append(f"written by eventsim: convention={info.get('convention')!r}, "
                         f"dt_us={info.get('dt_us')}")
        except ValueError as exc:
            lines.append(str(exc))
    width = max([len(n) for n in nodes] + [4])
    for name, data in nodes.items():
        data = dict(data) if isinstance(data, dict) else {}
        kind = data.pop("type", "?")
        data.pop("metadata", None)
        params = ", ".join(f"{k}={_describe(v)}" for k, v in data.items())
        lines.append(f"  {name:<{width}}  {kind:<10} {params}")
    edges = root.get("edges")
    pairs = [] if edges is None else [" → ".join(e.decode() if isinstance(e, bytes) else str(e)
                                                for e in row) for row in np.asarray(edges, dtype=object)]
    lines.append(f"edges ({len(pairs)}): " + ", ".join(pairs))
    try:
        net = load_nir(path)
    except ImportError as exc:
        lines.append(f"eventsim: {exc}")
    except ValueError as exc:
        lines.append(f"eventsim: does not map with the default options: {exc}")
    else:
        layers = ", ".join(f"{layer.name} ({layer.kind})" for layer in net.layers)
        lines.append(f"eventsim: input {net.input_shape} → {len(net.layers)} layers: {layers}; "
                     f"output {net.output_shape}")
    return "\n".join(lines)


register_format(ModelFormat("nir", load_nir, save_nir, _detect, (".nir",),
                            "Neuromorphic Intermediate Representation (NIR, HDF5); needs eventsim[nir]"))
