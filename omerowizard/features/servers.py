"""The OMERO.servers OMERO.web connects to (``omero.web.server_list``): host, port and the name the
login page shows. Unreachable servers are a warning, not a refusal: OMERO.web is often deployed
before its server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from omerowizard.features.base import Check, Feature, Key, effective_json
from omerowizard.model import health as h
from omerowizard.model import validators as v
from omerowizard.model.qtypes import Field, Question, Records
from omerowizard.system.network import reach

DEFAULT_PORT = 4064
TIMEOUT = 3.0


def _name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must not be empty"
    if len(value) > 100:
        return "is longer than 100 characters"
    return None


SERVERS = Records(
    Field("host", "Host", check=v.host_or_ip),
    Field("port", "Port", required=False, integer=True, default=DEFAULT_PORT, minimum=1, maximum=65535),
    Field("name", "Name shown on the login page", required=False, default=lambda rec: rec.get("host"), check=_name),
    positional=True,
)


class Servers(Feature):
    name = "servers"
    steps = (("servers", "OMERO.server"),)
    keys = {"omero.web.server_list": Key('[["localhost", 4064, "omero"]]', "json", "servers")}
    questions = (
        Question("servers", "Which OMERO.servers can users log in to?",
                 "omero.web.server_list: each server's host, port (4064: Glacier2 over SSL, the default; 4063: "
                 "plain TCP) and the name the login page shows (default: the host). Empty keeps OMERO's default "
                 "(localhost:4064, shown as omero). Type one server per line or separated by ';', as "
                 "host[:port] [name], e.g. omero.example.org:4064 Main.",
                 SERVERS, "servers", default=(), placeholder="host[:port] [name]; ... e.g. omero.example.org Main"),
    )

    def wanted(self, a, ctx, w):
        servers = [[s["host"], s["port"], s["name"]] for s in a.servers]
        w.want("omero.web.server_list", servers or None, "servers" if servers else "OMERO's default server")

    def infer(self, config, out, keys):
        if "omero.web.server_list" not in config:
            out["servers"] = []
            return
        found = []
        for item in effective_json(keys, config, "omero.web.server_list") or []:
            if isinstance(item, list) and len(item) >= 2:
                host, port = item[0], item[1]
                name = item[2] if len(item) > 2 else host
                found.append({"host": host, "port": port, "name": name})
        out["servers"] = found

    def cross_checks(self, flat, given, bad, problem, keys):
        servers = flat.get("servers") or ()
        if "servers" in bad or not isinstance(servers, (list, tuple)):
            return
        seen: dict[str, int] = {}
        for i, s in enumerate(SERVERS.normalise(list(servers))):
            if not isinstance(s, dict):
                continue
            name = s.get("name")
            if name in seen:
                problem(f"servers[{i}].name", f"{name!r} is already the name of servers[{seen[name]}]",
                        "a different name for each server (public.server refers to one by its name)")
            seen.setdefault(name, i)

    def preflight(self, plan):
        servers = list(plan.answers.servers)
        if not servers:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
            reasons = list(pool.map(lambda s: reach(s["host"], s["port"]), servers))
        return [Check("OMERO.server", False,
                      f"{s['name']} at {s['host']}:{s['port']} cannot be reached ({why}) within {TIMEOUT:g} s, as "
                      "OMERO.web would try it; OMERO.web is deployed anyway, but logging in to it fails until it "
                      "answers. Port 4064 is Glacier2 over SSL, 4063 plain TCP.", warning=True)
                for s, why in zip(servers, reasons) if why]

    def health(self, ctx):
        """``doctor``: each OMERO.server of the live server_list accepts a connection on its port."""
        if not ctx.deep:
            return []
        entries = [(str(e[0]), int(e[1])) for e in effective_json(self.keys, ctx.config, "omero.web.server_list") or []
                   if isinstance(e, list) and len(e) >= 2 and str(e[1]).isdigit()]
        if not entries:
            return [h.skipped("omero-servers", "omero.web.server_list names no server")]
        with ThreadPoolExecutor(max_workers=min(8, len(entries))) as pool:
            reasons = list(pool.map(lambda e: reach(e[0], e[1], TIMEOUT), entries))
        down = [f"{host}:{port} ({why})" for (host, port), why in zip(entries, reasons) if why]
        if down:
            return [h.problem("omero-servers", f"OMERO.server{'s' if len(down) > 1 else ''} of omero.web.server_list "
                                               f"not answering on {'their ports' if len(down) > 1 else 'its port'} "
                                               f"within {TIMEOUT:g} s: {', '.join(down)}: logging in to "
                                               f"{'them' if len(down) > 1 else 'it'} fails",
                              "start the OMERO.server there (or open the port: 4064 Glacier2 over SSL, 4063 plain TCP), "
                              "or answer `servers` with the right host and port and apply the answers",
                              details=tuple(down), down=down)]
        return [h.ok("omero-servers", "every OMERO.server of omero.web.server_list accepts a connection: "
                                      + ", ".join(f"{host}:{port}" for host, port in entries))]


FEATURE = Servers()
