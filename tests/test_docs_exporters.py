"""The Python blocks of ``docs/exporters.md`` run as written (in order, one namespace per section)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "exporters.md"
SECTIONS = {"snnTorch": ("snntorch", "nirtorch", "nir", "torch"),
            "A hand-written NIR graph with a leaky readout": ("nir",)}


def _blocks(section: str) -> list[str]:
    text = DOC.read_text()
    parts = re.split(r"^## ", text, flags=re.M)
    body = next(p for p in parts if p.startswith(section + "\n"))
    return re.findall(r"```python\n(.*?)```", body, flags=re.S)


@pytest.mark.parametrize("section", list(SECTIONS))
def test_doc_blocks_run(section, tmp_path, monkeypatch):
    for module in SECTIONS[section]:
        pytest.importorskip(module)
    monkeypatch.chdir(tmp_path)
    blocks = _blocks(section)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, f"{DOC.name}:{section}", "exec"), namespace)
