"""What a certificate file says (issuer, subject, names, when it expires), read through safefs (never a planted
link) and given to ``openssl x509`` on its standard input."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from omerowizard.model.errors import WizardError
from omerowizard.system import processes, safefs
from omerowizard.system.webservers import which


@dataclass(frozen=True)
class Certificate:
    path: str
    issuer: str
    subject: str
    not_after: _dt.datetime  # UTC

    def days_left(self, now: _dt.datetime | None = None) -> float:
        now = now or _dt.datetime.now(_dt.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


def read(path: str) -> tuple[Certificate | None, str | None]:
    """(the certificate, None), or (None, why it cannot be read)."""
    try:
        data = safefs.read_bytes(path, limit=1024 * 1024)
    except (OSError, WizardError) as exc:
        return None, f"cannot read {path}: {exc}"
    if data is None:
        return None, f"{path} does not exist"
    openssl = which("openssl")
    if openssl is None:
        return None, "openssl is not installed (apt-get install openssl): the certificate was not read"
    try:
        result = processes.run([openssl, "x509", "-noout", "-issuer", "-subject", "-enddate",
                                "-nameopt", "oneline"], input=data.decode("ascii", "replace"), timeout=30,
                               separate_errors=True)
    except (OSError, WizardError) as exc:
        return None, f"cannot run openssl: {exc}"
    if result.returncode != 0:
        return None, f"{path} is not a PEM certificate openssl reads ({result.errors.strip()[:200]})"
    return parse(path, result.output)


def parse(path: str, text: str) -> tuple[Certificate | None, str | None]:
    """``openssl x509 -noout -issuer -subject -enddate`` output as a Certificate."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition("=")
        fields[key.strip()] = value.strip()
    try:
        end = _dt.datetime.strptime(fields["notAfter"].replace("  ", " "), "%b %d %H:%M:%S %Y %Z")
    except (KeyError, ValueError):
        return None, f"openssl did not say when {path} expires"
    return Certificate(path, fields.get("issuer", ""), fields.get("subject", ""),
                       end.replace(tzinfo=_dt.timezone.utc)), None
