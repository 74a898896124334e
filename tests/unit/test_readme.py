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
