"""The clearsessions job in the OMERO.web user's crontab.

OMERO.web's file session store is never purged by OMERO.web itself; its docs ask for
``omero web clearsessions`` as a regular job. The wizard keeps exactly one managed line per
OMERODIR, marked by a trailing comment, and edits only that line: every other line of the
crontab is kept byte for byte. (python-crontab checks and normalises the schedule; it is not
used to rewrite the file, because it reformats other people's lines.)

Every deployment run as the same user shares that crontab: each read-modify-write of it happens under
the host-wide lock (``hostlock``), so concurrent runs never write back a crontab without the line
another run has just set.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from omerowizard.model.errors import ApplyError
from omerowizard.system import hostlock, processes
from omerowizard.system.processes import current_user

# what a crontab command line (run by /bin/sh) carries as it is: no blank, no '%' (cron makes it a line
# break), nothing the shell reads as syntax
WORD = re.compile(r"[A-Za-z0-9._/+@:,=-]+")


def word(value: str) -> str:
    """``value`` as one word of the managed crontab line, exactly; anything else is refused (the answers'
    validators refuse it first: this is the crontab's own rule, in one place)."""
    if not WORD.fullmatch(value):
        raise ValueError(f"{value!r} cannot be written into a crontab line exactly (allowed: letters, digits and "
                         "._/+@:,=-)")
    return value


def marker(omerodir: str) -> str:
    return f"# omerowizard: clearsessions OMERODIR={omerodir}"


def managed_lines(text: str, omerodir: str) -> list[str]:
    mark = marker(omerodir)
    return [line for line in text.splitlines() if line.rstrip().endswith(mark)]


def replace_managed(text: str, omerodir: str, new: str | None) -> str:
    """``text`` without our line(s) for this OMERODIR, plus ``new``; every other line unchanged."""
    mark = marker(omerodir)
    kept = [line for line in text.splitlines(keepends=True) if not line.rstrip().endswith(mark)]
    if kept and not kept[-1].endswith("\n"):
        kept[-1] += "\n"
    if new is not None:
        kept.append(new + "\n")
    return "".join(kept)


@dataclass(frozen=True)
class Access:
    """How this process reaches the user's crontab: as root (-u USER), as the user, or not at all."""

    user: str

    @property
    def possible(self) -> bool:
        return os.geteuid() == 0 or current_user() == self.user

    def argv(self, *args: str) -> list[str]:
        base = ["crontab"]
        if current_user() != self.user:
            base += ["-u", self.user]
        return [*base, *args]


def read(user: str) -> str | None:
    """The user's crontab ('' when there is none); None when this process may not read it."""
    access = Access(user)
    if not access.possible:
        return None
    proc = _crontab(access.argv("-l"))
    if proc.returncode != 0:
        if "no crontab for" in proc.errors:
            return ""
        raise ApplyError(f"`crontab -l` for {user} failed: {proc.errors.strip()}")
    return proc.output


def write(user: str, text: str) -> None:
    proc = _crontab(Access(user).argv("-"), text)
    if proc.returncode != 0:
        raise ApplyError(f"installing the crontab of {user} failed: {proc.errors.strip()}")


def _crontab(argv: list[str], input: str | None = None) -> processes.Result:
    try:
        return processes.run(argv, input=input, separate_errors=True)
    except processes.CannotRun as exc:
        if processes.missing(exc):
            raise ApplyError("the crontab command is missing: install cron (apt-get install cron)") from None
        raise


def restore_line(user: str, omerodir: str, line: str | None) -> None:
    """Put back this deployment's managed line as it was (None: no line), and touch nothing else:
    lines others added or changed since the backup stay as they are."""
    with hostlock.held(f"the crontab of {user}"):
        current = read(user)
        if current is None:
            raise ApplyError(f"cannot edit the crontab of {user}: run omerowizard as root or as {user}")
        kept = replace_managed(current, omerodir, None)
        text = kept + "".join(f"{x}\n" for x in (line.splitlines() if line else []))
        if text != current:
            write(user, text)


def set_job(user: str, omerodir: str, new: str | None) -> str:
    """Replace (or remove) our line in the live crontab and read it back. Returns the new crontab."""
    with hostlock.held(f"the crontab of {user}"):
        current = read(user)
        if current is None:
            raise ApplyError(f"cannot edit the crontab of {user}: run omerowizard as root or as {user}")
        text = replace_managed(current, omerodir, new)
        if text != current:
            write(user, text)
        after = read(user) or ""
    lines = managed_lines(after, omerodir)
    if lines != ([new] if new else []):
        raise ApplyError(f"the crontab of {user} does not hold the expected clearsessions line after writing it: "
                         f"{lines!r}")
    return after
