"""Ctrl-C that is never lost.

Python turns SIGINT into a ``KeyboardInterrupt`` raised wherever the main thread happens to be.
When that is inside a finaliser or a weak-reference callback (garbage collection runs them at
arbitrary points), the interpreter prints "Exception ignored in ..." and carries on: the user's
Ctrl-C is silently dropped and a long evaluation runs to the end.

:func:`catch_sigint` installs a handler that records the interrupt *and* raises it; long loops
call :func:`checkpoint` between units of work (one sample), which raises the recorded interrupt
again if it was swallowed. Outside :func:`catch_sigint`, :func:`checkpoint` does nothing.

:func:`deferred` holds a Ctrl-C back during a short critical section (writing a zip archive,
which a ``KeyboardInterrupt`` between its members leaves half-closed: ``zipfile`` then raises
its own error and the user sees that instead of "interrupted"); the next :func:`checkpoint`
raises it.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_pending = False
_deferring = 0


def _on_sigint(signum, frame) -> None:
    global _pending
    _pending = True
    if not _deferring:
        raise KeyboardInterrupt


@contextmanager
def deferred() -> Iterator[None]:
    """Within the block a SIGINT is only recorded (inside :func:`catch_sigint`); the next
    :func:`checkpoint` after it raises ``KeyboardInterrupt``."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1


@contextmanager
def catch_sigint() -> Iterator[None]:
    """Within the block, a SIGINT raises ``KeyboardInterrupt`` and is remembered for
    :func:`checkpoint`. Only the main thread can install signal handlers; elsewhere this is a no-op."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_sigint)
    _pending = False
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending = False


def checkpoint() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived (inside :func:`catch_sigint`) and was swallowed."""
    if _pending:
        raise KeyboardInterrupt
