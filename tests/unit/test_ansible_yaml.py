"""YAML written for Ansible (issue 21, "Why" 2): every string of the deployment is tagged !unsafe, so
Ansible never templates it; omerowizard's own references stay templates; `omerowizard apply` reads the
tag back as the plain string. (tests/e2e/test_unsafe_values.py runs a real ansible-core over it.)"""

from __future__ import annotations

import json

import pytest
import yaml

from omerowizard.catalogue import answers
from omerowizard.model import ansible_yaml
from omerowizard.model.errors import AnswersError
from omerowizard.catalogue import KEYS
from omerowizard.catalogue.infer import answers_from_config
from omerowizard.catalogue import BY_KEY

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


# ----------------------------------------------------------------------------- every key config.xml can set
def _holds(value, payload) -> bool:
    if isinstance(value, str):
        return payload in value
    if isinstance(value, dict):
        return any(_holds(v, payload) for v in value.values()) or any(_holds(k, payload) for k in value)
    if isinstance(value, (list, tuple)):
        return any(_holds(v, payload) for v in value)
    return False


def _payloads(key: str, kind: str) -> list[str]:
    texts = ["q'\"" + JINJA, "two\nlines" + JINJA, "{{lookup('pipe','id>/tmp/x')}}-Pad0123456789abcdefghijklmnopqrstuvwxyz"]
    if kind != "json":
        return texts
    return [json.dumps(x) for t in texts for x in ([["omero.example.org", 4064, t]], [t, "url", {"label": t}],
                                                    [{"menu": "gene", "config": {"label": t}}], {"default": t})]


def test_every_key_config_xml_can_set_is_refused_naming_its_answer_or_written_for_ansible_exactly():
    """What `omerowizard answers` and `omerowizard playbook` do with a live config (headless.live_answers):
    a value the OMERO.web user set in any key a feature reads back is refused (naming the answer), ignored,
    or held exactly and written tagged; a line break is never held."""
    on = {"omero.web.public.enabled": "true", "omero.web.public.user": "u", "omero.web.public.password": "pw-1234",
          "omero.web.apps": json.dumps(["omero_mapr", "omero_iviewer"]),
          "omero.web.mapr.config": json.dumps([{"menu": "gene", "config": {"default": ["Gene Symbol"],
                                                                          "all": ["Gene Symbol"], "ns": ["x"],
                                                                          "label": "Gene"}}])}
    answers.validate(answers_from_config(on, answers.defaults().to_nested()))  # the base itself is valid
    held_in: set[str] = set()
    for key in sorted(KEYS):
        for payload in _payloads(key, KEYS[key].type):
            config = {**on, key: payload}
            try:
                live = answers.validate(answers_from_config(config, answers.defaults().to_nested()), "<live config>")
            except AnswersError as exc:
                named = {p.key.split("[")[0] for p in exc.problems}
                assert named and all(k in BY_KEY for k in named), (key, exc.problems)
                continue
            held = {k for k, v in live.flat().items() if _holds(v, "lookup('pipe'")}
            assert not any(_holds(v, "\n") for v in live.flat().values()), (key, payload)
            held_in |= held
            nested = live.to_nested()
            assert yaml.load(ansible_yaml.dump(nested), Loader=_Loader) == nested, key
            assert answers.load_text(live.to_yaml(unsafe=True)) == live, key
    assert {"public.user", "public.password", "public.url_filter", "servers", "nodes.secret_key"} <= held_in, held_in
