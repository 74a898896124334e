"""The reconfigure-under-load figure runs end to end (one run of a few changes: the upgrade rows, the longest,
are measured by `python3 -m bench.reconfigure` itself) and meets its goal: no omerowizard row fails a request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import parts

REPO = Path(__file__).resolve().parents[2]


def test_the_reconfigure_figure_runs_and_meets_its_goals(omero_install, tmp_path):
    parts.require("nginx")
    out = tmp_path / "reconfigure.json"
    proc = subprocess.run([sys.executable, "-m", "bench.reconfigure", "--repeat", "1", "--json", str(out),
                           "--venv", str(omero_install), "--scenarios", "manual,reload,workers,port"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    rows = {r["scenario"]: r for r in result["figure"]["rows"]}
    assert set(rows) == {"manual", "reload", "workers", "port"}
    assert all(r["made"] > 20 for r in rows.values()), rows
    assert rows["manual"]["failed"] == rows["manual"]["maintenance"] > 0, rows["manual"]  # a restart is seen
    for key in ("reload", "workers", "port"):
        assert rows[key]["failed"] == 0 and rows[key]["maintenance"] == 0, rows[key]
    assert result["figure"]["goals"]["wizard"]
    assert "| omerowizard apply: application_server.port (blue/green switch) |" in proc.stdout
