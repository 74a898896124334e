"""Input normalised before it identifies anything: two spellings of one OMERODIR are one
deployment, with one clearsessions line (issue 11)."""

from __future__ import annotations

import subprocess

from tests.e2e.conftest import USER


def _ours(d) -> list[str]:
    text = subprocess.run(["crontab", "-l", "-u", USER], capture_output=True, text=True).stdout
    return [line for line in text.splitlines() if str(d.omerodir).lstrip("/") in line]


def test_two_spellings_of_omerodir_are_one_deployment(deployment):
    d = deployment
    site = d.workdir / "site" / "omero.conf"
    answers = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "daily"}, "start": False,
               "web_server": {"config_path": str(site), "port": 8080}}
    odd = d.answers_file({**answers, "omero": {"omerodir": "//" + str(d.omerodir).lstrip("/") + "/"}}, name="odd.yml")
    first = d.cli("apply", str(odd))
    assert first.returncode == 0, first.stdout + first.stderr
    assert _ours(d) == [line for line in _ours(d) if f"OMERODIR={d.omerodir} " in line] and len(_ours(d)) == 1
    plain = d.answers_file(answers, name="plain.yml")
    second = d.cli("apply", str(plain))
    assert second.returncode == 0 and "Nothing to change" in second.stdout, second.stdout + second.stderr
    assert len(_ours(d)) == 1


def _digest(path):
    import hashlib
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def test_esc_in_a_config_value_and_a_final_line_break_exit_2_and_leave_omero_working(deployment):
    """The issue's cases: an ESC in an extra_config value once made config.xml invalid XML (every
    later omero call failed); prefix "/omero2\\n" once passed validation and crashed planning
    after a backup and a restart."""
    d = deployment
    site = d.workdir / "site" / "omero.conf"
    base = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}, "start": False,
            "web_server": {"config_path": str(site), "port": 8080}}
    first = d.cli("apply", str(d.answers_file(base)))
    assert first.returncode == 0, first.stdout + first.stderr
    before = _digest(d.config_xml), _digest(site)
    for name, extra, key in [("esc.yml", {"extra_config": {"omero.web.login_logo": "/x\x1b[2J.png"}},
                              "extra_config.omero.web.login_logo"),
                             ("newline.yml", {"prefix": "/omero2\n"}, "prefix"),
                             ("server-name.yml", {"web_server": {"server_name": "a.example.org\nlisten 81;"}},
                              "web_server.server_name")]:
        f = d.answers_file({**base, **extra, "web_server": {**base["web_server"], **extra.get("web_server", {})}},
                           name=name)
        proc = d.cli("apply", str(f))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f": {key}: " in proc.stderr and "nothing was changed" in proc.stderr and "\x1b" not in proc.stderr
        assert "Traceback" not in proc.stderr
    assert (_digest(d.config_xml), _digest(site)) == before
    assert d.omero("config", "get").returncode == 0
