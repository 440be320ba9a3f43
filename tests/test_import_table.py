"""docs/importing.md: the "what imports" and options tables are what
``python -m eventsim.checkpoints.support --write`` generates, every row names a test that exists, and
the page's Python examples run."""
from __future__ import annotations

import re
from pathlib import Path

from eventsim.checkpoints import support

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "importing.md"


def test_page_is_up_to_date():
    text = PAGE.read_text(encoding="utf-8")
    assert support.render(text) == text, "run: python -m eventsim.checkpoints.support --write docs/importing.md"


def test_every_row_names_an_existing_test():
    for row in support.IMPORTS + support.OPTIONS:
        file, _, name = row[-1].partition("::")
        source = (ROOT / file).read_text(encoding="utf-8")
        assert re.search(rf"^def {re.escape(name)}\(", source, re.M), row[-1]


def test_every_asked_option_is_listed():
    """Each 'pass <option>=' in an importer's messages has a row in the options table."""
    asked = set()
    for path in (ROOT / "eventsim" / "checkpoints").glob("*.py"):
        if path.name.startswith("nir"):
            continue
        asked |= set(re.findall(r"pass ([a-z_]+)=", path.read_text(encoding="utf-8")))
    listed = {re.match(r"`([a-z_]+)=", row[0]).group(1) for row in support.OPTIONS}
    assert asked <= listed, asked - listed


def test_write_replaces_between_markers(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(f"a\n{support.START}\nSTALE-ROW\n{support.END}\nb\n{support.OSTART}\n{support.OEND}\n")
    assert support.write(page) and not support.write(page)
    assert "| QCFS (`qcfs`) |" in page.read_text() and "STALE-ROW" not in page.read_text()


def test_python_examples_run(capsys):
    for block in re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S):
        exec(compile(block, str(PAGE), "exec"), {})
    assert "'Branch'" in capsys.readouterr().out
