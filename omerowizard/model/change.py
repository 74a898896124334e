"""One protocol for every kind of change a plan holds.

A change says what it does (``describe``, ``details``, ``diff``, ``as_dict``) and belongs to a ``Kind``:
the review's heading and the JSON report's key of its group, when its step runs, the paths its run backs
up, how a batch of its changes is applied (one ``omero config load`` for every key, one pip run for the
feature packages...) and, for what a backup of files cannot put back, how it is undone. The front ends
show a plan by iterating its kinds, and apply runs them in order: a new kind of change is one module
(plan/changes/ for the general kinds, or the feature that owns it), nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class StepHandle(Protocol):
    detail: str  # shown when the step is done


class Run(Protocol):
    """What a change's apply is given: the running apply (run/apply.Applier)."""

    plan: Any  # the plan being applied
    omero: Any  # system.omero.Omero of the deployment
    backup: Any  # system.backups.Backup of this run
    checked: list[str]  # what this run requested and saw answer (the final message says it)
    not_checked: list[str]
    memo: dict[str, Any]  # what a kind's apply leaves for its undo (the servers it started)

    def step(self, name: str) -> AbstractContextManager[StepHandle]: ...

    def say(self, step: str, line: str) -> None: ...


@dataclass(frozen=True)
class Kind:
    """How the changes of one kind show themselves and run."""

    key: str  # the JSON report's key ("config"); the changes of a ``single`` kind are one value there, not a list
    title: str  # the review's heading ("OMERO config"); kinds with one title are shown as one group
    order: int  # when its step runs, among the kinds (lower first)
    shown: int  # where its group stands in a review (lower first)
    steps: Callable[[Sequence[Any]], list[str]]  # the labels of the apply steps it runs for these changes
    apply: Callable[[Sequence[Any], Run], None]
    backup_paths: Callable[[Sequence[Any], Any], list[str]] = lambda changes, plan: []
    undo: Callable[[Sequence[Any], Run], None] | None = None  # after a failure, once the backup is restored
    # once the backup exists, before any kind applies: what its restore must know should the run fail (or be killed)
    # at any step, even an earlier kind's (a blue/green switch records where it switches and from what)
    begin: Callable[[Sequence[Any], Run], None] | None = None
    crontab: bool = False  # the backup keeps this deployment's line of the OMERO.web user's crontab
    single: bool = False
    counts: bool = True  # a change of the machine (False: what follows from the others, e.g. a restart)


class Change(Protocol):
    kind: ClassVar[Kind]

    def title(self) -> str: ...  # the head of its entry in the full-screen review ("set omero.web.prefix")

    def describe(self) -> str: ...  # the one line of the plan as text and in the JSON report

    def details(self) -> tuple[str, ...]: ...  # further lines: the reasons of a restart, the versions of an upgrade

    def values(self) -> tuple[str, str] | None: ...  # a value changed: (before, after) as shown, secrets masked

    def diff(self) -> str: ...  # a unified diff of a file, else ""

    def as_dict(self) -> Any: ...  # the JSON report's entry


def by_kind(changes: Sequence[Change]) -> list[tuple[Kind, list[Change]]]:
    """The changes grouped by kind, the kinds in the order their steps run."""
    groups: dict[int, tuple[Kind, list[Change]]] = {}
    for c in changes:
        groups.setdefault(id(c.kind), (c.kind, []))[1].append(c)
    return sorted(groups.values(), key=lambda kv: kv[0].order)


def shown(changes: Sequence[Change]) -> list[tuple[str, list[Change]]]:
    """The changes as a review shows them: (heading, changes) in the review's order."""
    groups: dict[str, tuple[int, list[Change]]] = {}
    for kind, members in by_kind(changes):
        place, listed = groups.setdefault(kind.title, (kind.shown, []))
        listed.extend(members)
    return [(title, members) for title, (_, members) in sorted(groups.items(), key=lambda kv: kv[1][0])]
