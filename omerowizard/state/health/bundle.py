"""What a support bundle holds (``omerowizard support-bundle``), gathered as (name, bytes) members; the front end
writes them into a 0600 tarball. Everything is read through safefs (no link followed in OMERODIR or the
environment) and every text passes the same masking: omero-web's own rule for sensitive settings (a key matching
``API|TOKEN|KEY|SECRET|PASS``), omerowizard's secret keys and URL passwords (model/secrets.py), and every secret
value the deployment holds (its saved answers' secrets and its config's secret values), wherever it appears."""

from __future__ import annotations

import json
import platform
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from omerowizard.catalogue import SECRET_KEYS
from omerowizard.catalogue.masking import answer_value
from omerowizard.model.errors import WizardError
from omerowizard.model.secrets import MASK, MIN_SECRET, Secret, config_secret, mask_text
from omerowizard.state.health import logs as logs_mod
from omerowizard.system import distributions, processes, safefs
from omerowizard.system.deployments import Deployment
from omerowizard.system.webservers import which

# omero-web's cleanse_setting (omeroweb/settings.py): a setting whose name matches is never shown
OMERO_HIDDEN = re.compile("API|TOKEN|KEY|SECRET|PASS|SIGNATURE", re.I)
LOG_LINES = 500
RUNS = 5  # the command log of the last runs


def sensitive(key: str) -> bool:
    return bool(OMERO_HIDDEN.search(key)) or key in SECRET_KEYS or config_secret(key)


def known_secrets(answers: Any, config: dict[str, str]) -> set[str]:
    """Every secret value the deployment holds: the Secrets of its answers, the values of its sensitive config
    keys (and the strings inside them when they are JSON), and the passwords of URLs among them."""
    out: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Secret):
            out.add(value.reveal())
            walk(value.reveal())
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v)
        elif isinstance(value, str) and "://" in value:
            m = re.search(r"://[^/@\s]*?:([^/\s]+)@", value)
            if m:
                out.add(m.group(1))

    if answers is not None:
        walk(answers.to_nested() if hasattr(answers, "to_nested") else answers)
    for key, value in config.items():
        if sensitive(key):
            out.add(value)
            try:
                walk(json.loads(value))
            except ValueError:
                pass
        else:
            walk(value)
            try:
                walk(_cleanse_sensitive_strings(json.loads(value)))
            except ValueError:
                pass
    return {v for v in out if isinstance(v, str) and len(v) >= MIN_SECRET}


def _cleanse_sensitive_strings(value: Any, key: str = "") -> Any:
    """The values under sensitive keys of a JSON value, as Secrets (so ``walk`` collects them)."""
    if isinstance(value, dict):
        return {k: (Secret(str(v)) if sensitive(str(k)) and isinstance(v, (str, int)) else _cleanse_sensitive_strings(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_cleanse_sensitive_strings(v) for v in value]
    return value


def cleanse(key: str, value: Any) -> Any:
    """omero-web's cleanse_setting: a sensitive key's value replaced, dictionaries and lists cleansed inside."""
    if sensitive(key):
        return MASK
    if isinstance(value, dict):
        return {k: cleanse(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [cleanse("", v) for v in value]
    return value


def redact_config_xml(data: bytes, known: Iterable[str]) -> bytes:
    """config.xml with every sensitive value replaced (JSON values cleansed inside), and every known secret and URL
    password masked wherever else it appears."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return mask(data.decode("utf-8", "replace"), known).encode()
    for prop in root.iter("property"):
        key, value = prop.get("name", ""), prop.get("value", "")
        if sensitive(key):
            prop.set("value", MASK)
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, (dict, list)):
            value = json.dumps(cleanse(key, parsed))
        prop.set("value", mask(value, known))
    text = ET.tostring(root, encoding="unicode")
    return mask(text, known).encode()


def mask(text: str, known: Iterable[str]) -> str:
    return mask_text(text, known)


def gather(a: Any, config: dict[str, str], doctor: dict[str, Any], status: dict[str, Any],
           has_saved: bool) -> list[tuple[str, bytes]]:
    """The members of the bundle of the deployment of answers ``a``."""
    omerodir, venv = a.omero.omerodir, a.omero.venv
    known = known_secrets(a, config)
    dep = Deployment(omerodir)
    members: list[tuple[str, bytes]] = []

    def add(name: str, text: str) -> None:
        members.append((name, mask(text, known).encode()))

    add("status.json", json.dumps(status, indent=1) + "\n")
    add("doctor.json", json.dumps(doctor, indent=1) + "\n")
    path = f"{omerodir}/etc/grid/config.xml"
    try:
        data = safefs.read_bytes(path)
    except (OSError, WizardError) as exc:
        data, why = None, str(exc)
    else:
        why = "missing"
    if data is not None:
        members.append(("config.xml", redact_config_xml(data, known)))
    else:
        add("config.xml.missing", f"{path}: {why}\n")
    if has_saved:
        lines = [f"{key}: {answer_value(key, value)}" for key, value in sorted(a.flat().items())]
        add("answers.txt", "# the saved answers, secrets masked\n" + "\n".join(lines) + "\n")
    for file_path in sorted(dep.record()):
        try:
            content = safefs.read_bytes(file_path)
        except (OSError, WizardError) as exc:
            add(f"files{file_path}.unreadable", f"{exc}\n")
            continue
        if content is not None:
            add(f"files{file_path}", content.decode("utf-8", "replace"))
    add("pip-freeze.txt", pip_freeze(venv))
    for src in logs_mod.sources(a):
        try:
            tail = safefs.tail(src.path, lines=LOG_LINES, limit=1024 * 1024)
        except (OSError, WizardError) as exc:
            add(f"logs/{_safe_name(src.name)}.unreadable", f"{src.path}: {exc}\n")
            continue
        if tail is not None:
            add(f"logs/{_safe_name(src.name)}.tail", f"# the last {LOG_LINES} lines of {src.path}\n" + "\n".join(tail)
                + "\n")
    add("commands.log", last_runs(dep))
    add("versions.txt", versions_text(venv))
    return members


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def pip_freeze(venv: str) -> str:
    """``pip freeze`` of the environment, read from its site-packages (its Python never runs)."""
    found = distributions.read(venv)
    lines = sorted(f"{d.name}=={d.version}" for d in found.distributions)
    skipped = [f"# not read: {s}" for s in found.skipped]
    return "\n".join([f"# the distributions in {venv}, read from site-packages (as pip freeze lists them)",
                      *lines, *skipped]) + "\n"


def last_runs(dep: Deployment, runs: int = RUNS) -> str:
    """The command log of the last ``runs`` runs (it is omerowizard's own, root's: no link can be planted there)."""
    try:
        text = dep.command_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "# no command log\n"
    starts = [m.start() for m in re.finditer(r"^=== ", text, re.M)]
    if len(starts) > runs:
        text = text[starts[-runs]:]
    return f"# the command log of the last {runs} runs ({dep.command_log})\n" + text


def versions_text(venv: str) -> str:
    out = [f"omerowizard Python: {sys.version.split()[0]} ({sys.executable})",
           f"system: {platform.system()} {platform.release()} {platform.machine()}"]
    try:
        release = safefs.read_text("/etc/os-release") or ""
    except (OSError, WizardError):
        release = ""
    pretty = next((line.split("=", 1)[1].strip().strip('"') for line in release.splitlines()
                   if line.startswith("PRETTY_NAME=")), "unknown")
    out.append(f"distribution: {pretty}")
    try:
        cfg = safefs.read_text(f"{venv}/pyvenv.cfg") or ""
    except (OSError, WizardError):
        cfg = ""
    version = next((line.split("=", 1)[1].strip() for line in cfg.splitlines()
                    if line.split("=", 1)[0].strip() in {"version", "version_info"}), "unknown")
    out.append(f"OMERO.web environment's Python: {version} ({venv}/pyvenv.cfg)")
    for name, argv in (("nginx", ["-v"]), ("apache2", ["-v"]), ("httpd", ["-v"])):
        exe = which(name)
        if exe is None:
            continue
        try:
            result = processes.run([exe, *argv], timeout=20)
        except (OSError, WizardError) as exc:
            out.append(f"{name}: cannot run ({exc})")
            continue
        first = (result.output.strip().splitlines() or ["?"])[0]
        out.append(f"{name}: {first}")
    return "\n".join(out) + "\n"
