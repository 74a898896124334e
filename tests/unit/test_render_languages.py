"""One way to write a value into another language (issue 21, "What to build" 3): every value a template
prints goes through its file's language rule in render.py (XML and HTML escape it; nginx, Apache, a
systemd unit and a batch file refuse what they would read as syntax), so no answer can end a directive or
start another, and what a file holds is the value exactly. And every answer that reaches a template, fed
hostile text, is refused by validation (naming its key) or rendered without a RenderError, for every
kind of web server."""

from __future__ import annotations

import dataclasses
import re

import pytest

from omerowizard.catalogue import answers
from omerowizard.system import crontab as cron
from omerowizard.model.errors import AnswersError
from omerowizard.plan.planner import make_plan
from omerowizard.catalogue import CATALOGUE
from omerowizard.model.render import RenderError, language, render, templates_dir, value_problem
from omerowizard.features.web_server.site import site_of
from tests.unit.test_input_exact import HOSTILE_TEXT, _enable, _merge, _nested, state


@pytest.mark.parametrize("lang,text", [
    ("nginx", "a;b"), ("nginx", "a b"), ("nginx", "a{"), ("nginx", "}"), ("nginx", "#x"), ("nginx", "'x'"),
    ("nginx", '"'), ("nginx", "a\\"), ("nginx", "$host"), ("nginx", "a\nb"), ("nginx", "a\u2028b"),
    ("apache", "a b"), ("apache", '"x'), ("apache", "</VirtualHost>"), ("apache", "x\\"), ("apache", "a\rb"),
    ("systemd", "%h"), ("systemd", "a b"), ("systemd", "$HOME"), ("systemd", "a;b"), ("systemd", "'"),
    ("bat", "a&b"), ("bat", "%PATH%"), ("bat", "a|b"), ("bat", "a>b"), ("bat", "^"), ("bat", '"'), ("bat", "a\nb"),
    ("xml", "a\x1bb"), ("html", "a\x00"),
])
def test_each_language_refuses_what_it_reads_as_syntax(lang, text):
    assert value_problem(lang, text)


@pytest.mark.parametrize("lang,text", [
    ("nginx", "omero.example.org"), ("nginx", "/opt/omero/web/OMERO.web/var/static"), ("nginx", "[::1]:4080"),
    ("apache", "/omero\\-web"), ("systemd", "/opt/omero/web/venv3"), ("bat", "5.3 or later"),
    ("xml", "<a & b>"), ("xml", "xn--bcher-kva.example:4080"), ("html", "<script>"),
])
def test_each_language_writes_ordinary_values(lang, text):
    assert value_problem(lang, text) is None


def _site(**changes):
    a = answers.validate({"web_server": {"kind": "nginx", "config_path": "/tmp/x/site.conf"}})
    return dataclasses.replace(site_of(a, "/tmp/x/site.conf"), **changes)


@pytest.mark.parametrize("template,field,value", [
    ("nginx.conf.j2", "server_name", "omero.example.org; include /etc/passwd"),
    ("nginx.conf.j2", "prefix", "/omero {"),
    ("nginx-development.conf.j2", "static_root", "/x/y;\nerror_log /tmp/z"),
    ("apache.conf.j2", "server_name", "x\n<Directory />"),
    ("apache.conf.j2", "static_root", 'a" b'),
])
def test_a_value_that_would_inject_a_directive_is_refused_not_written(template, field, value):
    with pytest.raises(RenderError) as info:
        render(template, site=_site(**{field: value}))
    assert repr(value) in str(info.value)


def test_the_maintenance_page_escapes_html():
    text = render("maintenance.html.j2", site=_site(server_name="<script>alert(1)</script>"))
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_xml_files_escape_and_print_no_value_inside_a_comment():
    a = answers.validate({"platform": "windows", "web_server": {"omero_web_version": "5.2.8"}})
    site = site_of(a, "C:\\inetpub\\omero\\web.config")
    assert "&lt;x&gt;" in render("iis-web.config.j2", site=dataclasses.replace(site, upstream="<x>"))
    for name in TEMPLATES_DIR.glob("*.j2"):
        if language(name.name) in {"xml", "html"}:
            for comment in re.findall(r"<!--.*?-->", name.read_text(), re.S):
                assert "{{" not in comment, (name.name, comment)


TEMPLATES_DIR = templates_dir()
TEMPLATED = ("web_server.", "prefix", "static_url", "application_server.", "omero.", "nodes.members")
KINDS = [{"web_server": {"kind": "nginx"}, "platform": "unix"}, {"web_server": {"kind": "apache"}},
         {"web_server": {"kind": "nginx-development"}}, {"web_server": {"kind": "nginx", "systemd": True}},
         {"platform": "windows"}, {"platform": "windows", "web_server": {"omero_web_version": "5.2.8"}}]
MORE = ["{{ lookup('pipe','id') }}", "#x", "%h", "x&y", "a--b", "<x>", "x y", "/x;y", "/x{y}"]


@pytest.mark.parametrize("q", [q for q in CATALOGUE if q.key.startswith(TEMPLATED)], ids=lambda q: q.key)
def test_every_templated_answer_is_refused_or_rendered_for_every_server_kind(q, tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path))
    values: list = [*HOSTILE_TEXT, *MORE]
    if q.kind == "records":
        values = [[{"host": v, "port": 4080}] for v in values]
    elif q.kind == "int":
        values = [0, -1, 2**63, 80]
    elif q.kind in {"bool", "list", "mapping"}:
        return
    for kind in KINDS:
        for value in values:
            data = _merge(_merge(kind, _enable(q.key)), _nested(q.key, value))
            if data.get("platform") != "windows":
                data = _merge({"web_server": {"config_path": str(tmp_path / "site.conf")}}, data)
            try:
                a = answers.validate(data, "hostile.yml")
            except AnswersError as exc:
                assert exc.problems, value
                continue
            make_plan(a, state())  # a value validation lets through is written exactly: no RenderError


@pytest.mark.parametrize("value", ["/opt/omero web", "/opt/%h", "/opt/a;b", "/opt/$(id)", "/opt/a\nb", "/opt/`id`"])
def test_the_crontab_line_carries_a_path_exactly_or_refuses_it(value):
    with pytest.raises(ValueError):
        cron.word(value)
    assert cron.word("/opt/omero/web/OMERO.web") == "/opt/omero/web/OMERO.web"
