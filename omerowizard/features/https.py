"""HTTPS at the web server, and OMERO.web told that it runs behind an HTTPS proxy."""

from __future__ import annotations

import os
import ssl

from omerowizard.features.base import Check, Feature, Key, effective_json
from omerowizard.features.conditions import front_end
from omerowizard.model import health as h
from omerowizard.model import validators as v
from omerowizard.model.qtypes import INT, TEXT, Question
from omerowizard.system import certificates


def _on(a) -> bool:
    return front_end(a) and bool(a.get("web_server.https.certificate"))


class Https(Feature):
    name = "https"
    optional_sections = (("web_server.https", "web_server.https.certificate"),)
    keys = {
        "omero.web.secure_proxy_ssl_header": Key("[]", "json", "web_server.https.certificate"),
        "omero.web.session_cookie_secure": Key("false", "bool", "web_server.https.certificate"),
        "omero.web.csrf_cookie_secure": Key("false", "bool", "web_server.https.certificate"),
    }
    questions = (
        Question("web_server.https.certificate", "HTTPS certificate (PEM), or empty for HTTP only",
                 "With a certificate and key the server listens on 443, port 80 redirects to HTTPS, and OMERO.web "
                 "is told it runs behind an HTTPS proxy.",
                 TEXT, "advanced", default=None, nullable=True, check=v.file_path,
                 allowed="an absolute path to a PEM file", when=front_end, placeholder="empty: HTTP only"),
        Question("web_server.https.key", "HTTPS private key (PEM)",
                 "The private key that belongs to the certificate.",
                 TEXT, "advanced", default=None, nullable=True, check=v.file_path,
                 allowed="an absolute path to a PEM file", when=_on),
        Question("web_server.https.port", "HTTPS port",
                 "The port the server listens on for HTTPS.",
                 INT, "advanced", default=443, minimum=1, maximum=65535, when=_on),
    )

    def wanted(self, a, ctx, w):
        https = (a.web_server.https is not None and a.web_server.kind != "development") or \
            (a.web_server.kind == "none" and a.nodes.behind_https)
        w.want("omero.web.secure_proxy_ssl_header", ["HTTP_X_FORWARDED_PROTO", "https"] if https else None,
               "behind an HTTPS proxy: trust X-Forwarded-Proto" if https else "no HTTPS proxy")
        w.want("omero.web.session_cookie_secure", https, "HTTPS: session cookie only over HTTPS" if https else "HTTP")
        w.want("omero.web.csrf_cookie_secure", https, "HTTPS: CSRF cookie only over HTTPS" if https else "HTTP")

    def cross_checks(self, flat, given, bad, problem, keys):
        kind = flat["web_server.kind"]
        cert, key = given.get("web_server.https.certificate"), given.get("web_server.https.key")
        if kind != "development" and bool(cert) != bool(key) \
                and not bad & {"web_server.https.certificate", "web_server.https.key"}:
            problem("web_server.https.key" if cert else "web_server.https.certificate",
                    "is missing: HTTPS needs both a certificate and a key", "both paths, or neither")
        if flat["platform"] == "unix":
            for k in ("web_server.https.certificate", "web_server.https.key"):
                val = flat.get(k)
                if isinstance(val, str) and k not in bad and not val.startswith("/"):
                    problem(k, f"{val!r} is a Windows path but platform is unix", "an absolute Unix path")
        ports = (flat.get("web_server.port"), flat.get("web_server.https.port"))
        if kind != "development" and flat.get("web_server.https.certificate") and ports[0] == ports[1] \
                and not bad & {"web_server.port", "web_server.https.port"}:
            problem("web_server.https.port", "is the same as web_server.port", "two different ports")

    def preflight(self, plan):
        a = plan.answers
        https = a.web_server.https
        if https and plan.files and a.platform == "unix":
            problem = check_certificate(https.certificate, https.key)
            if problem:
                return [Check("https", False, problem)]
        return []

    def health(self, ctx):
        """The certificate (issuer, days left); behind HTTPS, Django >= 4 must be told it is (else logins fail with
        CSRF "Origin checking failed": omero-web#477, #628)."""
        a = ctx.answers
        https = a.web_server.https
        if https is None or a.web_server.kind == "development" or a.platform != "unix":
            return []
        found = []
        cert, why = certificates.read(https.certificate)
        if cert is None:
            found.append(h.problem("certificate", f"the HTTPS certificate cannot be used: {why}",
                                   "put the certificate back, or answer web_server.https.certificate, and apply"))
        else:
            days = cert.days_left()
            text = (f"the certificate {cert.path} ({cert.subject}), issued by {cert.issuer}, expires "
                    f"{cert.not_after:%Y-%m-%d}")
            data = {"issuer": cert.issuer, "days_left": round(days, 1), "not_after": cert.not_after.isoformat()}
            if days < 0:
                found.append(h.problem("certificate", f"{text}: it expired {-days:.0f} days ago; browsers refuse it",
                                       "renew it (and reload the web server)", **data))
            elif days < RENEW_DAYS:
                found.append(h.warning("certificate", f"{text}: {days:.0f} days left", "renew it soon", **data))
            else:
                found.append(h.ok("certificate", f"{text}: {days:.0f} days left", **data))
        django = tuple(int(p) for p in str(ctx.packages.get("django", "0")).split(".")[:1] if p.isdigit())
        header = effective_json(self.keys, ctx.config, "omero.web.secure_proxy_ssl_header") or []
        origins = effective_json({}, ctx.config, "omero.web.csrf_trusted_origins") or []
        port = "" if https.port == 443 else f":{https.port}"
        origin = f"https://{a.web_server.server_name}{port}"
        if django >= (4,) and "HTTP_X_FORWARDED_PROTO" not in header and origin not in origins:
            found.append(h.problem(
                "csrf", f"behind HTTPS, OMERO.web is not told so (omero.web.secure_proxy_ssl_header is unset) and "
                        f"{origin} is not in omero.web.csrf_trusted_origins: with Django {ctx.packages.get('django')} "
                        "every login fails with \"CSRF verification failed: Origin checking failed\"",
                "apply the saved answers (they set omero.web.secure_proxy_ssl_header, as HTTPS needs)", ctx.repair))
        return found


RENEW_DAYS = 21  # a certificate with fewer days left is a warning


def check_certificate(cert: str, key: str) -> str | None:
    for label, path in (("certificate", cert), ("key", key)):
        if not os.path.isfile(path):
            return f"the HTTPS {label} {path} does not exist"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        return f"the HTTPS certificate {cert} and key {key} do not match or cannot be read ({exc.reason or exc})"
    except OSError as exc:
        return f"cannot read the HTTPS certificate or key: {exc.strerror}"
    return None


FEATURE = Https()
