"""Transforms fitting recordings to a model's input, against per-event Python written here from the
documented rules, streamed chunk by chunk; the engines count the events that downsampling stacks on
one pixel at one time one by one; the CLI flags and their errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import eventsim as es
from conftest import require_shared_data
from eventsim import events as E
from eventsim.cli import main
from eventsim.events.transforms import Crop, Downsample, MergePolarity, Roi, fit_hint, parse_transforms


def plain(events, steps, size):
    """Per-event reference of the documented rules; returns (list of (t, x, y, p), output size)."""
    w, h = size
    out = [tuple(int(v) for v in r) for r in events[["t", "x", "y", "p"]].tolist()]
    for name, arg in steps:
        if name == "roi":
            rw, rh, x0, y0 = arg
            out = [(t, x - x0, y - y0, p) for t, x, y, p in out if x0 <= x < x0 + rw and y0 <= y < y0 + rh]
            w, h = rw, rh
        elif name == "crop":
            cw, ch = arg
            x0, y0 = (w - cw) // 2, (h - ch) // 2
            out = [(t, x - x0, y - y0, p) for t, x, y, p in out if x0 <= x < x0 + cw and y0 <= y < y0 + ch]
            w, h = cw, ch
        elif name == "factor":
            out = [(t, x // arg, y // arg, p) for t, x, y, p in out]
            w, h = -(-w // arg), -(-h // arg)
        elif name == "target":
            tw, th = arg
            out = [(t, int(np.floor(x * tw / w)), int(np.floor(y * th / h)), p) for t, x, y, p in out]
            w, h = tw, th
        elif name == "merge":
            out = [(t, x, y, 0) for t, x, y, p in out]
    return out, (w, h)


def random_events(rng, n, size):
    t = np.sort(rng.integers(0, 10_000, n))
    return E.make_events(t, rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n))


STEPS = st.lists(st.one_of(
    st.tuples(st.just("roi"), st.tuples(st.integers(1, 20), st.integers(1, 12), st.integers(0, 20), st.integers(0, 12))),
    st.tuples(st.just("crop"), st.tuples(st.integers(1, 30), st.integers(1, 20))),
    st.tuples(st.just("factor"), st.integers(1, 5)),
    st.tuples(st.just("target"), st.tuples(st.integers(1, 30), st.integers(1, 20))),
    st.tuples(st.just("merge"), st.none())), max_size=4)


def spec_of(steps):
    parts = []
    for name, arg in steps:
        parts.append({"roi": lambda a: f"roi={a[0]}x{a[1]}+{a[2]}+{a[3]}", "crop": lambda a: f"crop={a[0]}x{a[1]}",
                      "factor": lambda a: f"downsample={a}", "target": lambda a: f"downsample={a[0]}x{a[1]}",
                      "merge": lambda a: "merge-polarity"}[name](arg))
    return ";".join(parts)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(steps=STEPS, seed=st.integers(0, 1000), chunk=st.integers(1, 50))
def test_pipelines_match_the_per_event_rules_in_any_chunking(steps, seed, chunk):
    size = (40, 24)
    events = random_events(np.random.default_rng(seed), 120, size)
    expected, out_size = plain(events, steps, size)
    # the documented refusals: a window outside the sensor, a target larger than the input
    valid, (w, h) = True, size
    for name, arg in steps:
        if name == "roi":
            valid &= arg[2] + arg[0] <= w and arg[3] + arg[1] <= h
            w, h = arg[:2]
        elif name == "crop":
            valid &= arg[0] <= w and arg[1] <= h
            w, h = arg
        elif name == "factor":
            w, h = -(-w // arg), -(-h // arg)
        elif name == "target":
            valid &= arg[0] <= w and arg[1] <= h
            w, h = arg
    pipe = parse_transforms(spec_of(steps))
    if not valid:
        with pytest.raises(ValueError, match="does not fit|larger than"):
            pipe.output_size(size)
        return
    assert pipe.output_size(size) == out_size
    parts = [pipe.apply(events[i:i + chunk], size) for i in range(0, len(events), chunk)]
    got = np.concatenate(parts) if parts else events[:0]
    assert [tuple(int(v) for v in r) for r in got[["t", "x", "y", "p"]].tolist()] == expected
    assert pipe.channels == (1 if any(n == "merge" for n, _ in steps) else 2)


def test_non_integer_downsampling_keeps_every_event_and_spreads_pixels_evenly():
    """1280 -> 128 columns is an integer 10; 720 -> 128 rows is 5.625: every output row gathers 5 or
    6 source rows, all 720 rows are used once, and every event is kept."""
    pipe = Downsample(target=(128, 128))
    rows = E.make_events(np.zeros(720), np.zeros(720), np.arange(720), np.ones(720))
    out = pipe.apply(rows, (1280, 720))
    counts = np.bincount(out["y"], minlength=128)
    assert len(out) == 720 and set(counts.tolist()) == {5, 6} and counts.sum() == 720
    assert out["y"].tolist() == sorted(out["y"].tolist())
    assert Downsample(factor=2.5).output_size((1280, 720)) == (512, 288)
    assert Downsample(factor=3).output_size((1280, 720)) == (427, 240)      # integer: ceil, x // 3


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"roi=10x10\+5\+0 does not fit in the 12x12 sensor"):
        Roi(10, 10, 5, 0).output_size((12, 12))
    with pytest.raises(ValueError, match=r"crop=20x5 is larger than the 12x12 sensor"):
        Crop(20, 5).output_size((12, 12))
    with pytest.raises(ValueError, match="cannot enlarge"):
        Downsample(target=(20, 20)).output_size((12, 12))
    with pytest.raises(ValueError, match="needs the sensor size"):
        Crop(2, 2).output_size(None)
    with pytest.raises(ValueError, match="factor must be a number >= 1"):
        parse_transforms("downsample=0.5")
    with pytest.raises(ValueError, match=r"unknown transform 'flip'"):
        parse_transforms("flip")
    with pytest.raises(ValueError, match="expected WIDTHxHEIGHT"):
        parse_transforms("crop=12")
    with pytest.raises(ValueError, match=r"roi: expected WIDTHxHEIGHT\+X\+Y"):
        parse_transforms("roi=1,2,3,4")
    assert parse_transforms("roi=4x4+1+2; downsample=2 ;merge_polarity").steps == (Roi(4, 4, 1, 2),
                                                                                     Downsample(2.0), MergePolarity())
    assert Downsample(2).output_size(None) is None          # an integer factor needs no sensor size


def test_fit_hint_names_the_flag():
    assert "--downsample 10" in fit_hint((2, 72, 128), (1280, 720))
    assert "--downsample 128x72" in fit_hint((2, 72, 128), (1281, 721)) or "--crop" in fit_hint((2, 72, 128), (1281, 721))
    assert "--crop 720x720 --downsample 34x34" in fit_hint((2, 34, 34), (1280, 720))
    assert "larger than the recordings" in fit_hint((2, 34, 34), (20, 20))


@pytest.mark.parametrize("engine", ["stepped", "async"])
def test_engines_count_events_stacked_on_one_pixel(engine):
    """Four events at one time on a 2x2 sensor downsampled by 2 land on the one pixel: the input is
    4 x w (one IF spike at w = 0.3, threshold 1), and 4 input synops per target, not 1."""
    events = E.make_events([100] * 4, [0, 1, 0, 1], [0, 0, 1, 1], [1] * 4)
    fitted = Downsample(2).apply(events, (2, 2))
    assert len(fitted) == 4 and set(fitted[["x", "y"]].tolist()) == {(0, 0)}
    net = es.Network((2, 1, 1), [es.Flatten(), es.Linear(np.array([[0.0, 0.3]])), es.IF(threshold=1.0),
                                 es.Linear(np.array([[1.0]])), es.Readout()])
    res = es.simulate(net, fitted, engine=engine, dt_us=1000, steps=1)
    assert res.spikes_per_layer["2.IF"] == 1
    assert res.synops_per_layer["1.Linear"] == 4


# ----------------------------------------------------------------------------- CLI


def _conv_net(path, input_shape=(2, 18, 32)):
    c, h, w = input_shape
    net = es.Network(input_shape, [es.Conv2d(np.full((2, c, 3, 3), 0.05), stride=2), es.IF(threshold=1.0),
                                   es.Flatten(), es.Linear(np.full((3, 2 * ((h - 3) // 2 + 1) * ((w - 3) // 2 + 1)), 0.1)),
                                   es.Readout()], metadata={"dt_us": 1000})
    es.save(net, path)
    return path


def test_cli_inspect_and_evaluate_on_the_gen4_recording(tmp_path, capsys):
    raw = require_shared_data("prophesee-evt3", "evt3_sample.raw")
    assert main(["inspect", str(raw)]) == 0
    out = capsys.readouterr().out
    assert "prophesee_raw" in out and "1280 x 720" in out and "219,596" in out and "EVT 3.0" in out
    assert main(["inspect", str(raw), "--downsample", "40", "--merge-polarity"]) == 0
    out = capsys.readouterr().out
    assert "32 x 18 pixels" in out and "219,596" in out and "0 ON" in out and "downsample=40" in out
    model = _conv_net(tmp_path / "m.npz")
    assert main(["evaluate", "--data", str(raw), "--model", str(model), "--no-progress", "--no-figures",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "expects input (2, 18, 32)" in err and "1280×720" in err and "--downsample 40" in err
    assert main(["evaluate", "--data", str(raw), "--model", str(model), "--downsample", "40", "--no-progress",
                 "--no-figures", "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    assert summary["transforms"] == {"steps": ["downsample=40"], "sensor_size_in": [1280, 720], "sensor_size": [32, 18]}
    # the same run through the API on the fitted events
    rec = es.fit_recording(raw, "downsample=40")
    direct = es.simulate(es.load(model), _shift(rec.events), dt_us=1000, steps=10)
    assert rec.sensor_size == (32, 18) and len(rec.events) == 219_596 and direct.synops > 0


def _shift(events):
    out = events.copy()
    out["t"] -= out["t"][0]
    return out


def test_cli_transform_spec_and_flags_and_bad_specs(tmp_path, capsys):
    raw = require_shared_data("prophesee-evt3", "evt2_sample.raw")
    assert main(["inspect", str(raw), "--transform", "crop=480x480", "--downsample", "15"]) == 0
    out = capsys.readouterr().out
    assert "32 x 32 pixels" in out and "crop=480x480; downsample=15" in out
    assert main(["inspect", str(raw), "--roi", "700x10+0+0"]) == 2
    assert "roi=700x10+0+0 does not fit in the 640x480 sensor" in capsys.readouterr().err
    model = _conv_net(tmp_path / "m.npz", (2, 32, 32))
    common = ["evaluate", "--data", str(raw), "--model", str(model), "--no-progress", "--no-figures",
              "--out", str(tmp_path / "o")]
    assert main(common) == 2
    assert "--crop 480x480 --downsample 32x32" in capsys.readouterr().err
    assert main(common + ["--transform", "crop=480x480", "--downsample", "15", "--engine", "async"]) == 0
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    assert summary["transforms"]["steps"] == ["crop=480x480", "downsample=15"]


def test_checkpoint_input_shape_comes_from_the_fitted_recordings(tmp_path, capsys):
    """A checkpoint that does not record its input size (an 'ann' state dict without input_shape,
    trained at 2x18x32) gets the fitted size; unfitted, the importer's error says which size was
    assumed from the 1280x720 sensor and which flags change it."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    raw = require_shared_data("prophesee-evt3", "evt3_sample.raw")
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2), nn.ReLU6(), nn.Flatten(), nn.Linear(4 * 8 * 15, 3))
    arch = [{"type": "Conv2d", "stride": [2, 2], "padding": [0, 0]}, {"type": "ReLU6"}, {"type": "Flatten"},
            {"type": "Linear"}]
    path = tmp_path / "a.pt"
    torch.save({"state_dict": seq.state_dict(), "architecture": arch}, path)
    common = ["evaluate", "--data", str(raw), "--model", str(path), "--format", "ann", "--no-progress",
              "--no-figures", "--out", str(tmp_path / "o")]
    assert main(common) == 2
    err = capsys.readouterr().err
    assert "input shape (2, 720, 1280) taken from the recordings' 1280×720 sensor" in err and "--downsample" in err
    assert main(common + ["--downsample", "40", "--steps", "5"]) == 0        # an ANN encodes analog input
    summary = json.loads((tmp_path / "o" / "results.json").read_text())
    assert summary["transforms"]["sensor_size"] == [32, 18]
