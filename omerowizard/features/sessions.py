"""Where OMERO.web keeps its sessions (files, Redis or Memcached), and how long they live."""

from __future__ import annotations

import json

from crontab import CronSlices

from omerowizard.features.base import Check, Feature, Key, effective, effective_json
from omerowizard.features.conditions import Flat
from omerowizard.model import health as h
from omerowizard.model import validators as v
from omerowizard.model.errors import ApplyError, WizardError
from omerowizard.model.qtypes import BOOL, CHOICE, INT, TEXT, Question
from omerowizard.model.secrets import mask_urls
from omerowizard.system import safefs
from omerowizard.system.crontab import managed_lines, marker, word
from omerowizard.system.crontab import read as crontab_read
from omerowizard.system.network import ping_memcached, ping_redis

VERIFY = "check the session store"
FILE_ENGINE = "django.contrib.sessions.backends.file"
CACHE_ENGINE = "django.contrib.sessions.backends.cache"
REDIS_BACKEND = "django_redis.cache.RedisCache"
PYMEMCACHE_BACKEND = "django.core.cache.backends.memcached.PyMemcacheCache"
OLD_MEMCACHED_BACKEND = "django.core.cache.backends.memcached.MemcachedCache"
DUMMY_CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
PACKAGES = {"redis": "django-redis", "memcached": "pymemcache"}


def _cache_backend(a: Flat) -> bool:
    return a.get("sessions.backend", "file") in {"redis", "memcached"}


def _location_default(a: Flat) -> str | None:
    return {"redis": "redis://127.0.0.1:6379/0", "memcached": "127.0.0.1:11211"}.get(a.get("sessions.backend", "file"))


class Sessions(Feature):
    name = "sessions"
    steps = (("sessions", "Sessions"),)
    keys = {
        "omero.web.session_engine": Key(FILE_ENGINE, "str", "sessions.backend"),
        "omero.web.caches": Key(json.dumps(DUMMY_CACHES), "json", "sessions.backend"),
        "omero.web.session_expire_at_browser_close": Key("true", "bool", "sessions.expire_at_browser_close"),
        "omero.web.session_cookie_age": Key("86400", "int", "sessions.cookie_age"),
    }
    questions = (
        Question("sessions.backend", "Where are sessions kept?",
                 "file: OMERO.web's default store on the file system, which does not purge stale sessions, so a "
                 "clearsessions job is installed. redis: the cache session store on Redis (needs django-redis). "
                 "memcached: DEPRECATED upstream, cache sessions on Memcached (needs pymemcache).",
                 CHOICE, "sessions", default="file", choices=("file", "redis", "memcached")),
        Question("sessions.location", "Where is the cache server?",
                 "Redis: redis://[:password@]host:port/db. Memcached: host:port.",
                 TEXT, "sessions", default=_location_default, secret=True,  # checked per backend below
                 allowed="redis://host:port/db for redis, host:port for memcached", when=_cache_backend,
                 unused=None),
        Question("sessions.expire_at_browser_close", "Expire sessions when the browser closes?",
                 "omero.web.session_expire_at_browser_close (default true).",
                 BOOL, "sessions", default=True),
        Question("sessions.cookie_age", "Age of session cookies, in seconds",
                 "omero.web.session_cookie_age (default 86400).",
                 INT, "sessions", default=86400, minimum=60, maximum=31536000),
        Question("sessions.clearsessions", "How often are stale sessions purged?",
                 "File sessions are never purged by OMERO.web itself: the docs ask for `omero web clearsessions` "
                 "as a regular job. daily, hourly, a cron expression such as '30 3 * * *', or off.",
                 TEXT, "sessions", default="daily", check=v.schedule,
                 allowed="daily | hourly | off | a five-field cron expression",
                 when=lambda a: a.get("sessions.backend", "file") == "file", unused="off"),
    )

    def wanted(self, a, ctx, w):
        s = a.sessions
        w.want("omero.web.session_expire_at_browser_close", s.expire_at_browser_close,
               "sessions.expire_at_browser_close")
        w.want("omero.web.session_cookie_age", s.cookie_age, "sessions.cookie_age")
        if s.backend == "file":
            w.want("omero.web.session_engine", FILE_ENGINE, "file sessions (OMERO's default)")
            w.want("omero.web.caches", None, "no cache backend with file sessions")
        elif s.backend == "redis":
            w.want("omero.web.session_engine", CACHE_ENGINE, "sessions in the cache (Redis)")
            w.want("omero.web.caches", {"default": {"BACKEND": REDIS_BACKEND, "LOCATION": s.location}},
                   "Redis as the cache, through django-redis")
        else:
            django = ctx.django
            if django >= (3, 2):
                backend = PYMEMCACHE_BACKEND
                if django >= (4, 1):
                    w.notes.append(f"Memcached: the seed's {OLD_MEMCACHED_BACKEND} was removed in Django 4.1 "
                                   f"(this OMERO.web has Django {'.'.join(map(str, django))}); using "
                                   f"{PYMEMCACHE_BACKEND} with pymemcache instead.")
            else:
                backend = OLD_MEMCACHED_BACKEND
            w.want("omero.web.session_engine", CACHE_ENGINE, "sessions in the cache (Memcached)")
            w.want("omero.web.caches", {"default": {"BACKEND": backend, "LOCATION": s.location,
                                                    "TIMEOUT": s.cookie_age}}, "Memcached as the cache")
            w.notes.append("Memcached session storage is DEPRECATED upstream; Redis is the supported cache backend.")

    def packages(self, a):
        b = a.sessions.backend
        return [(PACKAGES[b], f"needed for {b} sessions")] if b in PACKAGES else []

    def infer(self, config, out, keys):
        sessions = out.setdefault("sessions", {})
        engine = effective(keys, config, "omero.web.session_engine")
        caches = effective_json(keys, config, "omero.web.caches") or {}
        default = caches.get("default", {}) if isinstance(caches, dict) else {}
        backend = default.get("BACKEND") if isinstance(default, dict) else None
        if engine == CACHE_ENGINE and backend == REDIS_BACKEND:
            sessions["backend"], sessions["location"] = "redis", default.get("LOCATION")
        elif engine == CACHE_ENGINE and backend in {PYMEMCACHE_BACKEND, OLD_MEMCACHED_BACKEND}:
            sessions["backend"], sessions["location"] = "memcached", default.get("LOCATION")
        else:
            sessions["backend"] = "file"
            sessions.pop("location", None)
        sessions["expire_at_browser_close"] = \
            (effective(keys, config, "omero.web.session_expire_at_browser_close") or "true").lower() == "true"
        try:
            sessions["cookie_age"] = int(effective(keys, config, "omero.web.session_cookie_age") or "86400")
        except ValueError:
            pass

    def cross_checks(self, flat, given, bad, problem, keys):
        backend = flat["sessions.backend"]
        loc = flat.get("sessions.location")
        if backend in {"redis", "memcached"} and "sessions.location" not in bad and isinstance(loc, str):
            msg = v.redis_url(loc) if backend == "redis" else v.memcached_location(loc)
            if msg:
                problem("sessions.location", f"{_short(mask_urls(loc))} {msg}")
        clear = flat.get("sessions.clearsessions")
        if flat["platform"] == "windows" and backend == "file" and isinstance(clear, str) and clear != "off" \
                and "sessions.clearsessions" not in bad:

            try:
                task_trigger(clear)
            except NoTaskTrigger:
                problem("sessions.clearsessions", f"{clear!r} has no Task Scheduler equivalent on Windows",
                        "daily | hourly | off | 'M H * * *' | 'M * * * *'")

    def verify_steps(self, plan):
        return [VERIFY] if plan.answers.sessions.backend != "file" else []

    def verify(self, run):
        """The session store answers now that OMERO.web uses it."""
        if not self.verify_steps(run.plan):
            return
        with run.step(VERIFY):
            why = check_session_store(run.plan)
            if why:
                raise ApplyError(f"{why} after the start: OMERO.web cannot keep sessions")

    def health(self, ctx):
        """The session store OMERO.web uses now (its live config) answers; file sessions: the clearsessions job."""
        found = []
        caches = effective_json(self.keys, ctx.config, "omero.web.caches") or {}
        default = caches.get("default", {}) if isinstance(caches, dict) else {}
        backend = default.get("BACKEND") if isinstance(default, dict) else None
        location = default.get("LOCATION") if isinstance(default, dict) else None
        engine = effective(self.keys, ctx.config, "omero.web.session_engine")
        if engine == CACHE_ENGINE and backend in {REDIS_BACKEND, PYMEMCACHE_BACKEND, OLD_MEMCACHED_BACKEND} \
                and isinstance(location, str):
            redis = backend == REDIS_BACKEND
            what = f"{'Redis' if redis else 'Memcached'} at {mask_urls(location)}"
            why = ping_redis(location) if redis else ping_memcached(location)
            if why:
                found.append(h.problem(
                    "session-store", f"the session store, {what} (omero.web.caches), {why}: nobody can log in or stay "
                                     "logged in",
                    f"start {'Redis (e.g. `systemctl start redis-server`)' if redis else 'Memcached'} where "
                    "omero.web.caches says, or answer sessions.location with where it runs and apply the answers",
                    store=what))
            else:
                found.append(h.ok("session-store", f"the session store, {what}, answers {'PING' if redis else 'version'}",
                                  store=what))
        elif engine == FILE_ENGINE or engine is None:
            found.append(h.ok("session-store", "file sessions (OMERO's default store)", store="file"))
        else:
            found.append(h.skipped("session-store", f"sessions in {engine} (not a store omerowizard configures)"))
        found.append(_job_health(ctx))
        return found

    def preflight(self, plan):
        if not (plan.web or plan.config):
            return []
        why = check_session_store(plan)
        return [Check("sessions", False, f"{why}: start it, or fix sessions.location")] if why else []


def _job_health(ctx):
    """The clearsessions line the saved answers ask for, in the OMERO.web user's crontab; when it last ran where
    cron logs it."""
    a = ctx.answers
    wanted = clearsessions_line(a)
    if a.platform != "unix":
        return h.skipped("clearsessions", "not on Unix")
    try:
        text = crontab_read(ctx.user)
    except ApplyError as exc:
        return h.skipped("clearsessions", f"the crontab of {ctx.user} cannot be read here: {exc}")
    lines = managed_lines(text or "", ctx.omerodir)
    have = "\n".join(lines) if lines else None
    if wanted is None:
        if have is None:
            return h.ok("clearsessions", f"no clearsessions job, as the answers say ({clearsessions_why(a)})")
        return h.problem("clearsessions", f"the crontab of {ctx.user} has a clearsessions line the answers do not "
                                          f"want ({clearsessions_why(a)})", "apply the saved answers", ctx.repair)
    if have != wanted:
        return h.problem("clearsessions", f"the clearsessions job is {'missing from' if have is None else 'changed in'} "
                                          f"the crontab of {ctx.user}: file sessions are never purged",
                         "apply the saved answers: the job is installed again", ctx.repair, details=(wanted,))
    last = last_cron_run(ctx.omerodir)
    return h.ok("clearsessions", f"the clearsessions job is in the crontab of {ctx.user}; "
                                 + (f"it last ran {last}" if last else "cron's log does not say when it last ran"),
                last_run=last)


def last_cron_run(omerodir: str) -> str | None:
    """When cron last started this deployment's clearsessions line, from the system log (None: not logged)."""
    for path in ("/var/log/cron.log", "/var/log/cron", "/var/log/syslog"):
        try:
            lines = safefs.tail(path, lines=100000, limit=2 * 1024 * 1024)
        except (OSError, WizardError):
            continue
        for line in reversed(lines or []):
            if "CRON" in line and "clearsessions" in line and f"OMERODIR={omerodir}" in line:
                return " ".join(line.split()[:3])
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_session_store(plan) -> str | None:

    s = plan.answers.sessions
    if s.backend == "redis" and s.location:
        why = ping_redis(s.location)
        return f"Redis at {mask_urls(s.location)} {why}" if why else None
    if s.backend == "memcached" and s.location:
        why = ping_memcached(s.location)
        return f"Memcached at {s.location} {why}" if why else None
    return None


FEATURE = Sessions()


class NoTaskTrigger(ValueError):
    """A cron schedule that a Task Scheduler trigger cannot express."""


def task_trigger(schedule: str) -> tuple[bool, int, int]:
    """(hourly, hour, minute) for the schedules Task Scheduler can express; NoTaskTrigger otherwise."""
    if schedule == "daily":
        return False, 3, 0
    if schedule == "hourly":
        return True, 0, 0
    fields = schedule.split()
    if len(fields) == 5 and fields[2:] == ["*", "*", "*"] and fields[0].isdigit():
        if fields[1] == "*":
            return True, 0, int(fields[0])
        if fields[1].isdigit():
            return False, int(fields[1]), int(fields[0])
    raise NoTaskTrigger(schedule)


SPECIAL = {"daily": "@daily", "hourly": "@hourly"}


def cron_schedule(schedule: str) -> str:
    """The crontab time fields for a ``sessions.clearsessions`` answer."""
    if schedule in SPECIAL:
        return SPECIAL[schedule]
    if not CronSlices.is_valid(schedule):
        raise ValueError(f"not a cron schedule: {schedule!r}")
    return str(CronSlices(schedule))


def clearsessions_line(a) -> str | None:
    """The managed line these answers ask for; None when no job should exist."""
    s = a.sessions
    if a.platform != "unix" or s.backend != "file" or s.clearsessions == "off":
        return None
    omerodir = word(a.omero.omerodir)
    return (f"{cron_schedule(s.clearsessions)} OMERODIR={omerodir} {word(a.omero.venv)}/bin/omero web clearsessions "
            f"{marker(omerodir)}")


def clearsessions_why(a) -> str:
    s = a.sessions
    if a.platform != "unix":
        return "not on Unix"
    if s.backend != "file":
        return f"{s.backend} sessions expire by themselves"
    if s.clearsessions == "off":
        return "sessions.clearsessions is off"
    return f"file sessions are never purged by OMERO.web itself (sessions.clearsessions: {s.clearsessions})"
