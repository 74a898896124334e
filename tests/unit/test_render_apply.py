"""Planning files as differences and applying them: atomic write, backup, restore when the
server's check fails, staging when this process may not write, removal on a change of kind.
The server checks are replaced by fakes here; the e2e tier runs the real nginx and Apache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.system import platforms, webservers as servercheck
from omerowizard.plan.changes import files as serverfiles
from omerowizard.model.errors import ApplyError
from omerowizard.system.omero import OmeroTarget
from omerowizard.plan.plan import Plan
from omerowizard.plan.planner import make_plan
from omerowizard.state import probe as probe_mod
from omerowizard.state.probe import probe
from omerowizard.system.omero import Omero
from omerowizard.system.webservers import CheckResult


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(servercheck, "check_nginx", lambda path, system: [CheckResult(True, f"nginx -t with {path}")])
    monkeypatch.setattr(servercheck, "check_apache", lambda path, system, mods: [CheckResult(True, "apache2 -t")])
    monkeypatch.setattr(servercheck, "reload_system", lambda kind: None)
    return tmp_path / "home"


def make(tmp_path, **ws):
    return answers.validate({
        "omero": {"user": "nobody", "omerodir": str(tmp_path / "OMERO.web"), "venv": "/srv/venv3"},
        "web_server": {"kind": "nginx", "server_name": "omero.example.org", "port": 8080,
                       "config_path": str(tmp_path / "site" / "omero.conf"), **ws},
        "sessions": {"backend": "redis"}})


def plan_for(a) -> Plan:
    """The plan of ``a`` over what the probe reads of this machine (the test's own directories)."""
    return make_plan(a, probe(a, Omero(OmeroTarget(a.omero.user, Path(a.omero.venv), Path(a.omero.omerodir)))))


def test_first_run_creates_files_and_a_rerun_plans_nothing(tmp_path):
    a = make(tmp_path)
    p = plan_for(a)
    assert [Path(f.path).name for f in p.files] == ["omero.conf", "maintenance.html"]
    assert all(f.old is None and not f.staged for f in p.files)
    said: list[str] = []
    serverfiles.apply_files(p, said.append)
    assert (tmp_path / "site" / "omero.conf").read_text() == p.files[0].new
    assert (tmp_path / "OMERO.web" / "etc" / "maintenance" / "maintenance.html").exists()
    assert any(s.startswith("nginx -t with") for s in said)
    assert plan_for(a).files == []


def test_a_change_is_an_update_with_a_diff(tmp_path, home):
    """(The previous version is kept by apply's backup of the run, see test_backup.py.)"""
    serverfiles.apply_files(plan_for(make(tmp_path)), lambda s: None)
    p = plan_for(make(tmp_path, port=8090))
    assert len(p.files) == 1 and p.files[0].describe().startswith("update ")
    assert "-    listen 8080;" in p.files[0].diff() and "+    listen 8090;" in p.files[0].diff()
    said: list[str] = []
    serverfiles.apply_files(p, said.append)
    assert "listen 8090;" in (tmp_path / "site" / "omero.conf").read_text()
    assert not list(tmp_path.rglob("*.omerowizard-*")), "no temporary file is left behind"


def test_a_failing_check_restores_the_previous_file(tmp_path, monkeypatch):
    serverfiles.apply_files(plan_for(make(tmp_path)), lambda s: None)
    before = (tmp_path / "site" / "omero.conf").read_text()
    monkeypatch.setattr(servercheck, "check_nginx",
                        lambda path, system: [CheckResult(False, "nginx -t", "nginx: [emerg] unexpected \"}\"")])
    reloads: list[str] = []
    monkeypatch.setattr(servercheck, "reload_system", lambda kind: reloads.append(kind))
    with pytest.raises(ApplyError) as err:
        serverfiles.apply_files(plan_for(make(tmp_path, port=8090)), lambda s: None)
    assert "unexpected" in str(err.value) and "restored" in str(err.value)
    assert (tmp_path / "site" / "omero.conf").read_text() == before
    assert reloads == []


def test_a_failing_check_of_a_new_file_removes_it(tmp_path, monkeypatch):
    monkeypatch.setattr(servercheck, "check_nginx", lambda path, system: [CheckResult(False, "nginx -t", "bad")])
    with pytest.raises(ApplyError):
        serverfiles.apply_files(plan_for(make(tmp_path)), lambda s: None)
    assert not (tmp_path / "site" / "omero.conf").exists()


def test_debian_layout_links_sites_enabled_and_reloads_a_running_server(tmp_path, monkeypatch):
    layout = platforms.ServerLayout(str(tmp_path / "nginx"), str(tmp_path / "nginx/sites-available"),
                                    str(tmp_path / "nginx/sites-enabled"), "nginx", "nginx", ())
    monkeypatch.setitem(platforms.NGINX, "debian", layout)
    monkeypatch.setattr(platforms, "distribution", lambda *a: "debian")
    reloads: list[str] = []
    monkeypatch.setattr(servercheck, "reload_system", lambda kind: reloads.append(kind) or CheckResult(True, "reload"))
    a = make(tmp_path, config_path=None)
    p = plan_for(a)
    site = p.files[0]
    assert site.path == str(tmp_path / "nginx/sites-available/omero-web.conf") and site.system
    serverfiles.apply_files(p, lambda s: None)
    link = tmp_path / "nginx/sites-enabled/omero-web.conf"
    assert os.readlink(link) == site.path
    assert reloads == ["nginx"]
    assert plan_for(a).files == []
    link.unlink()
    again = plan_for(a)
    assert [f.describe().split()[0] for f in again.files] == ["link"]


def test_switching_kind_removes_the_file_an_earlier_run_wrote(tmp_path):
    serverfiles.apply_files(plan_for(make(tmp_path)), lambda s: None)
    p = plan_for(make(tmp_path, kind="apache", config_path=str(tmp_path / "site" / "apache.conf")))
    verbs = {Path(f.path).name: f.describe().split()[0] for f in p.files}
    assert verbs == {"apache.conf": "create", "omero.conf": "remove"}
    serverfiles.apply_files(p, lambda s: None)
    assert not (tmp_path / "site" / "omero.conf").exists()
    assert (tmp_path / "site" / "apache.conf").exists()


def test_a_file_edited_by_hand_since_is_left_in_place(tmp_path):
    serverfiles.apply_files(plan_for(make(tmp_path)), lambda s: None)
    (tmp_path / "site" / "omero.conf").write_text("# mine now\n")
    p = plan_for(make(tmp_path, kind="development"))
    assert [(Path(f.path).name, f.new) for f in p.files] == [("maintenance.html", None)]
    assert any("edited since" in n for n in p.notes)


def test_when_the_target_is_not_writable_files_are_staged_with_the_commands(tmp_path, monkeypatch, home):
    monkeypatch.setattr(probe_mod, "writable", lambda path: False)
    p = plan_for(make(tmp_path))
    assert all(f.staged for f in p.files)
    assert all("[staged for an administrator]" in line for line in p.lines() if "omero.conf" in line)
    said: list[str] = []
    serverfiles.apply_files(p, said.append)
    staged = home / "state" / "staging" / str(tmp_path / "site" / "omero.conf").lstrip("/")
    assert staged.read_text() == p.files[0].new
    assert not (tmp_path / "site" / "omero.conf").exists()
    assert f"  install -D -m 644 {staged} {tmp_path / 'site' / 'omero.conf'}" in said
    assert (home / "state" / "staging" / "INSTALL.txt").read_text().startswith("This process may not write")


def test_windows_files_are_staged_on_unix_and_a_rerun_is_empty(tmp_path, home):
    a = answers.validate({"platform": "windows", "web_server": {"server_name": "omero.example.org"},
                          "application_server": {"host": "10.0.0.5"}})
    p = plan_for(a)
    assert [f.path for f in p.files] == [r"C:\inetpub\omero-web\web.config", r"C:\inetpub\omero-web\maintenance.html"]
    assert all(f.staged for f in p.files) and p.jobs == []
    said: list[str] = []
    serverfiles.apply_files(p, said.append)
    assert (home / "state" / "staging" / "C" / "inetpub" / "omero-web" / "web.config").exists()
    assert any("appcmd" in s for s in said)
    assert plan_for(a).files == []


def test_utf16_task_file_round_trips_for_the_rerun(tmp_path, home):
    a = answers.validate({"platform": "windows", "web_server": {"omero_web_version": "5.2.8"}})
    p = plan_for(a)
    serverfiles.apply_files(p, lambda s: None)
    raw = (home / "state" / "staging" / "C" / "omero_dist" / "omero-web-clearsessions.xml").read_bytes()
    assert raw.startswith(b"\xff\xfe")
    assert plan_for(a).files == []


def test_the_systemd_unit_is_written_when_asked_and_unchecked_without_systemd(tmp_path, monkeypatch, home):
    unit = tmp_path / "systemd" / "omero-web.service"
    monkeypatch.setattr(platforms, "SYSTEMD_UNIT", str(unit))
    monkeypatch.setattr(servercheck, "check_systemd",
                        lambda path: [CheckResult(True, "systemd does not run here: the unit was not checked", ran=False)])
    a = make(tmp_path, kind="development", systemd=True)
    p = plan_for(a)
    assert [f.path for f in p.files] == [str(unit)]
    said: list[str] = []
    serverfiles.apply_files(p, said.append)
    assert "ExecStart=/srv/venv3/bin/omero web start" in unit.read_text()
    assert "systemd does not run here: the unit was not checked" in said
    assert plan_for(a).files == []
