"""Other omero.web.* settings, given as a mapping in an answers file (``extra_config``)."""

from __future__ import annotations

from omerowizard import validators as v
from omerowizard.features.base import Feature
from omerowizard.qtypes import Mapping_, Question


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Extra(Feature):
    name = "extra"
    questions = (
        Question("extra_config", "Other omero.web.* settings",
                 "Any other OMERO.web configuration key and its value; lists and mappings are stored as JSON.",
                 Mapping_(v.EXTRA_KEY.pattern), "advanced", default=()),
    )

    def wanted(self, a, ctx, w):
        for key, value in a.extra_config.items():
            w.want(key, value, "extra_config")
        previous = ctx.previous.extra_config if ctx.previous is not None else {}
        for key in previous:
            if key not in a.extra_config:
                w.values[key] = None
                w.why[key] = "removed from extra_config"

    def cross_checks(self, flat, given, bad, problem):
        from omerowizard.features import owner_of

        value = given.get("extra_config")
        if not isinstance(value, dict) or "extra_config" in bad:
            return
        for k, item in value.items():
            key = f"extra_config.{k}"
            if key in bad:
                continue
            if v.extra_key(k):  # the schema's pattern lets a final line break through
                problem(key, f"{_short(k)} is not an omero.web.* key", "keys such as omero.web.login_logo")
                continue
            msg = v.config_value(item)
            if msg:
                problem(key, msg)
            question = owner_of(k)
            if question:
                problem(key, f"is set by the answer {question}, not by extra_config",
                        f"remove it from extra_config and answer {question}")


FEATURE = Extra()
