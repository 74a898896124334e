"""YAML written for Ansible (issue 21, "Why" 2): every string of the deployment is tagged !unsafe, so
Ansible never templates it; omerowizard's own references stay templates; `omerowizard apply` reads the
tag back as the plain string. (tests/e2e/test_unsafe_values.py runs a real ansible-core over it.)"""

from __future__ import annotations

import pytest
import yaml

from omerowizard import answers, ansible_yaml
from omerowizard.errors import AnswersError

JINJA = "{{ lookup('pipe', 'id > /tmp/x') }}"


class _Loader(yaml.SafeLoader):
    """How Ansible reads the tag (ansible-core before 2.19: the text, unchanged)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def test_every_string_is_unsafe_and_only_our_references_are_templates():
    data = {"a": JINJA, "b": ["x'\"y", {"c": "{% if 1 %}"}], "n": 5, "t": True, "none": None,
            "ref": ansible_yaml.Template("{{ vault_x }}")}
    text = ansible_yaml.dump(data)
    assert text.count("!unsafe") == 3 and "ref: '{{ vault_x }}'" in text, text
    assert yaml.load(text, Loader=_Loader) == data


@pytest.mark.parametrize("value", ["8080", "true", "off", "", "null", "~", "1.5", "2026-12-03", "0x1f", "1:20"])
def test_a_string_that_a_plain_scalar_would_turn_into_another_type_is_quoted_not_tagged(value):
    # ansible-core 2.19 re-resolves an !unsafe scalar as if it were plain (!unsafe '8080' is a number)
    text = ansible_yaml.dump({"v": value})
    assert "!unsafe" not in text and yaml.safe_load(text) == {"v": value}


def test_keys_stay_plain_and_repeated_values_are_written_out():
    same = JINJA
    text = ansible_yaml.dump({"omero.web.x": same, "y": same})
    assert text.startswith("omero.web.x: !unsafe") and "&" not in text and "*" not in text


def test_the_answers_file_of_omerowizard_answers_goes_back_into_apply_unchanged():
    a = answers.validate({"public": {"enabled": True, "user": "u" + JINJA, "password": "p'\"" + JINJA,
                                     "url_filter": "^/webclient|" + JINJA}})
    text = a.to_yaml(unsafe=True)
    assert "url_filter: !unsafe" in text
    assert answers.load_text(text) == a


def test_the_tag_is_read_on_text_only():
    with pytest.raises(AnswersError) as info:
        answers.load_text("web_server: !unsafe {kind: nginx}\n")
    assert "!unsafe" in str(info.value)
