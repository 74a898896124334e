"""One exception type per kind of failure, and the one place they are printed."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


class WizardError(Exception):
    """Base class: a failure with a message meant for the administrator."""

    exit_code = 1

    def render(self) -> str:
        return f"omerowizard: {self}"


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on (line breaks, ESC, ...) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


@dataclass
class Problem:
    """One problem found in the answers: where, which key, what is wrong, what is allowed."""

    key: str
    message: str
    source: str = "<answers>"
    line: int | None = None
    value: object = None
    allowed: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        text = f"{where}: {printable(self.key)}: {self.message}"
        if self.allowed:
            text += f" (allowed: {self.allowed})"
        return text


class AnswersError(WizardError):
    """The answers are not valid: every problem is listed; nothing was changed."""

    exit_code = 2

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    def render(self) -> str:
        n = len(self.problems)
        head = f"omerowizard: {n} problem{'s' if n != 1 else ''} in the answers; nothing was changed:"
        return "\n".join([head, *("  " + str(p) for p in self.problems)])


@dataclass
class OmeroCommandError(WizardError):
    """``omero`` exited non-zero."""

    argv: list[str]
    returncode: int
    output: str = ""
    exit_code: int = field(default=1, init=False)

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        tail = "\n".join(self.output.strip().splitlines()[-15:])
        return f"`{' '.join(self.argv)}` failed with exit code {self.returncode}" + (f":\n{tail}" if tail else "")


class PreflightError(WizardError):
    """A check before any change failed; the message says how to fix it."""


class ConfigXmlError(WizardError):
    """config.xml exists but cannot be read as an OMERO config."""


class ApplyError(WizardError):
    """A step failed while applying; what was restored is in the message."""


class InstallError(WizardError):
    """Installing OMERO.web failed."""


class UsageError(WizardError):
    exit_code = 2


def report(error: WizardError, stream=None) -> int:
    """Print an error the one way errors are printed, and return its exit status."""
    print(error.render(), file=stream or sys.stderr)
    return error.exit_code
