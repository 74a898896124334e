"""Messages from apply to the front ends: small dataclasses, the seam between work and display."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StepStarted:
    step: str


@dataclass(frozen=True)
class Output:
    step: str
    line: str


@dataclass(frozen=True)
class StepDone:
    step: str
    detail: str = ""


@dataclass(frozen=True)
class StepFailed:
    step: str
    error: str


@dataclass(frozen=True)
class Finished:
    ok: bool
    message: str
    url: str | None = None
    changed: bool = True  # False: the run stopped before changing anything (lock, preflight): safe to go back


Event = StepStarted | Output | StepDone | StepFailed | Finished
Emit = Callable[[Event], None]


def as_line(event: Event) -> str | None:
    """How line-by-line front ends print an event."""
    if isinstance(event, StepStarted):
        return f"==> {event.step}"
    if isinstance(event, Output):
        return f"    {event.line}"
    if isinstance(event, StepDone):
        return f"  ok {event.step}" + (f": {event.detail}" if event.detail else "")
    if isinstance(event, StepFailed):
        return f"FAILED {event.step}: {event.error}"
    if isinstance(event, Finished):
        return event.message
    return None
