"""Under CI=true nothing passes by skipping: a test that needs a package of the test extra fails
when the package is missing (tests/conftest.py), as a test that needs ../shared/data does."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

IN_TEST = '''
import sys
sys.modules["nirtorch"] = None            # as if it were not installed
import pytest

def test_needs_a_test_extra_package():
    pytest.importorskip("nirtorch")

def test_needs_an_optional_package():
    pytest.importorskip("no_such_optional_package")
'''
AT_MODULE_LEVEL = '''
import sys
sys.modules["snntorch"] = None
import pytest
snntorch = pytest.importorskip("snntorch")

def test_anything():
    pass
'''


def _run(tmp_path, ci: str) -> str:
    (tmp_path / "test_in_test.py").write_text(IN_TEST)
    (tmp_path / "test_module_level.py").write_text(AT_MODULE_LEVEL)
    env = {**os.environ, "CI": ci, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-q", "-rfEs", "-p", "no:cacheprovider", "--continue-on-collection-errors",
                          "--rootdir", str(tmp_path), str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    return run.stdout + run.stderr


def test_missing_test_extra_fails_under_ci(tmp_path):
    out = _run(tmp_path, "true")
    assert "1 failed" in out and "1 skipped" in out and "1 error" in out, out
    assert "nirtorch is missing: it is part of the test extra" in out
    assert "snntorch is missing: it is part of the test extra" in out


def test_missing_test_extra_skips_outside_ci(tmp_path):
    out = _run(tmp_path, "false")
    assert "3 skipped" in out and "failed" not in out and "error" not in out, out
