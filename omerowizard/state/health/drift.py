"""Drift: what changed behind omerowizard's back since its last apply. config.xml keys that differ from what the
saved answers want (someone ran ``omero config set`` by hand), and the files its runs wrote (the record, with each
file's sha256) edited or removed since."""

from __future__ import annotations

import hashlib

from omerowizard.catalogue.config import same, wanted_config
from omerowizard.model import health as h
from omerowizard.model.errors import WizardError
from omerowizard.model.health import Finding, HealthContext
from omerowizard.model.secrets import config_value
from omerowizard.system import safefs
from omerowizard.system.deployments import Deployment


def config_drift(ctx: HealthContext, django: tuple[int, ...]) -> Finding:
    if not ctx.has_saved:
        return h.skipped("drift.config", "this deployment has no saved answers (omerowizard never applied it): "
                                         "nothing to compare config.xml with")
    a = ctx.answers
    live = dict(ctx.config)
    wanted = wanted_config(a, live, django, previous=a)
    differ = []
    for key, value in sorted(wanted.values.items()):
        if not same(key, value, live.get(key)):
            now = config_value(key, live[key]) if key in live else "(unset: OMERO's default)"
            want = config_value(key, value) if value is not None else "(unset: OMERO's default)"
            differ.append(f"{key} is {now}; the saved answers want {want} ({wanted.why.get(key, '')})")
    if not differ:
        return h.ok("drift.config", f"config.xml holds what the saved answers want ({len(wanted.values)} keys)")
    keys = [line.split(" is ", 1)[0] for line in differ]
    return h.problem(
        "drift.config", f"config.xml differs from the saved answers in {', '.join(keys)} (changed by hand, e.g. "
                        "`omero config set`)",
        "apply the saved answers to put them back, or keep the change: `omerowizard answers --omerodir "
        f"{ctx.omerodir} > FILE`, then `omerowizard apply FILE`", ctx.repair, details=tuple(differ), keys=keys)


def file_drift(ctx: HealthContext) -> Finding:
    record = Deployment(ctx.omerodir).record()
    if not record:
        return h.skipped("drift.files", "omerowizard has written no file for this deployment")
    edited, missing, unreadable = [], [], []
    for path, entry in sorted(record.items()):
        try:
            data = safefs.read_bytes(path)
        except (OSError, WizardError) as exc:
            unreadable.append(f"{path}: {exc}")
            continue
        if data is None:
            missing.append(path)
            continue
        text = data.decode("utf-8", "replace")
        if hashlib.sha256(text.encode()).hexdigest() != entry.get("sha256"):
            edited.append(path)
    if not (edited or missing or unreadable):
        return h.ok("drift.files", f"the {len(record)} files omerowizard wrote are as it wrote them",
                    files=sorted(record))
    parts = []
    if edited:
        parts.append(f"edited since omerowizard wrote {'it' if len(edited) == 1 else 'them'}: {', '.join(edited)}")
    if missing:
        parts.append(f"removed: {', '.join(missing)}")
    if unreadable:
        parts.append(f"unreadable: {'; '.join(unreadable)}")
    return h.problem("drift.files", "; ".join(parts),
                     "apply the saved answers: the files are written again (the edited ones are kept in that run's "
                     "backup; `omerowizard rollback` brings them back)", ctx.repair,
                     edited=edited, missing=missing)
