"""The README stays true: its example answers file is accepted as it stands."""

from __future__ import annotations

import re
from pathlib import Path

from omerowizard import answers

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readmes_example_answers_file_is_valid():
    example = re.search(r"```yaml\n(platform: unix.*?)```", README.read_text(), re.S)
    assert example, "the README has an example answers file"
    a = answers.load_text(example.group(1), "README.md")
    assert a.servers[0]["name"] == "Main" and a.cors.mode == "origins"
    assert a.apps.enabled == ("figure", "iviewer")


def test_the_screenshots_the_readme_shows_are_the_ones_scripts_screenshots_writes():
    shown = re.findall(r"\]\((screenshots/[^)]+)\)", README.read_text())
    files = sorted(f"screenshots/{p.name}" for p in (README.parent / "screenshots").iterdir())
    assert sorted(shown) == files, "README.md shows exactly the pictures in screenshots/"
    source = (README.parent / "scripts" / "screenshots.py").read_text()
    assert all(f'"{Path(f).stem}"' in source for f in files), "each picture is one the script makes"


def test_the_readmes_answers_reference_is_the_catalogue_as_it_stands():
    from omerowizard import reference

    text = README.read_text()
    assert reference.table() in text, "run `python -m omerowizard.reference` to regenerate the README's table"
