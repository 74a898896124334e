"""What the deploy module does besides talking to Ansible: the answers mapping from its options, the
secrets Ansible must mask, the answers file, the messages and Ansible's diff. Plain Python (no
Ansible import), so the project's unit tests import it as it is."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

# the top-level keys of omerowizard's answers file (tests/unit/test_ansible_module.py keeps them equal
# to `omerowizard schema`)
ANSWER_KEYS = ("platform", "omero", "web_server", "application_server", "prefix", "static_url", "sessions", "cors",
               "servers", "public", "apps", "extra_config", "nodes", "start")
OPTIONS_FILE = "deploy-options.yml"
DEFAULT_EXECUTABLE_DIRS = ["/opt/omerowizard/venv/bin"]


def answers_of(params: dict) -> dict:
    """The answers mapping: ``answers`` with every answer option given replacing its key."""
    out = dict(params.get("answers") or {})
    for key in ANSWER_KEYS:
        if params.get(key) is not None:
            out[key] = params[key]
    return out


def secrets_of(answers: dict) -> set:
    """Values Ansible must mask in everything the task returns: the public password, a Redis password,
    the nodes' shared Django secret key."""
    found = set()
    nodes = answers.get("nodes")
    if isinstance(nodes, dict) and isinstance(nodes.get("secret_key"), str) and nodes["secret_key"]:
        found.add(nodes["secret_key"])
    public = answers.get("public")
    if isinstance(public, dict) and isinstance(public.get("password"), str) and public["password"]:
        found.add(public["password"])
    sessions = answers.get("sessions")
    if isinstance(sessions, dict) and isinstance(sessions.get("location"), str) and "@" in sessions["location"]:
        try:
            password = urlsplit(sessions["location"]).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    return found


def write_private(directory: str, text: str) -> str:
    """The answers file: created 0600 in a directory only we can enter, never an existing file."""
    path = os.path.join(directory, OPTIONS_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def where(text: str, path: str) -> str:
    """omerowizard names the answers file and line of each refused answer: here that file is made from the
    task's options (its line numbers mean nothing to whoever wrote the task), so say "the task's options";
    the key that follows names the option and the key inside it."""
    text = re.sub(re.escape(path) + r":\d+:", "the task's options:", text)
    return text.replace(path, "the task's options")


def diff_of(plan: dict, omerodir: str) -> list:
    """Ansible's diff: one entry for the OMERO config (changed keys only), one per file, one for the job."""
    out = []
    config = plan.get("config") or []
    if config:
        out.append({
            "before_header": f"{omerodir}/etc/grid/config.xml (OMERO config, changed keys)",
            "after_header": f"{omerodir}/etc/grid/config.xml (planned)",
            "before": "".join(f"{c['key']}={c['old']}\n" for c in config if c.get("was_set")),
            "after": "".join(f"{c['key']}={c['new']}\n" for c in config if c["action"] == "set"),
        })
    for f in plan.get("files") or []:
        out.append({"before_header": f"{f['path']} (now)", "after_header": f"{f['path']} (planned: {f['action']})",
                    "before": f.get("before") or "", "after": f.get("after") or ""})
    for j in plan.get("jobs") or []:
        out.append({"before_header": f"crontab of {j['user']} (clearsessions line)",
                    "after_header": f"crontab of {j['user']} (planned)",
                    "before": (j["old"] + "\n") if j.get("old") else "",
                    "after": (j["new"] + "\n") if j.get("new") else ""})
    web = plan.get("web")
    if web:
        out.append({"prepared": f"OMERO.web: {web['describe']}\n"})
    return out


