"""The vocabulary of day two (``omerowizard status`` and ``doctor``): a finding of one health check, and what a
feature's health hook is given. No I/O here: the checks themselves read the machine (``omerowizard.state.health``
and each feature's ``health``), the front ends show the findings.

A finding is ``ok``, a ``warning`` (shown, but the deployment still counts as healthy: a certificate that expires
in two weeks) or a ``problem`` (the deployment is degraded: exit status 1, the finding named as a reason), or
``skipped`` (the check does not apply, or could not be made, and says why). Every problem says its fix in one
sentence and, where one command repairs it, that command.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
WARNING = "warning"
PROBLEM = "problem"
SKIPPED = "skipped"
STATUSES = (OK, WARNING, PROBLEM, SKIPPED)


@dataclass(frozen=True)
class Finding:
    """What one check saw."""

    check: str  # a stable id (gunicorn, workers, front-door, session-store, drift.config, ...)
    status: str  # ok | warning | problem | skipped
    summary: str  # one line: what was seen
    fix: str = ""  # one sentence: how to repair it (problems and warnings)
    command: str = ""  # the command that repairs it, when one does
    details: tuple[str, ...] = ()  # further lines (the keys that differ, the log lines, ...)
    data: Mapping[str, Any] = field(default_factory=dict)  # figures for --json (counts, versions, days left)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def reason(self) -> str:
        """The finding as a reason of a degraded verdict: what was seen, then the fix."""
        return self.summary + (f" Fix: {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "status": self.status, "summary": self.summary, "fix": self.fix,
                "command": self.command, "details": list(self.details), "data": dict(self.data)}


def ok(check: str, summary: str, **data: Any) -> Finding:
    return Finding(check, OK, summary, data=data)


def problem(check: str, summary: str, fix: str, command: str = "", details: tuple[str, ...] = (),
            **data: Any) -> Finding:
    return Finding(check, PROBLEM, summary, fix, command, tuple(details), data)


def warning(check: str, summary: str, fix: str = "", command: str = "", details: tuple[str, ...] = (),
            **data: Any) -> Finding:
    return Finding(check, WARNING, summary, fix, command, tuple(details), data)


def skipped(check: str, why: str) -> Finding:
    return Finding(check, SKIPPED, why)


@dataclass(frozen=True)
class HealthContext:
    """What a feature's ``health`` hook may read: the deployment's saved answers (or the defaults when it has
    none), its live config.xml, the packages of its environment, and whether this is ``doctor`` (``deep``: the
    slower diagnoses, such as importing every web app as the OMERO.web user) or ``status``."""

    answers: Any
    config: Mapping[str, str]
    packages: Mapping[str, str]
    user: str
    venv: str
    omerodir: str
    deep: bool = False
    has_saved: bool = True  # the answers are the deployment's saved ones (else omerowizard's defaults)
    repair: str = ""  # the command that applies the saved answers again (omerowizard apply FILE)


@dataclass(frozen=True)
class Verdict:
    """A deployment's health in a few words, for the welcome of the wizard: its headline (``healthy``, ``degraded: 2
    problems (front-door, drift.config)``) and what each problem is."""

    healthy: bool
    headline: str
    problems: tuple[str, ...] = ()  # each problem's summary
    command: str = "omerowizard doctor"  # where the fixes are
