"""The omero-web releases with security fixes: a small table shipped with omerowizard (``advisories.json``, with
the date it was last updated), and the advisories an installed release is below."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from packaging.version import InvalidVersion, Version

from omerowizard.model import health as h
from omerowizard.model.health import Finding, HealthContext

TABLE = Path(__file__).with_name("advisories.json")


@dataclass(frozen=True)
class Advisory:
    id: str
    fixed_in: str
    url: str


@dataclass(frozen=True)
class Table:
    updated: str
    advisories: tuple[Advisory, ...]


def load(path: Path = TABLE) -> Table:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Table(data["updated"], tuple(Advisory(a["id"], a["fixed_in"], a["url"]) for a in data["advisories"]))


def missing(installed: str, table: Table) -> list[Advisory]:
    """The advisories whose fix ``installed`` does not have."""
    try:
        have = Version(installed)
    except InvalidVersion:
        return []
    return [a for a in table.advisories if have < Version(a.fixed_in)]


def check(ctx: HealthContext) -> Finding:
    table = load()
    version = ctx.packages.get("omero-web")
    if not version:
        return h.skipped("security", f"omero-web is not installed in {ctx.venv}")
    todo = missing(version, table)
    if not todo:
        return h.ok("security", f"omero-web {version} has every security fix of the advisories table "
                                f"(updated {table.updated})", updated=table.updated)
    newest = max((Version(a.fixed_in) for a in todo))
    return h.problem(
        "security", f"omero-web {version} is below the security fix{'es' if len(todo) > 1 else ''} of "
                    + ", ".join(f"{a.id} (fixed in {a.fixed_in})" for a in todo)
                    + f" (advisories table updated {table.updated})",
        f"upgrade: set omero.web_version to {newest} or newer in the saved answers and apply them (pip installs it "
        "into the environment and OMERO.web restarts)",
        details=tuple(f"{a.id}: {a.url}" for a in todo), advisories=[a.id for a in todo], updated=table.updated)
