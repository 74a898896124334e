"""The reconfigure-under-load figure runs end to end (one run of each change) and meets its goals."""

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
                           "--venv", str(omero_install)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    rows = {r["scenario"]: r for r in result["figure"]["rows"]}
    assert set(rows) == {"manual", "wizard", "wizard-restart"}
    assert all(r["made"] > 20 for r in rows.values()), rows
    assert rows["wizard"]["failed"] == 0, rows["wizard"]
    assert rows["wizard-restart"]["failed"] == rows["wizard-restart"]["maintenance"] > 0, rows["wizard-restart"]
    assert "| omerowizard apply, same setting (graceful reload) |" in proc.stdout
