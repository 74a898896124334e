"""OMERO.web's application server (gunicorn, or Django's development server) and its URLs."""

from __future__ import annotations

from omerowizard.features.base import Check, Feature, Key, effective
from omerowizard.features.conditions import front_end, gunicorn
from omerowizard.model import validators as v
from omerowizard.model.qtypes import INT, TEXT, Question
from omerowizard.system.network import port_in_use


class ApplicationServer(Feature):
    name = "application_server"
    # gunicorn is started by `omero web start` with a command line built from these keys (omero/plugins/web.py,
    # _build_run_cmd) and SCRIPT_NAME set from the prefix: a change to any of them needs a new master
    keys = {
        "omero.web.application_server": Key("wsgi-tcp", "str", "web_server.kind",
                                            restart="the kind of application server (gunicorn or Django's "
                                                    "development server)"),
        "omero.web.application_server.host": Key("127.0.0.1", "str", "application_server.host",
                                                 restart="gunicorn's --bind address"),
        "omero.web.application_server.port": Key("4080", "int", "application_server.port",
                                                 restart="gunicorn's --bind port"),
        "omero.web.wsgi_workers": Key("5", "int", "application_server.workers", restart="gunicorn's --workers"),
        "omero.web.wsgi_timeout": Key("60", "int", "application_server.timeout", restart="gunicorn's --timeout"),
        "omero.web.prefix": Key(None, "str", "prefix", restart="the SCRIPT_NAME gunicorn is started with"),
        "omero.web.static_url": Key("/static/", "str", "static_url"),
        # gunicorn's other settings, which only extra_config sets (no answer owns them)
        "omero.web.application_server.max_requests": Key(None, "int", restart="gunicorn's --max-requests"),
        "omero.web.wsgi_worker_class": Key(None, "str", restart="gunicorn's --worker-class"),
        "omero.web.wsgi_worker_connections": Key(None, "int", restart="gunicorn's --worker-connections"),
        "omero.web.wsgi_threads": Key(None, "int", restart="gunicorn's --threads"),
        "omero.web.wsgi_args": Key(None, "str", restart="extra gunicorn arguments"),
    }
    questions = (
        Question("application_server.host", "Address OMERO.web's application server listens on",
                 "omero.web.application_server.host. Keep 127.0.0.1 when the web server runs on this host; "
                 "set an external address when the front end runs elsewhere.",
                 TEXT, "advanced", default="127.0.0.1", check=v.host_or_ip, allowed="an IP address or host name"),
        Question("application_server.port", "Port of OMERO.web's application server",
                 "omero.web.application_server.port (default 4080).",
                 INT, "advanced", default=4080, minimum=1, maximum=65535),
        Question("application_server.workers", "Number of gunicorn workers",
                 "omero.web.wsgi_workers: (2 x CPU cores) + 1 is a common choice.",
                 INT, "advanced", default=5, minimum=1, maximum=64, when=gunicorn),
        Question("application_server.timeout", "Worker timeout in seconds",
                 "omero.web.wsgi_timeout: workers silent for longer are killed and restarted.",
                 INT, "advanced", default=60, minimum=1, maximum=3600, when=gunicorn),
        Question("prefix", "URL prefix of OMERO.web",
                 "By default OMERO.web expects to be run from the root URL of the web server. Set e.g. /omero to "
                 "make OMERO.web appear at http://example.org/omero/ (omero.web.prefix).",
                 TEXT, "advanced", default="/", check=v.prefix, allowed="'/' or a path such as /omero"),
        Question("static_url", "URL of the static files",
                 "omero.web.static_url; empty follows the prefix (<prefix>/static/).",
                 TEXT, "advanced", default=None, nullable=True, check=v.static_url,
                 allowed="a path that starts and ends with '/', e.g. /omero/static/"),
    )

    def wanted(self, a, ctx, w):
        kind = a.web_server.kind
        w.want("omero.web.application_server", "development" if kind == "development" else "wsgi-tcp",
               "Django's development server, for testing only" if kind == "development"
               else "gunicorn behind the web server")
        w.want("omero.web.application_server.host", a.application_server.host, "application_server.host")
        w.want("omero.web.application_server.port", a.application_server.port, "application_server.port")
        w.want("omero.web.wsgi_workers", a.application_server.workers, "application_server.workers")
        w.want("omero.web.wsgi_timeout", a.application_server.timeout, "application_server.timeout")
        w.want("omero.web.prefix", None if a.prefix == "/" else a.prefix, "prefix")
        w.want("omero.web.static_url", a.effective_static_url,
               "static_url" if a.static_url else "static_url follows the prefix")
        if kind == "development":
            w.notes.append("The development server is for testing only: never use it in production.")

    def infer(self, config, out, keys):
        app = out.setdefault("application_server", {})
        if effective(keys, config, "omero.web.application_server") == "development":
            out.setdefault("web_server", {})["kind"] = "development"
        elif out.get("web_server", {}).get("kind") == "development":
            out["web_server"]["kind"] = "nginx"
        for key, name in (("omero.web.application_server.port", "port"), ("omero.web.wsgi_workers", "workers"),
                          ("omero.web.wsgi_timeout", "timeout")):
            try:
                app[name] = int(effective(keys, config, key) or "")
            except ValueError:
                pass
        app["host"] = effective(keys, config, "omero.web.application_server.host") or "127.0.0.1"
        prefix = (effective(keys, config, "omero.web.prefix") or "/").rstrip("/") or "/"
        out["prefix"] = prefix
        static = effective(keys, config, "omero.web.static_url") or "/static/"
        follows = "/static/" if prefix == "/" else f"{prefix}/static/"
        out["static_url"] = None if static == follows else static

    def cross_checks(self, flat, given, bad, problem, keys):
        kind, prefix = flat["web_server.kind"], flat["prefix"]
        if kind == "development" and prefix != "/" and "prefix" not in bad:
            problem("prefix", f"{prefix!r} cannot work with Django's development server, which does not strip a "
                              "prefix", "'/' with web_server.kind development")
        static = flat.get("static_url")
        if isinstance(static, str) and "static_url" not in bad and "prefix" not in bad and prefix != "/" \
                and not static.startswith(prefix + "/"):
            problem("static_url", f"{static!r} is outside the prefix {prefix!r}: the web server would not route it",
                    f"a path below {prefix}/, e.g. {prefix}/static/")
        app_port = flat.get("application_server.port")
        if flat["platform"] == "unix" and isinstance(app_port, int) and app_port < 1024 \
                and "application_server.port" not in bad:
            problem("application_server.port",
                    f"{app_port} is a privileged port (below 1024): only root may listen there, and OMERO.web's "
                    f"application server runs as {flat.get('omero.user')!r}, never as root",
                    "a port from 1024 to 65535 (the web server listens on the public port and proxies to it)")
        elif flat["platform"] == "unix" and front_end(flat) and isinstance(app_port, int) \
                and "application_server.port" not in bad:
            for key in ("web_server.port", "web_server.https.port"):
                if flat.get(key) == app_port and key not in bad \
                        and (key == "web_server.port" or flat.get("web_server.https.certificate")):
                    problem("application_server.port",
                            f"{app_port} is also {key}: the web server listens there, so OMERO.web's application "
                            "server cannot (both on this host)", f"a port other than {key} ({app_port})")
                    break

    def preflight(self, plan):

        a = plan.answers
        web = plan.web
        host, port = a.application_server.host, a.application_server.port
        if web and web.action == "start" and not plan.state.running:
            if port_in_use(host, port):
                return [Check("port", False, f"port {port} on {host} is already in use by another program: "
                                             "stop it or choose another application_server.port")]
        if web and web.action in {"switch", "restart"} and plan.state.running:
            old = effective(self.keys, plan.state.config, "omero.web.application_server.port")
            if str(port) != str(old) and port_in_use(host, port):
                return [Check("port", False, f"application_server.port {port} on {host} is already in use by "
                                             "another program (checked before anything changed): stop it or choose "
                                             "another port")]
        return []


FEATURE = ApplicationServer()


def login_url(a) -> str:
    """The login page on the application server itself (what apply checks first)."""
    host = a.application_server.host
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    prefix = "" if a.prefix == "/" else a.prefix
    return f"http://{host}:{a.application_server.port}{prefix}/webclient/login/"


def public_url(a) -> str:
    """The URL browsers use: through the web server, else the application server's own."""
    ws = a.web_server
    prefix = "/" if a.prefix == "/" else a.prefix + "/"
    if ws.kind in {"development", "none"}:  # no web server on this host: the application server's own URL
        return login_url(a).rsplit("/webclient/login/", 1)[0] + "/"
    if ws.https:
        port = "" if ws.https.port == 443 else f":{ws.https.port}"
        return f"https://{ws.server_name}{port}{prefix}"
    port = "" if ws.port == 80 else f":{ws.port}"
    return f"http://{ws.server_name}{port}{prefix}"
