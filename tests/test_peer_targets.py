"""The verdicts of issue #19's speed targets (``benchmarks/peers/peerkit/targets.py``) and the docs
page cut from the peers report, on hand-made timings (no benchmark is run here)."""
from __future__ import annotations

import pytest

from peerkit.report import docs_page
from peerkit.targets import TARGETS, format_targets, precision_ratios, verdicts


def _timings(**overrides):
    t = {"async": 0.002, "batch": 0.010, "stepped_10000": 0.004, "sinabs_10000": 0.008,
         "SpikingJelly_10000": 0.005, "sinabs_1000": 0.060, "async_paths": ["fast"]}
    t.update(overrides)
    return t


def test_ratios_and_verdicts_by_hand():
    got = {v["key"]: v for v in verdicts(_timings())}
    assert set(got) == {key for key, *_ in TARGETS}
    # other tool's time / async time; batch: stepped time / batch time
    assert got["stepped_10000"]["ratio"] == pytest.approx(2.0) and got["stepped_10000"]["verdict"] == "PASS"
    assert got["sinabs_10000"]["ratio"] == pytest.approx(4.0) and got["sinabs_10000"]["verdict"] == "PASS"
    assert got["SpikingJelly_10000"]["ratio"] == pytest.approx(2.5) and got["SpikingJelly_10000"]["verdict"] == "MISS"
    assert got["sinabs_1000"]["ratio"] == pytest.approx(30.0) and got["sinabs_1000"]["verdict"] == "PASS"
    assert got["batch"]["ratio"] == pytest.approx(0.4) and got["batch"]["verdict"] == "MISS"


def test_a_general_path_run_cannot_pass_and_a_missing_peer_is_skipped():
    t = _timings(async_paths=["fast", "general"])
    del t["SpikingJelly_10000"]
    got = {v["key"]: v for v in verdicts(t)}
    assert got["stepped_10000"]["verdict"] == "MISS"            # 2× would pass, but not all on the fast path
    assert got["SpikingJelly_10000"]["verdict"] == "SKIPPED" and got["SpikingJelly_10000"]["ratio"] is None
    assert got["batch"]["verdict"] == "MISS"


def test_batch_mode_passes_only_on_the_fast_path():
    fast = {v["key"]: v for v in verdicts(_timings(batch=0.002, batch_paths=["fast"]))}
    general = {v["key"]: v for v in verdicts(_timings(batch=0.002, batch_paths=["fast", "general"]))}
    assert fast["batch"]["ratio"] == pytest.approx(2.0) and fast["batch"]["verdict"] == "PASS"
    assert general["batch"]["ratio"] == pytest.approx(2.0) and general["batch"]["verdict"] == "MISS"


def test_float32_row_is_information_beside_the_float64_verdicts():
    t = _timings(async_f32=0.001, async_f32_paths=["fast"], samples=20, fine_samples=5, async_fine=0.002,
                 batch_paths=["fast"], **{f"{tool}_{dt}": 0.1 for tool in ("stepped", "sinabs", "SpikingJelly")
                                          for dt in (1000, 100)})
    # peer's 10 ms time / async float32 time; the verdicts still use the float64 time
    assert precision_ratios(t) == [("sinabs", pytest.approx(8.0)), ("SpikingJelly", pytest.approx(5.0))]
    assert {v["key"]: v["ratio"] for v in verdicts(t)}["SpikingJelly_10000"] == pytest.approx(2.5)
    text = format_targets({"net": t})
    assert "async dtype='float32' 1.00 ms" in text and "vs sinabs 10 ms 8.00×" in text
    assert precision_ratios(_timings()) == []       # not measured: no row


def test_docs_page_is_the_readme_part_of_the_report():
    md = "# title\n\n## eventsim vs peers\n\nsummary\n\n## Targets\n\nrows\n\n## Details\n\nlong tables\n"
    page = docs_page(md)
    assert "# eventsim vs peers\n" in page and "summary" in page and "## Targets" in page
    assert "long tables" not in page and "# title" not in page
