"""The README and the manual (docs/) stay true: their example answers files, inventory and playbook are
accepted as they stand, and the README shows the screenshots the script makes."""

from __future__ import annotations

import re
from pathlib import Path

from omerowizard.catalogue import answers

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ANSWERS_PAGE = ROOT / "docs" / "answers.md"
ANSIBLE_PAGE = ROOT / "docs" / "ansible.md"


def test_the_manuals_example_answers_file_is_valid():
    example = re.search(r"```yaml\n(platform: unix.*?)```", ANSWERS_PAGE.read_text(), re.S)
    assert example, "docs/answers.md has an example answers file"
    a = answers.load_text(example.group(1), "docs/answers.md")
    assert a.servers[0]["name"] == "Main" and a.cors.mode == "origins"
    assert a.apps.enabled == ("figure", "iviewer")


COLLECTION = ROOT / "ansible_collections" / "omerowizard" / "omero_web"


def _block(after: str) -> str:
    m = re.search(r"```yaml\n" + re.escape(after) + r"\n(.*?)```", ANSIBLE_PAGE.read_text(), re.S)
    assert m, f"docs/ansible.md has the block {after!r}"
    return m.group(1)


def test_the_manuals_rolling_playbook_is_the_one_the_collection_ships():
    text = ANSIBLE_PAGE.read_text()
    shipped = (COLLECTION / "playbooks" / "rolling.yml").read_text()
    assert "```yaml\n# omerowizard.omero_web.rolling (ansible_collections/omerowizard/omero_web/playbooks/rolling.yml)\n" \
        + shipped + "```" in text


def test_the_manuals_ansible_inventory_and_group_vars_are_valid_answers_for_every_node():
    import yaml

    inventory = yaml.safe_load(_block("# inventory.yml"))
    group = yaml.safe_load(_block("# group_vars/omero_web.yml"))
    key = "Readme-example-key_0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
    group["omero_web_nodes"]["secret_key"] = key  # what the vault holds
    hosts = inventory["omero_web"]["hosts"]
    assert len(hosts) == 3
    for name, host_vars in hosts.items():
        merged = {**group, **host_vars}  # a key set for a host replaces the group's value whole
        nested = {k[len("omero_web_"):]: v for k, v in merged.items()}
        a = answers.validate(nested, f"docs/ansible.md ({name})")
        assert len(a.nodes.members) == 3 and a.sessions.backend == "redis"


def test_the_screenshots_the_readme_shows_are_the_ones_scripts_screenshots_writes():
    shown = re.findall(r"\]\((screenshots/[^)]+)\)", README.read_text())
    files = sorted(f"screenshots/{p.name}" for p in (ROOT / "screenshots").iterdir())
    assert sorted(shown) == files, "README.md shows exactly the pictures in screenshots/"
    source = (ROOT / "scripts" / "screenshots.py").read_text()
    assert all(f'"{Path(f).stem}"' in source for f in files), "each picture is one the script makes"


def test_the_manuals_answers_reference_is_the_catalogue_as_it_stands():
    from omerowizard.catalogue import reference

    text = ANSWERS_PAGE.read_text()
    assert reference.table() in text, "run `python -m omerowizard.catalogue.reference` to regenerate docs/answers.md's table"
