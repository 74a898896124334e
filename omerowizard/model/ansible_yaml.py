"""The one way a value of the deployment is written as YAML that Ansible reads.

Ansible templates every string of its variables: a value such as ``{{ lookup('pipe', 'id > /tmp/y') }}``
runs its command, as whoever runs the play (root). The deployment's values come partly from config.xml,
which the OMERO.web user can write, so every string omerowizard writes for Ansible (``omerowizard
playbook``'s group and host vars and vault, ``omerowizard answers``) is tagged ``!unsafe``: Ansible then
takes it as data, exactly, and never templates it. Only the references omerowizard writes itself
(``{{ vault_omero_web_... }}``, ``Template``) stay templates. ``omerowizard apply`` reads ``!unsafe``
back as a plain string, so the answers it prints go back in unchanged.
"""

from __future__ import annotations

from typing import Any

import yaml

UNSAFE_TAG = "!unsafe"


class Template(str):
    """A string omerowizard wrote itself and Ansible must template (a reference to a vault variable)."""


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper; every ``str`` is written ``!unsafe`` except a ``Template``."""

    def ignore_aliases(self, data: Any) -> bool:  # the same value twice is written out twice, never as *alias
        return True


STR_TAG = "tag:yaml.org,2002:str"
TEMPLATE_MARKERS = ("{{", "{%", "{#")  # what makes Ansible (Jinja) see a template in a string


def _unsafe(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    # ansible-core 2.19 re-reads an !unsafe scalar as if it were plain: !unsafe '8080' is the number 8080,
    # !unsafe 'true' a boolean, !unsafe '' null. A string that a plain scalar would not keep as a string
    # holds no template (no "{{"), so it is written as a quoted string, which every version keeps as it is.
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != STR_TAG:
        if any(m in value for m in TEMPLATE_MARKERS):  # cannot happen: YAML's implicit types have no braces
            raise ValueError(f"{value!r} cannot be written for Ansible as data")
        return dumper.represent_str(value)
    return dumper.represent_scalar(UNSAFE_TAG, value)


def _template(dumper: _Dumper, value: Template) -> yaml.ScalarNode:
    return dumper.represent_str(str(value))


_Dumper.add_representer(str, _unsafe)
_Dumper.add_representer(Template, _template)


def dump(data: Any) -> str:
    """``data`` as YAML for Ansible: each string value ``!unsafe`` (mapping keys stay plain: Ansible does
    not template them, and omerowizard's keys are names it checked)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=1000)


def _represent_mapping_keys_plain(dumper: _Dumper, data: dict) -> yaml.MappingNode:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data)
    for key, _ in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag == UNSAFE_TAG:
            key.tag = STR_TAG
    return node


_Dumper.add_representer(dict, _represent_mapping_keys_plain)
