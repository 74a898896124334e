"""The status figure runs end to end (one timed pair) against the real OMERO.web and reports its goal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import parts

REPO = Path(__file__).resolve().parents[2]


def test_the_status_figure_times_status_beside_omero_web_status(omero_install, tmp_path):
    parts.require("nginx")
    parts.require("redis-server")
    out = tmp_path / "status.json"
    proc = subprocess.run([sys.executable, "-m", "bench.status", "--repeat", "1", "--warmup", "0", "--json", str(out),
                           "--venv", str(omero_install)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fig = json.loads(out.read_text())["figure"]
    assert fig["subject"]["median_s"] > 0 and fig["baseline"]["median_s"] > 0 and fig["ratio"] > 0
    assert {"gunicorn", "workers", "front-door", "session-store", "drift.config", "drift.files"} <= set(fig["checks"])
    assert "| status of a healthy deployment |" in proc.stdout
