"""Hypothesis budgets for the fuzz tests (``tests/test_fuzz_*.py``).

Two profiles, chosen by the environment variable ``EVENTSIM_FUZZ_PROFILE``:

* ``ci`` (default): each target runs its own small ``max_examples`` with ``derandomize=True``,
  so CI runs the same cases every time, writes no example database and stays within budget;
* ``long``: the same targets with ``max_examples`` multiplied by ``EVENTSIM_FUZZ_SCALE``
  (default 50), random seeds and the example database in ``build/hypothesis-fuzz`` (failures
  found there are replayed first on the next long run). ``benchmarks/fuzz_long.py`` runs it.

Only the settings objects built here are affected; other test modules keep their own settings.
"""
from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = os.environ.get("EVENTSIM_FUZZ_PROFILE", "ci")
if PROFILE not in ("ci", "long"):
    raise ValueError(f"EVENTSIM_FUZZ_PROFILE={PROFILE!r}: choose 'ci' or 'long'")
SCALE = float(os.environ.get("EVENTSIM_FUZZ_SCALE", "50")) if PROFILE == "long" else 1.0
ROOT = Path(__file__).resolve().parents[2]

#: ``max_examples`` of every fuzz target under the ``ci`` profile, by test name (README table).
CI_EXAMPLES: dict[str, int] = {}

_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
             HealthCheck.large_base_example]


def fuzz(name: str, ci_examples: int) -> settings:
    """Settings for fuzz target ``name``: ``ci_examples`` examples under ``ci``, scaled under ``long``."""
    CI_EXAMPLES[name] = ci_examples
    if PROFILE == "ci":
        return settings(max_examples=ci_examples, deadline=None, derandomize=True, database=None,
                        suppress_health_check=_SUPPRESS, print_blob=True)
    return settings(max_examples=max(1, int(ci_examples * SCALE)), deadline=None, derandomize=False,
                    database=DirectoryBasedExampleDatabase(str(ROOT / "build" / "hypothesis-fuzz")),
                    suppress_health_check=_SUPPRESS, print_blob=True)
