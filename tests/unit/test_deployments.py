"""A deployment is identified by its OMERODIR: state per deployment, migrated from the first version."""

from __future__ import annotations

import json

import pytest
import yaml

from omerowizard.system import backups as backup, deployments, locations
from omerowizard.system.deployments import Deployment, normalise, slug


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize("spelling", ["//srv/omero", "/srv/omero/", "/srv//omero", "/srv/./omero", "/srv/x/../omero"])
def test_one_directory_has_one_spelling(spelling):
    assert normalise(spelling) == "/srv/omero"
    assert slug(spelling) == slug("/srv/omero")


def test_similar_paths_are_different_deployments():
    assert slug("/a_b") != slug("/a/b")


def test_state_is_per_deployment_and_private(home):
    a, b = Deployment("/srv/a").ensure(), Deployment("/srv/b").ensure()
    assert a.dir != b.dir and a.answers.parent == a.dir
    assert (a.dir.stat().st_mode & 0o777) == 0o700
    a.save_record({"/etc/nginx/a.conf": {"sha256": "x"}})
    assert b.record() == {}
    a.remember("omero-web", "/opt/venv")
    b.remember("omero-web", "/opt/venv")
    assert {d.omerodir for d in deployments.all_deployments()} == {"/srv/a", "/srv/b"}
    assert deployments.owner_of("/etc/nginx/a.conf", b).omerodir == "/srv/a"
    assert deployments.owner_of("/etc/nginx/a.conf", a) is None


def test_the_first_versions_per_user_state_is_moved_into_its_deployment(home):
    cfg, state = home / "config", home / "state"
    cfg.mkdir(parents=True)
    state.mkdir(parents=True)
    (cfg / "answers.yml").write_text(yaml.safe_dump({"omero": {"omerodir": "/srv/old", "user": "omero-web",
                                                               "venv": "/opt/v"}}))
    (state / "serverfiles.json").write_text(json.dumps({"/etc/nginx/old.conf": {"sha256": "abc"}}))
    b = state / "backups" / "20260101-000000-000000"
    b.mkdir(parents=True)
    (b / "manifest.json").write_text(json.dumps({"created": "20260101-000000-000000", "pid": 1, "omerodir": "/srv/old",
                                                 "user": "omero-web", "venv": "/opt/v", "was_running": False,
                                                 "entries": [], "crontab": None, "status": "done"}))
    dep = Deployment("/srv/old").ensure()
    assert "/srv/old" in dep.answers.read_text()
    assert dep.record() == {"/etc/nginx/old.conf": {"sha256": "abc"}}
    assert [x.id for x in backup.all_backups(dep)] == ["20260101-000000-000000"]
    assert not (cfg / "answers.yml").exists() and not (state / "serverfiles.json").exists()
    assert dep.identity().user == "omero-web"
    assert locations.state_dir() == state
