#!/usr/bin/python
# Copyright: the omerowizard authors
# GNU General Public License v2.0 or later (see https://www.gnu.org/licenses/old-licenses/gpl-2.0.txt)
"""Ansible module omerowizard.omero_web.deploy: runs the omerowizard installed on the target host.

Why a subprocess and not an import: the module runs with whatever Python Ansible picks on the
target, which need not hold omerowizard and its dependencies (jinja2, PyYAML, jsonschema, ...);
omerowizard lives in its own virtual environment there (README: Set up). Running
`omerowizard apply FILE --json` keeps one code path for validation, planning, locking, backups and
restores, so the module's messages are the wizard's own, and a crash of the wizard cannot take
Ansible's process with it. The options go to omerowizard as an answers file (0600, in a private
temporary directory that is removed afterwards), never on a command line (`ps` would show a
password) and never through a shell.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy
short_description: Deploy and configure OMERO.web with omerowizard (check and diff modes)
version_added: "0.1.0"
description:
  - Runs C(omerowizard apply --json) on the target host with the options as its answers file. The
    options are the answers of omerowizard (C(omerowizard schema) prints their JSON Schema; the
    README's reference table explains every key); omerowizard validates them, so a bad answer fails
    the task with omerowizard's own message (key, value, what is allowed) and changes nothing.
  - Only the differences between the answers and the live deployment are applied (OMERO config,
    packages, web-server files, the clearsessions job, start, restart or graceful reload of
    OMERO.web); a second run with the same options reports C(changed=false).
  - Check mode is omerowizard's dry run; C(changed) tells whether the plan is not empty, and the task
    fails when preflight would refuse the apply. Diff mode shows the OMERO config changes and each
    file's diff, secrets masked.
  - A failed apply is rolled back by omerowizard itself (config.xml, files, crontab line, OMERO.web as
    it was); the task fails with omerowizard's message.
  - omerowizard must be installed on the target (README, "Set up") and runs as root there (it runs
    C(omero) as the OMERO.web user).
author: the omerowizard authors
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  platform:
    description: Answer C(platform) (unix or windows).
    type: raw
  omero:
    description: Answer C(omero) (user, venv, omerodir, web_version). C(omerodir) names the deployment.
    type: raw
  web_server:
    description: Answer C(web_server) (kind, server_name, port, config_path, https, ...).
    type: raw
  application_server:
    description: Answer C(application_server) (host, port, workers, timeout).
    type: raw
  prefix:
    description: Answer C(prefix), e.g. C(/omero).
    type: raw
  static_url:
    description: Answer C(static_url).
    type: raw
  sessions:
    description: >-
      Answer C(sessions) (backend, location, cookie_age, expire_at_browser_close, clearsessions). A password
      in a Redis location is masked in the task's output.
    type: raw
  cors:
    description: Answer C(cors) (mode, origins).
    type: raw
  servers:
    description: Answer C(servers), a list of C({host, port, name}).
    type: raw
  public:
    description: Answer C(public) (enabled, user, password, url_filter, server, ...); the password is masked.
    type: raw
  apps:
    description: >-
      Answer C(apps) (enabled, iviewer_default_viewer, mapr_config, mapr_top_links, versions, custom,
      uninstall_removed, find_links): the OMERO.web apps installed into the environment and configured.
    type: raw
  extra_config:
    description: Answer C(extra_config), any other omero.web key and its value.
    type: raw
  nodes:
    description: >-
      Answer C(nodes) (members, static, secret_key, behind_https): several OMERO.web application servers behind
      one front end. The secret key is masked.
    type: raw
  start:
    description: Answer C(start).
    type: raw
  answers:
    description:
      - A whole answers mapping, as C(omerowizard apply) reads it. The other answer options, when given,
        replace its top-level keys. For answer keys newer than this module's option list.
    type: dict
  executable:
    description:
      - The omerowizard command on the target. Default C(omerowizard) on the PATH, else
        C(/opt/omerowizard/venv/bin/omerowizard).
    type: path
  python:
    description:
      - Run C(PYTHON -m omerowizard) with this interpreter instead of I(executable).
    type: path
  wait:
    description: Seconds to wait for another run's lock on the deployment (0 refuses at once).
    type: float
    default: 0
notes:
  - The answers never appear on a command line; they are written to a 0600 file in a private temporary
    directory on the target, removed after the run.
"""

EXAMPLES = r"""
- name: OMERO.web with Redis sessions
  omerowizard.omero_web.deploy:
    omero: {user: omero-web, venv: /opt/omero/web/venv3, omerodir: /opt/omero/web/OMERO.web}
    web_server: {kind: nginx, server_name: omero.example.org}
    application_server: {port: 4080}
    sessions: {backend: redis, location: "redis://127.0.0.1:6379/0"}
  register: omero_web

- name: Where it answers
  ansible.builtin.debug:
    msg: "{{ omero_web.url }} (backup {{ omero_web.backup }})"
"""

RETURN = r"""
plan:
  description: >-
    The plan omerowizard made: C(empty), C(lines) (as the review prints them), C(config) (key, action,
    old, new, why; secrets masked), C(packages), C(files) (path, action, why, unified C(diff)), C(jobs),
    C(web) (start, restart or reload, and why), C(notes).
  returned: always, unless the answers were refused
  type: dict
url:
  description: The public URL, when this run requested it through the web server and it answered.
  returned: success
  type: str
backup:
  description: >-
    The id of the backup this run took before changing anything (C(omerowizard rollback --to ID) restores
    it); null when nothing changed.
  returned: success
  type: str
message:
  description: omerowizard's final message (what was checked, what was not).
  returned: always
  type: str
problems:
  description: Each refused answer (key, message, line, allowed).
  returned: when the answers were refused
  type: list
preflight:
  description: In check mode, what preflight would refuse (C(failures)) or warn about.
  returned: check mode
  type: dict
steps:
  description: The steps apply ran, each with its status and detail.
  returned: when applied
  type: list
log:
  description: omerowizard's human output (its standard error), secrets masked.
  returned: always
  type: list
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.omerowizard.omero_web.plugins.module_utils.deploy_support import (
    ANSWER_KEYS, DEFAULT_EXECUTABLE_DIRS, answers_of, diff_of, secrets_of, where, write_private)


def argument_spec() -> dict:
    spec = {key: {"type": "raw"} for key in ANSWER_KEYS}
    spec.update(answers={"type": "dict"}, executable={"type": "path"}, python={"type": "path"},
                wait={"type": "float", "default": 0})
    return spec


def command(module: AnsibleModule) -> list:
    if module.params["python"]:
        return [module.params["python"], "-m", "omerowizard"]
    exe = module.params["executable"] or module.get_bin_path("omerowizard", opt_dirs=DEFAULT_EXECUTABLE_DIRS)
    if not exe:
        module.fail_json(msg="omerowizard is not installed on this host (neither on the PATH nor in "
                             "/opt/omerowizard/venv/bin): install it as its README says (Set up), or give the "
                             "module's `executable` or `python` option")
    return [exe]


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    answers = answers_of(module.params)
    module.no_log_values.update(secrets_of(answers))
    argv = command(module)
    directory = tempfile.mkdtemp(prefix="omerowizard-", dir=getattr(module, "tmpdir", None))
    try:
        os.chmod(directory, 0o700)
        path = write_private(directory, json.dumps(answers, indent=2, ensure_ascii=False) + "\n")
        argv += ["apply", path, "--json", "--wait", str(module.params["wait"])]
        if module.check_mode:
            argv.append("--dry-run")
        rc, out, err = module.run_command(argv, cwd="/", environ_update={"LC_ALL": "C.UTF-8"})
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    log = [where(line, path) for line in err.splitlines()]
    try:
        report = json.loads(out)
    except ValueError:
        module.fail_json(msg=f"omerowizard ({' '.join(argv[:-4])}) did not print its JSON report (exit status {rc}); "
                             "it may be older than this module (it needs `apply --json`).",
                         rc=rc, stdout=out[-4000:], log=log[-60:])
    plan = report.get("plan") or None
    omerodir = (answers.get("omero") or {}).get("omerodir", "") if isinstance(answers.get("omero"), dict) else ""
    diff = diff_of(plan, omerodir or "OMERODIR") if plan else []
    if plan:  # the whole files travel in the diff only; the plan keeps each file's unified diff
        for f in plan.get("files") or []:
            f.pop("before", None)
            f.pop("after", None)
    result = {"plan": plan, "url": report.get("url"), "backup": report.get("backup"),
              "message": where(report.get("message") or "", path), "log": log,
              "omerowizard_exit_status": report.get("exit_status")}
    if module.check_mode:
        result["preflight"] = report.get("preflight")
    else:
        result["steps"] = report.get("steps")
    if module._diff and diff:
        result["diff"] = diff
    if report.get("exit_status") != 0:
        problems = report.get("problems") or []
        for p in problems:
            if p.get("source") == path:
                p["source"], p["line"] = "the task's options", None
        module.fail_json(msg=result["message"] or f"omerowizard failed (exit status {rc})", problems=problems,
                         changed=bool(report.get("changed")) and not module.check_mode,
                         **{k: v for k, v in result.items() if k != "message"})
    module.exit_json(changed=bool(report.get("changed")), **result)


if __name__ == "__main__":
    main()
