"""``omerowizard playbook``: an Ansible playbook and inventory skeleton that reproduces the current
deployment with the collection's module ``omerowizard.omero_web.deploy``.

The answers are those ``omerowizard answers`` prints (the saved answers checked against the live
config), split the way the collection's playbooks read them: one variable ``omero_web_<key>`` per
top-level answer; what differs between nodes (installation paths, application server, web server) in
``host_vars/<host>.yml``, what they share in ``group_vars/omero_web/main.yml``. Secrets (the public
password, a Redis password, the nodes' secret key) are never written there in clear: they go to
``group_vars/omero_web/vault.yml``, created 0600, as ``vault_omero_web_*`` variables that main.yml
refers to, with a note to encrypt it with ansible-vault. The collection itself is copied beside them
(``collections/``, found through ``ansible.cfg``), so the directory runs as it is.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import omerowizard
from omerowizard.catalogue import BY_KEY
from omerowizard.catalogue.answers import Answers, nest
from omerowizard.model import ansible_yaml
from omerowizard.model.errors import UsageError
from omerowizard.model.secrets import has_url_password
from omerowizard.model.validators import host_or_ip
from omerowizard.system import safefs

GROUP = "omero_web"
HOST_KEYS = ("omero", "application_server", "web_server")  # what differs from node to node
VAULT = f"group_vars/{GROUP}/vault.yml"


def collection_dir() -> Path:
    """The collection: inside the package in a wheel, at the top of a checkout."""
    packaged = Path(omerowizard.__file__).parent / "ansible_collection"
    if packaged.is_dir():
        return packaged
    return Path(omerowizard.__file__).parent.parent / "ansible_collections" / "omerowizard" / "omero_web"


def _secret(key: str, value: Any) -> bool:
    q = BY_KEY.get(key)
    if q is None or not q.secret or not isinstance(value, str) or not value:
        return False
    return "://" not in value or has_url_password(value)  # a Redis URL is secret only with a password


def split(a: Answers) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(group vars, host vars, vault vars) of the answers: secrets replaced by references to the vault.
    Every string is the deployment's (written ``!unsafe`` by ``_yaml``) except those references."""
    flat = {k: v for k, v in a.applicable().items()}
    vault: dict[str, str] = {}
    for key, value in list(flat.items()):
        if _secret(key, value):
            name = "vault_omero_web_" + key.replace(".", "_")
            vault[name] = value
            flat[key] = ansible_yaml.Template("{{ " + name + " }}")
    nested = nest(flat)
    group = {f"omero_web_{k}": v for k, v in nested.items() if k not in HOST_KEYS}
    host = {f"omero_web_{k}": v for k, v in nested.items() if k in HOST_KEYS}
    return group, host, vault


def _yaml(data: dict[str, Any]) -> str:
    """Variables for Ansible: the deployment's values ``!unsafe`` (never templated), ours templates."""
    return ansible_yaml.dump(data)


def files(a: Answers, host: str) -> dict[str, tuple[str, int]]:
    """Every file of the skeleton: relative path -> (text, mode)."""
    group_vars, host_vars, vault = split(a)
    out: dict[str, tuple[str, int]] = {}
    out["ansible.cfg"] = ("# written by `omerowizard playbook`\n[defaults]\ninventory = inventory.yml\n"
                          "collections_path = ./collections\n", 0o644)
    # this host runs modules with the Python that runs Ansible (interpreter discovery could pick another)
    inventory = {GROUP: {"hosts": {host: {"ansible_connection": ansible_yaml.Template("local"),
                                          "ansible_python_interpreter": ansible_yaml.Template(
                                              "{{ ansible_playbook_python }}")}}}}
    out["inventory.yml"] = (
        "# The OMERO.web nodes (written by `omerowizard playbook` from the deployment in "
        f"{a.omero.omerodir}).\n# This host runs the play itself (ansible_connection: local); add the other nodes "
        "below (each\n# with its host_vars/<name>.yml), and drop ansible_connection to reach this one over SSH.\n"
        + _yaml(inventory), 0o644)
    note = ("# The answers every node shares, one variable omero_web_<key> per answers-file key (`omerowizard\n"
            "# schema` documents them). A key in host_vars/<host>.yml replaces the same key here, whole.\n")
    if vault:
        note += (f"# Secrets are not here: they are in {VAULT} (0600). Encrypt it:\n"
                 f"#   ansible-vault encrypt {VAULT}\n# and run the play with --ask-vault-pass.\n")
    out[f"group_vars/{GROUP}/main.yml"] = (note + _yaml(group_vars), 0o644)
    if vault:
        out[VAULT] = ("# Secrets of the OMERO.web nodes, written 0600 by `omerowizard playbook`. Encrypt this file:\n"
                      f"#   ansible-vault encrypt {VAULT}\n" + _yaml(vault), 0o600)
    out[f"host_vars/{host}.yml"] = (
        f"# What is particular to {host}: its installation, application server and web server.\n"
        + _yaml(host_vars), 0o644)
    src = collection_dir()
    for name in ("site.yml", "rolling.yml"):
        out[name] = ((src / "playbooks" / name).read_text(), 0o644)
    for path in sorted(src.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.name.endswith((".pyc", ".tar.gz")):
            rel = path.relative_to(src).as_posix()
            out[f"collections/ansible_collections/omerowizard/omero_web/{rel}"] = (path.read_text(), 0o644)
    return out


def write(a: Answers, output: str, force: bool = False, host: str | None = None) -> list[str]:
    """Write the skeleton below ``output`` (walked safely: never through a link another user planted);
    an existing file is refused unless ``force``. Returns the paths written."""
    host = host or socket.getfqdn() or socket.gethostname()
    # the inventory's name of the host, and the name of its host_vars file: never a path or a YAML construct
    problem = host_or_ip(host) if host != "localhost" else None
    if problem or host.startswith("."):
        raise UsageError(f"--host {host!r} {problem or 'starts with a dot'} (allowed: an inventory host name such as "
                         "web1.example.org or localhost)")
    out_dir = Path(output).absolute()
    todo = files(a, host)
    if not force:
        existing = [rel for rel in todo if safefs.lstat(str(out_dir / rel)) is not None]
        if existing:
            raise UsageError(f"--output {out_dir}: {len(existing)} file(s) of the skeleton exist already (e.g. "
                             f"{existing[0]}); choose another directory, or --force to replace them")
    written = []
    for rel, (text, mode) in todo.items():
        path = str(out_dir / rel)
        safefs.write_bytes(path, text.encode("utf-8"), mode=mode, create_below=str(out_dir.parent))
        written.append(path)
    return written
