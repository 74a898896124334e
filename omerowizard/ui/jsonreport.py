"""``omerowizard apply --json``: one JSON document on standard output that a program (the Ansible
module ``omerowizard.omero_web.deploy``, CI) reads instead of the lines meant for people.

Everything in it is what the human output says, secrets masked the same way: the plan (each change,
whether it is empty, each file's diff), what preflight would refuse, the public URL, the backup id,
the final message and the exit status. The human lines still go to standard error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from omerowizard.model.errors import AnswersError, WizardError
from omerowizard.model.events import Event, Finished, StepDone, StepFailed
from omerowizard.plan.plan import Plan

VERSION = 1  # of this document's shape; raised when a field changes meaning
# the keys of the plan's changes that version 1 always holds (a kind of change added later adds its own key)
SHAPE: dict[str, Any] = {"config": [], "packages": [], "files": [], "jobs": [], "server": None, "web": None,
                         "upgrade": None}


def plan_dict(plan: Plan) -> dict[str, Any]:
    """The plan as data. Config values are shown as the review shows them (secrets masked)."""
    out: dict[str, Any] = {
        "empty": plan.empty,
        "lines": plan.lines(),
        "steps": plan.steps(),
        **changes_by_key(plan),
        "notes": list(plan.notes),
    }
    return out


def changes_by_key(plan: Plan) -> dict[str, Any]:
    """Each kind's changes under its key (``config``, ``files``...): a list, or one value (or null) for the kinds
    a plan holds at most one of; every key of the shape is present, also when the plan has no such change."""
    out: dict[str, Any] = dict(SHAPE)
    for kind, changes in plan.kinds():
        if kind.single:
            out[kind.key] = changes[0].as_dict()
        else:
            out[kind.key] = [*(out.get(kind.key) or []), *(c.as_dict() for c in changes)]
    return out


@dataclass
class Report:
    """Filled while ``apply`` runs; printed once at the end."""

    dry_run: bool = False
    plan: dict[str, Any] | None = None
    preflight_failures: list[str] = field(default_factory=list)
    preflight_warnings: list[str] = field(default_factory=list)
    steps: list[dict[str, str]] = field(default_factory=list)
    ok: bool | None = None
    changed: bool = False
    url: str | None = None
    backup: str | None = None
    message: str = ""
    problems: list[dict[str, Any]] = field(default_factory=list)

    def event(self, ev: Event) -> None:
        """Keep what a program needs from apply's events (the lines themselves go to standard error)."""

        if isinstance(ev, StepDone):
            self.steps.append({"step": ev.step, "status": "done", "detail": ev.detail})
        elif isinstance(ev, StepFailed):
            self.steps.append({"step": ev.step, "status": "failed", "detail": ev.error})
        elif isinstance(ev, Finished):
            self.ok, self.message, self.url, self.changed = ev.ok, ev.message, ev.url, ev.changed

    def error(self, exc: WizardError) -> None:
        self.ok = False
        self.message = exc.render()
        if isinstance(exc, AnswersError):
            self.problems = [{"key": p.key, "message": p.message, "source": p.source, "line": p.line,
                              "allowed": p.allowed} for p in exc.problems]

    def document(self, exit_status: int) -> str:
        return json.dumps({
            "omerowizard_json": VERSION,
            "exit_status": exit_status,
            "ok": exit_status == 0,
            "dry_run": self.dry_run,
            "changed": self.changed,
            "plan": self.plan,
            "preflight": {"failures": self.preflight_failures, "warnings": self.preflight_warnings},
            "steps": self.steps,
            "url": self.url,
            "backup": self.backup,
            "message": self.message,
            "problems": self.problems,
        }, indent=1, ensure_ascii=False)
