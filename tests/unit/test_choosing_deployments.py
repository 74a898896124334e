"""Which deployment a command or the wizard is about, on a host with several (issue 26): the top-level
--omerodir is honoured by every command, a named deployment that does not exist is refused, and the
wizard reopens the one it ran last."""

from __future__ import annotations

import pytest

from omerowizard import cli
from omerowizard.system.deployments import Deployment


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def recorded(omerodir) -> Deployment:
    omerodir.mkdir(parents=True, exist_ok=True)
    dep = Deployment(omerodir)
    dep.remember("omero-web", str(omerodir.parent / "venv3"))
    return dep


def test_the_top_level_omerodir_names_the_deployment_of_answers(tmp_path, capsys):
    a, b = recorded(tmp_path / "a" / "OMERO.web"), recorded(tmp_path / "b" / "OMERO.web")
    assert cli.main(["--omerodir", b.omerodir, "answers"]) == 0
    out = capsys.readouterr().out
    assert f"deployment in {b.omerodir}" in out and a.omerodir not in out
    assert cli.main(["--omerodir", a.omerodir, "answers", "--omerodir", b.omerodir]) == 2  # which one?
    assert "--omerodir" in capsys.readouterr().err


def test_a_named_deployment_that_does_not_exist_is_refused_with_status_2(tmp_path, capsys):
    recorded(tmp_path / "a" / "OMERO.web")
    for argv in (["answers", "--omerodir", "/nonexistent"], ["--omerodir", "/nonexistent", "answers"]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "/nonexistent" in err and "no deployment" in err, err
