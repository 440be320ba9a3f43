"""Every Python code block in README.md and docs/*.md runs.

A Markdown file's ```` ```python ```` blocks run in order in one namespace (a later block may use
what an earlier one defined), in a scratch folder laid out like the checkout: ``models/``,
``benchmarks/``, ``datasets/`` and ``docs/`` are reachable by the same relative paths, and
``../shared/data`` is the real data when it exists. Tracebacks name the Markdown file and line.

A block that needs the real recordings is preceded by the line ``<!-- docs-test: needs-shared-data -->``:
it is skipped (and the rest of its file still runs) when ``../shared/data`` is absent, except under
``CI=true``, where that is a failure. There is no other way to skip a block. Blocks fenced with
another language (``bash``, ``text``) are not run.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
NEEDS_DATA = "<!-- docs-test: needs-shared-data -->"
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
OPENING = re.compile(r"^```python\b", re.M)
LINKED = ("models", "benchmarks", "datasets", "docs", "eventsim")
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
#: the files with at least one python fence (each is one test; the fences are checked to be complete)
WITH_CODE = [p for p in DOC_FILES if OPENING.search(p.read_text(encoding="utf-8"))]


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """``(first line number of the code, code, needs shared data)`` for every python block."""
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(1)) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        blocks.append((line, match.group(1), before == NEEDS_DATA))
    return blocks


def run_blocks(path: Path, text: str, sandbox: Path, have_data: bool, ci: bool) -> tuple[int, list[int]]:
    """Run the python blocks of one Markdown text; returns (blocks run, lines of skipped blocks)."""
    namespace: dict = {"__name__": "__docs__"}
    ran, skipped = 0, []
    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        for line, code, needs_data in python_blocks(text):
            if needs_data and not have_data:
                if ci:
                    pytest.fail(f"{path}:{line}: the block needs ../shared/data, which is required when CI=true")
                skipped.append(line)
                continue
            # pad so that a traceback's line numbers are the Markdown file's
            exec(compile("\n" * (line - 1) + code, str(path), "exec"), namespace)
            ran += 1
    finally:
        os.chdir(cwd)
    return ran, skipped


@pytest.fixture
def sandbox(tmp_path):
    """A scratch checkout: links to the repository's folders, and ../shared/data beside it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in LINKED:
        (repo / name).symlink_to(ROOT / name, target_is_directory=True)
    if SHARED_DATA.exists():
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "data").symlink_to(SHARED_DATA, target_is_directory=True)
    return repo


@pytest.mark.parametrize("path", WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_python_blocks_run(path, sandbox):
    text = path.read_text(encoding="utf-8")
    opened = len(OPENING.findall(text))
    blocks = python_blocks(text)
    assert len(blocks) == opened > 0, f"{path}: {opened} ```python fences but {len(blocks)} complete blocks"
    ci = os.environ.get("CI", "").lower() == "true"
    ran, skipped = run_blocks(path, text, sandbox, SHARED_DATA.exists(), ci)
    assert ran + len(skipped) == len(blocks) and ran > 0, f"{path}: no block ran"
    if skipped:
        pytest.skip(f"{path.name}: blocks at lines {skipped} need ../shared/data ({ran} others ran)")


def test_readme_and_docs_have_python_blocks():
    """The runner finds the blocks: the README's example and the pages' examples are there."""
    counts = {p.relative_to(ROOT).as_posix(): len(python_blocks(p.read_text(encoding="utf-8"))) for p in DOC_FILES}
    assert counts["README.md"] >= 1
    for page in ("docs/concepts.md", "docs/engines.md", "docs/counting.md", "docs/cutoff.md", "docs/checkpoints.md",
                 "docs/nir.md", "docs/getting-started.md"):
        assert counts[page] >= 1, page


def test_a_raising_block_fails_and_a_data_block_is_skipped_only_outside_ci(tmp_path):
    text = ("# t\n\n```python\nx = 1\n```\n\n" + NEEDS_DATA + "\n```python\nraise AssertionError('needs data')\n```\n\n"
            "```python\nassert x == 1\nraise ValueError('broken example')\n```\n")
    assert [(line, needs) for line, _, needs in python_blocks(text)] == [(4, False), (9, True), (13, False)]
    with pytest.raises(ValueError, match="broken example") as info:
        run_blocks(Path("page.md"), text, tmp_path, have_data=False, ci=False)
    assert info.traceback[-1].lineno + 1 == 14                    # the Markdown line that raised
    with pytest.raises(AssertionError, match="needs data"):
        run_blocks(Path("page.md"), text, tmp_path, have_data=True, ci=False)
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        run_blocks(Path("page.md"), text, tmp_path, have_data=False, ci=True)
    ok = text.replace("raise ValueError('broken example')", "y = x + 1")
    assert run_blocks(Path("page.md"), ok, tmp_path, have_data=False, ci=False) == (2, [9])


@pytest.mark.parametrize("module", ["eventsim.network", "eventsim.engines", "eventsim.evaluate"])
def test_docstring_examples_run(module):
    """The ``>>>`` examples in these modules' docstrings run, and are there (a deleted example fails)."""
    import doctest
    import importlib
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3, f"{module}: its docstring examples are gone"
    assert result.failed == 0
