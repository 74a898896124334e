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


def _plan_with_site(tmp_path, content: str, owners: dict | None = None, replace: bool = False):
    from pathlib import Path

    from omerowizard.catalogue import answers
    from omerowizard.model.host import FileFact
    from omerowizard.plan.planner import make_plan
    from omerowizard.state.probe import State
    from omerowizard.system.omero import OmeroTarget

    site = str(tmp_path / "omero-web.conf")
    a = answers.load_text(f"web_server: {{kind: nginx, server_name: omero.example.org, config_path: {site}, "
                          f"replace_existing: {str(replace).lower()}}}\n")
    state = State(target=OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir")),
                  installed=True, packages={"django": "5.2", "omero-web": "5.33.2"}, running_pid=1,
                  files={site: FileFact(content=content)}, owners=owners or {})
    return site, make_plan(a, state)


def test_a_file_another_deployment_wrote_is_named_as_written_by_it(tmp_path):
    """"a file omerowizard did not write" was said of a file whose header says omerowizard wrote it."""
    header = "# OMERO.web behind nginx, written by omerowizard. Rerun omerowizard to change it:\nserver {}\n"
    site, plan = _plan_with_site(tmp_path, header, owners={str(tmp_path / "omero-web.conf"): "/srv/lab2/OMERO.web"})
    assert any(r.startswith(f"{site} was written by the deployment in /srv/lab2/OMERO.web") for r in plan.refusals), \
        plan.refusals
    site, plan = _plan_with_site(tmp_path, header)  # no deployment of this host records it any more
    text = " ".join(plan.refusals)
    assert "omerowizard did not write" not in text and "written by omerowizard for another deployment" in text, text
    site, plan = _plan_with_site(tmp_path, header, replace=True)
    change = next(f for f in plan.files if f.path == site)
    assert "omerowizard did not write" not in change.describe(), change.describe()
    site, plan = _plan_with_site(tmp_path, "# written by hand\n")  # the hand-written file keeps its message
    assert "omerowizard did not write it" in " ".join(plan.refusals)


def test_an_upgrade_or_downgrade_of_a_shared_environment_warns_about_the_other_deployments(tmp_path):
    """Two deployments share one venv: the downgrade planned for one changed the other's OMERO.web unsaid."""
    import dataclasses

    from omerowizard.catalogue import answers
    from omerowizard.plan.planner import make_plan
    from omerowizard.system import deployments
    from tests.unit.test_plan import upgrade_state

    venv = str(tmp_path / "venv3")
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
    Deployment(tmp_path / "a").remember("omero-web", venv)
    Deployment(tmp_path / "b").remember("omero-web", venv)
    Deployment(tmp_path / "c").remember("omero-web", str(tmp_path / "other-venv"))
    assert deployments.sharing_venv(venv, str(tmp_path / "a")) == [str(tmp_path / "b")]

    s = upgrade_state("5.33.2", "5.29.2", {"omero-web": "5.29.2"})
    s = dataclasses.replace(s, sharing_venv=(str(tmp_path / "b"),))
    p = make_plan(answers.load_text("omero: {web_version: '5.29.2'}\n"), s)
    assert p.upgrade and p.upgrade.verb == "downgrade"
    warning = [n for n in p.notes if str(tmp_path / "b") in n]
    assert warning and "downgrade" in warning[0] and "same environment" in warning[0], p.notes
