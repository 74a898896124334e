"""One way to write a value into another language (issue 21, "What to build" 3, "Why" 2): a value the
OMERO.web user wrote into config.xml reaches Ansible as data, never as a template. With a real ansible-core
(from the registry) and the real omero: a Jinja expression, quotes and a newline set with `omero config
set` as the OMERO.web user go through `omerowizard answers` and `omerowizard playbook` to
`ansible-playbook site.yml --check --diff` and a real run; each value is stored exactly (or refused, exit 2,
naming the key) and nothing is executed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from omerowizard.catalogue import answers as answers_mod
from omerowizard.ui import playbook
from tests import ansible_parts


@pytest.fixture(scope="module")
def ansible_bin():
    if os.geteuid() != 0:
        pytest.fail("the Ansible e2e tests run as root", pytrace=False)
    return ansible_parts.ansible_venv()


def jinja(path: Path, spaces: bool = True) -> str:
    """An expression that, templated by Ansible, runs `id` and writes its output to ``path``."""
    return f"{{{{ lookup('pipe','id > {path}') }}}}" if spaces else f"{{{{lookup('pipe','id>{path}')}}}}"


def run_play(ansible_bin: Path, skeleton: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """`ansible-playbook site.yml` in the directory `omerowizard playbook` wrote, as its last line says."""
    env = ansible_parts.ansible_env(workdir, workdir / "unused-collections")
    env.pop("ANSIBLE_COLLECTIONS_PATH")  # the skeleton's ansible.cfg names its own collections
    argv = [str(ansible_bin / "ansible-playbook"), "site.yml", "-e", f"omerowizard_python={sys.executable}", *args]
    return subprocess.run(argv, cwd=str(skeleton), env=env, capture_output=True, text=True, timeout=600)


def test_a_jinja_expression_in_config_xml_reaches_ansible_as_data_and_runs_nothing(deployment, ansible_bin):
    """Reproduction 2 of issue 21: the OMERO.web user sets public.url_filter to `^/webclient|{{ lookup('pipe',
    'id > /tmp/y') }}` (and public access on); root runs `omerowizard playbook`, then the check it recommends."""
    d = deployment
    token = uuid.uuid4().hex[:8]  # short paths: some answers have a length limit (a server name: 100)
    pwned = [Path(f"/tmp/omw-{token}-{n}") for n in range(6)]
    try:
        _reproduction_2(d, ansible_bin, pwned)
    finally:
        for p in pwned:
            p.unlink(missing_ok=True)


def _reproduction_2(d, ansible_bin: Path, pwned: list[Path]) -> None:
    base = {"start": False, "application_server": {"workers": 1}, "sessions": {"clearsessions": "off"},
            "web_server": {"kind": "nginx", "config_path": str(d.workdir / "site.conf")},
            "servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"}]}
    first = d.cli("apply", str(d.answers_file(base)))
    assert first.returncode == 0, first.stdout + first.stderr

    hostile = {  # what the OMERO.web user writes, with `omero config set` (as it would)
        "omero.web.public.enabled": "true",
        "omero.web.public.user": "u'\"" + jinja(pwned[0]),
        "omero.web.public.password": "p'\"" + jinja(pwned[1]),
        "omero.web.public.url_filter": "^/webclient|" + jinja(pwned[2]),
        "omero.web.server_list": json.dumps([["omero.example.org", 4064, "M'\"" + jinja(pwned[3])]]),
        "omero.web.secret_key": jinja(pwned[4], spaces=False) + "-Pad0123456789abcdefghijklmnopqrstuvwxyz",
    }
    for key, value in hostile.items():
        d.omero("config", "set", key, value)

    # `omerowizard answers` prints them exactly, each tagged !unsafe, and apply reads that file back the same
    printed = d.cli("answers")
    assert printed.returncode == 0, printed.stdout + printed.stderr
    assert "url_filter: !unsafe " in printed.stdout, printed.stdout
    live = answers_mod.load_text(printed.stdout, "answers")
    assert live.public.url_filter == hostile["omero.web.public.url_filter"]
    assert live.public.user == hostile["omero.web.public.user"]
    assert live.public.password.reveal() == hostile["omero.web.public.password"]
    assert live.nodes.secret_key.reveal() == hostile["omero.web.secret_key"]
    assert [s["name"] for s in live.servers] == [json.loads(hostile["omero.web.server_list"])[0][2]]

    skel = d.workdir / "skeleton"
    proc = d.cli("playbook", "--omerodir", str(d.omerodir), "--output", str(skel), "--host", "localhost")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ansible-playbook site.yml --check --diff" in proc.stdout

    # the administrator then removes what the OMERO.web user set; the play sets it back, exactly
    for key in hostile:
        d.omero("config", "set", key)
    check = run_play(ansible_bin, skel, d.workdir, "--check", "--diff")
    assert [p.read_text() for p in pwned if p.exists()] == [], "Ansible ran what config.xml held (as root)"
    assert check.returncode == 0, check.stdout[-6000:] + check.stderr[-3000:]
    assert "+omero.web.public.password=****" in check.stdout and hostile["omero.web.public.password"] not in \
        check.stdout, check.stdout[-6000:]
    assert "+omero.web.public.url_filter=" + hostile["omero.web.public.url_filter"] in check.stdout, check.stdout[-6000:]
    assert "omero.web.public.enabled" not in d.config(), "check mode changed nothing"

    applied = run_play(ansible_bin, skel, d.workdir)
    assert [p.read_text() for p in pwned if p.exists()] == [], "Ansible ran what config.xml held (as root)"
    assert applied.returncode == 0, applied.stdout[-6000:] + applied.stderr[-3000:]
    config = d.config()
    for key, value in hostile.items():
        assert config[key] == value, key

    # a value the answers model cannot hold (a line break) is refused, exit 2, naming the key; nothing written
    d.omero("config", "set", "omero.web.public.user", "two\nlines")
    for args in (("answers",), ("playbook", "--output", str(d.workdir / "second"), "--host", "localhost")):
        refused = d.cli(*args)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "public.user" in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert not (d.workdir / "second").exists()
    assert [p for p in pwned if p.exists()] == []


# ----------------------------------------------------------------------------- every string answer
PAYLOAD = "'\"{{ lookup('pipe','id > PWNED') }}"

RICH = {  # answers where every string question applies
    "web_server": {"kind": "nginx", "server_name": "omero.example.org", "config_path": "/tmp/x/site.conf"},
    "sessions": {"backend": "redis", "location": "redis://:pw-1234@127.0.0.1:6379/0"},
    "cors": {"mode": "origins", "origins": ["https://a.example.org"]},
    "servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"}],
    "public": {"enabled": True, "user": "public", "password": "pw-5678", "url_filter": "webclient"},
    "apps": {"enabled": ["mapr", "iviewer"],
             "mapr_config": json.dumps([{"menu": "gene", "config": {"default": ["Gene Symbol"], "all": ["Gene Symbol"],
                                                                   "ns": ["openmicroscopy.org/mapr/gene"],
                                                                   "label": "Gene"}}]),
             "custom": [{"requirement": "omero-myapp", "app": "omero_myapp",
                         "open_with": json.dumps(["myapp", "myapp_index", {"label": "My app"}]),
                         "top_links": json.dumps(["My app", "myapp_index", {"title": "Open My app"}])}]},
    "extra_config": {"omero.web.login_logo": "/static/logo.png", "omero.web.ui.right_plugins": [["A", "b.html", "c"]]},
    "nodes": {"members": [{"host": "127.0.0.1", "port": 4080}], "secret_key": "k" * 40 + "-0123456789ABC"},
}


def _leaves(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    elif isinstance(node, str):
        yield path, node


def _set(node, path, value):
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def test_every_string_answer_is_written_for_ansible_exactly_and_never_templated(ansible_bin, tmp_path):
    """A property of `omerowizard playbook`'s files, checked by a real ansible-core: each string answer that
    the answers model accepts with a Jinja expression and quotes in it reaches Ansible's variables exactly."""
    pwned = Path(f"/tmp/omw-{uuid.uuid4().hex[:8]}")  # short: some answers have a length limit
    payload = PAYLOAD.replace("PWNED", str(pwned))
    tight = f"{{{{lookup('pipe','id>{pwned}')}}}}"  # for an answer that allows no blanks nor quotes
    answers = json.loads(json.dumps(RICH))
    taken = []
    for path, value in list(_leaves(RICH)):
        candidates = [value + payload, value + tight]
        if value.startswith(("[", "{")):  # JSON in a string answer: the payload in its labels and titles
            candidates.append(json.dumps(json.loads(value, object_hook=lambda d: {
                k: (v + payload if k in ("label", "title") else v) for k, v in d.items()})))
        for candidate in candidates:
            trial = json.loads(json.dumps(answers))
            _set(trial, path, candidate)
            try:
                answers_mod.validate(json.loads(json.dumps(trial)))
            except answers_mod.AnswersError:
                continue
            answers = trial
            taken.append(".".join(map(str, path)))
            break
    assert {"public.user", "public.password", "public.url_filter", "servers.0.name", "extra_config.omero.web.login_logo",
            "apps.mapr_config", "apps.custom.0.open_with", "apps.custom.0.top_links", "nodes.secret_key"} - set(taken) \
        == set(), taken
    a = answers_mod.validate(json.loads(json.dumps(answers)))
    files = playbook.files(a, "localhost")
    for rel in ("group_vars/omero_web/main.yml", "group_vars/omero_web/vault.yml", "host_vars/localhost.yml",
                "inventory.yml"):
        path = tmp_path / "play" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[rel][0])
    dump = tmp_path / "vars.json"
    names = sorted({k for rel in ("group_vars/omero_web/main.yml", "host_vars/localhost.yml")
                    for k in yaml.load(files[rel][0], Loader=_Loader)})
    # every variable, as the collection's playbooks read them, written out as JSON by Ansible itself
    (tmp_path / "play" / "dump.yml").write_text(yaml.safe_dump([{
        "hosts": "omero_web", "gather_facts": False,
        "tasks": [{"ansible.builtin.copy": {"dest": str(dump), "mode": "0600",
                                            "content": "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"}}],
    }]))
    env = ansible_parts.ansible_env(tmp_path, tmp_path / "collections")
    try:
        proc = subprocess.run([str(ansible_bin / "ansible-playbook"), "-i", "inventory.yml", "dump.yml"],
                              cwd=str(tmp_path / "play"), env=env, capture_output=True, text=True, timeout=300)
        assert not pwned.exists(), "Ansible templated an answer"
    finally:
        pwned.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    seen = json.loads(dump.read_text())
    back = {k[len("omero_web_"):]: v for k, v in seen.items()}
    assert answers_mod.validate(back).flat() == a.flat()


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
