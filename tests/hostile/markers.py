"""Proof that nothing from a hostile file ran: every payload in the corpus would create a marker.

Payloads call :func:`touch` (importable as ``hostile.markers.touch``), ``builtins.open``,
``os.mkdir``, ``os.system``, ``builtins.exec`` or ``builtins.eval`` on a marker path; the tests
assert that no marker exists afterwards and that :data:`CALLS` is empty. Control cases load the
same payload with an unrestricted loader and see the marker appear, so the payloads are live.
"""
from __future__ import annotations

from pathlib import Path

#: Tags recorded by :func:`touch` in this process.
CALLS: list = []


def touch(path: str) -> str:
    """Record a call and create ``path``: what a payload does when it runs."""
    CALLS.append(path)
    Path(path).write_text("payload ran\n")
    return path


def payload_calls(marker: str) -> list[tuple[str, str, tuple]]:
    """``(module, name, args)`` triples, each of which creates ``marker`` when called."""
    code = f"open({marker!r}, 'w').close()"
    return [("hostile.markers", "touch", (marker,)), ("builtins", "open", (marker, "w")),
            ("os", "mkdir", (marker,)), ("posix", "system", (f"touch {marker}",)),
            ("builtins", "exec", (code,)), ("builtins", "eval", (code,))]
