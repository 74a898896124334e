"""The logs of one deployment: OMERO.web's own (``var/log/OMEROweb.log``) and its web server's error log, read
through safefs (OMERODIR is the OMERO.web user's: no link there is followed), cut into entries (a traceback stays
with the line that logged it), each with its time, and merged by time. ``doctor`` reads the errors OMERO.web
logged since its last start."""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Any

from omerowizard.features import web_server
from omerowizard.model import health as h
from omerowizard.model.errors import WizardError
from omerowizard.model.health import Finding, HealthContext
from omerowizard.system import platforms, safefs
from omerowizard.system.deployments import Deployment

READ_LIMIT = 2 * 1024 * 1024  # the newest part of a log that is read (a log may be 500 MB)
# 2026-12-03 12:00:00,123 ERROR [...]  (omero-web's STANDARD_LOGFORMAT)
_OMERO = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:[,.](\d{1,6}))?\s+([A-Z]{4,8})\b")
# 2026/12/03 12:00:00 [error] 1234#1234: ...  (nginx)
_NGINX = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\]")
# [Thu Dec 03 12:00:00.123456 2026] [proxy:error] [pid 1] ...  (Apache)
_APACHE = re.compile(r"^\[\w{3} (\w{3} \d\d \d\d:\d\d:\d\d)(?:\.(\d+))? (\d{4})\] \[(?:[\w-]+:)?(\w+)\]")
ERROR_LEVELS = {"ERROR", "CRITI", "CRITICAL", "FATAL", "error", "crit", "alert", "emerg"}


@dataclass(frozen=True)
class Source:
    name: str  # "OMEROweb.log", "nginx", ...
    path: str


@dataclass(frozen=True)
class Entry:
    when: _dt.datetime | None  # local time, as the logs write it (None: no time on the line)
    level: str
    source: str
    text: str  # the whole entry (several lines for a traceback)

    def shown(self) -> str:
        return f"{self.source}: {self.text}"


def sources(a: Any) -> list[Source]:
    """OMEROweb.log, then this deployment's web-server error log (where the answers ``a`` put it)."""
    omerodir = a.omero.omerodir
    out = [Source("OMEROweb.log", f"{omerodir}/var/log/OMEROweb.log")]
    kind = a.web_server.kind
    if a.platform != "unix":
        return out
    if kind == "development":
        out.append(Source("development server", str(Deployment(omerodir).dev_log)))
    elif kind == "nginx-development":
        out.append(Source("nginx", f"{omerodir}/var/log/nginx_error.log"))
    elif kind in {"nginx", "apache"} and web_server.native(a):
        place = web_server.web_server_file(a)
        own = _declared_log(place.path, kind) if place else None
        if own:
            out.append(Source("nginx" if kind == "nginx" else "apache", own))
        elif kind == "nginx":
            out.append(Source("nginx", "/var/log/nginx/error.log"))
        else:
            dist = platforms.distribution()
            out.append(Source("apache", "/var/log/httpd/error_log" if dist == "rhel" else "/var/log/apache2/error.log"))
    return out


def where(a: Any) -> str:
    """Where the logs of the deployment of answers ``a`` are, for the final message of a run."""
    found = sources(a)
    return ("Logs: " + "; ".join(f"{s.name} {s.path}" for s in found)
            + f" (`omerowizard logs --omerodir {a.omero.omerodir}` merges them by time).")


def _declared_log(path: str, kind: str) -> str | None:
    """The error log the site file itself names (``error_log`` / ``ErrorLog``), if it names one."""
    try:
        text = safefs.read_text(path)
    except (OSError, WizardError):
        return None
    if not text:
        return None
    pattern = r"^\s*error_log\s+(/[^\s;]+)" if kind == "nginx" else r"^\s*ErrorLog\s+\"?(/[^\s\"]+)"
    m = re.search(pattern, text, re.M)
    return m.group(1) if m else None


def parse_time(line: str) -> tuple[_dt.datetime | None, str]:
    """(the time a log line starts with, its level); (None, "") for a continuation line."""
    m = _OMERO.match(line)
    if m:
        frac = (m.group(2) or "0").ljust(6, "0")[:6]
        return _dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(microsecond=int(frac)), m.group(3)
    m = _NGINX.match(line)
    if m:
        return _dt.datetime.strptime(m.group(1), "%Y/%m/%d %H:%M:%S"), m.group(2)
    m = _APACHE.match(line)
    if m:
        when = _dt.datetime.strptime(f"{m.group(1)} {m.group(3)}", "%b %d %H:%M:%S %Y")
        frac = (m.group(2) or "0").ljust(6, "0")[:6]
        return when.replace(microsecond=int(frac)), m.group(4)
    return None, ""


def entries(text: str, source: str) -> list[Entry]:
    """The entries of a log's text: a line without a time belongs to the entry before it."""
    out: list[Entry] = []
    for line in text.splitlines():
        when, level = parse_time(line)
        if when is None and out:
            last = out[-1]
            out[-1] = Entry(last.when, last.level, last.source, last.text + "\n" + line)
        elif line.strip():
            out.append(Entry(when, level, source, line))
    return out


def merge(*logs: list[Entry]) -> list[Entry]:
    """All entries in time order (a stable merge: entries of one log keep their order; one without a time takes
    the time of the entry before it in its own log)."""
    keyed = []
    for n, log in enumerate(logs):
        last = _dt.datetime.min
        for i, e in enumerate(log):
            last = e.when or last
            keyed.append((last, n, i, e))
    return [e for *_, e in sorted(keyed, key=lambda t: t[:3])]


def read_tail(path: str, limit: int = READ_LIMIT) -> tuple[str, int, str | None]:
    """(the newest ``limit`` bytes of a log, from a line start; its size; why it cannot be read)."""
    try:
        size = safefs.size(path)
        data = safefs.read_since(path, max(0, size - limit), limit=limit)
    except (OSError, WizardError) as exc:
        return "", 0, str(exc)
    if data is None:
        return "", 0, f"{path} does not exist"
    text = data.decode("utf-8", "replace")
    if size > limit and "\n" in text:
        text = text.split("\n", 1)[1]
    return text, size, None


def recent(ctx: HealthContext, lines: int = 40) -> tuple[list[Entry], list[str]]:
    """The newest ``lines`` entries of every log, merged by time; and a note per log that cannot be read."""
    logs, notes = [], []
    for src in sources(ctx.answers):
        text, _, why = read_tail(src.path, limit=256 * 1024)
        if why:
            notes.append(f"{src.name} ({src.path}): {why}")
            continue
        logs.append(entries(text, src.name)[-lines:])
    return merge(*logs)[-lines:], notes


def errors_since(ctx: HealthContext, started: float | None) -> Finding:
    """The errors OMERO.web logged since its last start (``started``: the master's start, seconds since the
    epoch; None: OMERO.web is not running, the whole readable tail counts)."""
    path = f"{ctx.omerodir}/var/log/OMEROweb.log"
    text, _, why = read_tail(path)
    if why:
        return h.skipped("log-errors", f"{path}: {why}")
    since = _dt.datetime.fromtimestamp(started) if started else None
    found = [e for e in entries(text, "OMEROweb.log") if e.level in ERROR_LEVELS
             and (since is None or (e.when is not None and e.when >= since.replace(microsecond=0)))]
    when = f"since OMERO.web started ({since:%Y-%m-%d %H:%M:%S})" if since else "in its newest part"
    if not found:
        return h.ok("log-errors", f"no error in {path} {when}")
    firsts = [e.text.splitlines()[0][:300] for e in found]
    last_lines = [line for e in found[-3:] for line in e.text.splitlines()[-3:]]
    return h.problem("log-errors", f"{len(found)} error{'s' if len(found) != 1 else ''} in {path} {when}; the last: "
                                   f"{firsts[-1]}",
                     f"read them (`omerowizard logs --omerodir {ctx.omerodir}`): each names what failed",
                     f"omerowizard logs --omerodir {ctx.omerodir}", details=tuple(firsts[-5:] + last_lines[-6:]),
                     count=len(found))
