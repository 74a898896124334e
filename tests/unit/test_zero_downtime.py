"""Zero downtime on one host (issue 25): what the plan chooses for each change of a running OMERO.web, the
answers it refuses, and the pieces of the blue/green switch that need no real server."""

from __future__ import annotations

import pytest

from omerowizard.catalogue import answers
from omerowizard.model.errors import AnswersError


def problems(text: str) -> list:
    with pytest.raises(AnswersError) as info:
        answers.load_text(text, "a.yml")
    return info.value.problems


def test_the_application_port_equal_to_the_web_server_port_is_refused_naming_both_keys():
    found = problems("web_server:\n  kind: nginx\n  port: 8080\napplication_server:\n  port: 8080\n")
    assert [p.key for p in found] == ["application_server.port"]
    p = found[0]
    assert "web_server.port" in p.message and "8080" in p.message
    assert p.line == 5


def test_the_application_port_equal_to_the_https_port_is_refused():
    found = problems("web_server:\n  kind: nginx\n  port: 8080\n  https:\n    certificate: /etc/c.pem\n"
                     "    key: /etc/k.pem\n    port: 8443\napplication_server:\n  port: 8443\n")
    assert [p.key for p in found] == ["application_server.port"]
    assert "web_server.https.port" in found[0].message


def test_the_same_ports_are_fine_when_no_web_server_runs_on_this_host():
    answers.load_text("web_server:\n  kind: none\napplication_server:\n  port: 8080\n", "a.yml")
