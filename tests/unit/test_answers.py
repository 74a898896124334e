"""The answers file: every problem reported at once, with file, line, key and what is allowed."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from omerowizard.catalogue import answers
from omerowizard.model.errors import AnswersError
from omerowizard.catalogue import CATALOGUE


def problems(text: str) -> list:
    with pytest.raises(AnswersError) as info:
        answers.load_text(text, "a.yml")
    return info.value.problems


def test_defaults_follow_omero_docs():
    a = answers.defaults()
    assert a.platform == "unix"
    assert (a.omero.user, a.omero.venv, a.omero.omerodir) == ("omero-web", "/opt/omero/web/venv3", "/opt/omero/web/OMERO.web")
    assert a.application_server.port == 4080 and a.application_server.workers == 5
    assert a.sessions.backend == "file" and a.sessions.cookie_age == 86400 and a.sessions.clearsessions == "daily"
    assert a.cors.mode == "off" and a.prefix == "/" and a.effective_static_url == "/static/"


def test_every_problem_is_reported_at_once_with_lines_and_allowed_values():
    ps = problems("platform: unix\nweb_server:\n  kind: ngnix\n  port: 99999\nsesions: {}\nprefix: /a b\n")
    got = {(p.key, p.line) for p in ps}
    assert got == {("web_server.kind", 3), ("web_server.port", 4), ("sesions", 5), ("prefix", 6)}
    text = "\n".join(map(str, ps))
    assert "a.yml:3: web_server.kind: 'ngnix' is not one of the choices (allowed: nginx |" in text
    # the schema lets the key be empty (its default): empty is not a choice to offer (issue 26: "none | None")
    assert "(allowed: nginx | nginx-development | apache | iis | development | none)" in text
    assert "did you mean 'sessions'" in text
    assert "a.yml:4: web_server.port: 99999 is out of range (allowed: an integer from 1 to 65535)" in text


@pytest.mark.parametrize("text,key,words", [
    ("platform: [unix\n", "(file)", "not valid YAML"),
    ("", "(file)", "is empty"),
    ("- a\n- b\n", "(file)", "not a mapping"),
    ("web_server: {kind: nginx, server_name: 'example.org; include /etc/shadow'}\n", "web_server.server_name", "host name"),
    ("web_server: {server_name: 'a}'}\n", "web_server.server_name", "host name"),
    ("application_server: {port: '4080'}\n", "application_server.port", "not an integer"),
    ("application_server: {workers: 0}\n", "application_server.workers", "out of range"),
    ("application_server: {host: '99999'}\n", "application_server.host", "all digits"),
    ("application_server: {host: '10.0.0.300'}\n", "application_server.host", "all digits"),
    ("cors: {mode: origins, origins: [hostname.example.com]}\n", "cors.origins[0]", "scheme://host"),
    ("cors: {mode: origins}\n", "cors.origins", "is empty"),
    ("cors: {mode: sometimes}\n", "cors.mode", "not one of"),
    ("sessions: {backend: redis, location: 'http://x'}\n", "sessions.location", "Redis URL"),
    ("sessions: {backend: memcached, location: 'x'}\n", "sessions.location", "host:port"),
    ("sessions: {clearsessions: '61 * * * *'}\n", "sessions.clearsessions", "out of range"),
    ("prefix: /omero/../etc\n", "prefix", "'..'"),
    ("omero: {user: root}\n", "omero.user", "root"),
    ("omero: {venv: 'relative/venv'}\n", "omero.venv", "absolute"),
    ("extra_config: {omero.web.prefix: /x}\n", "extra_config.omero.web.prefix", "set by the answer prefix"),
    ("extra_config: {web.foo: 1}\n", "extra_config.web.foo", "not an omero.web.* key"),
    ("platform: windows\nweb_server: {kind: nginx}\n", "web_server.kind", "does not run on Windows"),
    ("web_server: {https: {certificate: /etc/ssl/c.pem}}\n", "web_server.https.key", "both"),
    ("prefix: /omero\nstatic_url: /static/\n", "static_url", "outside the prefix"),
    ("start: yes please\n", "start", "not a boolean"),
    ("platform: unix\nplatform: windows\n", "platform", "given twice"),
    ("web_server:\n  kind: nginx-development\n  port: 80\n", "web_server.port", "needs root"),
    ("application_server: {port: 443}\n", "application_server.port", "only root may listen there"),
])
def test_malformed_answers_name_the_key(text, key, words):
    ps = problems(text)
    match = [p for p in ps if p.key == key]
    assert match, [str(p) for p in ps]
    assert words in str(match[0])


def test_bare_off_is_the_choice_off():
    a = answers.load_text("cors:\n  mode: off\nsessions:\n  clearsessions: off\n")
    assert a.cors.mode == "off" and a.sessions.clearsessions == "off"


def test_an_answer_that_does_not_apply_is_reported_not_silently_ignored():
    a = answers.load_text("cors:\n  mode: 'off'\n  origins: ['https://a.example.org']\n", "x.yml")
    assert any("x.yml:3: cors.origins is not used" in w for w in a.warnings)


def test_written_answers_load_back_equal():
    a = answers.load_text("prefix: /omero\nsessions: {backend: redis, location: 'redis://:pw@127.0.0.1:6379/1'}\n"
                          "cors: {mode: origins, origins: ['https://a.example.org:8443']}\n"
                          "extra_config: {omero.web.ui.top_links: [['Data', 'webindex']]}\n")
    assert answers.load_text(a.to_yaml()) == a
    assert answers.from_flat(a.flat()) == a


def test_schema_is_valid_and_agrees_with_the_loader():
    schema = answers.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    keys = set()
    def walk(node, prefix=""):
        for k, v in node.get("properties", {}).items():
            if v.get("properties"):
                walk(v, f"{prefix}{k}.")
            else:
                keys.add(prefix + k)
    walk(schema)
    assert keys == {q.key for q in CATALOGUE}
    good = yaml.safe_load(answers.defaults().to_yaml())
    jsonschema.validate(good, schema)


def test_cli_schema_prints_json(capsys):
    from omerowizard.cli import main
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "omerowizard answers file"


@pytest.mark.parametrize("fqdn, name, expected", [
    ("omero.example.org", "omero", "omero.example.org"),
    ("localhost", "vm", "vm"),  # the host name resolves to 127.0.0.1: getfqdn says localhost
    ("localhost.localdomain", "VM.", "vm"),
    ("localhost", "localhost", "localhost"),  # a host with no name
    ("", "", "localhost"),
])
def test_the_server_name_default_is_the_fqdn_else_the_host_name_never_localhost_when_the_host_has_a_name(
        monkeypatch, fqdn, name, expected):
    import socket
    monkeypatch.setattr(socket, "getfqdn", lambda *a: fqdn)
    monkeypatch.setattr(socket, "gethostname", lambda: name)
    assert answers.defaults().web_server.server_name == expected
