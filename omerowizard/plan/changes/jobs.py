"""The clearsessions job in the OMERO.web user's crontab: one managed line per deployment, replaced or removed
under the host-wide lock (the crontab is shared by every deployment of that user). A crontab this process may
not edit gets the line printed for an administrator."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from omerowizard.model.change import Kind, Run
from omerowizard.system import crontab as cron
from omerowizard.system.omero import CommandLog

STEP = "scheduled jobs"


def apply(changes: Sequence[JobChange], run: Run) -> None:
    with run.step(STEP):
        apply_jobs(run.plan, lambda line: run.say(STEP, line), run.omero.log, changes)


def apply_jobs(plan: Any, say: Callable[[str], None], log: CommandLog | None = None,
               jobs: Sequence[JobChange] | None = None) -> None:
    log = log or CommandLog()
    omerodir = plan.answers.omero.omerodir
    for job in plan.jobs if jobs is None else jobs:
        if job.staged:
            say(f"cannot edit the crontab of {job.user}. As root, run `crontab -u {job.user} -e` and "
                + (f"add this line:\n  {job.new}" if job.new else f"remove the line ending with {cron.marker(omerodir)}"))
            continue
        cron.set_job(job.user, omerodir, job.new)
        log.crontab(job.user, job.new)
        say(f"crontab of {job.user}: " + (f"{job.new}" if job.new else "clearsessions line removed"))


KIND = Kind("jobs", "Scheduled jobs", order=50, shown=50, steps=lambda changes: [STEP], apply=apply, crontab=True)


@dataclass(frozen=True)
class JobChange:
    """Install, replace or remove the managed scheduled job."""

    user: str
    old: str | None
    new: str | None
    why: str
    staged: bool = False  # the wizard cannot edit this crontab: an administrator adds the line
    kind: ClassVar[Kind] = KIND

    def title(self) -> str:
        return self.describe()

    def describe(self) -> str:
        if self.new is None:
            return f"remove the clearsessions job of {self.user} ({self.why})"
        return f"{'replace' if self.old else 'install'} the clearsessions job of {self.user}: {self.new} ({self.why})"

    def details(self) -> tuple[str, ...]:
        return ()

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "old": self.old, "new": self.new, "why": self.why, "describe": self.describe()}
