"""Starting the system web server (nginx or Apache) when it does not run: the site is served only then.

The start happens under the host-wide lock (the server is the host's) and looks again first: another run may
have started it meanwhile, and then this run must not stop it on a failure. A server this run started is
stopped again when the run fails (``undo``: it was not running before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from omerowizard.model.change import Kind, Run
from omerowizard.model.errors import ApplyError
from omerowizard.system import hostlock
from omerowizard.system import webservers as servercheck

STARTED = "server started"  # the run's memo: the servers this run started


def apply(changes: Sequence[ServerChange], run: Run) -> None:
    for change in changes:
        with run.step(change.label) as s, hostlock.held(f"the start of the system {change.server}"):
            if servercheck.server_running(change.server):
                s.detail = f"{change.server} runs already (another run started it)"
                continue
            r = servercheck._run(list(change.argv), " ".join(change.argv))
            run.omero.log.server(r.what, r.ok, r.output)
            if not r.ok:
                raise ApplyError(f"{r.what} failed:\n{r.output}")
            run.memo.setdefault(STARTED, []).append(change.server)
            s.detail = r.what


def undo(changes: Sequence[ServerChange], run: Run) -> None:
    for server in run.memo.get(STARTED, []):
        argv = servercheck.stop_argv(server)
        with hostlock.held(f"the stop of the system {server}"):  # never between another run's check and reload
            r = servercheck._run(argv, " ".join(argv))
        run.omero.log.server(r.what, r.ok, r.output)
        run.say("restore", f"{r.what} (it was not running before this run): {'done' if r.ok else r.output}")


KIND = Kind("server", "Web server", order=60, shown=60, steps=lambda changes: [c.label for c in changes],
            apply=apply, undo=undo, single=True)


@dataclass(frozen=True)
class ServerChange:
    """Start the system web server (nginx or Apache), which does not run: the site is served only then."""

    server: str  # nginx | apache
    argv: tuple[str, ...]
    why: str
    kind: ClassVar[Kind] = KIND

    @property
    def label(self) -> str:
        return f"start {'nginx' if self.server == 'nginx' else 'Apache httpd'}"

    def title(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return f"{self.label}: {' '.join(self.argv)} ({self.why})"

    def details(self) -> tuple[str, ...]:
        return ()

    def diff(self) -> str:
        return ""

    def values(self) -> None:
        return None

    def as_dict(self) -> str:
        return self.describe()
