"""Changes of OMERO config keys: every set in one ``omero config load``, every unset in one ``omero load``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from omerowizard.catalogue.config import DEFAULTS
from omerowizard.model.change import Kind, Run
from omerowizard.model.errors import printable
from omerowizard.model.secrets import config_value

STEP = "write OMERO config"


def sets(changes: Sequence[ConfigChange]) -> dict[str, str]:
    return {c.key: c.new for c in changes if c.new is not None}


def unsets(changes: Sequence[ConfigChange]) -> list[str]:
    return [c.key for c in changes if c.new is None]


def apply(changes: Sequence[ConfigChange], run: Run) -> None:
    with run.step(STEP) as s:
        run.omero.config_load(sets(changes))
        run.omero.config_unset_many(unsets(changes))
        s.detail = f"{len(sets(changes))} set, {len(unsets(changes))} unset"


KIND = Kind("config", "OMERO config", order=30, shown=20, steps=lambda changes: [STEP], apply=apply)


@dataclass(frozen=True)
class ConfigChange:
    key: str
    old: str | None  # None: not set
    new: str | None  # None: unset (back to OMERO's default)
    why: str
    kind: ClassVar[Kind] = KIND

    @property
    def action(self) -> str:
        return "unset" if self.new is None else "set"

    @property
    def old_text(self) -> str:
        # printable(): the old value comes from config.xml, which the OMERO.web user can write
        return self._shown(self.old) if self.old is not None else self._unset()

    @property
    def new_text(self) -> str:
        return self._shown(self.new) if self.new is not None else self._unset()

    def _shown(self, value: str) -> str:
        return printable(config_value(self.key, value))

    def _unset(self) -> str:
        """An unset key, with the value OMERO.web then uses (``(unset: OMERO's default 5)``)."""
        default = DEFAULTS.get(self.key)
        return f"(unset: OMERO's default {config_value(self.key, default)})" if default is not None else "(unset)"

    def change(self) -> str:
        return f"{self.key}: {self.old_text} -> {self.new_text}"

    def title(self) -> str:
        return f"{self.action} {self.key}"

    def describe(self) -> str:
        return f"{self.action:5} {self.change()}"

    def details(self) -> tuple[str, ...]:
        return ()

    def values(self) -> tuple[str, str]:
        return self.old_text, self.new_text

    def diff(self) -> str:
        return ""

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "action": self.action, "old": self.old_text, "new": self.new_text, "why": self.why,
                "was_set": self.old is not None}
