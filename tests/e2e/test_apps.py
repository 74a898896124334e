"""Web apps for real (issue 15): OMERO.figure, OMERO.iviewer, OMERO.parade, OMERO.mapr, OMERO.fpbioimage and a
custom app, installed from the package registry by `omerowizard apply` into a virtual environment of this module
(never the shared venv3; made once per module with install-omero, packages from pip's cache after the first run),
served through a private nginx, removed again with only their own config entries; a pip failure in the middle
restores the environment and the config."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import zipfile
from pathlib import Path

import pytest

from omerowizard.catalogue import answers as answers_mod
from omerowizard.features.apps import catalogue as apps_mod
from omerowizard.system.distributions import packages as installed
from tests import parts
from tests.e2e.conftest import APPS_VENV, USER
from tests.parts import nginx_wrapper

TEST_PACKAGES = ["omero-figure", "omero-iviewer", "omero-mapr", "omero-parade", "omero-fpbioimage", "omero-webtest",
                 "omerowizard-e2e-broken-app"]
WEBTEST_LINK = ["Web test", "webtest_index", {"title": "The webtest app"}]
MINE = ["Mine", "https://www.example.org/", {"title": "added by hand"}]


@pytest.fixture(scope="module")
def venv(apps_venv) -> Path:
    uninstall(*TEST_PACKAGES)  # what an earlier run (or another test module) left
    return apps_venv


def uninstall(*names: str) -> None:
    present = [n for n in names if n in installed(APPS_VENV)]
    if present:
        subprocess.run([str(APPS_VENV / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", *present],
                       check=True, capture_output=True, cwd="/")


class Site:
    """One deployment in the apps environment, behind a private nginx."""

    def __init__(self, deployment, venv: Path):
        self.d = deployment
        self.venv = venv
        self.port = parts.free_port()
        self.conf = deployment.workdir / "site" / "omero-web.conf"
        self.nginx: Path | None = None

    def answers(self, apps: dict | None = None, **more) -> dict:
        return {"omero": {"venv": str(self.venv)}, "application_server": {"workers": 1},
                "web_server": {"port": self.port, "config_path": str(self.conf)},
                "sessions": {"clearsessions": "off"}, "apps": apps or {}, **more}

    def apply(self, apps: dict | None = None, name: str = "answers.yml", expect: int = 0, dry: bool = False,
              **more) -> subprocess.CompletedProcess:
        path = self.d.answers_file(self.answers(apps, **more), name=name)
        proc = self.d.cli("apply", *(["--dry-run"] if dry else []), str(path), timeout=900)
        assert proc.returncode == expect, proc.stdout + proc.stderr
        return proc

    def start_nginx(self) -> None:
        self.nginx = nginx_wrapper(self.conf, self.d.workdir)
        subprocess.run([parts.require("nginx"), "-c", str(self.nginx), "-e", str(self.d.workdir / "e.log")],
                       check=True)
        parts.wait_port(self.port)

    def stop_nginx(self) -> None:
        if self.nginx:
            subprocess.run([parts.require("nginx"), "-c", str(self.nginx), "-e", str(self.d.workdir / "e.log"),
                            "-s", "stop"], capture_output=True)

    def get(self, path: str) -> parts.Response:
        return parts.http_get(f"http://127.0.0.1:{self.port}{path}", headers={"Host": "omero.example.org"},
                              timeout=60)

    def omero(self, *args: str) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", USER, "--", "env", f"OMERODIR={self.d.omerodir}",
                f"HOME={pwd.getpwnam(USER).pw_dir}", str(self.venv / "bin" / "omero"), *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True, cwd="/")

    def config(self) -> dict[str, str]:
        out = self.omero("config", "get").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def json(self, key: str):
        return json.loads(self.config()[key])


@pytest.fixture
def site(deployment, venv):
    s = Site(deployment, venv)
    yield s
    s.stop_nginx()
    if (deployment.omerodir / "var" / "django.pid").exists():
        subprocess.run(["runuser", "-u", USER, "--", "env", f"OMERODIR={deployment.omerodir}",
                        str(venv / "bin" / "omero"), "web", "stop"], capture_output=True, cwd="/")


def default(key: str) -> list:
    return json.loads(apps_mod.KEYS[key].default)


def login_redirect(r: parts.Response) -> bool:
    return r.status == 302 and "/webclient/login/" in r.headers.get("location", "")


def test_figure_and_iviewer_then_figure_removed_with_a_hand_added_link_kept(site):
    first = site.apply()  # OMERO.web without apps, started
    assert "omero web start" in first.stdout
    site.start_nginx()
    assert site.get("/figure/").status == 404

    wanted = {"enabled": ["figure", "iviewer"], "iviewer_default_viewer": True}
    dry = site.apply(wanted, dry=True)
    for line in ("pip install omero-figure (web app figure: omero-figure ", "pip install omero-iviewer (web app "
                 "iviewer: omero-iviewer ", "collect static files, then reload OMERO.web gracefully"):
        assert line in dry.stdout, (line, dry.stdout)
    assert "omero-figure" not in installed(site.venv)  # the dry run installed nothing

    run = site.apply(wanted)
    assert "==> collect static files" in run.stdout and "==> reload OMERO.web" in run.stdout, run.stdout
    assert "==> check the web apps" in run.stdout, run.stdout
    have = installed(site.venv)
    assert "omero-figure" in have and "omero-iviewer" in have
    for path in ("/figure/", "/iviewer/"):
        assert login_redirect(site.get(path)), (path, site.get(path))
    static = site.d.omerodir / "var" / "static"
    for path in ("omero_iviewer/openwith.js", "omero_figure/bootstrap-icons.css"):
        r = site.get(f"/static/{path}")  # collected into var/static, served by nginx
        assert r.status == 200 and r.body == (static / path).read_text(), path

    figure, iviewer = apps_mod.BY_NAME["figure"], apps_mod.BY_NAME["iviewer"]
    config = site.config()
    assert json.loads(config["omero.web.apps"]) == ["omero_figure", "omero_iviewer"]
    assert json.loads(config["omero.web.open_with"]) == default("omero.web.open_with") + [
        figure.open_with[0], iviewer.open_with[0]]
    assert json.loads(config["omero.web.ui.top_links"]) == default("omero.web.ui.top_links") + [figure.top_links[0]]
    assert config["omero.web.viewer.view"] == "omero_iviewer.views.index"
    # exactly the README's entries (as `omero config append` would have added them)
    assert figure.open_with[0] == ["omero_figure", "new_figure", {"supported_objects": ["images"],
                                                                  "target": "_blank", "label": "OMERO.figure"}]
    assert iviewer.open_with[0][2]["script_url"] == "omero_iviewer/openwith.js"

    again = site.apply(wanted)
    assert "Nothing to change" in again.stdout, again.stdout

    mine = MINE
    site.omero("config", "append", "omero.web.ui.top_links", json.dumps(mine))
    links_before = site.json("omero.web.ui.top_links")
    run = site.apply({"enabled": ["iviewer"]})
    config = site.config()
    assert json.loads(config["omero.web.apps"]) == ["omero_iviewer"]
    assert json.loads(config["omero.web.open_with"]) == default("omero.web.open_with") + [iviewer.open_with[0]]
    assert json.loads(config["omero.web.ui.top_links"]) == [x for x in links_before if x != figure.top_links[0]]
    assert mine in json.loads(config["omero.web.ui.top_links"])
    assert config["omero.web.viewer.view"] == "omero_iviewer.views.index"
    assert site.get("/figure/").status == 404
    assert login_redirect(site.get("/iviewer/"))
    assert "omero-figure" in installed(site.venv)  # apps.uninstall_removed is false

    # iviewer no longer the default viewer: only the key the wizard set goes back to OMERO's default
    site.apply({"enabled": ["iviewer"], "iviewer_default_viewer": False})
    assert "omero.web.viewer.view" not in site.config()

    # `omerowizard answers` reads the apps back from the config
    answers = site.d.cli("answers", "--user", USER, "--venv", str(site.venv), "--omerodir", str(site.d.omerodir))
    assert answers.returncode == 0, answers.stderr
    printed = answers_mod.load_text(answers.stdout)  # every string tagged !unsafe (for Ansible), read back as it is
    assert printed.apps.enabled == ("iviewer",) and printed.apps.iviewer_default_viewer is False, answers.stdout


def test_parade_mapr_and_a_custom_app_then_uninstalled(site):
    custom = {"requirement": "omero-webtest==0.4.2", "app": "omero_webtest", "top_links": json.dumps(WEBTEST_LINK)}
    wanted = {"enabled": ["mapr", "parade"], "mapr_config": "gene, antibody", "custom": [custom]}
    run = site.apply(wanted)
    assert "omero web start" in run.stdout
    site.start_nginx()
    have = installed(site.venv)
    assert {"omero-mapr", "omero-parade", "omero-webtest"} <= set(have) and have["omero-webtest"] == "0.4.2"
    config = site.config()
    assert json.loads(config["omero.web.apps"]) == ["omero_mapr", "omero_parade", "omero_webtest"]
    assert json.loads(config["omero.web.ui.center_plugins"]) == [
        ["Parade", "omero_parade/init.js.html", "omero_parade"]]
    assert json.loads(config["omero.web.mapr.config"]) == [apps_mod.MAPR_PRESETS["gene"][0],
                                                           apps_mod.MAPR_PRESETS["antibody"][0]]
    assert json.loads(config["omero.web.ui.top_links"]) == default("omero.web.ui.top_links") + [
        apps_mod.MAPR_PRESETS["gene"][1], apps_mod.MAPR_PRESETS["antibody"][1], WEBTEST_LINK]
    for path in ("/parade/", "/mapr/gene/", "/webtest/"):
        assert site.get(path).status in (200, 302), path
    assert site.get("/static/omero_parade/css/parade.css").status == 200
    assert site.get("/static/mapr/css/ome.mapr.css").status == 200
    assert "Nothing to change" in site.apply(wanted).stdout

    # everything removed, packages uninstalled: the config is OMERO's default again
    run = site.apply({"enabled": [], "uninstall_removed": True})
    assert "pip uninstall omero-parade" in run.stdout, run.stdout
    have = installed(site.venv)
    assert not {"omero-mapr", "omero-parade", "omero-webtest"} & set(have)
    assert "omero-web" in have and "numpy" in have  # only the apps' own packages go
    config = site.config()
    for key in ("omero.web.apps", "omero.web.ui.center_plugins", "omero.web.ui.top_links", "omero.web.mapr.config"):
        assert key not in config, (key, config.get(key))
    assert site.get("/parade/").status == 404


def broken_wheel(directory: Path) -> Path:
    """A wheel whose metadata pip reads (so its dry run passes) but whose content does not unpack: pip fails in
    the middle of installing it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "omerowizard_e2e_broken_app-0.1-py3-none-any.whl"
    info = "omerowizard_e2e_broken_app-0.1.dist-info"
    payload = b"# " + b"x" * 4000 + b"\n"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("omerowizard_e2e_broken_app/__init__.py", payload)
        z.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: omerowizard-e2e-broken-app\nVersion: 0.1\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/top_level.txt", "omerowizard_e2e_broken_app\n")
        z.writestr(f"{info}/RECORD", "")
    data = bytearray(path.read_bytes())
    at = data.find(b"x" * 100)
    data[at:at + 10] = b"y" * 10  # the stored bytes no longer match their CRC
    path.write_bytes(bytes(data))
    os.chmod(directory, 0o755)
    return path


def test_a_pip_failure_in_the_middle_restores_the_environment_and_the_config(site, tmp_path):
    site.apply({"enabled": ["iviewer"]})
    uninstall("omero-fpbioimage")
    before_packages = installed(site.venv)
    before_config = site.config()

    # a package the index does not have: refused before anything changes
    missing = {"enabled": ["iviewer", "fpbioimage"],
               "custom": [{"requirement": "omerowizard-no-such-package-e2e", "app": "no_such_app"}]}
    refused = site.apply(missing, expect=1)
    assert "web apps: pip cannot install" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    assert "nothing was changed" in refused.stdout + refused.stderr
    assert installed(site.venv) == before_packages and site.config() == before_config

    # a package whose install fails after fpbioimage was installed: both undone, the config as before
    wheels = tmp_path / "wheels"
    broken_wheel(wheels)
    wanted = {"enabled": ["iviewer", "fpbioimage"], "find_links": str(wheels),
              "custom": [{"requirement": "omerowizard-e2e-broken-app", "app": "omerowizard_e2e_broken_app"}]}
    run = site.apply(wanted, expect=1)
    out = run.stdout + run.stderr
    assert "web app fpbioimage: pip install omero-fpbioimage" in out, out
    assert "pip could not install omerowizard-e2e-broken-app" in out, out
    assert "uninstalled omero-fpbioimage" in out, out
    assert installed(site.venv) == before_packages
    assert site.config() == before_config
    assert login_redirect(parts.http_get(f"http://127.0.0.1:{site.d.app_port}/iviewer/"))


def test_apps_added_by_hand_are_read_back_and_then_removed_with_their_own_entries_only(site):
    site.apply()
    site.d.state.answers.unlink()  # from here on a deployment made by hand: no saved answers, and iviewer added
    # as its README says, with a link of one's own
    web = installed(site.venv)["omero-web"]
    subprocess.run([str(site.venv / "bin" / "python"), "-m", "pip", "install", "-q", "omero-iviewer",
                    f"omero-web=={web}"], check=True, capture_output=True, cwd="/")
    iviewer = apps_mod.BY_NAME["iviewer"]
    site.omero("config", "append", "omero.web.apps", '"omero_iviewer"')
    site.omero("config", "append", "omero.web.open_with", '["omero_iviewer", "omero_iviewer_index", '
               '{"supported_objects":["images", "dataset", "well"], "script_url": "omero_iviewer/openwith.js", '
               '"label": "OMERO.iviewer"}]')
    site.omero("config", "set", "omero.web.viewer.view", "omero_iviewer.views.index")
    site.omero("config", "append", "omero.web.ui.top_links", json.dumps(MINE))
    printed = site.d.cli("answers", "--user", USER, "--venv", str(site.venv), "--omerodir", str(site.d.omerodir))
    assert printed.returncode == 0, printed.stderr
    read_back = answers_mod.load_text(printed.stdout).to_nested()["apps"]
    assert read_back["enabled"] == ["iviewer"] and read_back["iviewer_default_viewer"] is True, printed.stdout
    # the apps read back, with this test's web server (never the system's: the printed file has the defaults)
    same = site.apply(read_back, name="read-back.yml")
    assert "Nothing to change" in same.stdout, same.stdout
    assert not site.d.state.answers.exists()  # still no saved answers: nothing was applied

    site.apply({**read_back, "enabled": []}, name="edited.yml")
    config = site.config()
    assert "omero.web.apps" not in config and "omero.web.viewer.view" not in config
    assert iviewer.open_with[0] not in json.loads(config.get("omero.web.open_with", "[]"))
    assert json.loads(config["omero.web.ui.top_links"]) == default("omero.web.ui.top_links") + [MINE]
    assert parts.http_get(f"http://127.0.0.1:{site.d.app_port}/iviewer/").status == 404
