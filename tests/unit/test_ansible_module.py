"""The Ansible collection stays in step with omerowizard: the module's options are the answers file's
keys, its documentation names them all, the playbooks pass every one, secrets are masked, a refused
answer is reported with the wizard's own message; `apply --json` and `omerowizard playbook` write what
the module and the playbooks read. The plays themselves run in tests/e2e/test_ansible.py."""

from __future__ import annotations

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.omerowizard.omero_web.plugins.module_utils import deploy_support as ds
from omerowizard.catalogue import answers
from omerowizard.catalogue.answers import json_schema as schema

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "ansible_collections" / "omerowizard" / "omero_web"
MODULE = COLLECTION / "plugins" / "modules" / "deploy.py"


def _documentation() -> dict:
    tree = ast.parse(MODULE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            return yaml.safe_load(node.value.value)
    raise AssertionError("deploy.py has DOCUMENTATION")


def test_the_modules_answer_options_are_the_answers_files_top_level_keys():
    assert list(ds.ANSWER_KEYS) == list(schema()["properties"])


def test_the_documentation_names_every_option_and_check_and_diff_support():
    doc = _documentation()
    assert set(doc["options"]) == set(ds.ANSWER_KEYS) | {"answers", "executable", "python", "wait"}
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert doc["attributes"]["diff_mode"]["support"] == "full"


def test_the_playbooks_pass_every_answer_as_omero_web_key():
    for name in ("site.yml", "rolling.yml"):
        play = yaml.safe_load((COLLECTION / "playbooks" / name).read_text())[0]
        task = next(t for t in play["tasks"] if "omerowizard.omero_web.deploy" in t)["omerowizard.omero_web.deploy"]
        for key in ds.ANSWER_KEYS:
            assert task[key] == "{{ omero_web_%s | default(omit) }}" % key, (name, key)
        # a misspelt omero_web_* variable fails the play first instead of being ignored
        guard = play["tasks"][0]
        assert guard["vars"]["omerowizard_keys"] == list(ds.ANSWER_KEYS), name
    assert yaml.safe_load((COLLECTION / "playbooks" / "rolling.yml").read_text())[0]["serial"] == 1


def test_options_given_replace_the_keys_of_the_answers_mapping():
    params = {k: None for k in ds.ANSWER_KEYS}
    params.update(answers={"prefix": "/a", "start": False}, prefix="/b")
    assert ds.answers_of(params) == {"prefix": "/b", "start": False}


def test_secrets_are_found_for_ansible_to_mask():
    found = ds.secrets_of({"public": {"password": "pw-1234"}, "sessions": {"location": "redis://:r3d1s@h:6379/0"},
                           "nodes": {"secret_key": "k" * 60}})
    assert found == {"pw-1234", "r3d1s", "k" * 60}
    assert ds.secrets_of({"sessions": {"location": "redis://127.0.0.1:6379/0"}}) == set()


def test_the_answers_file_is_private_and_never_an_existing_file(tmp_path):
    path = ds.write_private(str(tmp_path), "{}\n")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    try:
        ds.write_private(str(tmp_path), "{}\n")
    except FileExistsError:
        pass
    else:
        raise AssertionError("an existing answers file is refused")


def test_messages_name_the_tasks_options_instead_of_a_temporary_file():
    msg = "/tmp/x/deploy-options.yml:3: prefix: 'omero' must be '/'"
    assert ds.where(msg, "/tmp/x/deploy-options.yml") == "the task's options: prefix: 'omero' must be '/'"


def _json_apply(tmp_path, text: str, *extra: str) -> tuple[int, dict, str]:
    f = tmp_path / "a.yml"
    f.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "apply", str(f), "--json", *extra],
                          capture_output=True, text=True, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_apply_json_reports_refused_answers_with_the_same_message_and_exit_status(tmp_path):
    rc, doc, err = _json_apply(tmp_path, "prefix: omero\napplication_server:\n  port: 80\n")
    assert rc == 2 and doc["exit_status"] == 2 and doc["ok"] is False
    assert doc["plan"] is None and doc["changed"] is False
    assert [p["key"] for p in doc["problems"]] == ["prefix", "application_server.port"]
    assert doc["problems"][0]["line"] == 1
    assert doc["message"] in err  # the human message, unchanged, on standard error
    assert "2 problems in the answers; nothing was changed" in doc["message"]


def test_apply_json_dry_run_gives_the_plan_with_diffs_and_masked_secrets(tmp_path):
    omerodir = tmp_path / "OMERO.web"
    text = yaml.safe_dump({"omero": {"omerodir": str(omerodir), "venv": str(tmp_path / "venv")},
                           "web_server": {"kind": "nginx", "server_name": "omero.example.org",
                                          "config_path": str(tmp_path / "site.conf")},
                           "servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"}],
                           "public": {"enabled": True, "user": "public", "password": "Very-Secret-99"},
                           "start": False})
    rc, doc, err = _json_apply(tmp_path, text, "--dry-run")
    assert doc["dry_run"] is True and doc["plan"]["empty"] is False and doc["changed"] is True
    assert rc == doc["exit_status"]
    keys = {c["key"]: c for c in doc["plan"]["config"]}
    assert keys["omero.web.public.password"]["new"] == "****"
    files = {f["path"]: f for f in doc["plan"]["files"]}
    site = files[str(tmp_path / "site.conf")]
    assert site["action"] == "create" and "server_name omero.example.org" in site["after"]
    assert site["diff"].startswith("---")
    assert "Very-Secret-99" not in json.dumps(doc) and "Very-Secret-99" not in err
    assert not omerodir.exists(), "a dry run changes nothing"


class _AnsibleVarsLoader(yaml.SafeLoader):
    """PyYAML's safe loader that reads Ansible's !unsafe as the string it tags."""


_AnsibleVarsLoader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_vars(text: str):
    return yaml.load(text, Loader=_AnsibleVarsLoader)


def test_playbook_writes_the_skeleton_with_secrets_only_in_a_private_vault(tmp_path):
    from omerowizard.ui import playbook

    a = answers.validate({"omero": {"omerodir": "/srv/omero/web"},
                          "servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"}],
                          "public": {"enabled": True, "user": "public", "password": "Very-Secret-99"},
                          "sessions": {"backend": "redis", "location": "redis://:R3dis-pw@10.0.0.5:6379/0"}},
                         "test")
    written = playbook.write(a, str(tmp_path / "out"), host="web1.example.org")
    out = tmp_path / "out"
    main = (out / "group_vars/omero_web/main.yml").read_text()
    vault = out / "group_vars/omero_web/vault.yml"
    assert "Very-Secret-99" not in main and "R3dis-pw" not in main and "ansible-vault encrypt" in main
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    v = load_vars(vault.read_text())
    assert v == {"vault_omero_web_sessions_location": "redis://:R3dis-pw@10.0.0.5:6379/0",
                 "vault_omero_web_public_password": "Very-Secret-99"}
    g = load_vars(main)
    assert g["omero_web_public"]["password"] == "{{ vault_omero_web_public_password }}"
    assert "omero_web_omero" not in g
    # the deployment's values are data for Ansible (never templated); the vault references stay templates
    assert "password: '{{ vault_omero_web_public_password }}'" in main and "name: !unsafe 'Main'" in main
    assert "vault_omero_web_public_password: !unsafe 'Very-Secret-99'" in vault.read_text()
    h = load_vars((out / "host_vars/web1.example.org.yml").read_text())
    assert h["omero_web_omero"]["omerodir"] == "/srv/omero/web"
    inv = load_vars((out / "inventory.yml").read_text())
    assert inv == {"omero_web": {"hosts": {"web1.example.org": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}
    assert (out / "site.yml").read_text() == (COLLECTION / "playbooks" / "site.yml").read_text()
    assert (out / "collections/ansible_collections/omerowizard/omero_web/plugins/modules/deploy.py").exists()
    assert "collections_path = ./collections" in (out / "ansible.cfg").read_text()
    # the group and host vars plus the vault, merged back, are the answers again
    merged = {**g, **h}
    merged["omero_web_public"]["password"] = v["vault_omero_web_public_password"]
    merged["omero_web_sessions"]["location"] = v["vault_omero_web_sessions_location"]
    again = answers.validate({k[len("omero_web_"):]: val for k, val in merged.items()}, "again")
    assert again.flat() == a.flat()
    # a second run refuses to overwrite what an administrator may have edited, unless --force
    try:
        playbook.write(a, str(out), host="web1.example.org")
    except Exception as exc:  # noqa: BLE001
        assert "--force" in str(exc)
    else:
        raise AssertionError("existing files are refused")
    assert playbook.write(a, str(out), host="web1.example.org", force=True) == written


def test_playbook_never_writes_through_a_link_planted_in_a_directory_another_user_owns(tmp_path):
    """Root runs `omerowizard playbook --force --output DIR`: a link the owner of DIR planted where the
    vault goes must not carry the secrets (or a write) to the link's target."""
    import os
    import pwd

    from omerowizard.ui import playbook
    from omerowizard.system import safefs

    nobody = pwd.getpwnam("nobody")
    a = answers.validate({"omero": {"omerodir": "/srv/omero/web"},
                          "public": {"enabled": True, "user": "public", "password": "Very-Secret-99"}}, "test")
    out = tmp_path / "out"
    (out / "group_vars" / "omero_web").mkdir(parents=True)
    for d in (out, out / "group_vars", out / "group_vars" / "omero_web"):
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    target = tmp_path / "root-only"
    target.write_text("root's own\n")
    target.chmod(0o600)
    link = out / "group_vars" / "omero_web" / "vault.yml"
    link.symlink_to(target)
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    playbook.write(a, str(out), force=True, host="web1.example.org")
    # the link itself was replaced (a new file renamed over it in its directory), its target untouched
    assert target.read_text() == "root's own\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    st = os.lstat(link)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600
    assert "Very-Secret-99" in link.read_text()
    # a planted link for a directory on the way is refused, naming it
    out2 = tmp_path / "out2"
    out2.mkdir()
    os.chown(out2, nobody.pw_uid, nobody.pw_gid)
    (out2 / "host_vars").symlink_to(tmp_path)
    os.lchown(out2 / "host_vars", nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(safefs.UnsafePath, match="host_vars"):
        playbook.write(a, str(out2), force=True, host="web1.example.org")
    assert not (tmp_path / "web1.example.org.yml").exists()
