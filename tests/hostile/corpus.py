"""The hostile-file corpus: small generator functions, one per malicious or malformed file.

Each :class:`Case` writes one file (``.pt``, ``.npz``, ``.nir``, ``.h5`` or a recording) into a
folder and says how eventsim must refuse it: the exception type, a regex the message must match
(naming the problem) and the most memory refusing it may take. Payloads that would run code all
create the case's *marker* path when run (see :mod:`hostile.markers`), so "nothing executed" is a
file-system fact. Bombs declare gigabytes from files of a few kilobytes; refusing one must not
allocate what it declares. Nothing here is an opaque blob: every byte comes from code below.
"""
from __future__ import annotations

import json
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from hostile import ptfile
from hostile.markers import payload_calls
from hostile.ptfile import Tensor, call, encode, glob, integer, string, tup

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30


@dataclass(frozen=True)
class Case:
    """One hostile file: ``build(path, marker)`` writes it; loading it must raise ``exc`` matching
    ``match`` with a tracemalloc peak under ``peak_mib``; ``readers`` picks which entry points of
    its kind must refuse it (see the tests)."""

    name: str
    kind: str
    suffix: str
    build: Callable[[Path, str], object]
    match: str
    exc: str = "ValueError"
    readers: tuple = ("all",)
    peak_mib: float = 16.0
    tags: tuple = field(default=())


CASES: list[Case] = []


def case(name, kind, suffix, match, **kw):
    def register(fn):
        CASES.append(Case(name, kind, suffix, fn, match, **kw))
        return fn
    return register


# ============================================================================= zip helpers


def deflate_zeros(n: int, block: int = 1 << 20) -> tuple[bytes, int]:
    """A raw deflate stream of ``n`` zero bytes and their CRC-32, built without ever holding the
    ``n`` bytes: one block compressed after a full flush is repeated, then the final block."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    unit = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)    # a full flush resets the window,
    body = [unit * (n // block)]                                    # so every block compresses alike
    rest = comp.compress(bytes(n % block)) + comp.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(n // block):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(n % block), crc)
    return b"".join(body) + rest, crc


def zip_with_member(path, members: dict, bomb_name: str, bomb_size: int):
    """A zip archive (STORED members from ``members``) plus one DEFLATE member ``bomb_name`` that
    really inflates to ``bomb_size`` zero bytes (declared sizes true, CRC true)."""
    data, crc = deflate_zeros(bomb_size)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
        info = zipfile.ZipInfo(bomb_name, date_time=(2020, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size, info.compress_size, info.CRC = bomb_size, len(data), crc
        # zipfile has no API for pre-compressed data: write the local header and the raw stream
        zf.fp.seek(zf.start_dir)
        info.header_offset = zf.start_dir
        zf.fp.write(info.FileHeader(zip64=bomb_size >= 0xFFFFFFFF))
        zf.fp.write(data)
        zf.start_dir = zf.fp.tell()
        zf.filelist.append(info)
        zf.NameToInfo[info.filename] = info
        zf._didModify = True
    return path


# ============================================================================= .pt: code execution


def _pt(path, ops, storages=None, **kw):
    return ptfile.write_pt(path, ops, storages, **kw)


def _state(extra_ops: bytes = b"") -> bytes:
    """``{"w": tensor(2), <extra>}`` opcodes: a real state dict with something smuggled in."""
    w = Tensor("0", 2, (2,), (1,))
    return b"}(" + string("w") + ptfile.tensor_ops(w) + extra_ops + b"u"


_W = {"0": np.ones(2, "<f4").tobytes()}
UNSAFE = "UnsafeCheckpointError"


for _i, (_mod, _name, _args) in enumerate(payload_calls("MARKER")):
    def _build(path, marker, _mod=_mod, _name=_name, _args=_args):
        args = tuple(a.replace("MARKER", marker) for a in _args)
        return _pt(path, _state(string("x") + call(_mod, _name, *map(string, args))), _W)
    CASES.append(Case(f"pt-reduce-{_mod}.{_name}", "pt", ".pt", _build,
                      rf"refused to load global '{_mod}\.{_name}'.*nothing from this file was executed",
                      exc=UNSAFE, tags=("code",)))


@case("pt-nested-reduce", "pt", ".pt", r"refused to load global 'hostile\.markers\.touch'", exc=UNSAFE)
def _(path, marker):
    """An allowed constructor (OrderedDict) whose argument list holds a call three levels down."""
    inner = call("hostile.markers", "touch", string(marker))
    nested = glob("collections", "OrderedDict") + tup(b"](" + tup(string("k"), b"](" + inner + b"e") + b"e") + b"R"
    return _pt(path, _state(string("extra") + b"](" + nested + b"e"), _W)


@case("pt-reduce-in-tensor-shape", "pt", ".pt", r"refused to load global 'builtins\.eval'", exc=UNSAFE)
def _(path, marker):
    code = f"open({marker!r}, 'w').close() or 2"
    pid = tup(string("storage"), glob("torch", "FloatStorage"), string("0"), string("cpu"), integer(2))
    args = tup(pid + b"Q", integer(0), tup(call("builtins", "eval", string(code))), tup(integer(1)),
               b"\x89", glob("collections", "OrderedDict") + b")R")
    return _pt(path, b"}(" + string("w") + glob("torch._utils", "_rebuild_tensor_v2") + args + b"Ru", _W)


@case("pt-reduce-in-persistent-id", "pt", ".pt", r"refused to load global 'os\.mkdir'", exc=UNSAFE)
def _(path, marker):
    pid = tup(string("storage"), call("os", "mkdir", string(marker)), string("0"), string("cpu"), integer(2))
    args = tup(pid + b"Q", integer(0), tup(integer(2)), tup(integer(1)), b"\x89",
               glob("collections", "OrderedDict") + b")R")
    return _pt(path, b"}(" + string("w") + glob("torch._utils", "_rebuild_tensor_v2") + args + b"Ru", _W)


@case("pt-inst-opcode", "pt", ".pt", r"refused to load global 'hostile\.markers\.touch'", exc=UNSAFE)
def _(path, marker):
    """Protocol 0 INST: ``(`` args ``i`` module newline name: instantiation without REDUCE."""
    return _pt(path, _state(string("x") + b"(" + string(marker) + b"ihostile.markers\ntouch\n"), _W)


@case("pt-obj-opcode", "pt", ".pt", r"refused to load global 'builtins\.open'", exc=UNSAFE)
def _(path, marker):
    """Protocol 1 OBJ: ``(`` class args ``o``."""
    return _pt(path, _state(string("x") + b"(" + glob("builtins", "open") + string(marker) + string("w") + b"o"), _W)


@case("pt-newobj-opcode", "pt", ".pt", r"refused to load global 'subprocess\.Popen'", exc=UNSAFE)
def _(path, marker):
    return _pt(path, _state(string("x") + glob("subprocess", "Popen") + tup(b"](" + string("touch") +
                                                                          string(marker) + b"e") + b"\x81"), _W)


def _short(text: str) -> bytes:
    return b"\x8c" + bytes([len(text)]) + text.encode()            # SHORT_BINUNICODE


@case("pt-stack-global", "pt", ".pt", r"refused to load global 'os\.mkdir'", exc=UNSAFE)
def _(path, marker):
    """Protocol 4 STACK_GLOBAL takes module and name from the stack (here from the memo)."""
    ops = _short("os") + b"q\x01" + b"0" + _short("mkdir") + b"q\x02" + b"0"    # BINPUT, POP
    ops += b"h\x01h\x02\x93" + tup(string(marker)) + b"R"                        # BINGET x2, STACK_GLOBAL
    return _pt(path, _state(string("x") + ops), _W)


@case("pt-ext-opcode", "pt", ".pt", r"corrupt pickle data .*extension", exc="CheckpointError")
def _(path, marker):
    """EXT1 looks a global up in copyreg's extension registry by number."""
    return _pt(path, _state(string("x") + b"\x82\x01"), _W)


@case("pt-persid-text", "pt", ".pt", r"unsupported persistent id", exc="CheckpointError")
def _(path, marker):
    return _pt(path, _state(string("x") + b"P" + marker.encode() + b"\n"), _W)


@case("pt-out-of-band-buffer", "pt", ".pt", r"corrupt pickle data", exc="CheckpointError")
def _(path, marker):
    return _pt(path, _state(string("x") + b"\x97"), _W)            # NEXT_BUFFER without buffers


@case("pt-torch-module", "pt", ".pt", r"'torch\.nn\.modules\.linear\.Linear'.*save model\.state_dict", exc=UNSAFE)
def _(path, marker):
    """What ``torch.save(model)`` writes: the module class, rebuilt by ``torch._utils._rebuild_...``."""
    return _pt(path, glob("torch.nn.modules.linear", "Linear") + b")\x81" + b"}(" + string("training") + b"\x88ub",
               _W)


# ============================================================================= .pt: structure


@case("pt-self-referential-list", "pt", ".pt", r"holds a list, not a state dict", exc="CheckpointError",
      readers=("es.load",))
def _(path, marker):
    return _pt(path, b"]q\x00h\x00a")                  # EMPTY_LIST, BINPUT 0, BINGET 0, APPEND


@case("pt-deep-lists", "pt", ".pt", r"nest too deeply to be a checkpoint", exc="CheckpointError")
def _(path, marker):
    return _pt(path, b"]" * 20_000 + b"a" * 19_999)


@case("pt-deep-dicts", "pt", ".pt", r"nest too deeply to be a checkpoint", exc="CheckpointError")
def _(path, marker):
    return _pt(path, (b"}" + string("k")) * 20_000 + b"}" + b"s" * 20_000)


def _legacy(path, objects: list[bytes], tail: bytes = b"") -> Path:
    """The legacy (pre-1.6) layout: five pickles in a row, then storage records."""
    magic = integer(0x1950a86a20f9469cfc6c)
    head = [magic, integer(1001), encode({"protocol_version": 1001, "little_endian": True})]
    Path(path).write_bytes(b"".join(b"\x80\x02" + ops + b"." for ops in head + objects) + tail)
    return Path(path)


@case("pt-legacy-unhashable-keys", "pt", ".pt", r"storage key list .* does not match", exc="CheckpointError")
def _(path, marker):
    return _legacy(path, [encode({"w": 1}), encode([[1, 2]])])


@case("pt-legacy-reduce", "pt", ".pt", r"refused to load global 'posix\.system'", exc=UNSAFE)
def _(path, marker):
    return _legacy(path, [encode({"w": 1}) [:-1] + string("x") + call("posix", "system", string(f"touch {marker}"))
                          + b"u", encode([])])


@case("pt-legacy-huge-binbytes", "pt", ".pt", r"corrupt pickle data", exc="CheckpointError")
def _(path, marker):
    """BINBYTES8 declaring 1 TiB of bytes that the file does not have."""
    return _legacy(path, [b"\x8e" + struct.pack("<Q", 1 << 40) + b"abc"])


# ============================================================================= .pt: size bombs


@case("pt-zip-bomb-storage", "pt", ".pt", r"archive member 'archive/data/0'.*zip bomb", exc="CheckpointError",
      readers=("data",))
def _(path, marker):
    """A storage member of 2 GiB zeros deflated to 2 MB, and a pickle that agrees with it."""
    numel = 2 * GiB // 4
    ops = b"}(" + string("w") + ptfile.tensor_ops(Tensor("0", numel, (numel,), (1,))) + b"u"
    return zip_with_member(path, {"archive/data.pkl": b"\x80\x02" + ops + b".", "archive/byteorder": b"little"},
                           "archive/data/0", 2 * GiB)


@case("pt-zip-bomb-pickle", "pt", ".pt", r"archive member 'archive/data\.pkl'.*zip bomb", exc="CheckpointError")
def _(path, marker):
    """A data.pkl under the pickle size limit that still inflates 1000-fold (200 MiB from 200 kB)."""
    return zip_with_member(path, {"archive/byteorder": b"little"}, "archive/data.pkl", 200 << 20)


@case("pt-pickle-over-limit", "pt", ".pt", r"data\.pkl declares 1073741824 bytes; refusing more than",
      exc="CheckpointError")
def _(path, marker):
    return zip_with_member(path, {}, "archive/data.pkl", GiB)


@case("pt-zip-bomb-byteorder", "pt", ".pt", r"byteorder member declares 1073741824 bytes", exc="CheckpointError")
def _(path, marker):
    return zip_with_member(path, {"archive/data.pkl": b"\x80\x02}."}, "archive/byteorder", GiB)


@case("pt-stride0-expansion", "pt", ".pt", r"tensor 'w' of shape \(32768, 32768\).*declares tensors far larger",
      exc="CheckpointError", readers=("data",))
def _(path, marker):
    """One float repeated by zero strides into a 4 GiB tensor (extent check passes: 4 bytes used)."""
    ops = b"}(" + string("w") + ptfile.tensor_ops(Tensor("0", 1, (32768, 32768), (0, 0))) + b"u"
    return _pt(path, ops, {"0": bytes(4)})


@case("pt-overlapping-strides", "pt", ".pt", r"tensor 'w' of shape \(262144, 1024\).*declares tensors far larger",
      exc="CheckpointError", readers=("data",))
def _(path, marker):
    """Stride (1, 1): rows overlap, 1 MiB of storage becomes a 1 GiB array."""
    numel = 262144 + 1023
    ops = b"}(" + string("w") + ptfile.tensor_ops(Tensor("0", numel, (262144, 1024), (1, 1))) + b"u"
    return _pt(path, ops, {"0": bytes(4 * numel)}, compression=zipfile.ZIP_DEFLATED)


@case("pt-many-views", "pt", ".pt", r"declares tensors far larger", exc="CheckpointError", readers=("data",),
      peak_mib=80)
def _(path, marker):
    """4096 keys viewing one 64 KiB storage: 256 MiB of copies from a 10 kB file. Copies are
    made until the limit (32 x file size + 64 MiB) is reached, so the peak is that limit."""
    numel = 16384
    view = ptfile.tensor_ops(Tensor("0", numel, (numel,), (1,)))
    ops = b"}(" + string("k0") + view + b"q\x00" + b"".join(string(f"k{i}") + b"h\x00" for i in range(1, 4096)) + b"u"
    return _pt(path, ops, {"0": bytes(4 * numel)}, compression=zipfile.ZIP_DEFLATED)


@case("pt-huge-empty-tensor", "pt", ".pt", r"tensor 'w' of shape \(0, 4611686018427387904\) cannot be built",
      exc="CheckpointError", readers=("data",))
def _(path, marker):
    ops = b"}(" + string("w") + ptfile.tensor_ops(Tensor("0", 1, (0, 1 << 62), (0, 0))) + b"u"
    return _pt(path, ops, {"0": bytes(4)})


# ============================================================================= .pt: bad numbers


def _seed_tree(name: str):
    from eventsim.checkpoints import read_checkpoint
    return read_checkpoint(ROOT / "models" / name)


SEEDS = {  # layout: (file, load options, a key to damage)
    "diet": ("seeds/checkpoints/diet_nmnist.pth", {"cfg": [8, "A", 16, "A"], "input_shape": (2, 34, 34)},
             ("state_dict", "module.features.0.weight")),
    "qcfs": ("seeds/checkpoints/qcfs_nmnist.pth", {"input_shape": (2, 34, 34), "pool": "avg"}, ("layer1.0.weight",)),
    "aoi": ("seeds/checkpoints/aoi_nmnist.pth", {"input_shape": (2, 34, 34), "pool": "avg"}, ("0.0.fwd.0.module.bias",)),
    "bntt": ("seeds/checkpoints/bntt_nmnist_timestep10_leak0.95_bestmodel.pth.tar",
             {"input_shape": (2, 34, 34), "leak": 0.95},
             ("state_dict", "fc2.weight")),
    "ann": ("convert/checkpoints/ann_nmnist.pt", {"calibration": np.full((2, 2, 34, 34), 0.5)},
            ("state_dict", "9.weight")),
}


def damaged_seed(layout: str, value: float, key: tuple | None = None):
    """The shipped checkpoint of ``layout`` with one entry of ``key`` set to ``value``."""
    file, _, default = SEEDS[layout]
    tree = _seed_tree(file)
    node = tree
    for k in (key or default)[:-1]:
        node = node[k]
    arr = np.array(node[(key or default)[-1]])
    arr.reshape(-1)[0] = value
    node[(key or default)[-1]] = arr
    if layout == "diet":
        tree.pop("optimizer", None)
    return tree


for _layout in SEEDS:
    for _label, _value in (("nan", np.nan), ("inf", np.inf)):
        def _build(path, marker, _layout=_layout, _value=_value):
            return ptfile.save_tree(path, damaged_seed(_layout, _value))
        CASES.append(Case(f"pt-{_layout}-{_label}-weight", "pt", ".pt", _build,
                          r"NaN or infinite values", readers=("import",), peak_mib=64))


@case("pt-qcfs-negative-bn-variance", "pt", ".pt", r"NaN or infinite values", readers=("import",), peak_mib=64)
def _(path, marker):
    return ptfile.save_tree(path, damaged_seed("qcfs", -4.0, ("layer1.1.running_var",)))


@case("pt-bntt-negative-bn-variance", "pt", ".pt", r"NaN or infinite values", readers=("import",), peak_mib=64)
def _(path, marker):
    return ptfile.save_tree(path, damaged_seed("bntt", -4.0, ("state_dict", "bntt1.3.running_var")))


# ============================================================================= .npz (native models)


def _npy(arr: np.ndarray) -> bytes:
    import io
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=True)
    return buf.getvalue()


def good_native_members() -> dict:
    """Members of a valid native model: Linear(3 -> 2) + IF + Linear(2 -> 2) + Readout."""
    meta = {"format": "eventsim", "version": 1, "input_shape": [3], "metadata": {},
            "layers": [{"type": "Linear", "weight": {"array": "L0.weight"}, "bias": None, "delay_us": 0.0,
                        "name": "0.Linear"},
                       {"type": "IF", "threshold": 1.0, "compare": ">", "reset": "subtract", "v_init": 0.0,
                        "order": "integrate-fire", "spike_amplitude": 1.0, "step_gain": None, "step_bias": None,
                        "refractory_us": 0.0, "name": "1.IF"},
                       {"type": "Linear", "weight": {"array": "L2.weight"}, "bias": None, "delay_us": 0.0,
                        "name": "2.Linear"},
                       {"type": "Readout", "mode": "sum", "name": "3.Readout"}]}
    return {"meta": meta, "L0.weight": np.full((2, 3), 0.5), "L2.weight": np.eye(2)}


def write_native(path, members: dict, *, raw: dict | None = None) -> Path:
    """Write an ``.npz`` from ``{"meta": dict or bytes or array, name: array}`` (+ raw members)."""
    meta = members["meta"]
    if isinstance(meta, dict):
        meta = json.dumps(meta).encode()
    if isinstance(meta, (bytes, str)):
        meta = np.frombuffer(meta.encode() if isinstance(meta, str) else meta, dtype=np.uint8)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__eventsim__.npy", _npy(meta))
        for name, arr in members.items():
            if name != "meta":
                zf.writestr(f"{name}.npy", _npy(np.asarray(arr)))
        for name, data in (raw or {}).items():
            zf.writestr(name, data)
    return Path(path)


class Payload:
    """Pickled inside an object array: unpickling it creates the marker."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        from hostile.markers import touch
        return (touch, (self.marker,))


def _native(edit):
    def build(path, marker):
        members = good_native_members()
        raw = edit(members, marker)
        return write_native(path, members, raw=raw if isinstance(raw, dict) else None)
    return build


def _layer(i, **fields):
    def edit(m, marker):
        m["meta"]["layers"][i].update(fields)
    return edit


NATIVE_CASES = {
    "object-array": (lambda m, k: m.update({"L0.weight": np.array([Payload(k)], dtype=object)}),
                     r"array 'L0\.weight' holds Python objects .*a pickle"),
    "object-description": (lambda m, k: m.update({"meta": np.array([Payload(k)], dtype=object)}),
                           r"array '__eventsim__' holds Python objects"),
    "not-json": (lambda m, k: m.update({"meta": b"{not json"}), r"corrupt eventsim model description"),
    "not-utf8": (lambda m, k: m.update({"meta": b"\xff\xfe{}"}), r"corrupt eventsim model description"),
    "json-list": (lambda m, k: m.update({"meta": b"[1, 2]"}), r"description is a JSON list, expected an object"),
    "deep-json": (lambda m, k: m.update({"meta": b"[" * 100_000 + b"]" * 100_000}),
                  r"corrupt eventsim model description \(RecursionError"),
    "description-float": (lambda m, k: m.update({"meta": np.zeros(3)}), r"__eventsim__ entry is float64"),
    "wrong-version": (lambda m, k: m["meta"].update(version=99), r"unsupported eventsim model version 99"),
    "no-input-shape": (lambda m, k: m["meta"].pop("input_shape"), r"input_shape None is not a list"),
    "text-input-shape": (lambda m, k: m["meta"].update(input_shape="abc"), r"input_shape 'abc' is not a list"),
    "negative-input-shape": (lambda m, k: m["meta"].update(input_shape=[-3]), r"input_shape \[-3\]"),
    "bool-input-shape": (lambda m, k: m["meta"].update(input_shape=[True]), r"input_shape \[true\]|input_shape \[True\]"),
    "layers-not-list": (lambda m, k: m["meta"].update(layers={"type": "IF"}), r"'layers' must be a list"),
    "layer-not-object": (lambda m, k: m["meta"]["layers"].append([1]), r"'layers' must be a list of objects"),
    "metadata-not-object": (lambda m, k: m["meta"].update(metadata=[1]), r"'metadata' must be an object"),
    "unknown-layer": (_layer(1, type="Frobnicate"), r"layer 1 has unknown type 'Frobnicate'"),
    "layer-type-list": (_layer(1, type=["IF"]), r"layer 1 has unknown type \['IF'\]"),
    "unknown-field": (_layer(1, evil=1), r"layer 1 \(IF\): .*unexpected keyword argument 'evil'"),
    "text-threshold": (_layer(1, threshold="high"), r"layer 1 \(IF\): .*threshold: expected a numeric array"),
    "nan-refractory": (_layer(1, refractory_us=float("nan")), r"layer 1 \(IF\) field refractory_us: nan is not finite"),
    "inf-threshold": (_layer(1, threshold=[1.0, float("inf")]), r"field threshold: \[1\.0, inf\] is not finite"),
    "array-ref-list": (_layer(0, weight={"array": ["L0.weight"]}), r"layer 0 field weight: .* is not an array reference"),
    "array-ref-extra-key": (_layer(0, weight={"array": "L0.weight", "eval": "x"}), r"is not an array reference"),
    "missing-array": (_layer(0, weight={"array": "L9.weight"}), r"refers to missing array L9\.weight"),
    "unused-array": (lambda m, k: m.update({"L7.extra": np.ones(3)}), r"arrays \['L7\.extra'\] are not used"),
    "weight-shape": (lambda m, k: m.update({"L0.weight": np.ones((2, 4))}), r"input has 3 features, expected 4"),
    "bias-shape": (lambda m, k: (m.update({"L0.bias": np.ones(5)}), _layer(0, bias={"array": "L0.bias"})(m, k)),
                   r"bias: shape \(5,\), expected \(2,\)"),
    "nan-weight": (lambda m, k: m.update({"L2.weight": np.array([[1.0, np.nan], [0.0, 1.0]])}),
                   r"contains 1 NaN or infinite values"),
    "complex-weight": (lambda m, k: m.update({"L0.weight": np.ones((2, 3), complex)}),
                       r"array 'L0\.weight' has dtype complex128; expected a real number type"),
    "structured-weight": (lambda m, k: m.update({"L0.weight": np.zeros(2, [("a", "f8"), ("b", "f8")])}),
                          r"array 'L0\.weight' has dtype .*expected a real number type"),
    "text-weight": (lambda m, k: m.update({"L0.weight": np.array([["1", "2", "3"]] * 2)}),
                    r"array 'L0\.weight' has dtype <U1; expected a real number type"),
    "foreign-member": (lambda m, k: {"evil.pkl": b"cos\nsystem\n."}, r"unexpected member 'evil\.pkl'"),
}

for _name, (_edit, _match) in NATIVE_CASES.items():
    CASES.append(Case(f"npz-{_name}", "npz", ".npz", _native(_edit), _match))


def _huge_padding(m, marker):
    """A 1x1 conv with padding 10**6: 8 bytes of weights declare 3.2e13 neurons."""
    m["meta"].update(input_shape=[2, 4, 4], layers=[{"type": "Conv2d", "weight": {"array": "L0.weight"},
                                                     "padding": 10**6}])
    m["L0.weight"] = np.ones((8, 2, 1, 1))
    del m["L2.weight"]


def _huge_input(m, marker):
    m["meta"].update(input_shape=[1 << 20, 1 << 20], layers=[{"type": "Flatten"}])
    del m["L0.weight"], m["L2.weight"]


CASES.append(Case("npz-huge-padding", "npz", ".npz", _native(_huge_padding),
                  r"layer 0\.Conv2d has shape \(8, 2000004, 2000004\).*a loaded model may declare per layer",
                  readers=("es.load",)))
CASES.append(Case("npz-huge-input-shape", "npz", ".npz", _native(_huge_input),
                  r"input has shape \(1048576, 1048576\) \(1,099,511,627,776 values\)", readers=("es.load",)))


@case("npz-header-shape-mismatch", "npz", ".npz", r"array 'L0\.weight' declares shape \(1000, 1000\) of float64")
def _(path, marker):
    members = good_native_members()
    write_native(path, members)
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    good = entries["L0.weight.npy"]
    entries["L0.weight.npy"] = good.replace(b"(2, 3)", b"(1000, 1000)")
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in entries.items():
            zf.writestr(n, data)
    return path


@case("npz-duplicate-member", "npz", ".npz", r"array 'L0\.weight' appears twice")
def _(path, marker):
    import warnings
    write_native(path, good_native_members())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("L0.weight.npy", _npy(np.full((2, 3), 9.0)))
    return path


@case("npz-zip-bomb", "npz", ".npz", r"members declare .* bytes, more than 32 x .*refused as a zip bomb")
def _(path, marker):
    members = good_native_members()
    write_native(path, members)
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    return zip_with_member(path, entries, "L9.bomb.npy", 2 * GiB)


@case("npz-plain-npy", "npz", ".npz", r"not a complete \.npz archive")
def _(path, marker):
    Path(path).write_bytes(_npy(np.ones(3)))
    return path


@case("npz-pickle-file", "npz", ".npz", r"not a complete \.npz archive")
def _(path, marker):
    import pickle
    Path(path).write_bytes(pickle.dumps(Payload(marker)))
    return path


# ============================================================================= .nir (HDF5)


def good_nir(path) -> Path:
    """Input(3) -> Affine(5x3) -> LIF(5) -> Output(5), written by ``nir.write``."""
    import nir
    f = lambda x: np.full(5, float(x))  # noqa: E731
    nodes = {"in": nir.Input(np.array([3])), "fc": nir.Affine(np.full((5, 3), 0.5), np.zeros(5)),
             "lif": nir.LIF(tau=f(0.01), r=f(0.01), v_leak=f(0), v_threshold=f(1), v_reset=f(0)),
             "out": nir.Output(np.array([5]))}
    graph = nir.NIRGraph(nodes=nodes, edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False)
    nir.write(path, graph)
    return Path(path)


def _h5_edit(edit):
    def build(path, marker):
        import h5py
        good_nir(path)
        with h5py.File(path, "r+") as f:
            edit(f, Path(path), marker)
        return path
    return build


def _replace(name, data=None, **kw):
    def edit(f, path, marker):
        del f[name]
        f.create_dataset(name, data=data, **kw)
    return edit


def _external_link(f, path, marker):
    import h5py
    other = path.with_name(path.stem + "-other.h5")
    with h5py.File(other, "w") as g:
        g.create_dataset("w", data=np.full((5, 3), 7.0))
    del f["node/nodes/fc/weight"]
    f["node/nodes/fc/weight"] = h5py.ExternalLink(other.name, "/w")


def _soft_link(f, path, marker):
    import h5py
    f.create_dataset("elsewhere", data=np.full((5, 3), 7.0))
    del f["node/nodes/fc/weight"]
    f["node/nodes/fc/weight"] = h5py.SoftLink("/elsewhere")


def _cycle(f, path, marker):
    f["node/nodes/fc/loop"] = f["node"]                 # a hard link back to an ancestor


def _dag_blowup(f, path, marker):
    g = f.create_group("node/nodes/fc/metadata/d0")
    for i in range(1, 40):
        h = f.create_group(f"node/nodes/fc/metadata/d{i}")
        h["a"], h["b"] = g, g                         # 2^40 paths through 80 links
        g = h


def _external_storage(f, path, marker):
    raw = path.with_name(path.stem + "-raw.bin")
    raw.write_bytes(np.full(15, 7.0).tobytes())
    del f["node/nodes/fc/weight"]
    f.create_dataset("node/nodes/fc/weight", shape=(5, 3), dtype="f8", external=[(raw.name, 0, 120)])


def _virtual(f, path, marker):
    import h5py
    other = path.with_name(path.stem + "-source.h5")
    with h5py.File(other, "w") as g:
        g.create_dataset("w", data=np.full((5, 3), 7.0))
    layout = h5py.VirtualLayout(shape=(5, 3), dtype="f8")
    layout[:] = h5py.VirtualSource(other.name, "w", shape=(5, 3))
    del f["node/nodes/fc/weight"]
    f.create_virtual_dataset("node/nodes/fc/weight", layout)


def _sparse_bomb(f, path, marker):
    """A 2 GiB dataset whose chunks were never written: the file stays a few kB, reading it
    would allocate and fill 2 GiB."""
    del f["node/nodes/fc/weight"]
    f.create_dataset("node/nodes/fc/weight", shape=(16384, 16384), dtype="f8", chunks=(256, 256),
                     compression="gzip", fillvalue=0.5)


def _deep_groups(f, path, marker):
    g = f["node/nodes/fc"].create_group("metadata")
    for i in range(40):
        g = g.create_group("d")


NIR_CASES = {
    "complex-weight": (_replace("node/nodes/fc/weight", np.ones((5, 3), complex)),
                       r"'/node/nodes/fc/weight': has dtype complex128; NIR datasets hold numbers or strings"),
    "compound-weight": (_replace("node/nodes/fc/weight", np.zeros(5, [("a", "f8"), ("b", "i4")])),
                        r"'/node/nodes/fc/weight': has dtype .*NIR datasets hold numbers or strings"),
    "text-weight": (_replace("node/nodes/fc/weight", np.array([["0.5"] * 3] * 5, dtype="S3")),
                    r"node 'fc' \(Affine\) field 'weight': expected numbers, got text"),
    "reference-weight": (lambda f, p, m: _replace("node/nodes/fc/weight", f["node"].ref,
                                                  dtype=__import__("h5py").ref_dtype)(f, p, m),
                         r"'/node/nodes/fc/weight': has dtype object"),
    "nan-weight": (_replace("node/nodes/fc/weight", np.full((5, 3), np.nan)),
                   r"node 'fc' \(Affine\) field 'weight': contains NaN or infinite values"),
    "inf-tau": (_replace("node/nodes/lif/tau", np.full(5, np.inf)), r"node 'lif' \(LIF\).*(NaN or infinite|tau)"),
    "zero-tau": (_replace("node/nodes/lif/tau", np.zeros(5)), r"node 'lif' \(LIF\)"),
    "negative-threshold": (_replace("node/nodes/lif/v_threshold", np.full(5, -1.0)), r"node 'lif' \(LIF\) field 'v_threshold': must be > 0, got -1\.0"),
    "weight-3d": (_replace("node/nodes/fc/weight", np.ones((5, 3, 2))), r"node 'fc' \(Affine\)"),
    "sparse-bomb": (_sparse_bomb, r"'/node/nodes/fc/weight': declares shape \(16384, 16384\).*compression bomb"),
    "external-link": (_external_link, r"'/node/nodes/fc/weight': is a ExternalLink; links to other objects or files"),
    "soft-link": (_soft_link, r"'/node/nodes/fc/weight': is a SoftLink"),
    "link-cycle": (_cycle, r"group is reachable by more than one path"),
    "dag-blowup": (_dag_blowup, r"group is reachable by more than one path"),
    "deep-groups": (_deep_groups, r"groups nest more than 32 deep"),
    "external-storage": (_external_storage, r"'/node/nodes/fc/weight': is stored in other files"),
    "virtual-dataset": (_virtual, r"'/node/nodes/fc/weight': is stored in other files"),
    "numeric-type": (_replace("node/nodes/lif/type", 5), r"node 'lif' has unknown NIR node type (np\.int64\()?5"),
    "float-edges": (_replace("node/edges", np.ones((3, 2))), r"no node named '1\.0'"),
    "edges-1d": (_replace("node/edges", np.array([b"in", b"fc"])), r"'edges' has shape \(2,\), expected \(n, 2\)"),
}

for _name, (_edit, _match) in NIR_CASES.items():
    CASES.append(Case(f"nir-{_name}", "nir", ".nir", _h5_edit(_edit), _match))


@case("nir-not-hdf5", "nir", ".nir", r"not a readable HDF5 file")
def _(path, marker):
    Path(path).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    return path


# ============================================================================= .h5 event caches


def good_cache(path) -> Path:
    from eventsim import events as E
    rng = np.random.default_rng(0)
    samples = []
    for n in (5, 0, 9):
        samples.append((E.make_events(np.sort(rng.integers(0, 10_000, n)), rng.integers(0, 34, n),
                                      rng.integers(0, 34, n), rng.integers(0, 2, n)), n % 3))
    return E.build_cache(path, {"test": samples}, sensor_size=(34, 34), chunk_events=4, progress=False)


def _cache_edit(edit):
    def build(path, marker):
        import h5py
        good_cache(path)
        with h5py.File(path, "r+") as f:
            edit(f, Path(path), marker)
        return path
    return build


def _column(name, fn, dtype=None):
    def edit(f, path, marker):
        ds = f[f"test/events/{name}"]
        data = fn(ds[()])
        del f[f"test/events/{name}"]
        f.create_dataset(f"test/events/{name}", data=data, dtype=dtype or data.dtype)
    return edit


def _samples(name, fn, dtype=None):
    def edit(f, path, marker):
        data = fn(f[f"test/samples/{name}"][()])
        del f[f"test/samples/{name}"]
        f.create_dataset(f"test/samples/{name}", data=data, dtype=dtype)
    return edit


def _attr(name, value):
    def edit(f, path, marker):
        if value is None:
            del f.attrs[name]
        else:
            f.attrs[name] = value
    return edit


def _cache_bomb(f, path, marker):
    for name, dt in (("t", "i8"), ("x", "i2"), ("y", "i2"), ("p", "i1")):
        del f[f"test/events/{name}"]
        f.create_dataset(f"test/events/{name}", shape=(1 << 31,), dtype=dt, chunks=(1 << 16,), compression="gzip")
    off = f["test/samples/offset"][()]
    off[-1] = 1 << 31
    del f["test/samples/offset"]
    f.create_dataset("test/samples/offset", data=off)


def _cache_external(f, path, marker):
    import h5py
    other = path.with_name(path.stem + "-other.h5")
    with h5py.File(other, "w") as g:
        g.create_dataset("x", data=f["test/events/x"][()])
    del f["test/events/x"]
    f["test/events/x"] = h5py.ExternalLink(other.name, "/x")


CACHE_CASES = {
    "float-x": (_column("x", lambda a: a.astype("f4")), r"column 'x' has dtype float32, expected int16"),
    "float-t": (_column("t", lambda a: a.astype("f8") + 0.5), r"column 't' has dtype float64, expected int64"),
    "wide-p": (_column("p", lambda a: a.astype("i8") + 1000), r"column 'p' has dtype int64, expected int8"),
    "2d-column": (_column("y", lambda a: np.stack([a, a], 1)), r"'/test/events/y' is not a 1-D dataset"),
    "short-column": (_column("y", lambda a: a[:-1]), r"event columns differ in length"),
    "text-column": (_column("x", lambda a: a.astype("S4")), r"column 'x' has dtype \|S4"),
    "offsets-decreasing": (_samples("offset", lambda a: np.array([0, 9, 5, 14])), r"decreasing at sample 2"),
    "offsets-past-end": (_samples("offset", lambda a: a + np.array([0, 0, 0, 99])),
                         r"sample offsets must rise from 0 to the 14 events; found first 0, last 113"),
    "offsets-not-zero": (_samples("offset", lambda a: a + 1), r"found first 1"),
    "offsets-count": (_samples("offset", lambda a: a[:-1]), r"3 labels need 4 offsets and 3 names; found 3"),
    "float-labels": (_samples("label", lambda a: a + 0.5), r"samples/label \(float64\) must be integers"),
    "numeric-names": (_samples("name", lambda a: np.arange(3)), r"samples/name has dtype int64, expected strings"),
    "x-outside-sensor": (_column("x", lambda a: np.where(np.arange(a.size) == 7, 40, a)),
                         r"x = 40 at event 7 of the split outside the sensor"),
    "negative-y": (_column("y", lambda a: np.where(np.arange(a.size) == 3, -2, a)), r"y = -2 at event 3 of the split"),
    "unsorted-t": (_column("t", lambda a: a[::-1].copy()), r"timestamps decrease at event"),
    "polarity-3": (_column("p", lambda a: np.where(np.arange(a.size) == 2, 3, a).astype("i1")),
                   r"polarity at event 2 of the split is 3"),
    "sparse-bomb": (_cache_bomb, r"datasets declare 27,917,2[\d,]+ bytes, more than 32 x .*compression bomb"),
    "external-link": (_cache_external, r"'/test/events/x' is a ExternalLink; links to other objects or files"),
    "splits-not-json": (_attr("splits", "[test"), r"corrupt event cache attributes \(JSONDecodeError"),
    "splits-not-list": (_attr("splits", '{"test": 1}'), r"'splits' attribute .* is not a list of split names"),
    "version-text": (_attr("version", "new"), r"corrupt event cache attributes \(ValueError"),
    "no-sensor-size": (_attr("sensor_size", None), r"corrupt event cache attributes \(KeyError"),
    "bad-sensor-size": (_attr("sensor_size", np.array([0, 34])), r"sensor_size: expected .*positive sizes"),
    "provenance-list": (_attr("provenance", "[1]"), r"'provenance' an object"),
}

for _name, (_edit, _match) in CACHE_CASES.items():
    CASES.append(Case(f"cache-{_name}", "cache", ".h5", _cache_edit(_edit), _match))


@case("cache-ghost-split", "cache", ".h5", r"\[ghost\]: the split is listed but its group is missing",
      readers=("ghost",))
def _(path, marker):
    return _cache_edit(_attr("splits", '["test", "ghost"]'))(path, marker)


@case("cache-not-hdf5", "cache", ".h5", r"not a readable HDF5 file")
def _(path, marker):
    Path(path).write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 300)
    return path


# ============================================================================= recordings


def flatbuffer(fields: list[tuple[str, object]], ident: bytes = b"", size_prefix: bool = False) -> bytes:
    """One FlatBuffer table: ``fields`` are ``("i32"|"i64", int)``, ``("str", text)`` or
    ``("vec16", bytes of 16-byte structs)``, by field index. Layout per the FlatBuffers spec:
    root offset, optional file identifier, vtable, table, then the out-of-line data."""
    head = 4 + len(ident)
    vt_size = 4 + 2 * len(fields)
    vtable_at = head + (-head % 2)
    table_at = vtable_at + vt_size
    table_at += -table_at % 8
    sizes = {"i32": 4, "i64": 8, "str": 4, "vec16": 4}
    offsets, pos = [], 4
    for kind, _ in fields:
        pos += -pos % sizes[kind]
        offsets.append(pos)
        pos += sizes[kind]
    table_size = pos
    out = bytearray(table_at + table_size)
    struct.pack_into("<I", out, 0, table_at)
    out[4:4 + len(ident)] = ident
    struct.pack_into("<HH", out, vtable_at, vt_size, table_size)
    for i, off in enumerate(offsets):
        struct.pack_into("<H", out, vtable_at + 4 + 2 * i, off)
    struct.pack_into("<i", out, table_at, table_at - vtable_at)
    for (kind, value), off in zip(fields, offsets):
        at = table_at + off
        if kind == "i32":
            struct.pack_into("<i", out, at, value)
        elif kind == "i64":
            struct.pack_into("<q", out, at, value)
        else:
            out += bytes(-len(out) % 4)
            data = value.encode() if kind == "str" else value
            count = len(data) if kind == "str" else len(data) // 16
            struct.pack_into("<I", out, at, len(out) - at)
            out += struct.pack("<I", count) + data + (b"\0" if kind == "str" else b"")
    return (struct.pack("<I", len(out)) + bytes(out)) if size_prefix else bytes(out)


def info_xml(width=34, height=34) -> str:
    return ('<dv version="2.0"><node name="outInfo" path="/outInfo/"><node name="0" path="/outInfo/0/">'
            '<attr key="typeIdentifier" type="string">EVTS</attr>'
            f'<attr key="sizeX" type="int">{width}</attr><attr key="sizeY" type="int">{height}</attr>'
            '</node></node></dv>')


def events_packet(events: np.ndarray) -> bytes:
    """The payload of one AEDAT4 event packet: size-prefixed 'EVTS' FlatBuffer of 16-byte events."""
    rec = np.zeros(events.size, dtype=np.dtype({"names": ["t", "x", "y", "on"],
                                                "formats": ["<i8", "<i2", "<i2", "u1"],
                                                "offsets": [0, 8, 10, 12], "itemsize": 16}))
    for a, b in (("t", "t"), ("x", "x"), ("y", "y"), ("on", "p")):
        rec[a] = events[b]
    return flatbuffer([("vec16", rec.tobytes())], ident=b"EVTS", size_prefix=True)


def aedat4_file(path, packets: list[bytes], compression: int = 0, xml: str | None = None) -> Path:
    """``#!AER-DAT4.0`` + IOHeader FlatBuffer + ``(stream 0, size, payload)`` packets (payloads
    already compressed as ``compression`` says: 0 none, 1 LZ4, 3 ZSTD)."""
    header = flatbuffer([("i32", compression), ("i64", -1), ("str", info_xml() if xml is None else xml)])
    body = b"".join(struct.pack("<ii", 0, len(p)) + p for p in packets)
    Path(path).write_bytes(b"#!AER-DAT4.0\r\n" + struct.pack("<i", len(header)) + header + body)
    return Path(path)


def _zstd_zeros(n: int, sized: bool) -> bytes:
    import zstandard
    frame = zstandard.ZstdCompressor(level=1, write_content_size=sized).compressobj(size=n if sized else -1)
    chunk = bytes(1 << 24)
    return b"".join(frame.compress(chunk) for _ in range(n >> 24)) + frame.flush()


@case("rec-aedat4-zstd-bomb", "recording", ".aedat4", r"packet at byte offset \d+: packet declares "
      r"268,435,456 decompressed bytes.*decompression bomb")
def _(path, marker):
    """A ZSTD packet of 256 MiB zeros (a few kB): its frame header says so, refused unread."""
    return aedat4_file(path, [_zstd_zeros(256 << 20, sized=True)], compression=3)


@case("rec-aedat4-zstd-bomb-unsized", "recording", ".aedat4", r"decompresses to more than .*decompression bomb",
      peak_mib=80)
def _(path, marker):
    """The same without a content size in the frame: decompressing stops at the 64 MiB limit."""
    return aedat4_file(path, [_zstd_zeros(256 << 20, sized=False)], compression=3)


@case("rec-aedat4-lz4-bomb", "recording", ".aedat4", r"decompresses to more than .*decompression bomb",
      peak_mib=100)
def _(path, marker):
    import lz4.frame
    return aedat4_file(path, [lz4.frame.compress(bytes(128 << 20))], compression=1)


@case("rec-aedat4-billion-laughs", "recording", ".aedat4", r"AEDAT4 infoNode XML is malformed")
def _(path, marker):
    ents = '<!ENTITY l0 "lol">' + "".join(f'<!ENTITY l{i} "{("&l%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    xml = f'<?xml version="1.0"?><!DOCTYPE dv [{ents}]><dv>&l9;</dv>'
    return aedat4_file(path, [], xml=xml)


@case("rec-aedat4-external-entity", "recording", ".aedat4", r"AEDAT4 infoNode XML is malformed")
def _(path, marker):
    xml = f'<?xml version="1.0"?><!DOCTYPE dv [<!ENTITY x SYSTEM "file://{marker}">]><dv>&x;</dv>'
    return aedat4_file(path, [], xml=xml)


@case("rec-npy-huge-header", "recording", ".npy", r"header declares shape \(1000000000000000,\)")
def _(path, marker):
    import io
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": [("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")],
                                               "fortran_order": False, "shape": (10**15,)})
    Path(path).write_bytes(buf.getvalue() + bytes(130))
    return path


@case("rec-npy-object-pickle", "recording", ".npy", r"holds Python objects \(a pickle\); refused")
def _(path, marker):
    Path(path).write_bytes(_npy(np.array([Payload(marker)], dtype=object)))
    return path


# ============================================================================= damaged zip directories


def _future_zip_version(path):
    """Claim that the first member needs zip version 6.4 to extract (``zipfile`` raises
    NotImplementedError for it while opening the archive)."""
    data = bytearray(Path(path).read_bytes())
    at = data.index(b"PK\x01\x02")
    data[at + 6:at + 8] = struct.pack("<H", 64)
    Path(path).write_bytes(bytes(data))
    return path


@case("pt-zip-version", "pt", ".pt", r"not a complete zip archive \(zip file version 6\.4\)", exc="CheckpointError")
def _(path, marker):
    return _future_zip_version(_pt(path, _state(), _W))


@case("npz-zip-version", "npz", ".npz", r"not a complete \.npz archive: zip file version 6\.4")
def _(path, marker):
    return _future_zip_version(write_native(path, good_native_members()))


# ============================================================================= RAW and AEDAT 3.1 recordings

import hostile.corpus_raw  # noqa: E402,F401  (registers its cases into CASES)
