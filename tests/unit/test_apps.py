"""The web apps step (issue 15): the entries the wizard owns in the four JSON lists, validation messages, the
packages planned with pip's versions, and infer of a deployment whose apps were added by hand."""

from __future__ import annotations

import dataclasses
import json

import pytest

from omerowizard.catalogue import answers
from omerowizard.model.errors import AnswersError
from omerowizard.features import apps
from omerowizard.features.apps.catalogue import BY_NAME, LIST_KEYS, MAPR_KEY, MAPR_PRESETS, VIEWER_KEY
from omerowizard.features.apps.entries import merge
from omerowizard.features.apps.packages import Measured, distribution_of, not_enabled, required_by, sources_problem
from omerowizard.catalogue.infer import answers_from_config
from omerowizard.plan.planner import make_plan
from tests.unit.test_plan import ALL, apply_to, state

FIGURE, IVIEWER, PARADE = BY_NAME["figure"], BY_NAME["iviewer"], BY_NAME["parade"]
INSTALLED = {**ALL, "omero-figure": "8.0.1", "omero-iviewer": "0.19.1", "omero-parade": "0.2.4",
             "omero-mapr": "0.5.3", "omero-fpbioimage": "0.4.1", "omero-webtest": "0.4.2"}
MINE = ["Mine", "https://www.example.org/", {"title": "by hand"}]


def load(text: str):
    return answers.load_text(text, "a.yml")


def plan(text: str, config=None, previous=None, packages=INSTALLED, measured=None):
    s = state(config or {}, packages=packages)
    s = dataclasses.replace(s, apps_measured=measured)
    return make_plan(load(text), s, previous=load(previous) if isinstance(previous, str) else previous)


def lists(config: dict, key: str) -> list:
    return json.loads(config[key]) if key in config else json.loads(apps.FEATURE.keys[key].default)


# ---------------------------------------------------------------------------- the merge
def test_merge_keeps_hand_added_entries_in_their_order_and_removes_only_owned_ones():
    current = ["a", "fig", "hand", "ivi", "later"]
    assert merge(current, owned=["fig", "ivi"], wanted=["ivi"]) == ["a", "hand", "ivi", "later"]
    assert merge(current, owned=["fig", "ivi"], wanted=["ivi", "parade"]) == ["a", "hand", "ivi", "later", "parade"]
    assert merge(current, owned=[], wanted=[]) == current  # nothing owned: nothing removed
    assert merge(["hand", "fig"], owned=["fig"], wanted=["fig"]) == ["hand", "fig"]  # a kept entry keeps its place
    assert merge([["x", 1]], owned=[], wanted=[["x", 1]]) == [["x", 1]]  # entries compare as JSON values


# ---------------------------------------------------------------------------- plans
def test_figure_and_iviewer_set_the_readmes_entries_then_a_rerun_changes_nothing():
    text = "apps: {enabled: [figure, iviewer]}\n"
    p = plan(text)
    after = apply_to({}, p)
    assert json.loads(after["omero.web.apps"]) == ["omero_figure", "omero_iviewer"]
    assert lists(after, "omero.web.open_with")[1:] == [FIGURE.open_with[0], IVIEWER.open_with[0]]
    assert lists(after, "omero.web.open_with")[0][0] == "Image viewer"  # appended to OMERO's default, as append does
    assert lists(after, "omero.web.ui.top_links")[-1] == ["Figure", "figure_index", {"title": "Open Figure in new tab",
                                                                                      "target": "_blank"}]
    assert after["omero.web.viewer.view"] == "omero_iviewer.views.index"
    assert p.web.action == "reload" and p.web.collectstatic  # new apps: static files collected, new workers
    again = plan(text, after, previous=text)
    assert not again.config and not again.packages


def test_removing_an_app_removes_only_its_entries_and_keeps_a_hand_added_link():
    before = "apps: {enabled: [figure, iviewer]}\n"
    config = apply_to({}, plan(before))
    links = lists(config, "omero.web.ui.top_links")
    links.insert(1, MINE)
    config["omero.web.ui.top_links"] = json.dumps(links)
    config["omero.web.apps"] = json.dumps(["hand_app", *json.loads(config["omero.web.apps"])])
    after = apply_to(config, plan("apps: {enabled: [iviewer]}\n", config, previous=before))
    assert json.loads(after["omero.web.apps"]) == ["hand_app", "omero_iviewer"]
    assert lists(after, "omero.web.ui.top_links") == [x for x in links if x != FIGURE.top_links[0]]
    assert lists(after, "omero.web.open_with")[1:] == [IVIEWER.open_with[0]]
    assert after["omero.web.viewer.view"] == "omero_iviewer.views.index"
    # every app removed: the lists are OMERO's defaults again (unset), the hand-added entries stay
    gone = apply_to(after, plan("apps: {enabled: []}\n", after, previous="apps: {enabled: [iviewer]}\n"))
    assert json.loads(gone["omero.web.apps"]) == ["hand_app"]
    assert "omero.web.open_with" not in gone and "omero.web.viewer.view" not in gone
    assert MINE in lists(gone, "omero.web.ui.top_links")


def test_the_viewer_is_reset_only_if_the_wizard_set_it():
    by_hand = {"omero.web.apps": '["omero_iviewer"]', "omero.web.viewer.view": "omero_iviewer.views.index"}
    kept = plan("apps: {enabled: [iviewer], iviewer_default_viewer: false}\n", by_hand,
                previous="apps: {enabled: [iviewer], iviewer_default_viewer: false}\n")
    assert "omero.web.viewer.view" not in {c.key for c in kept.config}
    reset = plan("apps: {enabled: [iviewer], iviewer_default_viewer: false}\n", by_hand,
                 previous="apps: {enabled: [iviewer]}\n")
    assert reset.unsets == ["omero.web.viewer.view"]
    other = {**by_hand, "omero.web.viewer.view": "my_viewer.views.index"}  # changed by hand since
    assert "omero.web.viewer.view" not in plan("apps: {enabled: []}\n", other,
                                               previous="apps: {enabled: [iviewer]}\n").unsets


def test_without_saved_answers_apps_added_by_hand_stay_unless_the_answers_say_which_apps_they_want():
    by_hand = apply_to({}, plan("apps: {enabled: [figure]}\n"))
    untouched = plan("cors: {mode: 'off'}\n", by_hand)  # answers that do not mention the apps
    assert not untouched.config
    adopted = apply_to(by_hand, plan("apps: {enabled: []}\n", by_hand))  # they do: figure is the wizard's now
    assert "omero.web.apps" not in adopted and "omero.web.ui.top_links" not in adopted


def test_cors_and_apps_share_omero_web_apps_and_a_rerun_changes_nothing():
    text = "cors: {mode: all}\napps: {enabled: [parade]}\n"
    after = apply_to({}, plan(text))
    assert json.loads(after["omero.web.apps"]) == ["corsheaders", "omero_parade"]
    assert lists(after, "omero.web.ui.center_plugins") == [list(PARADE.center_plugins[0])]
    assert not plan(text, after, previous=text).config
    off = apply_to(after, plan("apps: {enabled: [parade]}\n", after, previous=text))
    assert json.loads(off["omero.web.apps"]) == ["omero_parade"]


def test_extra_config_gives_the_administrators_entries_and_the_apps_add_theirs():
    text = "apps: {enabled: [figure]}\nextra_config: {omero.web.ui.top_links: [[Data, webindex]]}\n"
    after = apply_to({}, plan(text))
    assert lists(after, "omero.web.ui.top_links") == [["Data", "webindex"], list(FIGURE.top_links[0])]
    assert not plan(text, after, previous=text).config


def test_mapr_presets_and_its_top_links_and_custom_apps_entries():
    link = '["Web test", "webtest_index"]'
    text = ("apps:\n  enabled: [mapr]\n  mapr_config: gene, phenotype\n  custom:\n"
            f"    - {{requirement: omero-webtest==0.4.2, app: omero_webtest, top_links: '{link}'}}\n")
    after = apply_to({}, plan(text))
    assert json.loads(after["omero.web.mapr.config"]) == [MAPR_PRESETS["gene"][0], MAPR_PRESETS["phenotype"][0]]
    assert lists(after, "omero.web.ui.top_links")[-3:] == [MAPR_PRESETS["gene"][1], MAPR_PRESETS["phenotype"][1],
                                                            json.loads(link)]
    assert json.loads(after["omero.web.apps"]) == ["omero_mapr", "omero_webtest"]
    gone = apply_to(after, plan("apps: {enabled: []}\n", after, previous=text))
    assert "omero.web.mapr.config" not in gone and "omero.web.apps" not in gone


# ---------------------------------------------------------------------------- packages
def test_the_plan_shows_the_version_pip_would_install_and_installs_only_what_is_missing():
    measured = Measured(("omero-figure==8.0.1",), {"omero-figure": "8.0.1", "pillow": "11.0.0"})
    p = plan("apps: {enabled: [figure, iviewer], versions: {figure: '==8.0.1'}}\n", packages=ALL | {
        "omero-iviewer": "0.19.1"}, measured=measured)
    assert [(c.requirement, c.version, c.app) for c in p.packages] == [("omero-figure==8.0.1", "8.0.1", "figure")]
    assert "  pip install omero-figure==8.0.1 (web app figure: omero-figure 8.0.1; with pillow 11.0.0)" in p.lines()
    assert not plan("apps: {enabled: [figure]}\n").packages  # installed: nothing to do, no dry run needed


def test_a_failed_dry_run_is_a_preflight_refusal():
    p = plan("apps: {enabled: [figure]}\n", packages=ALL,
             measured=Measured(("omero-figure",), error="pip cannot install omero-figure: no network"))
    assert any("web apps: pip cannot install omero-figure" in r and "apps.find_links" in r for r in p.refusals)


def test_uninstall_only_when_asked_and_never_what_omero_web_needs():
    before = "apps: {enabled: [figure, iviewer]}\n"
    keep = plan("apps: {enabled: [iviewer]}\n", previous=before)
    assert not keep.packages
    drop = plan("apps: {enabled: [iviewer], uninstall_removed: true}\n", previous=before)
    assert [(c.action, c.requirement) for c in drop.packages] == [("uninstall", "omero-figure")]
    assert "pip uninstall omero-figure 8.0.1" in "\n".join(drop.lines())
    with pytest.raises(AnswersError, match="is part of OMERO.web"):
        load("apps: {custom: [{requirement: django, app: django_app}]}\n")


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize("text, key, message, allowed", [
    ("apps: {enabled: [mapr]}\n", "apps.mapr_config", "is missing: OMERO.mapr needs omero.web.mapr.config",
     "gene | phenotype | antibody | anyvalue"),
    ("apps:\n  enabled: [mapr]\n  mapr_config: genes\n", "apps.mapr_config", "'genes' names no preset", "gene"),
    ("apps:\n  enabled: [mapr]\n  mapr_config: '[{\"menu\": \"x\"}]'\n", "apps.mapr_config",
     "entry 0 is not {\"menu\": NAME, \"config\": {...}}", "mapr's JSON"),
    ("apps:\n  enabled: [mapr]\n  mapr_config: '[{\"menu\":'\n", "apps.mapr_config", "is not JSON", "mapr's JSON"),
    ("apps:\n  enabled: [mapr]\n  mapr_config: 'gene '\n", "apps.mapr_config", "has blanks around it", "gene"),
    ("apps:\n  find_links: 'https://x y'\n", "apps.find_links", "is not a URL", ""),
    ("apps:\n  enabled: [figure]\n  versions: {figure: '8.0'}\n", "apps.versions.figure",
     "'8.0' is not a version specifier", "to a version specifier"),
    ("apps:\n  enabled: [figure]\n  versions: {iviewer: '==1'}\n", "apps.versions.iviewer",
     "pins iviewer, which apps.enabled does not choose", "versions of the apps in apps.enabled"),
    ("apps:\n  versions: {figurine: '==1'}\n", "apps.versions.figurine", "'figurine' is not one of figure", ""),
    ("apps:\n  enabled: [figure, gallery]\n", "apps.enabled[1]", "'gallery' is not one of the choices",
     "figure | iviewer | mapr | parade | fpbioimage"),
    ("apps:\n  custom:\n    - {requirement: 'omero gallery', app: omero_gallery}\n", "apps.custom[0].requirement",
     "is not a package requirement", "a list of {requirement, app, open_with, top_links}"),
    ("apps:\n  custom:\n    - {requirement: omero-gallery, app: omero-gallery}\n", "apps.custom[0].app",
     "is not a Django app name", "a list of {requirement, app, open_with, top_links}"),
    ("apps:\n  custom:\n    - {requirement: omero-gallery, app: omero_gallery, open_with: '[oops'}\n",
     "apps.custom[0].open_with", "is not JSON", "a list of {requirement, app, open_with, top_links}"),
    ("apps:\n  custom:\n    - {requirement: omero-gallery, app: omero_gallery, top_links: '{\"a\": 1}'}\n",
     "apps.custom[0].top_links", "is not a omero.web.ui.top_links entry", ""),
    ("apps:\n  custom:\n    - {requirement: omero-figure, app: omero_figure}\n", "apps.custom[0].app",
     "'omero_figure' is the catalogue's figure", "add figure to apps.enabled instead"),
    # issue 21: pip takes packages only over https or from a local directory; names are compared PEP 503-normalised
    ("apps:\n  find_links: 'http://wheels.example.org/simple/'\n", "apps.find_links",
     "'http://wheels.example.org/simple/' is not https", "an absolute path or an https:// URL"),
    ("apps:\n  find_links: 'file:///srv/wheels'\n", "apps.find_links", "is not https",
     "an absolute path or an https:// URL"),
    ("apps:\n  find_links: 'ftp://example.org/wheels'\n", "apps.find_links", "is not https", "https://"),
    ("apps:\n  custom:\n    - {requirement: omero._figure, app: omero_figur}\n", "apps.custom[0].requirement",
     "'omero._figure' is the catalogue's figure", "add figure to apps.enabled"),
    ("apps:\n  custom:\n    - {requirement: 'omero-_web==5.6.0', app: omero_webx}\n", "apps.custom[0].requirement",
     "'omero-_web==5.6.0' is part of OMERO.web, not a web app", "the package of a web app"),
    ("apps:\n  custom:\n    - {requirement: 'Django__Redis', app: dredis}\n", "apps.custom[0].requirement",
     "is part of OMERO.web", "the package of a web app"),
    ("extra_config: {omero.web.apps: '[\"omero_figure\"]'}\n", "extra_config.omero.web.apps",
     "is set by the answer apps.enabled or apps.custom, not by extra_config", "apps.custom for any other app"),
    ("extra_config: {omero.web.mapr.config: '[]'}\n", "extra_config.omero.web.mapr.config",
     "is set by the answer apps.mapr_config", "answer apps.mapr_config"),
])
def test_validation_names_file_line_key_value_and_what_is_allowed(text, key, message, allowed):
    with pytest.raises(AnswersError) as exc:
        load(text)
    lines = [line for line in str(exc.value).splitlines() if f": {key}: " in line]
    assert lines, str(exc.value)
    assert lines[0].strip().startswith("a.yml:") and message in lines[0], lines[0]
    assert f"(allowed: {allowed}" in lines[0] or (allowed in lines[0]), lines[0]
    assert lines[0].strip().split(":")[1].isdigit(), lines[0]  # the line number


def test_typed_answers_of_the_step():
    q = apps.QUESTIONS
    assert q[0].parse("iviewer, figure") == ["figure", "iviewer"]
    pins = next(x for x in q if x.key == "apps.versions")
    assert pins.parse("figure==8.0.1, iviewer >=0.19") == {"figure": "==8.0.1", "iviewer": ">=0.19"}
    with pytest.raises(ValueError, match="not a version specifier"):
        pins.parse("figure 8")
    assert pins.as_text({"figure": "==8.0.1"}) == "figure==8.0.1"


# ---------------------------------------------------------------------------- infer
def test_a_deployment_whose_apps_were_added_by_hand_is_read_back_including_the_entries_the_wizard_would_own():
    config = {
        "omero.web.apps": json.dumps(["omero_iviewer", "omero_mapr", "corsheaders", "omero_webtest"]),
        "omero.web.open_with": json.dumps([IVIEWER.open_with[0], ["omero_webtest", "webtest_index", {}]]),
        "omero.web.viewer.view": "omero_iviewer.views.index",
        "omero.web.mapr.config": json.dumps([MAPR_PRESETS["gene"][0]]),
        "omero.web.ui.top_links": json.dumps([MINE, MAPR_PRESETS["gene"][1]]),
        "omero.web.cors_origin_allow_all": "true",
    }
    nested = answers_from_config(config, answers.defaults().to_nested())
    a = answers.validate(nested, "<live config>")
    assert a.apps.enabled == ("iviewer", "mapr")
    assert a.apps.iviewer_default_viewer is True and a.apps.mapr_config == "gene" and a.apps.mapr_top_links is True
    assert [(c["requirement"], c["app"], json.loads(c["open_with"])) for c in a.apps.custom] == [
        ("omero-webtest", "omero_webtest", ["omero_webtest", "webtest_index", {}])]
    assert a.cors.mode == "all"
    # the answers read back describe the deployment: applying them changes nothing in the lists
    p = make_plan(a, state(config, packages=INSTALLED))
    assert not [c for c in p.config if c.key in LIST_KEYS + (VIEWER_KEY, MAPR_KEY)], p.lines()
    # and the wizard owns the catalogue apps' entries from then on: removing iviewer removes only its own
    b = answers.validate({**nested, "apps": {**nested["apps"], "enabled": ["mapr"]}}, "<edited>")
    after = apply_to(config, make_plan(b, state(config, packages=INSTALLED)))
    assert json.loads(after["omero.web.apps"]) == ["omero_mapr", "corsheaders", "omero_webtest"]
    assert json.loads(after["omero.web.open_with"]) == [["omero_webtest", "webtest_index", {}]]
    assert "omero.web.viewer.view" not in after and MINE in json.loads(after["omero.web.ui.top_links"])


def test_the_probe_reports_apps_installed_but_not_enabled():
    assert not_enabled(INSTALLED, {"omero.web.apps": '["omero_iviewer"]'}) == {
        "figure": "8.0.1", "mapr": "0.5.3", "parade": "0.2.4", "fpbioimage": "0.4.1"}


def test_root_pip_never_reads_wheels_another_user_can_replace(tmp_path):
    """pip runs as root for a root-owned environment: a wheel directory (or wheel) another user can
    write would run that user's code as root, so it is refused before any pip runs; for an environment owned by
    another user, pip runs as that user and its rights suffice."""
    import os
    import pwd


    if os.geteuid() != 0:
        pytest.fail("this test runs as root (as the wizard does on a production host)", pytrace=False)
    nobody = pwd.getpwnam("nobody")
    root_venv, user_venv = tmp_path / "venv", tmp_path / "venv-user"
    for venv in (root_venv, user_venv):
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").symlink_to("/usr/bin/python3")
        (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for path in [user_venv, *user_venv.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    wheels = tmp_path / "wheels"
    wheels.mkdir(mode=0o755)
    wheel = wheels / "omero_figure-8.0.1-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    wheel.chmod(0o644)
    assert sources_problem(str(wheels), str(root_venv)) is None

    os.chown(wheel, nobody.pw_uid, nobody.pw_gid)
    assert f"{wheel} belongs to nobody" in sources_problem(str(wheels), str(root_venv))
    assert sources_problem(str(wheels), str(user_venv)) is None  # pip runs as nobody there
    os.chown(wheel, 0, 0)

    wheels.chmod(0o777)
    assert "can be written by its group and others" in sources_problem(str(wheels), str(root_venv))
    wheels.chmod(0o755)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, nobody.pw_uid, nobody.pw_gid)
    (theirs / "link").symlink_to(wheels)
    assert f"{theirs} belongs to nobody" in sources_problem(str(theirs / "link"), str(root_venv))
    assert "is not a directory" in sources_problem(str(wheel), str(root_venv))


def test_the_distribution_of_an_app_is_read_without_following_a_planted_link(tmp_path):
    """A user-owned environment: a top_level.txt that links to a root-only file is not read through."""
    import os
    import pwd


    nobody = pwd.getpwnam("nobody")
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    good = site / "omero_figure-8.0.1.dist-info"
    good.mkdir(parents=True)
    (good / "top_level.txt").write_text("omero_figure\n")
    planted = site / "evil_pkg-1.0.dist-info"
    planted.mkdir()
    secret = tmp_path / "root-only"
    secret.write_text("omero_iviewer\n")
    secret.chmod(0o600)
    (planted / "top_level.txt").symlink_to(secret)
    for d in (tmp_path / "venv", tmp_path / "venv" / "lib", site.parent, site, planted):
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    os.lchown(planted / "top_level.txt", nobody.pw_uid, nobody.pw_gid)
    assert distribution_of(str(tmp_path / "venv"), "omero_figure") == "omero-figure"
    # through the link the planted package would claim omero_iviewer; it is skipped, the guess stands
    assert distribution_of(str(tmp_path / "venv"), "omero_iviewer") == "omero-iviewer"
