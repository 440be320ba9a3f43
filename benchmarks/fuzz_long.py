"""Long fuzzing run: the CI fuzz targets with many more examples, for as long as you give it.

    python benchmarks/fuzz_long.py --minutes 10 [--scale 20] [--json benchmarks/results/fuzz_long.json]

Runs ``tests/test_fuzz_*.py`` (and the determinism tests, whose async fresh-JIT comparison only
runs here) in rounds under ``EVENTSIM_FUZZ_PROFILE=long``: every target runs ``scale`` times its
CI number of examples with fresh random seeds (failures found are kept in
``build/hypothesis-fuzz`` and replayed first next time), the HDF5 byte-mutation targets
``scale`` times their CI cases each in supervised child processes, from a random seed. Rounds
repeat until the time is up; a round is never cut short. Prints, and writes as JSON, the
examples run per target, every failure with Hypothesis's reproduction blob, and the HDF5 cases
that hung, crashed, raised something else than ValueError or (NIR) read with other values.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventsim._io import atomic_write_text  # noqa: E402

TARGETS = ["tests/test_fuzz_readers.py", "tests/test_fuzz_importers.py", "tests/test_fuzz_engines.py",
           "tests/test_robust_determinism.py"]
_STATS = re.compile(r"^(?P<test>tests/\S+::\S+):\s*$")
#: Hypothesis's statistics line, e.g. "- 600 passing, 0 failing, and 11 invalid test cases"
_COUNTS = re.compile(r"(\d+) passing(?: examples?)?, (\d+) failing(?: examples?)?,(?: and)? (\d+) invalid")


def run_round(scale: float, first: bool, timeout: float) -> dict:
    """One pytest run over the targets; returns per-test example counts and failures."""
    report = ROOT / "build" / "fuzz-long-hdf5.jsonl"
    report.unlink(missing_ok=True)
    env = dict(os.environ, EVENTSIM_FUZZ_PROFILE="long", EVENTSIM_FUZZ_SCALE=str(scale),
               EVENTSIM_FUZZ_REPORT=str(report),
               NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache")))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           "-rfE", *TARGETS]
    if not first:
        cmd += ["-k", "not fresh_jit_equals_cached_async"]
    started = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        out, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        code = "timeout"
    counts: dict = defaultdict(lambda: [0, 0, 0])
    current = None
    for line in out.splitlines():
        m = _STATS.match(line.strip())
        if m:
            current = m.group("test")
            continue
        m = _COUNTS.search(line)
        if m and current:
            for i in range(3):
                counts[current][i] += int(m.group(i + 1))
    notes = []
    if report.exists():                       # supervised HDF5 byte mutations report their own outcomes
        for line in report.read_text().splitlines():
            r = json.loads(line)
            name = f"tests/test_fuzz_readers.py::test_hdf5_byte_mutations[{r['kind']}]"
            bad = len(r["hang"]) + len(r["crash"]) + len(r["error"])
            counts[name][0] += r["ok"] + r["refused"] + len(r["values_differ"])
            counts[name][1] += bad
            for case in r["hang"]:
                notes.append(f"{name}: case {case} hung (killed after 60 s)")
            for case, code in r["crash"]:
                notes.append(f"{name}: case {case} crashed the reader (exit status {code})")
            for case, message in r["error"]:
                notes.append(f"{name}: case {case}: {message}")
            if r["values_differ"]:
                notes.append(f"{name}: {len(r['values_differ'])} case(s) read with other values (NIR has no "
                             f"checksums; documented), seeds {r['values_differ'][:10]}")
    failures = [line for line in out.splitlines() if line.startswith(("FAILED", "ERROR"))]
    blobs = re.findall(r"@reproduce_failure\([^)]*\)", out)
    return {"counts": {k: v for k, v in counts.items()}, "failures": failures, "blobs": blobs, "notes": notes,
            "exit": code, "seconds": time.monotonic() - started,
            "summary": next((line for line in reversed(out.splitlines()) if " in " in line and
                             ("passed" in line or "failed" in line)), "")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-clock budget (default 10)")
    ap.add_argument("--scale", type=float, default=20.0, help="examples per target = scale x its CI count")
    ap.add_argument("--json", type=Path, default=None, help="write the totals here")
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.minutes * 60
    totals: dict = defaultdict(lambda: [0, 0, 0])
    failures, blobs, rounds, notes = [], [], [], []
    first = True
    while first or time.monotonic() < deadline:
        left = max(60.0, deadline - time.monotonic())
        result = run_round(args.scale, first, timeout=left + 1800)
        first = False
        rounds.append({k: result[k] for k in ("exit", "seconds", "summary")})
        for test, c in result["counts"].items():
            for i in range(3):
                totals[test][i] += c[i]
        failures += result["failures"]
        blobs += result["blobs"]
        notes += result["notes"]
        print(f"round {len(rounds)}: {result['summary']} ({result['seconds']:.0f} s)", flush=True)
        if result["exit"] == "timeout":
            failures.append("round killed by the time limit (a hang?)")
            break
    width = max((len(t) for t in totals), default=10)
    print(f"\n{'target':<{width}}  {'passing':>9}  {'failing':>7}  {'invalid':>7}")
    for test in sorted(totals):
        p, f, i = totals[test]
        print(f"{test:<{width}}  {p:>9,}  {f:>7}  {i:>7}")
    print(f"\n{len(rounds)} round(s), {sum(r['seconds'] for r in rounds) / 60:.1f} min, "
          f"{sum(c[0] for c in totals.values()):,} passing examples, {len(failures)} failure(s)")
    for line in failures + blobs + notes:
        print(line)
    if args.json:
        atomic_write_text(args.json, json.dumps({
            "scale": args.scale, "minutes_budget": args.minutes, "rounds": rounds,
            "examples": {t: dict(zip(("passing", "failing", "invalid"), c)) for t, c in sorted(totals.items())},
            "failures": failures, "reproduce": blobs, "notes": notes, "python": platform.python_version(),
            "machine": platform.machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
