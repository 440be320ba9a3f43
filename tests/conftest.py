"""Shared test fixtures.

* ``NUMBA_CACHE_DIR`` defaults to ``build/numba-cache`` inside the checkout (ignored by git).
* ``shared_data`` points at ``../shared/data``; tests that need it skip with a reason when it is
  absent, except under ``CI=true`` where its absence is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))

import pytest  # noqa: E402

SHARED_DATA = Path(os.environ.get("EVENTSIM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def require_shared_data(*parts: str) -> Path:
    """Return ``../shared/data/<parts>``; skip (or fail under CI=true) when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"real recordings not found at {path} (set EVENTSIM_SHARED_DATA or place ../shared/data)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " -- required when CI=true")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data()


@pytest.fixture(scope="session")
def nmnist_dir() -> Path:
    return require_shared_data("nmnist")
