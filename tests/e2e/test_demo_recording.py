"""The demonstration's run step replays what the real apply reported, never made-up events.

``tests/support/demo_run.json`` holds the events of real runs of ``wizard.apply`` against the
real OMERO.web (Redis sessions and CORS origins; then back to file sessions, which installs the
clearsessions job; then a run that preflight refuses because the application port is taken; then one that installs
OMERO.figure, in the web apps' own environment, and one that restarts for a gunicorn setting),
with this machine's paths and ports replaced by the demonstration's. This test makes the runs
again and checks that the recording still has the same steps and kinds of events in the same
order; ``OMEROWIZARD_RECORD=1`` writes the new recording instead (then regenerate the snapshots
and screenshots).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from dataclasses import asdict
from pathlib import Path

from omerowizard.catalogue import answers as answers_mod
from omerowizard.ui import wizard
from tests.support import demo
from tests.support.demo import RECORDING, event_from_json
from tests.e2e.conftest import APPS_VENV, VENV


def _run(d, flat: dict) -> list[dict]:
    a, plan, omero = wizard.make(wizard.applicable(flat))
    events: list = []
    wizard.apply(plan, omero, events.append)
    return [{"type": type(e).__name__, **asdict(e)} for e in events]


def _normalise(events: list[dict], d, redis_url: str) -> list[dict]:
    swaps = [(str(d.omerodir), demo.OMERODIR), (str(VENV), demo.VENV), (str(APPS_VENV), demo.VENV), (str(d.workdir / "nginx" / "omero-web.conf"),
             demo.NGINX_FILE), (str(d.state.dir), "/root/.local/state/omerowizard/deployments/opt_omero_web_OMERO.web"),
             (str(d.home), "/root/.local/state/omerowizard"), (redis_url, "redis://127.0.0.1:6379/0"),
             (f":{d.app_port}/", ":4080/"), (f" {d.app_port} ", " 4080 "), (str(d.workdir), "/root")]
    out = []
    for e in events:
        if e["type"] == "Output" and e["line"].startswith("WARNING: Location 'file:///"):
            continue  # this machine's pip configuration names index directories it does not have
        e = dict(e)
        for k, v in e.items():
            if isinstance(v, str):
                for old, new in swaps:
                    v = v.replace(old, new)
                v = re.sub(r"backups/\d{8}-\d{6}-\d+", "backups/20261122-010000-000000", v)  # backup directories
                e[k] = v
        out.append(e)
    return out


def _shape(events: list[dict]) -> list[tuple[str, str]]:
    """The kinds of events in order; a run of output lines counts once (pip prints a progress bar only
    when it downloads, OMERO.web's log a line per worker)."""
    out: list[tuple[str, str]] = []
    for e in events:
        kind = (e["type"], e.get("step", ""))
        if not (kind[0] == "Output" and out and out[-1] == kind):
            out.append(kind)
    return out


def test_the_demonstration_replays_what_apply_really_reports(deployment, redis_server, apps_venv, monkeypatch):
    d = deployment
    base = answers_mod.from_flat(demo.reconfigure_answers()).flat()
    base.update({"omero.user": "omero-web", "omero.venv": str(VENV), "omero.omerodir": str(d.omerodir),
                 "application_server.port": d.app_port, "application_server.workers": 1,
                 "web_server.config_path": str(d.workdir / "nginx" / "omero-web.conf"),
                 "sessions.location": redis_url(redis_server), "prefix": "/"})
    (d.workdir / "nginx").mkdir()
    monkeypatch.setenv("OMEROWIZARD_HOME", str(d.home))
    redis_run = _run(d, base)
    file_run = _run(d, {**base, "sessions.backend": "file", "sessions.clearsessions": "daily"})
    with socket.socket() as busy:  # another program on the application port: preflight refuses
        d.stop()
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", d.app_port))
        busy.listen()
        refused_run = _run(d, {**base, "application_server.workers": 2})
    # the web apps (in their own environment, never the shared venv3): pip, collectstatic, the apps' pages
    uninstall_figure = [str(apps_venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "omero-figure"]
    subprocess.run(uninstall_figure, capture_output=True, cwd="/")  # left by another test: the run installs it
    _run(d, {**base, "omero.venv": str(apps_venv)})  # OMERO.web runs there: adding an app is a reload
    apps_run = _run(d, {**base, "omero.venv": str(apps_venv), "apps.enabled": ["figure"]})
    # a gunicorn setting (no web server of ours serves the site to switch): a restart, not a reload
    restart_run = _run(d, {**base, "omero.venv": str(apps_venv), "apps.enabled": ["figure"],
                           "application_server.timeout": 90})
    subprocess.run(uninstall_figure, check=True, capture_output=True, cwd="/")
    runs = {"redis_cors": _normalise(redis_run, d, redis_url(redis_server)),
            "file_sessions": _normalise(file_run, d, redis_url(redis_server)),
            "refused": _normalise(refused_run, d, redis_url(redis_server)),
            "apps": _normalise(apps_run, d, redis_url(redis_server)),
            "restart": _normalise(restart_run, d, redis_url(redis_server))}
    assert runs["redis_cors"][-1]["type"] == "Finished" and runs["redis_cors"][-1]["ok"], runs["redis_cors"]
    assert runs["file_sessions"][-1]["ok"], runs["file_sessions"]
    assert not runs["refused"][-1]["ok"] and not runs["refused"][-1]["changed"], runs["refused"]
    assert runs["apps"][-1]["ok"], runs["apps"]
    assert ("StepStarted", "omero web restart") in _shape(runs["restart"]), _shape(runs["restart"])
    for step in ("install packages", "collect static files", "reload OMERO.web", "check the web apps"):
        assert ("StepStarted", step) in _shape(runs["apps"]), _shape(runs["apps"])
    if os.environ.get("OMEROWIZARD_RECORD"):
        RECORDING.write_text(json.dumps(runs, indent=1) + "\n")
    stored = json.loads(RECORDING.read_text())
    for name, events in runs.items():
        assert _shape(stored[name]) == _shape(events), \
            f"apply now reports {name} differently: record again with OMEROWIZARD_RECORD=1"
        [event_from_json(e) for e in stored[name]]  # every stored event is an event the front ends know


def redis_url(server) -> str:
    return server.url
