"""Shared test fixtures.

* ``NUMBA_CACHE_DIR`` defaults to ``build/numba-cache`` inside the checkout (ignored by git).
* ``shared_data`` points at ``../shared/data``; tests that need it skip with a reason when it is
  absent, except under ``CI=true`` where its absence is a failure.
"""
from __future__ import annotations

import os
import re
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


# ----------------------------------------------------------------------------- the test extra under CI

#: what ``pip install -e ".[test]"`` installs (pyproject.toml) and tests import with
#: ``pytest.importorskip``: under CI=true a test or module skipped because one is missing fails
#: instead (a skip there would pass without testing anything). The peers are not in the extra.
TEST_EXTRA = frozenset({"torch", "hypothesis", "dask", "distributed", "nir", "snntorch", "nirtorch", "onnx",
                        "onnxscript", "safetensors"})
_MISSING = re.compile(r"could not import '([A-Za-z0-9_]+)")


def _missing_test_extra(excinfo) -> str | None:
    if excinfo is None or not isinstance(excinfo.value, pytest.skip.Exception):
        return None
    found = _MISSING.match(str(excinfo.value.msg))
    return found.group(1) if found and found.group(1) in TEST_EXTRA else None


def _fail_under_ci(report, excinfo) -> None:
    name = _missing_test_extra(excinfo)
    if name is not None and report.skipped and os.environ.get("CI", "").lower() == "true":
        report.outcome = "failed"
        report.longrepr = (f"{name} is missing: it is part of the test extra (pip install -e '.[test]'), "
                           "required when CI=true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_under_ci(outcome.get_result(), call.excinfo)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and isinstance(report.longrepr, tuple):
        message = report.longrepr[2]
        found = _MISSING.search(message)
        if found and found.group(1) in TEST_EXTRA and os.environ.get("CI", "").lower() == "true":
            report.outcome = "failed"
            report.longrepr = (f"{found.group(1)} is missing: it is part of the test extra "
                               "(pip install -e '.[test]'), required when CI=true")
