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
