"""The manual (docs/, MkDocs) builds without a warning, the README links every page of it, the
references generated from the features are what the features say, and `--help` and the README point
to OME's documentation, the image.sc forum and the issue tracker."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from bench import readme, reconfigure
from omerowizard import cli
from omerowizard.catalogue import reference
from omerowizard.catalogue import CATALOGUE

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def nav_pages() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    return [page for entry in config["nav"] for page in entry.values()]


def test_the_manual_builds_with_mkdocs_strict_and_without_any_warning(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        raise AssertionError("missing part: mkdocs (the `test` extras, in the environment `bash scripts/test --setup-only` makes)")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "WARNING" not in output, output
    for page in nav_pages():
        built = site / ("index.html" if page == "index.md" else f"{page[:-3]}/index.html")
        assert built.is_file(), f"{page} was not built"


def test_every_page_is_in_the_nav_and_the_readme_links_each_one():
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(nav_pages()) == pages, "mkdocs.yml's nav lists every page of docs/, once"
    linked = set(re.findall(r"\]\(docs/([a-z-]+\.md)(?:#[a-z-]+)?\)", README.read_text()))
    assert linked == set(pages), f"the README links every page of the manual: missing {set(pages) - linked}"


def test_the_readme_stays_short():
    lines = README.read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines; the manual (docs/) holds the rest"


def test_the_generated_references_are_what_the_features_say():
    assert reference.stale() == [], "run `python3 -m omerowizard.catalogue.reference` to rewrite the generated references"


def test_a_new_question_changes_every_generated_reference(monkeypatch):
    """The check above can fail: a question added to the features reaches the answers table, the module's
    options, both playbooks and the options table of the manual."""
    pages = {p.relative_to(ROOT).as_posix() for p in reference.generated()}
    top = dataclasses.replace(CATALOGUE[-1], key="zzz_new", help="A new answer.")
    monkeypatch.setattr(reference, "CATALOGUE", (*CATALOGUE, top))
    assert {p.relative_to(ROOT).as_posix() for p in reference.stale()} == pages == {
        "docs/answers.md", "docs/ansible.md", "ansible_collections/omerowizard/omero_web/plugins/modules/deploy.py",
        "ansible_collections/omerowizard/omero_web/playbooks/site.yml",
        "ansible_collections/omerowizard/omero_web/playbooks/rolling.yml"}
    texts = reference.generated()
    assert '        zzz_new: "{{ omero_web_zzz_new | default(omit) }}"\n' in texts[reference.PLAYBOOKS[0]]
    assert "| `zzz_new` |" in texts[reference.DOCS / "answers.md"]
    documentation = re.search(r'DOCUMENTATION = r"""(.*?)"""', texts[reference.MODULE], re.S).group(1)
    assert "A new answer." in yaml.safe_load(documentation)["options"]["zzz_new"]["description"]


def test_the_modules_documentation_explains_each_key_of_each_answer_option():
    documentation = re.search(r'DOCUMENTATION = r"""(.*?)"""', reference.MODULE.read_text(), re.S).group(1)
    options = yaml.safe_load(documentation)["options"]
    for q in CATALOGUE:
        top, _, rest = q.key.partition(".")
        text = "\n".join(options[top]["description"])
        assert q.help in text and (not rest or f"{rest}: " in text), q.key
    assert "Secrets in password are masked" in "\n".join(options["public"]["description"])


def test_the_benchmarks_page_shows_the_committed_results():
    page = (DOCS / "benchmarks.md").read_text()
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    figure = json.loads((ROOT / "bench" / "results" / "reconfigure.json").read_text())
    assert f"{readme.BEGIN}\n{readme.section(latest)}\n{readme.END}" in page, "run `python3 -m bench.readme`"
    assert f"{reconfigure.BEGIN}\n{reconfigure.section(figure)}\n{reconfigure.END}" in page, \
        "run `python3 -m bench.reconfigure --docs-only`"
    assert readme.PAGE == reconfigure.PAGE == DOCS / "benchmarks.md"


def test_help_and_readme_name_omes_docs_the_forum_and_the_tracker():
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert cli.OME_DOCS == "https://omero.readthedocs.io/en/stable/sysadmins/unix/install-web/web-deployment.html"
    assert cli.FORUM == "https://forum.image.sc/tag/omero"
    help_text = " ".join(proc.stdout.split())
    for text in (README.read_text(), (DOCS / "index.md").read_text(), help_text):
        for link in (cli.OME_DOCS, cli.FORUM, cli.TRACKER):
            assert link in " ".join(text.split()), link
