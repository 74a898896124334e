"""Free space where OMERO.web writes: its logs (``OMERODIR/var``) and, with file sessions, its session files
(Django's ``SESSION_FILE_PATH``: the temporary directory unless configured). A full disk there stops logins (no
session can be saved) long before anything else complains."""

from __future__ import annotations

import os
import tempfile

from omerowizard.model import health as h
from omerowizard.model.health import Finding, HealthContext

LOW_BYTES = 512 * 1024 ** 2  # below this, or below LOW_FRACTION of the file system, a problem
LOW_FRACTION = 0.02
WARN_FRACTION = 0.10


def check(ctx: HealthContext) -> Finding:
    places = {"logs": f"{ctx.omerodir}/var"}
    engine = ctx.config.get("omero.web.session_engine", "django.contrib.sessions.backends.file")
    if engine.endswith(".file"):
        places["sessions"] = ctx.config.get("omero.web.session_file_path") or tempfile.gettempdir()
    seen, low, warn, data = [], [], [], {}
    for what, path in places.items():
        try:
            st = os.statvfs(path)
        except OSError as exc:
            seen.append(f"{what} ({path}): cannot be measured ({exc.strerror})")
            continue
        free, total = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        fraction = free / total if total else 1.0
        data[what] = {"path": path, "free_bytes": free, "free_fraction": round(fraction, 4)}
        text = f"{what} ({path}): {free / 1024 ** 3:.1f} GiB free ({fraction:.0%})"
        seen.append(text)
        if free < LOW_BYTES or fraction < LOW_FRACTION:
            low.append(text)
        elif fraction < WARN_FRACTION:
            warn.append(text)
    if low:
        return h.problem("disk", "little disk space left where OMERO.web writes: " + "; ".join(low),
                         "free space there (old logs in var/log, stale sessions: `omero web clearsessions`)",
                         details=tuple(seen), **data)
    if warn:
        return h.warning("disk", "disk space is getting low: " + "; ".join(warn), "free space there",
                         details=tuple(seen), **data)
    return h.ok("disk", "; ".join(seen), **data)
