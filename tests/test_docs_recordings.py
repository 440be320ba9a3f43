"""The Python blocks of docs/recordings.md run as written (each in a fresh namespace, in one
temporary folder, in order: later blocks may read files earlier ones wrote)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "recordings.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_python_blocks():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for block in BLOCKS[:index]:                 # files written by earlier blocks
        exec(compile(block, f"{DOC.name} block {BLOCKS.index(block)}", "exec"), {})
    exec(compile(BLOCKS[index], f"{DOC.name} block {index}", "exec"), {})
