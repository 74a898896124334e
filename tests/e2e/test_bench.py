"""The benchmark script runs end to end against the real OMERO.web and reports all five figures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_bench_runs_end_to_end_and_reports_five_figures(omero_install, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--repeat", "1", "--warmup", "0", "--json", str(out),
                           "--venv", str(omero_install)], cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split("|")[1].strip() for row in rows] == ["1", "2", "3", "4", "5"], proc.stdout

    result = json.loads(out.read_text())
    assert result["machine"]["nproc"] >= 1 and result["machine"]["python"]
    figures = {f["number"]: f for f in result["figures"]}
    tui = importlib.util.find_spec("omerowizard.ui.tui.app") is not None
    for n, f in figures.items():
        assert f["baseline"]["median_s"] > 0, f
        if n != 3 or tui:
            assert f["status"] == "measured" and f["subject"]["median_s"] > 0 and f["ratio"] > 0, f
    # the comparison of figure 1 is only honest when both routes stored the same config
    assert any("store the same 11 keys" in note for note in figures[1]["notes"]), figures[1]["notes"]
    counts = [note for note in figures[1]["notes"] if note.startswith("omero processes:")]
    assert counts and counts[0].endswith("manual 13"), figures[1]["notes"]
    wizard_calls = int(counts[0].split("omerowizard ")[1].split(",")[0])
    assert 1 <= wizard_calls <= 3  # one config load (and at most a probe) instead of thirteen processes
    assert figures[1]["baseline"]["median_s"] > figures[1]["subject"]["median_s"]
