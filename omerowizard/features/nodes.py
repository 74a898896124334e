"""Several OMERO.web nodes behind one front end.

``nodes.members`` names the OMERO.web application servers (host:port) the web server balances over:
an nginx ``upstream`` with one ``server`` line each, an Apache ``balancer://`` with one
``BalancerMember`` each. Empty: this host's own application server only, as before. A host that runs
only a node (the front end is elsewhere) answers ``web_server.kind: none``: no web-server file.

Every node must see the same sessions: with several members, file sessions are refused (each node
would keep its own directory of sessions), and so is a Redis or Memcached on a loopback address when a
member is on another host. ``nodes.secret_key`` sets ``omero.web.secret_key``, the same on every node:
omero-web otherwise generates one per OMERODIR (``var/django_secret_key``), and whatever Django signs on
one node (signed cookies, the cookie message store, session data of the db/file backends) would be
refused by the others. Sessions in a cache (Redis, Memcached) are stored unsigned (measured: Django's
cache backend keeps the session dict as it is), so they are shared even without it: with several
members and no shared key the plan warns instead of refusing.

``nodes.static`` says who serves the static files: ``front_end`` (the web server, from its own
collected copy in OMERODIR/var/static: that host runs ``omero web start``, which collects them) or
``nodes`` (each node, with WhiteNoise, which omero-web requires: its middleware is added to
``omero.web.middleware`` and the web server proxies the static URL to the upstream like any page).
"""

from __future__ import annotations

import ipaddress
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from omerowizard.features.base import Check, Feature, Key, effective_json
from omerowizard.features.conditions import Flat, server_kind, unix
from omerowizard.features.cors import DEFAULT_MIDDLEWARE
from omerowizard.model import validators as v
from omerowizard.model.qtypes import BOOL, CHOICE, SECRET, Field, Question, Records
from omerowizard.system.network import reach

DEFAULT_PORT = 4080
WHITENOISE = {"index": 0, "class": "whitenoise.middleware.WhiteNoiseMiddleware"}
WHITENOISE_CLASS = WHITENOISE["class"]
REACH_TIMEOUT = 2.0  # seconds a member has to accept a TCP connection before the preflight warns
SECRET_MIN = 50  # Django's own check (security.W009) warns about shorter keys
SECRET_KEY = "omero.web.secret_key"
MIDDLEWARE = "omero.web.middleware"

MEMBERS = Records(
    Field("host", "Host", check=v.host_or_ip),
    Field("port", "Port", required=False, integer=True, default=DEFAULT_PORT, minimum=1, maximum=65535),
    max_items=64, positional=True,
)


def secret_key(value: str) -> str | None:
    """Django's SECRET_KEY as an administrator would accept it: long, varied, printable ASCII, no blanks."""
    if any(ord(ch) < 0x21 or ord(ch) > 0x7E for ch in value):
        return "must be printable ASCII without blanks"
    if len(value) < SECRET_MIN:
        return f"is shorter than {SECRET_MIN} characters"
    if len(set(value)) < 5:
        return "has fewer than 5 different characters"
    if value.startswith("django-insecure-"):
        return "starts with django-insecure- (Django's marker of a key that must not be used in production)"
    return None


def _applies(a: Flat) -> bool:
    return unix(a) and server_kind(a) != "development"


def _front_end(a: Flat) -> bool:
    return _applies(a) and server_kind(a) != "none"


def is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def member_key(member) -> tuple[str, int]:
    host = str(member.get("host") or "").lower().rstrip(".")
    try:
        host = ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    return host, member.get("port") or DEFAULT_PORT


def _location_host(backend: str, location: str) -> str | None:
    if backend == "redis":
        try:
            return urlsplit(location).hostname
        except ValueError:
            return None
    if location.startswith("[") and "]" in location:  # [::1]:11211
        return location[1:location.index("]")] or None
    host = location.rsplit(":", 1)[0] if location.count(":") == 1 else location
    return host or None


class Nodes(Feature):
    name = "nodes"
    keys = {
        SECRET_KEY: Key(None, "str", "nodes.secret_key", secret=True),
        # omero.web.middleware is declared by CORS (which runs first): this feature owns its WhiteNoise entry only
    }
    questions = (
        Question("nodes.members", "Which OMERO.web application servers does the web server balance over?",
                 "Several OMERO.web nodes behind this front end: each node's application server as host:port "
                 "(port default 4080), an nginx upstream server line (Apache: a balancer member) each. A node "
                 "that does not answer is skipped; the maintenance page shows only when none answers. Empty: "
                 "this host's own application server only. List this host's own node too when it runs one. "
                 "Several members need shared sessions (Redis or Memcached, not file) and should share "
                 "nodes.secret_key. On a "
                 "host that runs only a node (web_server.kind none) list the same members: no file is written, "
                 "but the same rules are checked.",
                 MEMBERS, "advanced", default=(), when=_applies, unused=(),
                 placeholder="host[:port]; ... e.g. web1.example.org:4080; web2.example.org:4080"),
        Question("nodes.static", "Who serves the static files?",
                 "front_end: the web server, from this host's own collected copy (OMERODIR/var/static, collected "
                 "by `omero web start`); nodes: each node with WhiteNoise (shipped with omero-web; added to "
                 "omero.web.middleware) and the web server proxies the static URL to the nodes like any page. "
                 "Use nodes when the front end has no collected copy, or the nodes' apps differ from its own.",
                 CHOICE, "advanced", default="front_end", choices=("front_end", "nodes"), when=_applies,
                 unused="front_end"),
        Question("nodes.secret_key", "Django secret key shared by every node",
                 "omero.web.secret_key: Django signs cookies and file or db sessions with it, so the nodes behind one front end need the same "
                 "one, else what one node signed is refused by the others (sessions in Redis or Memcached are "
                 "not signed: they are shared either way). Empty: each OMERODIR keeps the key omero-web "
                 "generated for it (var/django_secret_key); with several nodes.members the review warns. "
                 "Generate one with "
                 "`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`; kept secret (masked).",
                 SECRET, "advanced", default=None, nullable=True, secret=True, check=secret_key, when=_applies,
                 unused=None,
                 allowed=f"at least {SECRET_MIN} printable ASCII characters without blanks, the same on every node"),
        Question("nodes.behind_https", "Does the front end on the other host serve HTTPS?",
                 "With web_server.kind none: yes tells this node it runs behind an HTTPS proxy (it trusts "
                 "X-Forwarded-Proto: https from the front end, and sends its session and CSRF cookies only over "
                 "HTTPS), as web_server.https does on a host with its own web server.",
                 BOOL, "advanced", default=False, when=lambda a: unix(a) and server_kind(a) == "none",
                 unused=False),
    )

    def wanted(self, a, ctx, w):
        if a.platform != "unix":
            return
        key = a.nodes.secret_key
        if key:
            w.want(SECRET_KEY, key, "nodes.secret_key: the same Django secret key on every node")
        elif ctx.previous is not None and getattr(ctx.previous.nodes, "secret_key", None):
            w.want(SECRET_KEY, None, "removed from nodes.secret_key: back to this OMERODIR's generated key")
        members = [member_key(m) for m in a.nodes.members]
        local = self.local_keys(a)
        if members and a.web_server.kind != "none" and not local & set(members):
            w.notes.append(f"nodes.members lists no application server on port {a.application_server.port} of this "
                           "host (127.0.0.1, localhost or application_server.host): this host's own OMERO.web gets no "
                           "request from its web server; list it if it should answer too.")
        if len(members) > 1 and not key:
            w.notes.append(f"nodes.secret_key is empty but nodes.members names {len(members)} application servers: "
                           "each node keeps the Django secret key omero-web generated for its OMERODIR, so whatever "
                           "one node signs (signed cookies, cookie messages) is refused by the others. Sessions in "
                           f"{a.sessions.backend} are not signed and stay shared; set the same nodes.secret_key on "
                           "every node (`python3 -c 'import secrets; print(secrets.token_urlsafe(50))'`).")
        if members and a.nodes.static == "front_end" and a.web_server.kind != "none":
            w.notes.append("nodes.static front_end: this host's web server serves the static files it collected "
                           "itself (OMERODIR/var/static); the nodes must run the same omero-web and apps.")
        # CORS (an earlier feature) has said the list it wants; add or remove only the WhiteNoise entry
        if MIDDLEWARE in w.values:
            base = json.loads(w.values[MIDDLEWARE]) if w.values[MIDDLEWARE] else None
        else:
            base = effective_json(w.keys, ctx.current, MIDDLEWARE)
        if base is None:
            base = DEFAULT_MIDDLEWARE
        rest = [m for m in base if not (isinstance(m, dict) and m.get("class") == WHITENOISE_CLASS)]
        on = a.nodes.static == "nodes" and a.web_server.kind != "development"
        value = [WHITENOISE, *rest] if on else rest
        why = w.why.get(MIDDLEWARE, "")
        w.want(MIDDLEWARE, value,
               (f"{why}; " if why else "") + ("WhiteNoise first: each node serves its static files" if on
                                               else "no WhiteNoise: the web server serves the static files"))

    def preflight(self, plan):
        """A warning per member that does not accept a connection (the web server skips it until it does);
        this host's own node is not asked: the run starts it."""


        a = plan.answers
        if a.platform != "unix" or a.web_server.kind == "none" or len(a.nodes.members) < 2:
            return []
        local = self.local_keys(a)
        others = [m for m in a.nodes.members if member_key(m) not in local]
        if not others:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(others))) as pool:
            reasons = list(pool.map(lambda m: reach(m["host"], m["port"], REACH_TIMEOUT), others))
        return [Check("OMERO.web node", False,
                      f"nodes.members {m['host']}:{m['port']} does not answer ({why}) within {REACH_TIMEOUT:g} s: the "
                      f"{a.web_server.kind} front end skips it until it does (deploy that node too); when no node "
                      "answers, the site shows the maintenance page and this run's check through the front end "
                      "fails", warning=True)
                for m, why in zip(others, reasons) if why]

    @staticmethod
    def local_keys(a) -> set[tuple[str, int]]:
        """How nodes.members may name this host's own application server."""
        return {member_key({"host": h, "port": a.application_server.port})
                for h in ("127.0.0.1", "localhost", "::1", a.application_server.host)}

    def infer(self, config, out, keys):
        nodes = out.setdefault("nodes", {})
        middleware = effective_json(keys, config, MIDDLEWARE) or []
        on = any(isinstance(m, dict) and m.get("class") == WHITENOISE_CLASS for m in middleware)
        nodes["static"] = "nodes" if on else "front_end"
        value = config.get(SECRET_KEY)
        if value and secret_key(value) is None and v.text(value) is None:
            nodes["secret_key"] = value
        else:  # none, or one set by hand that the answers would refuse: left as it is (not wanted, not unset)
            nodes.pop("secret_key", None)

    def cross_checks(self, flat, given, bad, problem, keys):
        members = flat.get("nodes.members") or ()
        if "nodes.members" in bad or not isinstance(members, (list, tuple)) or not _applies(flat):
            members = ()
        members = [m for m in MEMBERS.normalise(list(members)) if isinstance(m, dict)]
        seen: dict[tuple[str, int], int] = {}
        for i, m in enumerate(members):
            if is_unspecified(str(m.get("host"))):
                problem(f"nodes.members[{i}].host",
                        f"{m.get('host')!r} is an address to listen on (every interface), not one to connect to",
                        "the node's address or host name, e.g. 127.0.0.1 for a node on this host", at="nodes.members")
            k = member_key(m)
            if k in seen:
                problem(f"nodes.members[{i}]", f"{m.get('host')}:{m.get('port')} is already nodes.members[{seen[k]}]",
                        "each application server once")
            seen.setdefault(k, i)
        remote = [m["host"] for m in members if not is_loopback(str(m.get("host")))]
        app_host = flat.get("application_server.host")
        if server_kind(flat) == "none" and remote and isinstance(app_host, str) and is_loopback(app_host) \
                and "application_server.host" not in bad:
            problem("application_server.host",
                    f"{app_host!r} is a loopback address, but this host runs only a node (web_server.kind none) "
                    f"and nodes.members names {remote[0]} on another host: a front end elsewhere cannot reach it",
                    "this node's address as nodes.members lists it (or 0.0.0.0)", at="nodes.members")
        if len(members) < 2:
            return
        many = f"nodes.members names {len(members)} application servers"
        backend = flat.get("sessions.backend")
        if backend == "file" and "sessions.backend" not in bad:
            problem("sessions.backend",
                    f"'file' cannot work when {many}: sessions must be shared by every node, and file sessions "
                    "live in each node's own OMERODIR, so a user logged in through one node is logged out by the "
                    "next request another node answers",
                    "redis (sessions.location: a Redis every node reaches), or memcached", at="nodes.members")
        loc = flat.get("sessions.location")
        if backend in {"redis", "memcached"} and isinstance(loc, str) and remote and "sessions.location" not in bad:
            host = _location_host(backend, loc)
            if host and is_loopback(host):
                problem("sessions.location",
                        f"names the loopback address {host} but {many}, {remote[0]} among them on another host: "
                        f"each host would keep its sessions in its own {backend}, not shared",
                        f"the address of one {backend} every node reaches")


FEATURE = Nodes()
