"""Signals while a run changes the machine: SIGTERM interrupts it like Ctrl-C (so it restores), and nothing
interrupts a restore."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(Exception):
    """SIGTERM (or Ctrl-C) arrived while applying."""


@contextlib.contextmanager
def signals_raise():
    """SIGTERM raises Interrupted (Ctrl-C already raises KeyboardInterrupt), so apply restores and exits.
    Signal handlers can only be set from the main thread; the Textual app runs apply in a worker."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def signals_ignored():
    """While restoring, a second Ctrl-C or SIGTERM must not leave things half restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
